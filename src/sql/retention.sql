
-- Retention: policies, legal holds, purges and the receipts they leave.
--
-- A purge is defined by data, not by schedule ticks: a row is due when its
-- age column is older than the policy's keep and no active hold covers it.
-- Cutoffs are computed in UTC, and date and timestamp columns are read as UTC,
-- so that no session's TimeZone moves them.  Configuration changes go through
-- SECURITY DEFINER functions that only hipaa_admin may call, and each change
-- leaves a row in retention_log.  No role may write to the tables directly.

CREATE TABLE @extschema@.retention_config (
    tbl regclass NOT NULL,
    age_column name NOT NULL,
    keep interval NOT NULL,
    action text NOT NULL,
    set_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    set_by name NOT NULL DEFAULT SESSION_USER,
    CONSTRAINT retention_config_pkey PRIMARY KEY (tbl),
    CONSTRAINT retention_config_action_check
        CHECK (action OPERATOR(pg_catalog.=) ANY (ARRAY['delete', 'deidentify', 'shred']))
);
COMMENT ON TABLE @extschema@.retention_config IS 'Retention policy of each table; change it with set_retention() and drop_retention()';

-- The column that names a row's patient, for holds on one patient and for
-- shredding.  Tables whose row trigger keeps per-patient keys need no row:
-- their row key column names the patient.
CREATE TABLE @extschema@.patient_columns (
    tbl regclass NOT NULL,
    col name NOT NULL,
    set_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    set_by name NOT NULL DEFAULT SESSION_USER,
    CONSTRAINT patient_columns_pkey PRIMARY KEY (tbl)
);
COMMENT ON TABLE @extschema@.patient_columns IS 'The column that holds the patient id, per table';

CREATE SEQUENCE @extschema@.legal_hold_records_hold_id_seq AS bigint;
CREATE TABLE @extschema@.legal_hold_records (
    hold_id bigint NOT NULL DEFAULT pg_catalog.nextval('@extschema@.legal_hold_records_hold_id_seq'::pg_catalog.regclass),
    tbl regclass NOT NULL,
    patient text,
    reason text NOT NULL,
    hold_until timestamptz,
    placed_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    placed_by name NOT NULL DEFAULT SESSION_USER,
    released_at timestamptz,
    released_by name,
    release_note text,
    CONSTRAINT legal_hold_records_pkey PRIMARY KEY (hold_id)
);
ALTER SEQUENCE @extschema@.legal_hold_records_hold_id_seq OWNED BY @extschema@.legal_hold_records.hold_id;
CREATE INDEX legal_hold_records_tbl_idx ON @extschema@.legal_hold_records (tbl) WHERE released_at IS NULL;
COMMENT ON TABLE @extschema@.legal_hold_records IS 'Legal holds, placed and released; a NULL patient holds the whole table';

CREATE SEQUENCE @extschema@.retention_log_change_id_seq AS bigint;
CREATE TABLE @extschema@.retention_log (
    change_id bigint NOT NULL DEFAULT pg_catalog.nextval('@extschema@.retention_log_change_id_seq'::pg_catalog.regclass),
    changed_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    changed_by name NOT NULL DEFAULT SESSION_USER,
    change text NOT NULL,
    table_name text NOT NULL,
    detail jsonb NOT NULL,
    CONSTRAINT retention_log_pkey PRIMARY KEY (change_id)
);
ALTER SEQUENCE @extschema@.retention_log_change_id_seq OWNED BY @extschema@.retention_log.change_id;
COMMENT ON TABLE @extschema@.retention_log IS 'Every change to retention policies, patient columns and legal holds';

-- One receipt per policy per purge.  Its counts and position are updated in
-- the transaction of each batch, so after a crash or a cancel the receipt
-- still accounts for exactly the batches that committed.
CREATE SEQUENCE @extschema@.purge_receipt_log_receipt_id_seq AS bigint;
CREATE TABLE @extschema@.purge_receipt_log (
    receipt_id bigint NOT NULL DEFAULT pg_catalog.nextval('@extschema@.purge_receipt_log_receipt_id_seq'::pg_catalog.regclass),
    tbl oid NOT NULL,
    table_name text NOT NULL,
    action text NOT NULL,
    age_column name NOT NULL,
    keep interval NOT NULL,
    cutoff timestamptz NOT NULL,
    patient_column name,
    key_expression text,
    started_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    finished_at timestamptz,
    run_by name NOT NULL DEFAULT SESSION_USER,
    runner text NOT NULL,
    runner_pid integer NOT NULL DEFAULT pg_catalog.pg_backend_pid(),
    rows_purged bigint NOT NULL DEFAULT 0,
    rows_held bigint NOT NULL DEFAULT 0,
    batches integer NOT NULL DEFAULT 0,
    leaf_index integer NOT NULL DEFAULT 1,
    next_block bigint NOT NULL DEFAULT 0,
    resume_after text,
    error text,
    CONSTRAINT purge_receipt_log_pkey PRIMARY KEY (receipt_id)
);
ALTER SEQUENCE @extschema@.purge_receipt_log_receipt_id_seq OWNED BY @extschema@.purge_receipt_log.receipt_id;
COMMENT ON TABLE @extschema@.purge_receipt_log IS 'Purge receipts as written; read them through the purge_receipts view';

-- A finished receipt goes into the audit trail too, so that an auditor can
-- tell rows removed by policy from rows removed by hand.
CREATE FUNCTION @extschema@.audit_purge_receipt() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NEW.finished_at IS NOT NULL AND (TG_OP = 'INSERT' OR OLD.finished_at IS NULL) THEN
        PERFORM @extschema@.audit_event('retention', 'PURGE', NEW.table_name,
            format('receipt %s, action %s, cutoff %s UTC, %s rows purged, %s rows held, %s batches%s',
                   NEW.receipt_id, NEW.action, NEW.cutoff AT TIME ZONE 'UTC', NEW.rows_purged,
                   NEW.rows_held, NEW.batches,
                   CASE WHEN NEW.error IS NOT NULL THEN ', failed' ELSE '' END));
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER purge_receipt_audited AFTER INSERT OR UPDATE OF finished_at ON @extschema@.purge_receipt_log
    FOR EACH ROW EXECUTE FUNCTION @extschema@.audit_purge_receipt();

-- keys_digest is SHA-256 over the text form of the batch's row keys (the
-- primary key, or the patient id when shredding), sorted bytewise, each
-- followed by a newline.
CREATE TABLE @extschema@.purge_receipt_batches (
    receipt_id bigint NOT NULL REFERENCES @extschema@.purge_receipt_log (receipt_id),
    batch integer NOT NULL,
    rows_purged bigint NOT NULL,
    rows_held bigint NOT NULL,
    keys_digest bytea,
    committed_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    CONSTRAINT purge_receipt_batches_pkey PRIMARY KEY (receipt_id, batch)
);
COMMENT ON TABLE @extschema@.purge_receipt_batches IS 'Batches of each purge receipt that purged or held rows, with the digest of the purged keys';

