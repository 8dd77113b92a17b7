
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

-- The first three digits of a ZIP code, or 000 for a restricted prefix and
-- for anything that does not start with three digits (fail closed).
CREATE FUNCTION @extschema@.safe_harbor_zip(zip text) RETURNS text
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
BEGIN ATOMIC
    SELECT CASE
        WHEN pg_catalog.btrim(zip) OPERATOR(pg_catalog.!~) '^[0-9]{3}' THEN '000'
        WHEN EXISTS (SELECT FROM @extschema@.restricted_zip3 AS r
                      WHERE r.prefix OPERATOR(pg_catalog.=) pg_catalog.left(pg_catalog.btrim(zip), 3)) THEN '000'
        ELSE pg_catalog.left(pg_catalog.btrim(zip), 3)
    END;
END;
COMMENT ON FUNCTION @extschema@.safe_harbor_zip(text) IS 'Safe Harbor ZIP: first three digits, 000 for restricted prefixes';

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

-- The birth year, suppressed (NULL) for those 90 or older at the given date,
-- because such a year reveals an age over 89.
CREATE FUNCTION @extschema@.safe_harbor_birth_year(birth date, at date) RETURNS integer
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN CASE WHEN @extschema@.safe_harbor_age(birth, at) OPERATOR(pg_catalog.=) '90+' THEN NULL
                ELSE @extschema@.safe_harbor_date(birth) END;
COMMENT ON FUNCTION @extschema@.safe_harbor_birth_year(date, date) IS 'Safe Harbor birth year: the year, or NULL for ages over 89';

CREATE FUNCTION @extschema@.pseudonym(value text, key_name text) RETURNS text
    AS 'MODULE_PATHNAME', 'hg_pseudonym' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.pseudonym(text, text) IS 'Keyed HMAC pseudonym of an identifier (32 hex digits); not reversible without the key';
