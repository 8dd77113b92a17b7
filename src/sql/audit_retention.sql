
-- ----------------------------------------------------------------
-- Audit: retention of the trail itself
-- ----------------------------------------------------------------

-- One receipt per purge of old blocks.  Verification starts after the last
-- one: its block's hash is the link the first kept block must name.  Each
-- receipt is also recorded as an event, and so sealed into the chain.
CREATE TABLE @extschema@.audit_purges (
    through_block bigint PRIMARY KEY,
    through_seq bigint NOT NULL,
    last_hash bytea NOT NULL,
    blocks bigint NOT NULL,
    records bigint NOT NULL,
    cutoff timestamptz NOT NULL,
    purged_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    purged_by text NOT NULL DEFAULT SESSION_USER
);
CREATE TRIGGER audit_purges_guard BEFORE UPDATE OR DELETE ON @extschema@.audit_purges
    FOR EACH ROW EXECUTE FUNCTION @extschema@.audit_trail_guard();
CREATE TRIGGER audit_purges_truncate_guard BEFORE TRUNCATE ON @extschema@.audit_purges
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.audit_trail_guard();
ALTER TABLE @extschema@.audit_purges ENABLE ALWAYS TRIGGER audit_purges_guard,
    ENABLE ALWAYS TRIGGER audit_purges_truncate_guard;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.audit_purges', '');
COMMENT ON TABLE @extschema@.audit_purges IS 'Receipts of purges of audit blocks older than the audit retention';

CREATE FUNCTION @extschema@.purge_audit_blocks(through_block bigint, through_seq bigint) RETURNS bigint
    LANGUAGE c STRICT
    AS 'MODULE_PATHNAME', 'hg_purge_audit_blocks';

-- The text of a receipt's event, which verification looks for in the chain.
CREATE FUNCTION @extschema@.audit_purge_detail(through_block bigint, through_seq bigint, last_hash bytea,
                                                blocks bigint, records bigint)
    RETURNS text
    LANGUAGE sql IMMUTABLE STRICT
    RETURN pg_catalog.format('purged through block %s, record %s, hash %s: %s blocks, %s records',
                             through_block, through_seq, pg_catalog.encode(last_hash, 'hex'), blocks, records);

-- Remove the sealed blocks older than the retention (the setting
-- hipaa_guard.audit_retention, at least six years, 45 CFR 164.316(b)(2)),
-- oldest first, never the latest block, so the chain goes on from it.  A
-- shorter keep may be passed by a superuser only, for tests and drills.
CREATE FUNCTION @extschema@.purge_audit(keep interval DEFAULT NULL)
    RETURNS TABLE (blocks bigint, records bigint, through_block bigint, cutoff timestamptz)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    minimum constant interval := interval '6 years';
    configured text := current_setting('hipaa_guard.audit_retention', true);
    latest bigint;
    first_kept bigint;
    through bigint;
    through_seq bigint;
    last_hash bytea;
    removed bigint;
BEGIN
    IF keep IS NULL THEN
        keep := coalesce(nullif(configured, ''), '6 years')::interval;
        IF keep < minimum THEN
            RAISE EXCEPTION 'hipaa_guard.audit_retention must be at least 6 years'
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = format('It is set to "%s"; 45 CFR 164.316(b)(2) asks for six years.', configured),
                      HINT = 'Set hipaa_guard.audit_retention to ''6 years'' or longer and reload the configuration.';
        END IF;
    ELSIF keep < minimum AND NOT (SELECT r.rolsuper FROM pg_roles AS r WHERE r.rolname = SESSION_USER) THEN
        RAISE EXCEPTION 'only a superuser may keep audit records for less than 6 years'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    cutoff := now() - keep;
    PERFORM pg_advisory_xact_lock(1751580672, 4);
    SELECT max(b.block) INTO latest FROM @extschema@.audit_block AS b;
    SELECT max(b.block) INTO through FROM @extschema@.audit_block AS b
     WHERE b.sealed_at < cutoff AND b.block < latest;
    IF through IS NULL THEN
        RETURN;
    END IF;
    SELECT min(b.block) INTO first_kept FROM @extschema@.audit_block AS b;
    SELECT b.last_seq, b.hash INTO through_seq, last_hash FROM @extschema@.audit_block AS b WHERE b.block = through;
    removed := @extschema@.purge_audit_blocks(through, through_seq);
    INSERT INTO @extschema@.audit_purges (through_block, through_seq, last_hash, blocks, records, cutoff)
    VALUES (through, through_seq, last_hash, through - first_kept + 1, removed, purge_audit.cutoff);
    PERFORM @extschema@.audit_event('retention', 'PURGE AUDIT', NULL,
                                    @extschema@.audit_purge_detail(through, through_seq, last_hash,
                                                                   through - first_kept + 1, removed));
    blocks := through - first_kept + 1;
    records := removed;
    through_block := through;
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION @extschema@.purge_audit(interval) IS 'Remove sealed audit blocks older than the audit retention, leaving a sealed receipt';