SELECT pg_catalog.pg_extension_config_dump('@extschema@.retention_config', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.patient_columns', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.legal_hold_records', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.legal_hold_records_hold_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.retention_log', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.retention_log_change_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.purge_receipt_log', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.purge_receipt_log_receipt_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.purge_receipt_batches', '');

-- The moment before which a row is due: keep is subtracted in UTC, so that
-- months and days do not depend on the session's TimeZone.
CREATE FUNCTION @extschema@.retention_cutoff(keep interval, at timestamptz) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN ((at AT TIME ZONE 'UTC') OPERATOR(pg_catalog.-) keep) AT TIME ZONE 'UTC';
COMMENT ON FUNCTION @extschema@.retention_cutoff(interval, timestamptz) IS 'Retention cutoff: at minus keep, computed in UTC';

-- Whether a hold is in force now.
CREATE FUNCTION @extschema@.hold_is_active(h @extschema@.legal_hold_records) RETURNS boolean
    LANGUAGE sql STABLE
    RETURN h.released_at IS NULL AND (h.hold_until IS NULL OR h.hold_until OPERATOR(pg_catalog.>) pg_catalog.now());

CREATE FUNCTION @extschema@.patient_column(tbl regclass) RETURNS name
    LANGUAGE sql STABLE STRICT
BEGIN ATOMIC
    SELECT COALESCE(
        (SELECT p.col FROM @extschema@.patient_columns AS p WHERE p.tbl OPERATOR(pg_catalog.=) patient_column.tbl),
        (SELECT a[1]::name FROM (SELECT @extschema@.row_trigger_args(patient_column.tbl) AS a) AS x
          WHERE a[2] OPERATOR(pg_catalog.=) 't' AND a[1] OPERATOR(pg_catalog.<>) ''));
END;
COMMENT ON FUNCTION @extschema@.patient_column(regclass) IS 'The column of a table that holds the patient id, or NULL';

-- Dates in place: January 1 of the year, or NULL when the year shows an age
-- over 89 at the given date, as in create_deidentified_view().  Both are
-- idempotent, so that a repeated purge finds nothing left to change.
CREATE FUNCTION @extschema@.deidentify_date(d date, at date) RETURNS date
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN CASE WHEN @extschema@.safe_harbor_birth_year(d, at) IS NULL THEN NULL
                ELSE pg_catalog.make_date(@extschema@.safe_harbor_date(d), 1, 1) END;

-- ZIP codes in place: a value already cut to three digits stays as it is,
-- unless it is a restricted prefix.
CREATE FUNCTION @extschema@.deidentify_zip(zip text) RETURNS text
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
BEGIN ATOMIC
    SELECT CASE
        WHEN pg_catalog.btrim(zip) OPERATOR(pg_catalog.!~) '^[0-9]{3}$' THEN @extschema@.safe_harbor_zip(zip)
        WHEN EXISTS (SELECT FROM @extschema@.restricted_zip3 AS r
                      WHERE r.prefix OPERATOR(pg_catalog.=) pg_catalog.btrim(zip)) THEN '000'
        ELSE pg_catalog.btrim(zip)
    END;
END;

-- The SET list and the "still identifying" test of an in-place
-- de-identification of tbl.  Fails closed: every column must be labelled,
-- and a NOT NULL column cannot be removed.  Encrypted identifiers are
-- removed, since generalizing them would need their plaintext.
CREATE FUNCTION @extschema@.deidentify_plan(tbl regclass, at date,
                                             OUT set_list text, OUT needs_work text)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    att record;
    sets text[] := '{}';
    tests text[] := '{}';
    generalized text;
    unlabelled text;
BEGIN
    SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO unlabelled
      FROM pg_attribute AS a
     WHERE a.attrelid = deidentify_plan.tbl AND a.attnum > 0 AND NOT a.attisdropped
       AND NOT EXISTS (SELECT FROM @extschema@.column_labels AS l WHERE l.tbl = a.attrelid AND l.col = a.attname);
    IF unlabelled IS NOT NULL THEN
        RAISE EXCEPTION 'table "%" has columns without a de-identification label', tbl
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'Unlabelled columns: ' || unlabelled || '.',
                  HINT = 'Label every column with hipaa_guard.label_column(), not_identifying included.';
    END IF;
    FOR att IN
        SELECT a.attname, a.atttypid, a.attnotnull, k.kind, k.treatment,
               t.typnamespace = '@extschema@'::regnamespace AS encrypted
          FROM pg_attribute AS a
          JOIN pg_type AS t ON t.oid = a.atttypid
          JOIN @extschema@.column_labels AS l ON l.tbl = a.attrelid AND l.col = a.attname
          JOIN @extschema@.identifier_kinds AS k ON k.kind = l.kind
         WHERE a.attrelid = deidentify_plan.tbl AND a.attnum > 0 AND NOT a.attisdropped AND k.treatment <> 'keep'
         ORDER BY a.attnum
    LOOP
        generalized := CASE
            WHEN att.treatment = 'remove' OR att.encrypted THEN 'NULL'
            WHEN att.treatment = 'zip3' AND att.atttypid IN ('text'::regtype, 'varchar'::regtype, 'bpchar'::regtype)
                THEN format('@extschema@.deidentify_zip(%I::text)', att.attname)
            WHEN att.treatment = 'year' AND att.atttypid = 'date'::regtype
                THEN format('@extschema@.deidentify_date(%I, %L::date)', att.attname, at)
            WHEN att.treatment = 'year' AND att.atttypid = 'timestamp'::regtype
                THEN format('@extschema@.deidentify_date(%I::date, %L::date)::timestamp', att.attname, at)
            WHEN att.treatment = 'year' AND att.atttypid = 'timestamptz'::regtype
                THEN format('(@extschema@.deidentify_date((%I AT TIME ZONE ''UTC'')::date, %L::date)::timestamp AT TIME ZONE ''UTC'')',
                            att.attname, at)
        END;
        IF generalized IS NULL THEN
            RAISE EXCEPTION 'column "%" of type % cannot be de-identified as labelled', att.attname, format_type(att.atttypid, NULL)
                USING ERRCODE = 'datatype_mismatch',
                      HINT = 'ZIP labels take text, dates take date, timestamp or timestamptz; other identifiers are removed.';
        END IF;
        IF att.attnotnull AND generalized = 'NULL' OR att.attnotnull AND att.treatment = 'year' THEN
            RAISE EXCEPTION 'column "%" is labelled "%" and is NOT NULL, but de-identifying it may set it to NULL', att.attname, att.kind
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'Drop its NOT NULL constraint, or label it not_identifying if it holds no identifier.';
        END IF;
        sets := sets || format('%I = %s', att.attname, generalized);
        tests := tests || CASE WHEN generalized = 'NULL' THEN format('%I IS NOT NULL', att.attname)
                               ELSE format('%I IS DISTINCT FROM %s', att.attname, generalized) END;
    END LOOP;
    IF cardinality(sets) = 0 THEN
        RAISE EXCEPTION 'table "%" has no identifier to de-identify', tbl
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Every column is labelled quasi or not_identifying; use the delete action, or none.';
    END IF;
    set_list := array_to_string(sets, ', ');
    needs_work := array_to_string(tests, ' OR ');
END
$$;

-- "col < cutoff" for the age column's type.  A date is read as midnight UTC
-- at its start, and a timestamp without time zone as UTC.
CREATE FUNCTION @extschema@.retention_expired_sql(tbl regclass, age_column name, cutoff timestamptz)
    RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    typ regtype := (SELECT atttypid FROM pg_attribute
                     WHERE attrelid = tbl AND attname = age_column AND attnum > 0 AND NOT attisdropped);
    utc timestamp := cutoff AT TIME ZONE 'UTC';
BEGIN
    RETURN CASE typ
        WHEN 'timestamptz'::regtype THEN format('%I < %L::timestamptz', age_column, cutoff)
        WHEN 'timestamp'::regtype THEN format('%I < %L::timestamp', age_column, utc)
        -- d (midnight) < utc holds for every day before utc's, and for utc's
        -- own day unless utc is itself midnight.
        WHEN 'date'::regtype THEN format('%I < %L::date', age_column,
                                         CASE WHEN utc = date_trunc('day', utc) THEN utc::date ELSE utc::date + 1 END)
    END;
END
$$;

-- The text form of a row's primary key, the row key a receipt digests.
CREATE FUNCTION @extschema@.retention_key_sql(tbl regclass) RETURNS text
    LANGUAGE sql STABLE STRICT
BEGIN ATOMIC
    SELECT CASE WHEN pg_catalog.count(*) OPERATOR(pg_catalog.=) 1
                THEN pg_catalog.format('%I::text', (pg_catalog.array_agg(a.attname))[1])
                ELSE pg_catalog.format('ROW(%s)::text', pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY k.ord))
           END
      FROM pg_catalog.pg_index AS i
      CROSS JOIN LATERAL pg_catalog.unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
      JOIN pg_catalog.pg_attribute AS a ON a.attrelid OPERATOR(pg_catalog.=) i.indrelid AND a.attnum OPERATOR(pg_catalog.=) k.attnum
     WHERE i.indrelid OPERATOR(pg_catalog.=) tbl AND i.indisprimary
    HAVING pg_catalog.count(*) OPERATOR(pg_catalog.>) 0;
