
-- ----------------------------------------------------------------
-- Audit: the trail, its queue and its sealed blocks
-- ----------------------------------------------------------------

-- Tables whose reads, exports and writes are recorded.
CREATE TABLE @extschema@.audited_tables (
    tbl regclass PRIMARY KEY,
    reads boolean NOT NULL,
    writes boolean NOT NULL,
    enabled_by text NOT NULL,
    enabled_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);

-- Records waiting to be sealed.  Row changes insert theirs here in the
-- changing transaction.  The sealing worker moves them, with the records of
-- reads and other events from shared memory, into audit_log.  The table has
-- no index, because the row trigger inserts into the heap directly.  VACUUM
-- does not truncate it: truncating needs an ACCESS EXCLUSIVE lock, for which
-- VACUUM waits up to 5 seconds while writers keep queueing records.
CREATE TABLE @extschema@.audit_queue (
    logged_at timestamptz NOT NULL,
    kind text NOT NULL,
    command text,
    relation text,
    row_key text,
    columns text[],
    rows bigint,
    patients text[],
    decrypts bigint,
    actor text,
    login_role text,
    database text,
    os_user text,
    client_addr text,
    application text,
    xid xid8,
    status text,
    query_id bigint,
    statement text,
    purpose text,
    detail text
) WITH (vacuum_truncate = false);

-- The sealed trail.  Only the sealing worker inserts, nothing updates or
-- deletes.  A row contains the consecutive records first_seq to last_seq of
-- one block, packed as the bytes that are hashed (docs/audit-format.md),
-- because a heap row per record cost the sealer more than a read-heavy load
-- leaves it.  block, logged_from, logged_to and patients are not hashed.
-- They serve the indexes, so verify_audit_chain() checks them against the
-- records.  The views unpack the records with audit_records().
CREATE TABLE @extschema@.audit_log (
    first_seq bigint PRIMARY KEY,
    last_seq bigint NOT NULL,
    block bigint NOT NULL,
    logged_from timestamptz NOT NULL,
    logged_to timestamptz NOT NULL,
    patients text[],
    records bytea NOT NULL
);
-- Rows are compressed with LZ4 and kept in the heap page (STORAGE MAIN).
-- Records repeat their actor, statement and session fields, so a row of
-- about 6 kB shrinks to about 500 bytes, and the sealer spends on LZ4 about
-- what writing the uncompressed bytes cost it.  Without LZ4 in the server,
-- rows stay uncompressed and in the page: pglz would double the sealer's
-- work.
DO $$
BEGIN
    ALTER TABLE @extschema@.audit_log
        ALTER COLUMN records SET STORAGE MAIN, ALTER COLUMN records SET COMPRESSION lz4,
        ALTER COLUMN patients SET STORAGE MAIN, ALTER COLUMN patients SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    ALTER TABLE @extschema@.audit_log SET (toast_tuple_target = 8160),
        ALTER COLUMN records SET STORAGE EXTERNAL, ALTER COLUMN patients SET STORAGE EXTERNAL;
END
$$;
-- Auditors ask by time window, and BRIN costs the sealer next to nothing:
-- rows are sealed in time order.  Patients are looked up through GIN, and
-- only rows that name patients are indexed.
CREATE INDEX audit_log_logged_idx ON @extschema@.audit_log USING brin (logged_from, logged_to);
CREATE INDEX audit_log_patients_idx ON @extschema@.audit_log USING gin (patients) WHERE patients IS NOT NULL;

-- The records of packed audit_log rows, typed as audit_queue's columns.
CREATE FUNCTION @extschema@.audit_records(records bytea)
    RETURNS TABLE (seq bigint, logged_at timestamptz, kind text, command text, relation text,
                   row_key text, columns text[], rows bigint, patients text[], decrypts bigint,
                   actor text, login_role text, database text, os_user text, client_addr text,
                   application text, xid xid8, status text, query_id bigint, statement text,
                   purpose text, detail text)
    AS 'MODULE_PATHNAME', 'hg_audit_records'
    LANGUAGE C STRICT STABLE PARALLEL SAFE ROWS 25;

-- The same records as the text of their hashed fields, for the export.
CREATE FUNCTION @extschema@.audit_record_fields(records bytea)
    RETURNS TABLE (seq text, logged_at text, kind text, command text, relation text,
                   row_key text, columns text, rows text, patients text, decrypts text,
                   actor text, login_role text, database text, os_user text, client_addr text,
                   application text, xid text, status text, query_id text, statement text,
                   purpose text, detail text)
    AS 'MODULE_PATHNAME', 'hg_audit_record_fields'
    LANGUAGE C STRICT STABLE PARALLEL SAFE ROWS 25;

CREATE TABLE @extschema@.audit_block (
    block bigint PRIMARY KEY,
    first_seq bigint NOT NULL,
    last_seq bigint NOT NULL,
    sealed_at timestamptz NOT NULL,
    prev_hash bytea NOT NULL,
    hash bytea NOT NULL
);

