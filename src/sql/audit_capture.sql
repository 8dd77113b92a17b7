
-- ----------------------------------------------------------------
-- Audit: what is recorded, and enable_audit() / disable_audit()
-- ----------------------------------------------------------------

-- Record an event the durable way: it stays even if the caller's
-- transaction rolls back.  For the extension's own functions only.
CREATE FUNCTION @extschema@.audit_event(kind text, command text, relation text, detail text,
                                         patients text[] DEFAULT NULL)
    RETURNS void
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'hg_audit_event';

CREATE FUNCTION @extschema@.audit_write() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'hg_audit_write';
CREATE FUNCTION @extschema@.audit_truncate() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'hg_audit_truncate';

CREATE FUNCTION @extschema@.audit_config_changed() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'hg_audit_config_changed';
CREATE TRIGGER audited_tables_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.audited_tables
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.audit_config_changed();

-- Lists the patients of the rows a statement reads; see src/auditcapture.c.
CREATE FUNCTION @extschema@.audit_patient(patient text) RETURNS boolean
    LANGUAGE c VOLATILE LEAKPROOF PARALLEL RESTRICTED COST 100
    AS 'MODULE_PATHNAME', 'hg_audit_patient';

-- The read guard of audited tables; see src/auditconfig.c.
CREATE FUNCTION @extschema@.audit_guard_support(internal) RETURNS internal
    LANGUAGE c STRICT AS 'MODULE_PATHNAME', 'hg_audit_guard_support';
CREATE FUNCTION @extschema@.audit_guard() RETURNS boolean
    LANGUAGE c STABLE LEAKPROOF PARALLEL SAFE
    SUPPORT @extschema@.audit_guard_support
    AS 'MODULE_PATHNAME', 'hg_audit_guard';

ALTER TABLE @extschema@.audited_tables ADD COLUMN rls_enabled_by_audit boolean NOT NULL DEFAULT false;

CREATE FUNCTION @extschema@.check_auditable(tbl regclass) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'table must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF (SELECT c.relkind FROM pg_class AS c WHERE c.oid = tbl) NOT IN ('r', 'p')
       OR (SELECT c.relnamespace FROM pg_class AS c WHERE c.oid = tbl)
          IN ('pg_catalog'::regnamespace, '@extschema@'::regnamespace) THEN
        RAISE EXCEPTION '"%" is not a table that can be audited', tbl
            USING ERRCODE = 'wrong_object_type';
    END IF;
END
$$;

-- The four functions below run the DDL of enable_audit() and disable_audit()
-- with hipaa_guard.audit_internal_ddl on, so that the trail shows the one
-- config record of the change instead of a record per trigger and policy.

-- Put the write triggers on a table and its partitions, with the patient
-- column as argument when the table has one (see patient_column()).
CREATE FUNCTION @extschema@.create_audit_triggers(tbl regclass) RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    SET hipaa_guard.audit_internal_ddl = on
AS $$
DECLARE
    patient_col name;
BEGIN
    patient_col := @extschema@.patient_column(tbl);
    PERFORM @extschema@.drop_audit_triggers(tbl);
    EXECUTE format('CREATE TRIGGER hipaa_guard_audit_write AFTER INSERT OR UPDATE OR DELETE ON %s'
                   ' FOR EACH ROW EXECUTE FUNCTION @extschema@.audit_write(%s)',
                   tbl, coalesce(quote_literal(patient_col), ''));
    EXECUTE format('CREATE TRIGGER hipaa_guard_audit_truncate AFTER TRUNCATE ON %s'
                   ' FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.audit_truncate()', tbl);
    EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER hipaa_guard_audit_write,'
                   ' ENABLE ALWAYS TRIGGER hipaa_guard_audit_truncate', tbl);
END
$$;

CREATE FUNCTION @extschema@.drop_audit_triggers(tbl regclass) RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    SET hipaa_guard.audit_internal_ddl = on
AS $$
DECLARE
    trigger_name name;
BEGIN
    FOR trigger_name IN
        SELECT t.tgname FROM pg_trigger AS t
         WHERE t.tgrelid = tbl AND t.tgname IN ('hipaa_guard_audit_write', 'hipaa_guard_audit_truncate')
           AND NOT t.tgisinternal
    LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', trigger_name, tbl);
    END LOOP;
END
$$;

-- The read guard on a table and each partition.  Where row level security
-- was off, it is turned on with a policy that lets every row through, so
-- that the guard changes nothing but its own check.  Returns whether it
-- turned row level security on.
CREATE FUNCTION @extschema@.create_audit_guard(tbl regclass) RETURNS boolean
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    SET hipaa_guard.audit_internal_ddl = on
AS $$
DECLARE
    rel regclass;
    enabled_here boolean := false;
    patient_col name;
BEGIN
    patient_col := @extschema@.patient_column(tbl);
    FOR rel IN SELECT @extschema@.table_and_partitions(tbl)
    LOOP
        IF NOT (SELECT c.relrowsecurity FROM pg_class AS c WHERE c.oid = rel) THEN
            EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', rel);
            EXECUTE format('CREATE POLICY hipaa_guard_audit_open ON %s USING (true) WITH CHECK (true)', rel);
            enabled_here := true;
        END IF;
        IF NOT EXISTS (SELECT FROM pg_policy AS p WHERE p.polrelid = rel AND p.polname = 'hipaa_guard_audit_guard') THEN
            EXECUTE format('CREATE POLICY hipaa_guard_audit_guard ON %s AS RESTRICTIVE FOR SELECT'
                           ' USING (@extschema@.audit_guard())', rel);
        END IF;
        IF EXISTS (SELECT FROM pg_policy AS p WHERE p.polrelid = rel AND p.polname = 'hipaa_guard_audit_patient') THEN
            EXECUTE format('DROP POLICY hipaa_guard_audit_patient ON %s', rel);
        END IF;
        IF patient_col IS NOT NULL THEN
            EXECUTE format('CREATE POLICY hipaa_guard_audit_patient ON %s AS RESTRICTIVE FOR SELECT'
                           ' USING (@extschema@.audit_patient(%I::text))', rel, patient_col);
        END IF;
    END LOOP;
    RETURN enabled_here;