END;

-- Every check a policy must pass, at set_retention() and again at each purge,
-- since the table may have changed in between.
CREATE FUNCTION @extschema@.check_retention(tbl regclass, age_column name, keep interval, action text)
    RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rel record;
BEGIN
    IF tbl IS NULL OR age_column IS NULL OR keep IS NULL OR action IS NULL THEN
        RAISE EXCEPTION 'table, age column, retention period and action must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT c.relkind, c.relpersistence, n.nspname INTO rel
      FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace WHERE c.oid = tbl;
    IF rel.relkind NOT IN ('r', 'p') OR rel.relpersistence = 't'
       OR rel.nspname IN ('pg_catalog', 'information_schema', '@extschema@') THEN
        RAISE EXCEPTION '"%" is not a table a retention policy can purge', tbl
            USING ERRCODE = 'wrong_object_type',
                  HINT = 'Policies apply to ordinary and partitioned tables outside the system and hipaa_guard schemas.';
    END IF;
    PERFORM @extschema@.check_column(tbl, age_column);
    IF @extschema@.retention_expired_sql(tbl, age_column, now()) IS NULL THEN
        RAISE EXCEPTION 'age column "%" must be of type date, timestamp or timestamptz', age_column
            USING ERRCODE = 'datatype_mismatch';
    END IF;
    IF keep <= interval '0' THEN
        RAISE EXCEPTION 'retention period must be positive'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF action NOT IN ('delete', 'deidentify', 'shred') THEN
        RAISE EXCEPTION 'unknown retention action "%"', action
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use delete, deidentify or shred.';
    END IF;
    IF action IN ('delete', 'deidentify') AND @extschema@.retention_key_sql(tbl) IS NULL THEN
        RAISE EXCEPTION 'table "%" has no primary key', tbl
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'Purge receipts identify the rows they purged by primary key.';
    END IF;
    IF action = 'deidentify' THEN
        PERFORM @extschema@.deidentify_plan(tbl, current_date);
    END IF;
    IF action = 'shred' AND @extschema@.patient_column(tbl) IS NULL THEN
        RAISE EXCEPTION 'table "%" has no patient column', tbl
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Name it with hipaa_guard.set_patient_column().';
    END IF;
END
$$;

CREATE FUNCTION @extschema@.log_retention_change(change text, tbl regclass, detail jsonb) RETURNS void
    LANGUAGE sql
BEGIN ATOMIC
    INSERT INTO @extschema@.retention_log (change, table_name, detail)
    VALUES (change, tbl::text, detail);
    SELECT @extschema@.audit_event('config', change, tbl::text, detail::text,
        CASE WHEN detail OPERATOR(pg_catalog.?) 'patient'
             THEN ARRAY[detail OPERATOR(pg_catalog.->>) 'patient'] END);
END;

CREATE FUNCTION @extschema@.set_retention(tbl regclass, age_column name, keep interval,
                                           action text DEFAULT 'delete')
    RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM @extschema@.check_retention(tbl, age_column, keep, action);
    PERFORM @extschema@.grant_purger(tbl);
    INSERT INTO @extschema@.retention_config AS c (tbl, age_column, keep, action)
    VALUES (set_retention.tbl, set_retention.age_column, set_retention.keep, set_retention.action)
    ON CONFLICT ON CONSTRAINT retention_config_pkey DO UPDATE
    SET age_column = excluded.age_column, keep = excluded.keep, action = excluded.action,
        set_at = now(), set_by = SESSION_USER;
    PERFORM @extschema@.log_retention_change('set_retention', tbl,
        jsonb_build_object('age_column', age_column, 'keep', keep::text, 'action', action));
END
$$;
COMMENT ON FUNCTION @extschema@.set_retention(regclass, name, interval, text) IS 'Keep a table''s rows for keep after their age column, then delete, de-identify or shred them';

