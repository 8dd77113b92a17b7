
-- Safe Harbor de-identification helpers (45 CFR 164.514(b)(2)).

-- Three-digit ZIP prefixes whose geographic units held 20,000 people or
-- fewer; Safe Harbor replaces them with 000.  Kept as data with its source,
-- so that a later census can be added as rows.
CREATE TABLE @extschema@.restricted_zip3 (
    prefix text NOT NULL,
    census text NOT NULL,
    CONSTRAINT restricted_zip3_pkey PRIMARY KEY (prefix, census),
    CONSTRAINT restricted_zip3_prefix_check CHECK (prefix OPERATOR(pg_catalog.~) '^[0-9]{3}$')
);
INSERT INTO @extschema@.restricted_zip3 (prefix, census)
SELECT p, '2000 Census'
  FROM pg_catalog.unnest(ARRAY['036', '059', '063', '102', '203', '556', '692', '790', '821',
                               '823', '830', '831', '878', '879', '884', '890', '893']) AS p;
COMMENT ON TABLE @extschema@.restricted_zip3 IS 'ZIP prefixes that Safe Harbor turns into 000, with the census they come from';

-- The first three digits of a ZIP code, or 000 for a restricted prefix.
-- Anything that is not a 5-digit ZIP code or ZIP+4 gives NULL, because a short
-- value such as 2139 may have lost a leading zero and its prefix is unknown.
CREATE FUNCTION @extschema@.safe_harbor_zip(zip text) RETURNS text
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
BEGIN ATOMIC
    SELECT CASE
        WHEN pg_catalog.btrim(zip) OPERATOR(pg_catalog.!~) '^[0-9]{5}(-[0-9]{4})?$' THEN NULL
        WHEN EXISTS (SELECT FROM @extschema@.restricted_zip3 AS r
                      WHERE r.prefix OPERATOR(pg_catalog.=) pg_catalog.left(pg_catalog.btrim(zip), 3)) THEN '000'
        ELSE pg_catalog.left(pg_catalog.btrim(zip), 3)
    END;
END;
COMMENT ON FUNCTION @extschema@.safe_harbor_zip(text) IS 'Safe Harbor ZIP: first three digits, 000 for restricted prefixes, NULL for malformed codes';

-- The year of a date: every other element of a date goes.
CREATE FUNCTION @extschema@.safe_harbor_date(d date) RETURNS integer
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN pg_catalog.date_part('year', d)::integer;
COMMENT ON FUNCTION @extschema@.safe_harbor_date(date) IS 'Safe Harbor date: the year only';

-- Age in whole years at a date, or 90+ from 90 on, since ages over 89 are
-- identifiers themselves.
CREATE FUNCTION @extschema@.safe_harbor_age(birth date, at date) RETURNS text
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    years integer;
BEGIN
    IF at < birth THEN
        -- The dates are not shown: a birth date is an identifier.
        RAISE EXCEPTION 'date to compute the age at is before the birth date'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    years := date_part('year', age(at, birth))::integer;
    IF years >= 90 THEN
        RETURN '90+';
    END IF;
    RETURN years::text;
END
$$;
COMMENT ON FUNCTION @extschema@.safe_harbor_age(date, date) IS 'Safe Harbor age: whole years, or 90+ from 90 on';

-- The birth year, suppressed (NULL) when the years between it and the given
-- date reach 90: the year alone then admits an age over 89, even for someone
-- who is still 89.
CREATE FUNCTION @extschema@.safe_harbor_birth_year(birth date, at date) RETURNS integer
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN CASE WHEN @extschema@.safe_harbor_date(at) OPERATOR(pg_catalog.-) @extschema@.safe_harbor_date(birth)
                     OPERATOR(pg_catalog.>=) 90 THEN NULL
                ELSE @extschema@.safe_harbor_date(birth) END;
COMMENT ON FUNCTION @extschema@.safe_harbor_birth_year(date, date) IS 'Safe Harbor birth year: the year, or NULL when the year admits an age over 89';

CREATE FUNCTION @extschema@.pseudonym(value text, key_name text) RETURNS text
    AS 'MODULE_PATHNAME', 'hg_pseudonym' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.pseudonym(text, text) IS 'Keyed HMAC pseudonym of an identifier (32 hex digits); not reversible without the key';