SELECT pg_catalog.pg_extension_config_dump('@extschema@.audited_tables', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.audit_queue', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.audit_log', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.audit_block', '');

-- The hashed fields in their hashed text form, for an independent verifier.
CREATE VIEW @extschema@.audit_export AS
SELECT r.seq::bigint AS seq, r.logged_at, r.kind, r.command, r.relation, r.row_key, r.columns,
       r.rows, r.patients, r.decrypts, r.actor, r.login_role, r.database, r.os_user,
       r.client_addr, r.application, r.xid, r.status, r.query_id, r.statement, r.purpose,
       r.detail
  FROM @extschema@.audit_log AS l
 CROSS JOIN LATERAL @extschema@.audit_record_fields(l.records) AS r;

CREATE VIEW @extschema@.audit_block_export AS
SELECT block, first_seq, last_seq,
       ((pg_catalog.extract('epoch', sealed_at) OPERATOR(pg_catalog.*) 1000000)::numeric(30, 0))::text AS sealed_at,
       pg_catalog.encode(prev_hash, 'hex') AS prev_hash,
       pg_catalog.encode(hash, 'hex') AS hash
  FROM @extschema@.audit_block;

-- ----------------------------------------------------------------
-- Audit: sealing, protection and verification (src/sealer.c, src/auditchain.c)
-- ----------------------------------------------------------------

-- Raises an error on every UPDATE, DELETE and TRUNCATE of the trail, for
-- superusers too.  With the argument 'queue' it lets the sealing worker
-- delete the audit_queue rows it has sealed.  INSERT is left to privileges,
-- so that pg_restore can copy the trail back.
CREATE FUNCTION @extschema@.audit_trail_guard() RETURNS trigger
    AS 'MODULE_PATHNAME', 'hg_audit_trail_guard' LANGUAGE C;

CREATE TRIGGER audit_queue_guard BEFORE UPDATE OR DELETE ON @extschema@.audit_queue
    FOR EACH ROW EXECUTE FUNCTION @extschema@.audit_trail_guard('queue');
CREATE TRIGGER audit_queue_truncate_guard BEFORE TRUNCATE ON @extschema@.audit_queue
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.audit_trail_guard('queue');
CREATE TRIGGER audit_log_guard BEFORE UPDATE OR DELETE ON @extschema@.audit_log
    FOR EACH ROW EXECUTE FUNCTION @extschema@.audit_trail_guard();
CREATE TRIGGER audit_log_truncate_guard BEFORE TRUNCATE ON @extschema@.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.audit_trail_guard();
CREATE TRIGGER audit_block_guard BEFORE UPDATE OR DELETE ON @extschema@.audit_block
    FOR EACH ROW EXECUTE FUNCTION @extschema@.audit_trail_guard();
CREATE TRIGGER audit_block_truncate_guard BEFORE TRUNCATE ON @extschema@.audit_block
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.audit_trail_guard();
-- ENABLE ALWAYS: session_replication_role = replica does not turn the guards
-- off; only ALTER TABLE ... DISABLE TRIGGER does, which is itself recorded.
ALTER TABLE @extschema@.audit_queue ENABLE ALWAYS TRIGGER audit_queue_guard,
    ENABLE ALWAYS TRIGGER audit_queue_truncate_guard;
ALTER TABLE @extschema@.audit_log ENABLE ALWAYS TRIGGER audit_log_guard,
    ENABLE ALWAYS TRIGGER audit_log_truncate_guard;
ALTER TABLE @extschema@.audit_block ENABLE ALWAYS TRIGGER audit_block_guard,
    ENABLE ALWAYS TRIGGER audit_block_truncate_guard;

-- Wakes the sealing worker at commit when rows are queued with SQL.
CREATE FUNCTION @extschema@.audit_queue_inserted() RETURNS trigger
    AS 'MODULE_PATHNAME', 'hg_audit_queue_inserted' LANGUAGE C;
CREATE TRIGGER audit_queue_inserted AFTER INSERT ON @extschema@.audit_queue
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.audit_queue_inserted();

CREATE FUNCTION @extschema@.verify_audit_chain(digest text DEFAULT NULL)
    RETURNS TABLE (ok boolean, blocks bigint, records bigint, failed_block bigint,
                   failed_seq bigint, reason text)
    AS 'MODULE_PATHNAME', 'hg_verify_audit_chain' LANGUAGE C CALLED ON NULL INPUT
    VOLATILE PARALLEL RESTRICTED ROWS 1;
COMMENT ON FUNCTION @extschema@.verify_audit_chain(text) IS 'Recompute every record and block hash of the audit trail and report the first failure; with a digest from audit_digest(), also check that its block is unchanged';

CREATE FUNCTION @extschema@.audit_digest()
    RETURNS TABLE (block bigint, last_seq bigint, hash text, digest text)
    AS 'MODULE_PATHNAME', 'hg_audit_digest' LANGUAGE C STABLE PARALLEL RESTRICTED ROWS 1;
COMMENT ON FUNCTION @extschema@.audit_digest() IS 'The latest sealed block of the audit trail and its digest, to store outside the database';

CREATE FUNCTION @extschema@.audit_status()
    RETURNS TABLE (sealer_pid integer, queued_in_memory bigint, queued_in_table bigint,
                   sealed_records bigint, sealed_blocks bigint, last_sealed_at timestamptz,
                   queue_full_waits bigint)
    AS 'MODULE_PATHNAME', 'hg_audit_status' LANGUAGE C VOLATILE PARALLEL RESTRICTED ROWS 1;
COMMENT ON FUNCTION @extschema@.audit_status() IS 'The sealing worker of this database and the records waiting for it';

CREATE FUNCTION @extschema@.audit_note(detail text) RETURNS void
    AS 'MODULE_PATHNAME', 'hg_audit_note' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.audit_note(text) IS 'Record an administrator''s note in the audit trail; it stays even if the transaction rolls back';