CREATE FUNCTION @extschema@.drop_retention(tbl regclass) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    old @extschema@.retention_config;
BEGIN
    DELETE FROM @extschema@.retention_config AS c WHERE c.tbl = drop_retention.tbl RETURNING * INTO old;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'table "%" has no retention policy', tbl
            USING ERRCODE = 'undefined_object';
    END IF;
    PERFORM @extschema@.revoke_purger(tbl);
    PERFORM @extschema@.log_retention_change('drop_retention', tbl,
        jsonb_build_object('age_column', old.age_column, 'keep', old.keep::text, 'action', old.action));
END
$$;
COMMENT ON FUNCTION @extschema@.drop_retention(regclass) IS 'Remove a table''s retention policy';

CREATE FUNCTION @extschema@.set_patient_column(tbl regclass, col name) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM @extschema@.check_column(tbl, col);
    INSERT INTO @extschema@.patient_columns AS p (tbl, col) VALUES (set_patient_column.tbl, set_patient_column.col)
    ON CONFLICT ON CONSTRAINT patient_columns_pkey DO UPDATE
    SET col = excluded.col, set_at = now(), set_by = SESSION_USER;
    PERFORM @extschema@.log_retention_change('set_patient_column', tbl, jsonb_build_object('column', col));
    -- The write trigger carries the patient column as its argument.
    IF EXISTS (SELECT FROM @extschema@.audited_tables AS a WHERE a.tbl = set_patient_column.tbl AND a.writes) THEN
        PERFORM @extschema@.create_audit_triggers(tbl);
    END IF;
    IF EXISTS (SELECT FROM @extschema@.audited_tables AS a WHERE a.tbl = set_patient_column.tbl AND a.reads) THEN
        PERFORM @extschema@.create_audit_guard(tbl);
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@.set_patient_column(regclass, name) IS 'Name the column that holds a table''s patient id';

CREATE FUNCTION @extschema@.legal_hold(tbl regclass, patient text, reason text,
                                        until timestamptz DEFAULT NULL)
    RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    id bigint;
BEGIN
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'table must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF length(regexp_replace(coalesce(reason, ''), '\s', '', 'g')) < 10 THEN
        RAISE EXCEPTION 'a legal hold needs a reason'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'The reason must have at least 10 characters besides spaces.',
                  HINT = 'Name the matter, for example the case number or the investigation.';
    END IF;
    IF until IS NOT NULL AND until <= now() THEN
        RAISE EXCEPTION 'a legal hold must end in the future'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF patient IS NOT NULL AND @extschema@.patient_column(tbl) IS NULL THEN
        RAISE EXCEPTION 'table "%" has no patient column', tbl
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Name it with hipaa_guard.set_patient_column(), or hold the whole table with a NULL patient.';
    END IF;
    -- Waits for a purge batch in progress; later batches see this hold.
    PERFORM pg_advisory_xact_lock(1751580672, 2);
    INSERT INTO @extschema@.legal_hold_records (tbl, patient, reason, hold_until)
    VALUES (legal_hold.tbl, legal_hold.patient, legal_hold.reason, legal_hold.until)
    RETURNING hold_id INTO id;
    PERFORM @extschema@.log_retention_change('legal_hold', tbl,
        jsonb_build_object('hold_id', id, 'whole_table', patient IS NULL, 'until', until));
    RETURN id;
END
$$;
COMMENT ON FUNCTION @extschema@.legal_hold(regclass, text, text, timestamptz) IS 'Place a legal hold on one patient''s rows, or on the whole table when patient is NULL; returns its id';

CREATE FUNCTION @extschema@.release_hold(id bigint, note text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    h @extschema@.legal_hold_records;
BEGIN
    IF length(btrim(coalesce(note, ''))) = 0 THEN
        RAISE EXCEPTION 'releasing a legal hold needs a note'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO h FROM @extschema@.legal_hold_records AS r WHERE r.hold_id = id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'legal hold % does not exist', id USING ERRCODE = 'undefined_object';
    END IF;
    IF h.released_at IS NOT NULL THEN
        RAISE EXCEPTION 'legal hold % was already released', id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('It was released at %s by %s.', h.released_at, h.released_by);
    END IF;
    UPDATE @extschema@.legal_hold_records AS r
       SET released_at = now(), released_by = SESSION_USER, release_note = note
     WHERE r.hold_id = id;
    PERFORM @extschema@.log_retention_change('release_hold', h.tbl, jsonb_build_object('hold_id', id));
END
$$;
COMMENT ON FUNCTION @extschema@.release_hold(bigint, text) IS 'Release a legal hold, with a note saying why';

CREATE VIEW @extschema@.legal_holds AS
SELECT h.hold_id,
       h.tbl AS table_name,
       h.patient,
       h.reason,
       h.hold_until AS until,
       @extschema@.hold_is_active(h) AS active,
       h.placed_at,
       h.placed_by,
       h.released_at,
       h.released_by,
       h.release_note
  FROM @extschema@.legal_hold_records AS h;
COMMENT ON VIEW @extschema@.legal_holds IS 'Legal holds, active and past; a NULL patient holds the whole table';

CREATE VIEW @extschema@.retention_policies AS
SELECT c.tbl AS table_name,
       c.age_column,
       c.keep,
       c.action,
       @extschema@.patient_column(c.tbl) AS patient_column,
       @extschema@.retention_cutoff(c.keep, pg_catalog.now()) AS cutoff_now,
       EXISTS (SELECT FROM @extschema@.legal_hold_records AS h
                WHERE h.tbl OPERATOR(pg_catalog.=) c.tbl AND h.patient IS NULL
                  AND @extschema@.hold_is_active(h)) AS table_on_hold,
       (SELECT pg_catalog.count(*) FROM @extschema@.legal_hold_records AS h
         WHERE h.tbl OPERATOR(pg_catalog.=) c.tbl AND h.patient IS NOT NULL
           AND @extschema@.hold_is_active(h)) AS patient_holds,
       (SELECT pg_catalog.max(r.finished_at) FROM @extschema@.purge_receipt_log AS r
         WHERE r.tbl OPERATOR(pg_catalog.=) c.tbl::pg_catalog.oid AND r.error IS NULL) AS last_purge,
       c.set_at,
       c.set_by
  FROM @extschema@.retention_config AS c;
COMMENT ON VIEW @extschema@.retention_policies IS 'Retention policies, with the cutoff a purge would use now and the holds in force';

-- A receipt is running while its runner has the purge lock and has not
-- started a later receipt.  Any other unfinished receipt was interrupted (by a
-- crash, a cancel or a lost connection), and the next purge goes on from what
-- it committed.
CREATE VIEW @extschema@.purge_receipts AS
SELECT r.receipt_id,
       r.table_name,
       r.action,
       r.age_column,
       r.keep,
       r.cutoff,
       r.rows_purged,
       r.rows_held,
       r.batches,
       (SELECT pg_catalog.sha256(pg_catalog.string_agg(b.keys_digest, ''::bytea ORDER BY b.batch))
          FROM @extschema@.purge_receipt_batches AS b
         WHERE b.receipt_id OPERATOR(pg_catalog.=) r.receipt_id AND b.keys_digest IS NOT NULL) AS keys_digest,
       r.started_at,
       r.finished_at,
       r.run_by,
       r.runner,
       r.runner_pid,
       CASE WHEN r.error IS NOT NULL THEN 'failed'
            WHEN r.finished_at IS NOT NULL THEN 'completed'
            WHEN EXISTS (SELECT FROM pg_catalog.pg_locks AS l
                          WHERE l.locktype OPERATOR(pg_catalog.=) 'advisory'
                            AND l.classid OPERATOR(pg_catalog.=) 1751580672::pg_catalog.oid
                            AND l.objid OPERATOR(pg_catalog.=) 1::pg_catalog.oid
                            AND l.objsubid OPERATOR(pg_catalog.=) 2
                            AND l.granted AND l.pid OPERATOR(pg_catalog.=) r.runner_pid)
                 AND r.receipt_id OPERATOR(pg_catalog.=) (SELECT pg_catalog.max(o.receipt_id) FROM @extschema@.purge_receipt_log AS o
                                                           WHERE o.runner_pid OPERATOR(pg_catalog.=) r.runner_pid)
                 THEN 'running'
            ELSE 'interrupted' END AS status,
       r.error
  FROM @extschema@.purge_receipt_log AS r;
COMMENT ON VIEW @extschema@.purge_receipts IS 'One receipt per policy per purge: cutoff, counts, digest of the purged keys, who ran it and how it ended';

-- Holds that cover rows of leaf: those on the leaf and on its ancestors
-- (pg_partition_ancestors() returns nothing for a table without partitions).
CREATE FUNCTION @extschema@.active_holds(leaf regclass, OUT whole_table boolean, OUT patients text[])
    LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT COALESCE(pg_catalog.bool_or(h.patient IS NULL), false),
           COALESCE(pg_catalog.array_agg(DISTINCT h.patient) FILTER (WHERE h.patient IS NOT NULL), '{}')
      FROM @extschema@.legal_hold_records AS h
     WHERE (h.tbl OPERATOR(pg_catalog.=) leaf
            OR h.tbl OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT pg_catalog.pg_partition_ancestors(leaf))))
       AND @extschema@.hold_is_active(h);