END
$$;

CREATE FUNCTION @extschema@.drop_audit_guard(tbl regclass, rls_enabled_by_audit boolean) RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    SET hipaa_guard.audit_internal_ddl = on
AS $$
DECLARE
    rel regclass;
    policy_name name;
BEGIN
    FOR rel IN SELECT @extschema@.table_and_partitions(tbl)
    LOOP
        FOR policy_name IN
            SELECT p.polname FROM pg_policy AS p
             WHERE p.polrelid = rel
               AND p.polname IN ('hipaa_guard_audit_guard', 'hipaa_guard_audit_patient', 'hipaa_guard_audit_open')
        LOOP
            EXECUTE format('DROP POLICY %I ON %s', policy_name, rel);
        END LOOP;
        IF rls_enabled_by_audit AND NOT EXISTS (SELECT FROM pg_policy AS p WHERE p.polrelid = rel) THEN
            EXECUTE format('ALTER TABLE %s DISABLE ROW LEVEL SECURITY', rel);
        END IF;
    END LOOP;
END
$$;

CREATE FUNCTION @extschema@.enable_audit(tbl regclass, reads boolean DEFAULT true,
                                          writes boolean DEFAULT true)
    RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    previous @extschema@.audited_tables;
    rls_here boolean := false;
BEGIN
    PERFORM @extschema@.check_auditable(tbl);
    IF reads IS NULL OR writes IS NULL OR NOT (reads OR writes) THEN
        RAISE EXCEPTION 'an audit must record reads, writes or both'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Call hipaa_guard.disable_audit() to stop auditing a table.';
    END IF;
    EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', tbl);
    SELECT * INTO previous FROM @extschema@.audited_tables AS a WHERE a.tbl = enable_audit.tbl;
    IF writes THEN
        PERFORM @extschema@.create_audit_triggers(tbl);
    ELSE
        PERFORM @extschema@.drop_audit_triggers(tbl);
    END IF;
    IF reads THEN
        rls_here := @extschema@.create_audit_guard(tbl);
    ELSIF previous.reads THEN
        PERFORM @extschema@.drop_audit_guard(tbl, previous.rls_enabled_by_audit);
    END IF;
    INSERT INTO @extschema@.audited_tables AS a (tbl, reads, writes, enabled_by, rls_enabled_by_audit)
    VALUES (enable_audit.tbl, enable_audit.reads, enable_audit.writes, SESSION_USER, rls_here)
    ON CONFLICT ON CONSTRAINT audited_tables_pkey DO UPDATE
    SET reads = excluded.reads, writes = excluded.writes, enabled_by = excluded.enabled_by,
        enabled_at = now(),
        rls_enabled_by_audit = a.rls_enabled_by_audit OR excluded.rls_enabled_by_audit;
    PERFORM @extschema@.audit_event('config', 'ENABLE AUDIT', tbl::text,
        format('reads %s, writes %s', CASE WHEN reads THEN 'on' ELSE 'off' END,
               CASE WHEN writes THEN 'on' ELSE 'off' END));
END
$$;
COMMENT ON FUNCTION @extschema@.enable_audit(regclass, boolean, boolean) IS 'Record reads, exports and changes of a table in the audit trail';

CREATE FUNCTION @extschema@.disable_audit(tbl regclass) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    previous @extschema@.audited_tables;
BEGIN
    SELECT * INTO previous FROM @extschema@.audited_tables AS a WHERE a.tbl = disable_audit.tbl;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'table "%" is not audited', tbl USING ERRCODE = 'undefined_object';
    END IF;
    IF EXISTS (SELECT FROM @extschema@.protected_table_list AS p WHERE p.tbl = disable_audit.tbl) THEN
        RAISE EXCEPTION 'table "%" is protected, and protected tables are always audited', tbl
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Call hipaa_guard.unprotect_table() first.';
    END IF;
    EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', tbl);
    PERFORM @extschema@.drop_audit_triggers(tbl);
    PERFORM @extschema@.drop_audit_guard(tbl, previous.rls_enabled_by_audit);
    DELETE FROM @extschema@.audited_tables AS a WHERE a.tbl = disable_audit.tbl;
    PERFORM @extschema@.audit_event('config', 'DISABLE AUDIT', tbl::text, NULL);
END
$$;
COMMENT ON FUNCTION @extschema@.disable_audit(regclass) IS 'Stop recording a table in the audit trail; itself recorded';

-- A dropped table leaves the list of audited tables, so that its OID cannot
-- make a later table audited by accident.
CREATE FUNCTION @extschema@.audit_forget_dropped() RETURNS event_trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    dropped record;
BEGIN
    FOR dropped IN SELECT * FROM pg_event_trigger_dropped_objects() AS d WHERE d.object_type = 'table'
    LOOP
        DELETE FROM @extschema@.audited_tables AS a WHERE a.tbl::oid = dropped.objid;
        IF FOUND THEN
            PERFORM @extschema@.audit_event('config', 'DROP AUDITED TABLE', dropped.object_identity, NULL);
        END IF;
    END LOOP;
END
$$;
CREATE EVENT TRIGGER hipaa_guard_audit_drop ON sql_drop
    EXECUTE FUNCTION @extschema@.audit_forget_dropped();
