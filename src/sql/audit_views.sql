
-- ----------------------------------------------------------------
-- Audit: what auditors and privacy officers read
-- ----------------------------------------------------------------

CREATE VIEW @extschema@.audit_trail AS
SELECT r.seq, l.block, r.logged_at, r.kind, r.command, r.relation, r.row_key, r.columns,
       r.rows, r.patients, r.decrypts, r.actor, r.login_role, r.database, r.os_user,
       r.client_addr, r.application, r.xid, r.status, r.query_id, r.statement, r.purpose,
       r.detail
  FROM @extschema@.audit_log AS l
 CROSS JOIN LATERAL @extschema@.audit_records(l.records) AS r;
COMMENT ON VIEW @extschema@.audit_trail IS 'One row per sealed audit record; status is the outcome of the recording transaction';

CREATE FUNCTION @extschema@.check_audit_window(from_ts timestamptz, to_ts timestamptz) RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF from_ts IS NULL OR to_ts IS NULL THEN
        RAISE EXCEPTION 'time window must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF from_ts > to_ts THEN
        RAISE EXCEPTION 'time window starts after it ends' USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Pass the earlier time first.';
    END IF;
END
$$;

-- Who read or changed a patient's data, when and how.  Reads list the
-- patients of the rows they read where the table names a patient column,
-- and decrypt() calls the patients of values under per-patient keys.
CREATE FUNCTION @extschema@.patient_access_history(patient text, from_ts timestamptz, to_ts timestamptz)
    RETURNS TABLE (logged_at timestamptz, actor text, login_role text, kind text, command text,
                   relation text, rows bigint, decrypts bigint, purpose text, status text,
                   statement text, seq bigint)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM @extschema@.check_audit_window(from_ts, to_ts);
    IF patient IS NULL THEN
        RAISE EXCEPTION 'patient must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    RETURN QUERY
    SELECT l.logged_at, l.actor, l.login_role, l.kind, l.command, l.relation, l.rows, l.decrypts,
           l.purpose, l.status, l.statement, l.seq
      FROM @extschema@.audit_log AS p
     CROSS JOIN LATERAL @extschema@.audit_records(p.records) AS l
     WHERE p.patients @> ARRAY[patient]
       AND p.logged_to >= from_ts AND p.logged_from < to_ts
       AND l.patients @> ARRAY[patient]
       AND l.logged_at >= from_ts AND l.logged_at < to_ts
     ORDER BY l.seq;
END
$$;
COMMENT ON FUNCTION @extschema@.patient_access_history(text, timestamptz, timestamptz) IS 'Who read or changed a patient''s data in a time window';

-- Purposes of use that need no accounting (45 CFR 164.528(a)(1)(i)):
-- treatment, payment and health care operations, by name or HL7 code.
CREATE FUNCTION @extschema@.is_tpo_purpose(purpose text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN pg_catalog.lower(purpose) OPERATOR(pg_catalog.=) ANY
           (ARRAY['treatment', 'payment', 'operations', 'treat', 'hpaymt', 'hoperat', 'etreat']);

-- The disclosures of a patient's data that need an accounting under 45 CFR
-- 164.528: reads and exports whose purpose is not treatment, payment or
-- operations, including those that named no purpose, over at most the six
-- years before the request.
CREATE FUNCTION @extschema@.accounting_of_disclosures(patient text, from_ts timestamptz, to_ts timestamptz)
    RETURNS TABLE (disclosed_at timestamptz, recipient text, application text,
                   description text, purpose text, seq bigint)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    earliest timestamptz := now() - interval '6 years';
BEGIN
    PERFORM @extschema@.check_audit_window(from_ts, to_ts);
    IF patient IS NULL THEN
        RAISE EXCEPTION 'patient must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF from_ts < earliest THEN
        RAISE NOTICE 'an accounting covers at most the six years before the request'
            USING DETAIL = 'Disclosures before that are left out.';
        from_ts := earliest;
    END IF;
    RETURN QUERY
    SELECT l.logged_at, l.actor, l.application,
           format('%s of %s %s of %s%s%s', CASE WHEN l.kind = 'export' THEN 'export' ELSE 'read' END,
                  coalesce(l.rows::text, 'an unknown number of'),
                  CASE WHEN l.rows = 1 THEN 'row' ELSE 'rows' END,
                  coalesce(l.relation, 'decrypted values'),
                  CASE WHEN l.decrypts = 1 THEN ', 1 value decrypted'
                       WHEN l.decrypts > 1 THEN format(', %s values decrypted', l.decrypts) ELSE '' END,
                  CASE WHEN l.status = 'aborted' THEN ', in a transaction that rolled back' ELSE '' END),
           coalesce(l.purpose, 'not stated'), l.seq
      FROM @extschema@.audit_log AS p
     CROSS JOIN LATERAL @extschema@.audit_records(p.records) AS l
     WHERE p.patients @> ARRAY[patient]
       AND p.logged_to >= from_ts AND p.logged_from < to_ts
       AND l.patients @> ARRAY[patient]
       AND l.kind IN ('read', 'export')
       AND (l.purpose IS NULL OR NOT @extschema@.is_tpo_purpose(l.purpose))
       AND l.logged_at >= from_ts AND l.logged_at < to_ts
     ORDER BY l.seq;
END
$$;
COMMENT ON FUNCTION @extschema@.accounting_of_disclosures(text, timestamptz, timestamptz) IS 'Accounting of disclosures of a patient''s data (45 CFR 164.528), at most six years back';

CREATE FUNCTION @extschema@.user_activity(actor text, from_ts timestamptz, to_ts timestamptz)
    RETURNS SETOF @extschema@.audit_trail
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM @extschema@.check_audit_window(from_ts, to_ts);
    IF actor IS NULL THEN
        RAISE EXCEPTION 'actor must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    RETURN QUERY
    SELECT r.seq, l.block, r.logged_at, r.kind, r.command, r.relation, r.row_key, r.columns,
           r.rows, r.patients, r.decrypts, r.actor, r.login_role, r.database, r.os_user,
           r.client_addr, r.application, r.xid, r.status, r.query_id, r.statement, r.purpose,
           r.detail
      FROM @extschema@.audit_log AS l
     CROSS JOIN LATERAL @extschema@.audit_records(l.records) AS r
     WHERE l.logged_to >= from_ts AND l.logged_from < to_ts
       AND r.actor = user_activity.actor AND r.logged_at >= from_ts AND r.logged_at < to_ts
     ORDER BY r.seq;
END
$$;
COMMENT ON FUNCTION @extschema@.user_activity(text, timestamptz, timestamptz) IS 'Everything one actor did in a time window';