END;

-- The test for "held" in a batch's statements, where $3 is the held patients.
CREATE FUNCTION @extschema@.held_sql(patient_column name, whole_table boolean, patients text[]) RETURNS text
    LANGUAGE sql IMMUTABLE
    RETURN CASE WHEN whole_table THEN 'true'
                WHEN patient_column IS NULL OR pg_catalog.cardinality(patients) OPERATOR(pg_catalog.=) 0 THEN 'false'
                ELSE pg_catalog.format('COALESCE(%I::text = ANY ($3), false)', patient_column) END;

-- Leaf tables of tbl (tbl itself when it is not partitioned), in a stable order.
CREATE FUNCTION @extschema@.purge_leaves(tbl regclass) RETURNS oid[]
    LANGUAGE sql STABLE STRICT
BEGIN ATOMIC
    -- pg_partition_tree() returns nothing for a table that is not partitioned.
    SELECT ARRAY(SELECT c.oid
                   FROM pg_catalog.pg_class AS c
                  WHERE c.relkind OPERATOR(pg_catalog.=) 'r'
                    AND (c.oid OPERATOR(pg_catalog.=) tbl::pg_catalog.oid
                         OR c.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT p.relid::pg_catalog.oid
                                                                FROM pg_catalog.pg_partition_tree(tbl) AS p
                                                               WHERE p.isleaf)))
                  ORDER BY c.oid);
END;

-- Run one statement on a purged table as hipaa_purger (see retention.c).  The
-- statement returns one row of these five columns; parameters $1 to $5 are
-- lo, hi, held, lim and after.
CREATE FUNCTION @extschema@.run_as_purger(query text, lo tid, hi tid, held text[], lim integer, after text,
                                           OUT a bigint, OUT b bigint, OUT digest bytea,
                                           OUT list text[], OUT counts bigint[])
    AS 'MODULE_PATHNAME', 'hg_run_as_purger' LANGUAGE C;

-- Give hipaa_purger what a purge of tbl needs, on tbl and on each of its
-- partitions: the table privileges, and a policy where row level security is
-- enabled, since without one the purger would see no rows and purge nothing.
-- Run by set_retention() and again at each purge, for partitions added since.
CREATE FUNCTION @extschema@.grant_purger(tbl regclass) RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rel record;
BEGIN
    FOR rel IN
        SELECT c.oid::regclass AS name, c.relrowsecurity
          FROM pg_class AS c
         WHERE c.oid = tbl OR c.oid IN (SELECT relid FROM pg_partition_tree(tbl))
    LOOP
        IF NOT (has_table_privilege('hipaa_purger', rel.name, 'SELECT')
                AND has_table_privilege('hipaa_purger', rel.name, 'UPDATE')
                AND has_table_privilege('hipaa_purger', rel.name, 'DELETE')) THEN
            EXECUTE format('GRANT SELECT, UPDATE, DELETE ON %s TO hipaa_purger', rel.name);
        END IF;
        IF rel.relrowsecurity AND NOT EXISTS (SELECT FROM pg_policy AS p
                                               WHERE p.polrelid = rel.name AND p.polname = 'hipaa_guard_purge') THEN
            EXECUTE format('CREATE POLICY hipaa_guard_purge ON %s TO hipaa_purger USING (true) WITH CHECK (true)',
                           rel.name);
        END IF;
    END LOOP;
END
$$;

CREATE FUNCTION @extschema@.revoke_purger(tbl regclass) RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rel regclass;
BEGIN
    FOR rel IN
        SELECT c.oid::regclass FROM pg_class AS c
         WHERE c.oid = tbl OR c.oid IN (SELECT relid FROM pg_partition_tree(tbl))
    LOOP
        EXECUTE format('REVOKE SELECT, UPDATE, DELETE ON %s FROM hipaa_purger', rel);
        IF EXISTS (SELECT FROM pg_policy AS p WHERE p.polrelid = rel AND p.polname = 'hipaa_guard_purge') THEN
            EXECUTE format('DROP POLICY hipaa_guard_purge ON %s', rel);
        END IF;
    END LOOP;
END
$$;