-- Column labels: which Safe Harbor identifier each column holds.  A
-- de-identified view is built from them and leaves out every column that has
-- no label, so that a column added later is never passed through unseen.
CREATE TABLE @extschema@.identifier_kinds (
    kind text NOT NULL,
    treatment text NOT NULL,
    description text NOT NULL,
    CONSTRAINT identifier_kinds_pkey PRIMARY KEY (kind),
    CONSTRAINT identifier_kinds_treatment_check
        CHECK (treatment OPERATOR(pg_catalog.=) ANY (ARRAY['remove', 'zip3', 'year', 'keep']))
);
INSERT INTO @extschema@.identifier_kinds (kind, treatment, description) VALUES
    ('names', 'remove', 'Names'),
    ('geographic', 'remove', 'Geographic subdivisions smaller than a state: street, city, county, precinct'),
    ('zip', 'zip3', 'ZIP codes: the first three digits are kept unless restricted'),
    ('dates', 'year', 'Elements of dates except the year; the year too when it reveals an age over 89'),
    ('phone', 'remove', 'Telephone numbers'),
    ('fax', 'remove', 'Fax numbers'),
    ('email', 'remove', 'Email addresses'),
    ('ssn', 'remove', 'Social Security numbers'),
    ('medical_record_number', 'remove', 'Medical record numbers'),
    ('health_plan_number', 'remove', 'Health plan beneficiary numbers'),
    ('account_number', 'remove', 'Account numbers'),
    ('licence_number', 'remove', 'Certificate and licence numbers'),
    ('vehicle_id', 'remove', 'Vehicle identifiers and serial numbers, licence plates included'),
    ('device_id', 'remove', 'Device identifiers and serial numbers'),
    ('url', 'remove', 'Web URLs'),
    ('ip_address', 'remove', 'IP addresses'),
    ('biometric', 'remove', 'Biometric identifiers, finger and voice prints included'),
    ('photograph', 'remove', 'Full-face photographs and comparable images'),
    ('other_unique_id', 'remove', 'Any other unique identifying number, characteristic or code'),
    ('quasi', 'keep', 'Not one of the 18 identifiers, but identifying in combination'),
    ('not_identifying', 'keep', 'Not identifying');
COMMENT ON TABLE @extschema@.identifier_kinds IS 'The 18 Safe Harbor identifier kinds (45 CFR 164.514(b)(2)) and how a de-identified view treats each';

