
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
-- changing transaction; the sealing worker adds the records of reads and
-- other events from shared memory, then moves both into audit_log.  It has
-- no index, because the row trigger inserts into the heap directly.
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
);

-- The sealed trail.  Only the sealing worker inserts, nothing updates or
-- deletes; docs/audit-format.md gives the bytes that are hashed.
CREATE TABLE @extschema@.audit_log (
    seq bigint PRIMARY KEY,
    block bigint NOT NULL,
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
);
CREATE INDEX audit_log_actor_idx ON @extschema@.audit_log (actor, logged_at);
CREATE INDEX audit_log_patients_idx ON @extschema@.audit_log USING gin (patients);

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
SELECT seq,
       ((pg_catalog.extract('epoch', logged_at) OPERATOR(pg_catalog.*) 1000000)::numeric(30, 0))::text AS logged_at,
       kind, command, relation, row_key, columns::text AS columns, rows::text AS rows,
       patients::text AS patients, decrypts::text AS decrypts, actor, login_role, database,
       os_user, client_addr, application, xid::text AS xid, status, query_id::text AS query_id,
       statement, purpose, detail
  FROM @extschema@.audit_log;

CREATE VIEW @extschema@.audit_block_export AS
SELECT block, first_seq, last_seq,
       ((pg_catalog.extract('epoch', sealed_at) OPERATOR(pg_catalog.*) 1000000)::numeric(30, 0))::text AS sealed_at,
       pg_catalog.encode(prev_hash, 'hex') AS prev_hash,
       pg_catalog.encode(hash, 'hex') AS hash
  FROM @extschema@.audit_block;