-- Expired patients of tbl in bytewise order after $5, up to $4 of them, with
-- their row counts: the candidates of a shred.  A patient is expired when all
-- of the patient's rows in tbl are.
CREATE FUNCTION @extschema@.shred_candidates_sql(tbl regclass, patient_column name, expired text)
    RETURNS text
    LANGUAGE sql STABLE STRICT
    RETURN pg_catalog.format(
        'SELECT NULL::bigint, NULL::bigint, NULL::bytea, '
        'array_agg(p ORDER BY p COLLATE "C"), array_agg(n ORDER BY p COLLATE "C") '
        'FROM (SELECT p, n FROM (SELECT %1$I::text AS p, count(*) AS n FROM %2$s GROUP BY 1 '
        'HAVING bool_and(COALESCE(%3$s, false))) AS x '
        'WHERE p IS NOT NULL AND ($5 IS NULL OR p COLLATE "C" > $5) '
        'ORDER BY p COLLATE "C" LIMIT $4) AS y',
        patient_column, tbl, expired);

-- Holds that stop a shred: a patient's key covers the patient's values in
-- every table, so holds on that patient anywhere count, and so does a
-- whole-table hold on this table or on any table with per-patient keys.
CREATE FUNCTION @extschema@.shred_holds(tbl regclass, OUT whole_table boolean, OUT patients text[])
    LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT COALESCE(pg_catalog.bool_or(h.patient IS NULL AND (h.tbl OPERATOR(pg_catalog.=) shred_holds.tbl
                        OR (@extschema@.row_trigger_args(h.tbl))[2] OPERATOR(pg_catalog.=) 't')), false),
           COALESCE(pg_catalog.array_agg(DISTINCT h.patient) FILTER (WHERE h.patient IS NOT NULL), '{}')
      FROM @extschema@.legal_hold_records AS h
     WHERE @extschema@.hold_is_active(h);
END;

-- Split shred candidates into those whose key would be destroyed and those
-- held, with their row counts.  Patients whose key is already destroyed, or
-- who have none, are in neither.
CREATE FUNCTION @extschema@.shred_split(patients text[], counts bigint[], whole_table boolean, held text[],
                                         OUT shred text[], OUT shred_rows bigint, OUT held_rows bigint)
    LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT COALESCE(pg_catalog.array_agg(u.p ORDER BY u.p COLLATE "C")
                        FILTER (WHERE NOT (whole_table OR u.p OPERATOR(pg_catalog.=) ANY (held))), '{}'),
           COALESCE(pg_catalog.sum(u.n) FILTER (WHERE NOT (whole_table OR u.p OPERATOR(pg_catalog.=) ANY (held))), 0),
           COALESCE(pg_catalog.sum(u.n) FILTER (WHERE whole_table OR u.p OPERATOR(pg_catalog.=) ANY (held)), 0)
      FROM ROWS FROM (pg_catalog.unnest(patients), pg_catalog.unnest(counts)) AS u(p, n)
      JOIN @extschema@.data_keys AS k
        ON k.name OPERATOR(pg_catalog.=) @extschema@.patient_key_name(u.p)
       AND k.kind OPERATOR(pg_catalog.=) 'patient' AND k.state OPERATOR(pg_catalog.=) 'active';
END;

CREATE FUNCTION @extschema@.purge_policies() RETURNS SETOF regclass
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT c.tbl FROM @extschema@.retention_config AS c
     WHERE EXISTS (SELECT FROM pg_catalog.pg_class AS r WHERE r.oid OPERATOR(pg_catalog.=) c.tbl::pg_catalog.oid)
     ORDER BY c.tbl::pg_catalog.text;
END;

-- What a purge would do now, per policy, changing nothing.  For shred, the
-- rows counted are those of the patients whose key would be destroyed.
CREATE FUNCTION @extschema@.purge_due()
    RETURNS TABLE (table_name regclass, action text, cutoff timestamptz, rows_due bigint, rows_held bigint)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pol @extschema@.retention_config;
    leaf oid;
    holds record;
    expired text;
    pcol name;
    work text;
    found record;
    split record;
BEGIN
    FOR pol IN SELECT c.* FROM @extschema@.retention_config AS c
                WHERE c.tbl IN (SELECT @extschema@.purge_policies()) ORDER BY c.tbl::text
    LOOP
        table_name := pol.tbl;
        action := pol.action;
        cutoff := @extschema@.retention_cutoff(pol.keep, now());
        rows_due := 0;
        rows_held := 0;
        PERFORM @extschema@.check_retention(pol.tbl, pol.age_column, pol.keep, pol.action);
        PERFORM @extschema@.grant_purger(pol.tbl);
        expired := @extschema@.retention_expired_sql(pol.tbl, pol.age_column, cutoff);
        pcol := @extschema@.patient_column(pol.tbl);
        IF pol.action = 'shred' THEN
            SELECT * INTO holds FROM @extschema@.shred_holds(pol.tbl);
            SELECT * INTO found FROM @extschema@.run_as_purger(
                @extschema@.shred_candidates_sql(pol.tbl, pcol, expired), NULL, NULL, NULL, NULL, NULL);
            SELECT * INTO split FROM @extschema@.shred_split(found.list, found.counts, holds.whole_table, holds.patients);
            rows_due := split.shred_rows;
            rows_held := split.held_rows;
        ELSE
            work := CASE WHEN pol.action = 'deidentify'
                         THEN ' AND (' || (@extschema@.deidentify_plan(pol.tbl, (now() AT TIME ZONE 'UTC')::date)).needs_work || ')'
                         ELSE '' END;
            FOREACH leaf IN ARRAY @extschema@.purge_leaves(pol.tbl)
            LOOP
                SELECT * INTO holds FROM @extschema@.active_holds(leaf);
                SELECT * INTO found FROM @extschema@.run_as_purger(
                    format('SELECT count(*) FILTER (WHERE NOT (%3$s)), count(*) FILTER (WHERE %3$s), '
                           'NULL::bytea, NULL::text[], NULL::bigint[] FROM ONLY %1$s WHERE %2$s%4$s',
                           leaf::regclass, expired,
                           @extschema@.held_sql(pcol, holds.whole_table, holds.patients), work),
                    NULL, NULL, holds.patients, NULL, NULL);
                rows_due := rows_due + found.a;
                rows_held := rows_held + found.b;
            END LOOP;
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION @extschema@.purge_due() IS 'Rows each retention policy would purge now, and rows held';

-- Open a receipt for one policy, or record why the policy cannot run and
-- return NULL, so that one broken policy does not stop the others.
CREATE FUNCTION @extschema@.purge_begin(tbl regclass) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pol @extschema@.retention_config;
    receipt bigint;