CREATE TABLE @extschema@.column_labels (
    tbl regclass NOT NULL,
    col name NOT NULL,
    kind text NOT NULL REFERENCES @extschema@.identifier_kinds (kind),
    labelled_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    labelled_by name NOT NULL DEFAULT CURRENT_USER,
    CONSTRAINT column_labels_pkey PRIMARY KEY (tbl, col)
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.column_labels', '');
COMMENT ON TABLE @extschema@.column_labels IS 'Safe Harbor identifier kind of each labelled column';

CREATE FUNCTION @extschema@.label_column(tbl regclass, col name, identifier text) RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM @extschema@.check_column(tbl, col);
    IF identifier IS NULL THEN
        RAISE EXCEPTION 'identifier kind must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT FROM @extschema@.identifier_kinds AS k WHERE k.kind = identifier) THEN
        RAISE EXCEPTION 'unknown identifier kind "%"', identifier
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use one of: ' || (SELECT string_agg(kind, ', ' ORDER BY kind) FROM @extschema@.identifier_kinds) || '.';
    END IF;
    INSERT INTO @extschema@.column_labels AS l (tbl, col, kind)
        VALUES (label_column.tbl, label_column.col, identifier)
        ON CONFLICT ON CONSTRAINT column_labels_pkey DO UPDATE
        SET kind = excluded.kind, labelled_at = now(), labelled_by = CURRENT_USER;
END
$$;
COMMENT ON FUNCTION @extschema@.label_column(regclass, name, text) IS 'Label a column with the Safe Harbor identifier kind it holds';

-- Generalizations of encrypted values for de-identified views.  They run as
-- the extension owner, so that readers of such a view need no decrypt grant,
-- and they return only what Safe Harbor allows to be disclosed.
-- NOTE: PostgreSQL checks EXECUTE on functions in a view against the reader,
-- so these are granted to PUBLIC: anyone who can read an encrypted value can
-- learn its ZIP prefix or year this way.
-- A value whose key was destroyed (shredded) is gone for good, so these
-- return NULL for it rather than break the whole view.
CREATE FUNCTION @extschema@.key_destroyed(key_name text) RETURNS boolean
    LANGUAGE sql STABLE STRICT
    RETURN COALESCE((SELECT k.state OPERATOR(pg_catalog.=) 'destroyed' FROM @extschema@.data_keys AS k
                      WHERE k.name OPERATOR(pg_catalog.=) key_name), false);
CREATE FUNCTION @extschema@.deidentified_zip(value @extschema@.encrypted_text) RETURNS text
    LANGUAGE sql STABLE STRICT SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    RETURN CASE WHEN @extschema@.key_destroyed(@extschema@.key_name(value)) THEN NULL
                ELSE @extschema@.safe_harbor_zip(@extschema@.decrypt(value)) END;
CREATE FUNCTION @extschema@.deidentified_year(value @extschema@.encrypted_date) RETURNS integer
    LANGUAGE sql STABLE STRICT SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    RETURN CASE WHEN @extschema@.key_destroyed(@extschema@.key_name(value)) THEN NULL
                ELSE @extschema@.safe_harbor_birth_year(@extschema@.decrypt(value), CURRENT_DATE) END;

-- Build a security-barrier view, in tbl's schema, that removes or generalizes every
-- labelled identifier and leaves out every unlabelled column (fail closed).
-- Dates keep their year, except where the year reveals an age over 89, which
-- also suppresses old dates that are not birth dates.
CREATE FUNCTION @extschema@.create_deidentified_view(tbl regclass, view_name name) RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    att record;
    expressions text[] := '{}';
    expression text;
BEGIN
    IF view_name IS NULL THEN
        RAISE EXCEPTION 'view name must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    FOR att IN
        SELECT a.attname, a.atttypid, k.treatment
          FROM pg_attribute AS a
          JOIN @extschema@.column_labels AS l ON l.tbl = a.attrelid AND l.col = a.attname
          JOIN @extschema@.identifier_kinds AS k ON k.kind = l.kind
         WHERE a.attrelid = create_deidentified_view.tbl AND a.attnum > 0 AND NOT a.attisdropped
         ORDER BY a.attnum
    LOOP
        expression := CASE
            WHEN att.treatment = 'remove' THEN NULL
            WHEN att.treatment = 'zip3' AND att.atttypid = '@extschema@.encrypted_text'::regtype
                THEN format('@extschema@.deidentified_zip(%I)', att.attname)
            WHEN att.treatment = 'zip3' AND att.atttypid IN ('text'::regtype, 'varchar'::regtype, 'bpchar'::regtype)
                THEN format('@extschema@.safe_harbor_zip(%I::text)', att.attname)
            WHEN att.treatment = 'year' AND att.atttypid = '@extschema@.encrypted_date'::regtype
                THEN format('@extschema@.deidentified_year(%I)', att.attname)
            WHEN att.treatment = 'year' AND att.atttypid IN ('date'::regtype, 'timestamp'::regtype)
                THEN format('@extschema@.safe_harbor_birth_year(%I::date, current_date)', att.attname)
            -- In UTC, so that the year does not depend on the reader's TimeZone.
            WHEN att.treatment = 'year' AND att.atttypid = 'timestamptz'::regtype
                THEN format('@extschema@.safe_harbor_birth_year((%I AT TIME ZONE ''UTC'')::date, current_date)', att.attname)
            WHEN att.treatment = 'keep' AND att.atttypid NOT IN ('@extschema@.encrypted_text'::regtype,
                    '@extschema@.encrypted_bytea'::regtype, '@extschema@.encrypted_date'::regtype,
                    '@extschema@.encrypted_jsonb'::regtype)
                THEN format('%I', att.attname)
            ELSE 'unsupported'
        END;
        IF expression = 'unsupported' THEN
            RAISE EXCEPTION 'column "%" of type % cannot be de-identified as labelled', att.attname, format_type(att.atttypid, NULL)
                USING ERRCODE = 'datatype_mismatch',
                      HINT = 'ZIP labels take text or encrypted_text, dates take date, timestamp or encrypted_date, and encrypted columns cannot be kept as they are.';
        END IF;
        IF expression IS NOT NULL THEN
            expressions := expressions || format('%s AS %I', expression, att.attname);
        END IF;
    END LOOP;
    IF cardinality(expressions) = 0 THEN
        RAISE EXCEPTION 'table "%" has no labelled column that a de-identified view could show', tbl
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Label its columns with hipaa_guard.label_column().';
    END IF;
    -- In the table's schema: search_path is pinned here, so it cannot name one.
    EXECUTE format('CREATE VIEW %I.%I WITH (security_barrier) AS SELECT %s FROM %s',
                   (SELECT n.nspname FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
                     WHERE c.oid = create_deidentified_view.tbl),
                   view_name, array_to_string(expressions, ', '), tbl);
END
$$;
COMMENT ON FUNCTION @extschema@.create_deidentified_view(regclass, name) IS 'Create a view that removes or generalizes labelled identifiers and leaves out unlabelled columns';