BEGIN
    SELECT * INTO STRICT pol FROM @extschema@.retention_config AS c WHERE c.tbl = purge_begin.tbl;
    INSERT INTO @extschema@.purge_receipt_log
        (tbl, table_name, action, age_column, keep, cutoff, patient_column, runner)
    VALUES (pol.tbl, pol.tbl::text, pol.action, pol.age_column, pol.keep,
            @extschema@.retention_cutoff(pol.keep, now()), @extschema@.patient_column(pol.tbl),
            COALESCE((SELECT backend_type FROM pg_stat_activity WHERE pid = pg_backend_pid()), 'unknown'))
    RETURNING receipt_id INTO receipt;
    BEGIN
        PERFORM @extschema@.check_retention(pol.tbl, pol.age_column, pol.keep, pol.action);
        PERFORM @extschema@.grant_purger(pol.tbl);
    EXCEPTION WHEN OTHERS THEN
        UPDATE @extschema@.purge_receipt_log SET error = SQLERRM, finished_at = clock_timestamp()
         WHERE receipt_id = receipt;
        RAISE WARNING 'retention policy of table "%" was not run: %', pol.tbl, SQLERRM
            USING HINT = 'Fix the table or its policy; the next purge tries again.';
        RETURN NULL;
    END;
    UPDATE @extschema@.purge_receipt_log SET key_expression = @extschema@.retention_key_sql(pol.tbl)
     WHERE receipt_id = receipt;
    RETURN receipt;
END
$$;

-- Record one batch in its receipt, in the batch's own transaction.
CREATE FUNCTION @extschema@.purge_record(receipt bigint, purged bigint, held bigint, digest bytea,
                                          leaf_index integer, next_block bigint)
    RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    batch integer;
BEGIN
    UPDATE @extschema@.purge_receipt_log AS r
       SET rows_purged = r.rows_purged + purged, rows_held = r.rows_held + held,
           batches = r.batches + CASE WHEN purged > 0 OR held > 0 THEN 1 ELSE 0 END,
           leaf_index = purge_record.leaf_index, next_block = purge_record.next_block
     WHERE r.receipt_id = receipt
    RETURNING r.batches INTO batch;
    IF purged > 0 OR held > 0 THEN
        INSERT INTO @extschema@.purge_receipt_batches (receipt_id, batch, rows_purged, rows_held, keys_digest)
        VALUES (receipt, batch, purged, held, digest);
    END IF;
END
$$;

-- The statement of one delete or deidentify batch: it changes the expired,
-- unheld rows between block $1 and block $2 and returns their count and the
-- digest of their keys.
CREATE FUNCTION @extschema@.purge_batch_sql(leaf regclass, action text, expired text, held_test text,
                                             key_expression text, set_list text)
    RETURNS text
    LANGUAGE sql IMMUTABLE
    RETURN pg_catalog.format(
        'WITH d AS (%1$s WHERE ctid >= $1 AND ctid < $2 AND %2$s AND NOT (%3$s) RETURNING %4$s AS k) '
        'SELECT count(*), NULL::bigint, '
        'sha256(convert_to(string_agg(k || E''\n'', '''' ORDER BY k COLLATE "C"), ''UTF8'')), '
        'NULL::text[], NULL::bigint[] FROM d',
        CASE WHEN action OPERATOR(pg_catalog.=) 'deidentify'
             THEN pg_catalog.format('UPDATE ONLY %s SET %s', leaf, set_list)
             ELSE pg_catalog.format('DELETE FROM ONLY %s', leaf) END,
        expired, held_test, key_expression);

-- One batch of a delete or deidentify policy: the rows of the next block
-- range of the current leaf table (about batch_size rows).  Deleting by
-- block range reads the table once over the whole purge, with or without an
-- index on the age column, and takes only row locks.  Returns true when
-- the last leaf is done.
CREATE FUNCTION @extschema@.purge_step(receipt bigint, batch_size integer) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r @extschema@.purge_receipt_log;
    leaves oid[];
    leaf oid;
    nblocks bigint;
    span bigint;
    lo tid;
    hi tid;
    holds record;
    held_test text;
    expired text;
    plan record;
    set_list text;
    done record;
    held bigint := 0;
BEGIN
    -- Waits while legal_hold() commits a hold, so that this batch reads it.
    PERFORM pg_advisory_xact_lock_shared(1751580672, 2);
    SELECT * INTO STRICT r FROM @extschema@.purge_receipt_log AS l WHERE l.receipt_id = receipt FOR UPDATE;
    IF r.action = 'shred' THEN
        RETURN @extschema@.purge_shred_step(r, batch_size);
    END IF;
    leaves := @extschema@.purge_leaves(r.tbl::regclass);
    IF r.leaf_index > cardinality(leaves) THEN
        RETURN true;
    END IF;
    leaf := leaves[r.leaf_index];
    nblocks := pg_relation_size(leaf::regclass) / current_setting('block_size')::bigint;
    IF r.next_block >= nblocks THEN
        PERFORM @extschema@.purge_record(receipt, 0, 0, NULL, r.leaf_index + 1, 0);
        RETURN r.leaf_index + 1 > cardinality(leaves);
    END IF;
    SELECT greatest(1, ceil(batch_size / CASE WHEN c.relpages > 0 AND c.reltuples > 0
                                              THEN c.reltuples / c.relpages ELSE 100 END))::bigint
      INTO span FROM pg_class AS c WHERE c.oid = leaf;
    lo := format('(%s,0)', r.next_block)::tid;
    hi := format('(%s,0)', r.next_block + span)::tid;

    SELECT * INTO holds FROM @extschema@.active_holds(leaf::regclass);
    held_test := @extschema@.held_sql(r.patient_column, holds.whole_table, holds.patients);
    expired := @extschema@.retention_expired_sql(r.tbl::regclass, r.age_column, r.cutoff);
    IF r.action = 'deidentify' THEN
        SELECT * INTO plan FROM @extschema@.deidentify_plan(r.tbl::regclass, (r.started_at AT TIME ZONE 'UTC')::date);
        expired := expired || ' AND (' || plan.needs_work || ')';
        set_list := plan.set_list;
    END IF;
    SELECT * INTO done FROM @extschema@.run_as_purger(
        @extschema@.purge_batch_sql(leaf::regclass, r.action, expired, held_test, r.key_expression, set_list),
        lo, hi, holds.patients, NULL, NULL);
    IF held_test <> 'false' THEN
        SELECT a INTO held FROM @extschema@.run_as_purger(
            format('SELECT count(*), NULL::bigint, NULL::bytea, NULL::text[], NULL::bigint[] '
                   'FROM ONLY %1$s WHERE ctid >= $1 AND ctid < $2 AND %2$s AND %3$s',
                   leaf::regclass, expired, held_test),
            lo, hi, holds.patients, NULL, NULL);
    END IF;
    PERFORM @extschema@.purge_record(receipt, done.a, held, done.digest, r.leaf_index, r.next_block + span);
    RETURN false;
END
$$;

-- One batch of a shred policy: destroy the keys of the next batch_size
-- expired patients, in bytewise order of their ids after the last batch's.
-- destroy_key() erases at once, even if this transaction then aborts.  The
-- key's state row rolls back with the transaction, so the next purge finds
-- the patient again and records the destruction in its receipt.
CREATE FUNCTION @extschema@.purge_shred_step(r @extschema@.purge_receipt_log, batch_size integer) RETURNS boolean
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    holds record;
    found record;
    split record;
    patient text;
BEGIN
    SELECT * INTO holds FROM @extschema@.shred_holds(r.tbl::regclass);
    SELECT * INTO found FROM @extschema@.run_as_purger(
        @extschema@.shred_candidates_sql(r.tbl::regclass, r.patient_column,
            @extschema@.retention_expired_sql(r.tbl::regclass, r.age_column, r.cutoff)),
        NULL, NULL, NULL, batch_size, r.resume_after);
    IF found.list IS NULL THEN
        RETURN true;
    END IF;
    SELECT * INTO split FROM @extschema@.shred_split(found.list, found.counts, holds.whole_table, holds.patients);
    FOREACH patient IN ARRAY split.shred
    LOOP
        PERFORM @extschema@.destroy_key(@extschema@.patient_key_name(patient));
    END LOOP;
    UPDATE @extschema@.purge_receipt_log SET resume_after = found.list[cardinality(found.list)]
     WHERE receipt_id = r.receipt_id;
    PERFORM @extschema@.purge_record(r.receipt_id, split.shred_rows, split.held_rows,
        CASE WHEN cardinality(split.shred) > 0
             THEN sha256(convert_to(array_to_string(split.shred, E'\n') || E'\n', 'UTF8')) END,
        r.leaf_index, 0);
    RETURN false;
END
$$;

CREATE FUNCTION @extschema@.purge_finish(receipt bigint, failure text DEFAULT NULL,
                                          OUT rows_purged bigint, OUT rows_held bigint)
    LANGUAGE sql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    UPDATE @extschema@.purge_receipt_log AS r
       SET finished_at = pg_catalog.clock_timestamp(), error = failure
     WHERE r.receipt_id = receipt
    RETURNING r.rows_purged, r.rows_held;
END;

CREATE FUNCTION @extschema@.purge_lock() RETURNS boolean
    AS 'MODULE_PATHNAME', 'hg_purge_lock' LANGUAGE C;
CREATE FUNCTION @extschema@.purge_unlock() RETURNS void
    AS 'MODULE_PATHNAME', 'hg_purge_unlock' LANGUAGE C;

-- Purge every due policy.  Each batch commits at once, and what is due is
-- defined by the data, so a crashed or cancelled purge loses nothing: the
-- next one goes on where it stopped.  One purge runs at a time per database;
-- another one skips with a notice.  Like reencrypt, it cannot pin
-- search_path (a procedure with SET cannot COMMIT), so every name in it is
-- qualified.
CREATE PROCEDURE @extschema@.purge(dry_run boolean DEFAULT false, batch_size integer DEFAULT 10000)
    LANGUAGE plpgsql
AS $$
DECLARE
    tbl regclass;
    due record;
    receipt bigint;
    done boolean;
    failure text;
    result record;
    holder integer;
BEGIN
    IF dry_run IS NULL OR batch_size IS NULL OR batch_size OPERATOR(pg_catalog.<) 1 THEN
        RAISE EXCEPTION 'batch size must be a positive integer and dry_run must not be null'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF dry_run THEN
        FOR due IN SELECT * FROM @extschema@.purge_due()
        LOOP
            RAISE NOTICE 'dry run: table "%": rows to %: %, rows held: %',
                due.table_name, due.action, due.rows_due, due.rows_held;
        END LOOP;
        RETURN;
    END IF;
    PERFORM @extschema@.require_own_transaction('hipaa_guard.purge');
    -- Each batch must see holds committed just before it.
    IF pg_catalog.current_setting('transaction_isolation') OPERATOR(pg_catalog.<>) 'read committed'
       OR pg_catalog.current_setting('default_transaction_isolation') OPERATOR(pg_catalog.<>) 'read committed' THEN
        RAISE EXCEPTION 'hipaa_guard.purge must run at isolation level read committed'
            USING ERRCODE = 'invalid_transaction_state',
                  HINT = 'SET default_transaction_isolation = ''read committed'' before the CALL.';
    END IF;
    IF NOT @extschema@.purge_lock() THEN
        SELECT l.pid INTO holder FROM pg_catalog.pg_locks AS l
         WHERE l.locktype OPERATOR(pg_catalog.=) 'advisory' AND l.granted
           AND l.classid OPERATOR(pg_catalog.=) 1751580672::pg_catalog.oid
           AND l.objid OPERATOR(pg_catalog.=) 1::pg_catalog.oid AND l.objsubid OPERATOR(pg_catalog.=) 2
           AND l.database OPERATOR(pg_catalog.=) (SELECT d.oid FROM pg_catalog.pg_database AS d
                                                  WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database());
        RAISE NOTICE 'purge skipped: another purge is running in this database'
            USING DETAIL = pg_catalog.format('The purge lock is taken by process %s.', holder);
        RETURN;
    END IF;
    FOR tbl IN SELECT * FROM @extschema@.purge_policies()
    LOOP
        receipt := @extschema@.purge_begin(tbl);
        COMMIT;
        CONTINUE WHEN receipt IS NULL;
        LOOP
            BEGIN
                done := @extschema@.purge_step(receipt, batch_size);
            EXCEPTION WHEN OTHERS THEN
                failure := SQLERRM;
            END;
            EXIT WHEN failure IS NOT NULL;
            COMMIT;
            EXIT WHEN done;
            IF pg_catalog.current_setting('hipaa_guard.purge_batch_delay')::pg_catalog.interval
               OPERATOR(pg_catalog.>) '0'::pg_catalog.interval THEN
                PERFORM pg_catalog.pg_sleep_for(pg_catalog.current_setting('hipaa_guard.purge_batch_delay')::pg_catalog.interval);
            END IF;
        END LOOP;
        SELECT * INTO result FROM @extschema@.purge_finish(receipt, failure);
        COMMIT;
        IF failure IS NOT NULL THEN
            RAISE WARNING 'purge of table "%" failed: %', tbl, failure
                USING HINT = 'Its receipt keeps the batches that committed; the next purge goes on from there.';
            failure := NULL;
        ELSE
            RAISE NOTICE 'table "%": rows purged: %, rows held: %', tbl, result.rows_purged, result.rows_held;
        END IF;
    END LOOP;
    -- The trail's own retention: blocks past hipaa_guard.audit_retention.
    BEGIN
        PERFORM @extschema@.purge_audit();
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'purge of old audit blocks failed: %', SQLERRM;
    END;
    COMMIT;
    PERFORM @extschema@.purge_unlock();
END
$$;
COMMENT ON PROCEDURE @extschema@.purge(boolean, integer) IS 'Purge the rows every retention policy has made due, in committed batches, leaving a receipt per policy';
