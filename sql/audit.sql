--
-- Audit capture: what each kind of access records, and the refusals.
-- Records are shown after the sealing worker has sealed them, sorted so
-- that the output does not depend on the order of sealing.
--
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_aud_owner, regress_aud_reader, regress_aud_admin, regress_aud_auditor, regress_aud_other,
    regress_aud_grantee;
CREATE ROLE regress_aud_owner;
CREATE ROLE regress_aud_reader IN ROLE hipaa_clinician;
CREATE ROLE regress_aud_admin IN ROLE hipaa_admin;
CREATE ROLE regress_aud_auditor IN ROLE hipaa_auditor;
CREATE ROLE regress_aud_other;
RESET client_min_messages;

-- Wait until everything recorded so far is sealed.
CREATE FUNCTION aud_wait() RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    s record;
BEGIN
    FOR i IN 1 .. 300 LOOP
        SELECT * INTO s FROM hipaa_guard.audit_status();
        EXIT WHEN s.queued_in_memory = 0 AND s.queued_in_table = 0;
        PERFORM pg_sleep(0.05);
    END LOOP;
END
$$;
CREATE TABLE aud_mark (seq bigint);
INSERT INTO aud_mark VALUES (0);
-- The records since the last call, then move the mark.
CREATE FUNCTION aud_new() RETURNS TABLE (kind text, command text, relation text, row_key text,
                                         columns text[], rows bigint, patients text[],
                                         decrypts bigint, actor text, status text, statement text,
                                         detail text)
LANGUAGE plpgsql AS $$
DECLARE
    m bigint;
BEGIN
    PERFORM aud_wait();
    SELECT a.seq INTO m FROM aud_mark AS a;
    RETURN QUERY
    SELECT t.kind, t.command, t.relation, t.row_key, t.columns, t.rows, t.patients, t.decrypts,
           t.actor, t.status, t.statement, t.detail
      FROM hipaa_guard.audit_trail AS t
     WHERE t.seq > m
     ORDER BY t.kind, t.command, t.relation, t.row_key, t.statement, t.rows;
    UPDATE aud_mark SET seq = (SELECT coalesce(max(l.last_seq), 0) FROM hipaa_guard.audit_log AS l);
END
$$;
SELECT count(*) >= 0 AS started FROM aud_new();

SELECT hipaa_guard.create_key('aud_phi') > 0 AS created;
CREATE TABLE aud_patients (patient_id int PRIMARY KEY, name text, zip text);
ALTER TABLE aud_patients OWNER TO regress_aud_owner;
INSERT INTO aud_patients VALUES (1001, 'Jane Roe', '02139'), (1002, 'John Q. Sample', '02140');
CREATE TABLE aud_visits (visit_id int PRIMARY KEY, patient_id int, note hipaa_guard.encrypted_text('aud_phi'));
GRANT SELECT, INSERT, UPDATE, DELETE ON aud_patients, aud_visits TO regress_aud_reader;

-- Configuration is hipaa_admin's or a superuser's.
SET SESSION AUTHORIZATION regress_aud_other;
\set VERBOSITY sqlstate
SELECT hipaa_guard.enable_audit('aud_patients');
\set VERBOSITY default
RESET SESSION AUTHORIZATION;
SELECT hipaa_guard.enable_audit(NULL);
SELECT hipaa_guard.enable_audit('pg_class');
SELECT hipaa_guard.enable_audit('hipaa_guard.audit_log');
SELECT hipaa_guard.enable_audit('aud_patients', reads => false, writes => false);
SELECT hipaa_guard.disable_audit('aud_visits');
SET SESSION AUTHORIZATION regress_aud_admin;
SELECT hipaa_guard.set_patient_column('aud_patients', 'patient_id');
SELECT hipaa_guard.set_patient_column('aud_visits', 'patient_id');
SELECT hipaa_guard.enable_audit('aud_patients');
SELECT hipaa_guard.enable_audit('aud_visits');
RESET SESSION AUTHORIZATION;
SELECT kind, command, relation, actor, status, detail FROM aud_new();

-- Writes: one record per row, with its key and changed columns, never a value.
SET SESSION AUTHORIZATION regress_aud_reader;
INSERT INTO aud_patients VALUES (1003, 'Ann Other', '02141');
UPDATE aud_patients SET zip = '02142' WHERE patient_id = 1003;
UPDATE aud_patients SET zip = zip WHERE patient_id = 1003;
DELETE FROM aud_patients WHERE patient_id = 1003;
INSERT INTO aud_patients VALUES (1001, 'x', 'y') ON CONFLICT DO NOTHING;
RESET SESSION AUTHORIZATION;
SELECT * FROM aud_new();
SELECT count(*) AS values_in_trail FROM hipaa_guard.audit_trail AS t
 WHERE t::text LIKE '%Ann Other%' OR t::text LIKE '%02142%' OR t::text LIKE '%Jane Roe%';
SELECT count(*) AS values_in_stored_bytes FROM hipaa_guard.audit_log AS l
 WHERE position(convert_to('Ann Other', 'UTF8') IN l.records) > 0
    OR position(convert_to('02142', 'UTF8') IN l.records) > 0
    OR position(convert_to('Jane Roe', 'UTF8') IN l.records) > 0;

-- Reads, through every path; rows counts what the statement returned.
SET SESSION AUTHORIZATION regress_aud_reader;
SELECT name FROM aud_patients WHERE patient_id = 1001;
CREATE TEMP VIEW aud_v AS SELECT patient_id FROM aud_patients;
SELECT count(*) FROM aud_v;
CREATE FUNCTION pg_temp.aud_sql() RETURNS bigint LANGUAGE sql AS 'SELECT count(*) FROM aud_patients';
SELECT pg_temp.aud_sql();
CREATE FUNCTION pg_temp.aud_plpgsql() RETURNS bigint LANGUAGE plpgsql AS
    $$ BEGIN RETURN (SELECT count(*) FROM aud_patients WHERE patient_id = 1002); END $$;
SELECT pg_temp.aud_plpgsql();
WITH c AS (SELECT * FROM aud_patients) SELECT count(*) FROM c;
SELECT 1 AS one WHERE EXISTS (SELECT FROM aud_patients WHERE zip = '02140');
UPDATE aud_patients SET zip = '02140' WHERE patient_id = 1002 RETURNING patient_id;
RESET SESSION AUTHORIZATION;
SELECT * FROM aud_new();

-- Exports, cursors and prepared statements.
SET SESSION AUTHORIZATION regress_aud_reader;
COPY aud_patients (patient_id) TO STDOUT;
COPY (SELECT patient_id FROM aud_patients WHERE patient_id = 1001) TO STDOUT WITH (FORMAT csv);
BEGIN;
DECLARE c CURSOR FOR SELECT patient_id FROM aud_patients ORDER BY 1;
FETCH 1 FROM c;
FETCH 1 FROM c;
CLOSE c;
COMMIT;
PREPARE q(int) AS SELECT zip FROM aud_patients WHERE patient_id = $1;
EXECUTE q(1001);
EXECUTE q(1002);
DEALLOCATE q;
RESET SESSION AUTHORIZATION;
SELECT * FROM aud_new();

-- A read is recorded when its transaction rolls back, and so is a change,
-- with status aborted.
SET SESSION AUTHORIZATION regress_aud_reader;
BEGIN;
SELECT count(*) FROM aud_patients WHERE patient_id = 1001;
INSERT INTO aud_patients VALUES (1009, 'Temp Visit', '00000');
ROLLBACK;
BEGIN;
SELECT patient_id FROM aud_patients WHERE patient_id = 1002;
SELECT 1/0;
COMMIT;
RESET SESSION AUTHORIZATION;
SELECT * FROM aud_new();

-- A read that fails inside a PL/pgSQL exception block, whose subtransaction
-- rolls back while the transaction goes on and commits.
SET SESSION AUTHORIZATION regress_aud_reader;
DO $$
BEGIN
    PERFORM patient_id / 0 FROM aud_patients WHERE patient_id = 1001;
EXCEPTION WHEN division_by_zero THEN
    RAISE NOTICE 'caught';
END
$$;
RESET SESSION AUTHORIZATION;
SELECT kind, command, relation, rows, patients, status, detail FROM aud_new();

-- A change undone by ROLLBACK TO SAVEPOINT or by a PL/pgSQL exception block
-- is recorded as aborted, and the changes around it as committed.
SET SESSION AUTHORIZATION regress_aud_reader;
BEGIN;
INSERT INTO aud_patients VALUES (1010, 'Kept Visit', '00000');
SAVEPOINT s1;
UPDATE aud_patients SET zip = '99999' WHERE patient_id = 1010;
SAVEPOINT s2;
DELETE FROM aud_patients WHERE patient_id = 1010;
ROLLBACK TO SAVEPOINT s1;
UPDATE aud_patients SET name = 'Kept Visit 2' WHERE patient_id = 1010;
COMMIT;
DO $$
BEGIN
    UPDATE aud_patients SET zip = '11111' WHERE patient_id = 1010;
    PERFORM 1 / 0;
EXCEPTION WHEN division_by_zero THEN
    DELETE FROM aud_patients WHERE patient_id = 1010;
END
$$;
RESET SESSION AUTHORIZATION;
SELECT kind, command, row_key, columns, patients, status FROM aud_new() WHERE kind = 'write';
SELECT count(*) AS left_behind FROM aud_patients WHERE patient_id = 1010;

-- Past 1 MB of copies, the changes that roll back are counted in one
-- summary record: here 20,000 inserts, most of them only counted.
CREATE TABLE aud_bulk (id int PRIMARY KEY, patient text);
SELECT hipaa_guard.enable_audit('aud_bulk', reads => false);
SELECT count(*) >= 0 AS skipped FROM aud_new();
BEGIN;
INSERT INTO aud_bulk SELECT g, 'p' || g FROM generate_series(1, 20000) AS g;
ROLLBACK;
SELECT count(*) FILTER (WHERE command = 'INSERT') > 1000 AS listed_one_by_one,
       count(*) FILTER (WHERE command = 'ROLLBACK') AS summaries,
       sum(rows) AS changes, bool_and(status = 'aborted') AS all_aborted,
       max(detail) FILTER (WHERE command = 'ROLLBACK') AS summary_detail
  FROM aud_new() WHERE kind = 'write';
-- Changes counted in subtransactions that committed roll back with their
-- transaction, in the same summary.
BEGIN;
INSERT INTO aud_bulk SELECT g, 'p' || g FROM generate_series(1, 20000) AS g;
DO $$
BEGIN
    FOR i IN 20001 .. 20100 LOOP
        BEGIN
            INSERT INTO aud_bulk VALUES (i, 'p' || i);
        EXCEPTION WHEN unique_violation THEN
            NULL;
        END;
    END LOOP;
END
$$;
ROLLBACK;
SELECT count(*) FILTER (WHERE command = 'ROLLBACK') AS summaries, sum(rows) AS changes
  FROM aud_new() WHERE kind = 'write';
-- Changes made by a statement whose redacted text is cut at 64 kB are
-- recorded one by one when they roll back.
BEGIN;
INSERT INTO aud_bulk VALUES (1, 'p1'), (2, 'p2'), (3, 'p3');
DO $$
BEGIN
    EXECUTE format('UPDATE aud_bulk SET patient = %L WHERE id IN (%s)', 'q',
                   (SELECT string_agg(g::text, ',') FROM generate_series(1, 80000) AS g));
END
$$;
INSERT INTO aud_bulk VALUES (0, 'p0');
ROLLBACK;
SELECT command, rows, status, statement IS NULL AS no_statement
  FROM aud_new() WHERE kind = 'write' ORDER BY command;

-- Refusals: a read without privilege, and DDL that would switch the audit off.
SET SESSION AUTHORIZATION regress_aud_other;
SELECT * FROM aud_patients;
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION regress_aud_owner;
ALTER TABLE aud_patients DISABLE TRIGGER hipaa_guard_audit_write;
ALTER TABLE aud_patients DISABLE TRIGGER ALL;
DROP POLICY hipaa_guard_audit_guard ON aud_patients;
ALTER TABLE aud_patients DISABLE ROW LEVEL SECURITY;
-- Nor can the owner turn on the setting that the extension's own DDL uses.
SET hipaa_guard.audit_internal_ddl = on;
RESET SESSION AUTHORIZATION;
SELECT kind, command, relation, actor, status, statement FROM aud_new();

-- session_replication_role does not silence the write trigger.
SET session_replication_role = replica;
UPDATE aud_patients SET zip = '02143' WHERE patient_id = 1002;
RESET session_replication_role;

-- Admin actions on audited tables, TRUNCATE included.
SET SESSION AUTHORIZATION regress_aud_owner;
ALTER TABLE aud_patients ADD COLUMN phone text;
GRANT SELECT ON aud_patients TO regress_aud_other;
REVOKE SELECT ON aud_patients FROM regress_aud_other;
CREATE POLICY aud_extra ON aud_patients USING (true);
DROP POLICY aud_extra ON aud_patients;
RESET SESSION AUTHORIZATION;
CREATE TABLE aud_scratch (id int PRIMARY KEY);
SELECT hipaa_guard.enable_audit('aud_scratch');
-- The audit's cache, emptied by the change above, is rebuilt without
-- taking the transaction's snapshot, so the isolation level can be chosen.
BEGIN ISOLATION LEVEL REPEATABLE READ;
SHOW transaction_isolation;
COMMIT;
INSERT INTO aud_scratch VALUES (1);
TRUNCATE aud_scratch;
SELECT kind, command, relation, row_key, actor, status, statement FROM aud_new();

-- GRANT and REVOKE ON ALL TABLES IN SCHEMA are recorded for each audited
-- table of the schema, and for no other.
CREATE SCHEMA aud_schema;
CREATE TABLE aud_schema.audited (id int PRIMARY KEY);
CREATE TABLE aud_schema.not_audited (id int PRIMARY KEY);
SELECT hipaa_guard.enable_audit('aud_schema.audited');
CREATE ROLE regress_aud_grantee;
SELECT count(*) >= 0 AS skipped FROM aud_new();
GRANT SELECT ON ALL TABLES IN SCHEMA aud_schema TO regress_aud_grantee;
REVOKE SELECT ON ALL TABLES IN SCHEMA aud_schema FROM regress_aud_grantee;
SELECT kind, command, relation, actor, status, statement FROM aud_new();
DROP ROLE regress_aud_grantee;
SELECT hipaa_guard.disable_audit('aud_schema.audited');
DROP SCHEMA aud_schema CASCADE;
SELECT count(*) >= 0 AS skipped FROM aud_new();

-- decrypt() calls count against their statement, with the patients of
-- values under per-patient keys.
SELECT hipaa_guard.bind_columns('aud_visits', 'patient_id', per_patient_keys => true);
INSERT INTO aud_visits VALUES (1, 1001, 'Dx: sample'::text), (2, 1002, 'Dx: other'::text);
SET SESSION AUTHORIZATION regress_aud_reader;
SELECT hipaa_guard.decrypt(note) FROM aud_visits ORDER BY visit_id;
SELECT hipaa_guard.decrypt(hipaa_guard.encrypt('loose value', 'aud_phi')) AS loose;
RESET SESSION AUTHORIZATION;
-- A refused decrypt() is a denied attempt too.
SET hipaa_guard.require_mfa = on;
SET SESSION AUTHORIZATION regress_aud_reader;
\set VERBOSITY sqlstate
SELECT hipaa_guard.decrypt(note) FROM aud_visits WHERE visit_id = 1;
\set VERBOSITY default
RESET SESSION AUTHORIZATION;
RESET hipaa_guard.require_mfa;
SELECT hipaa_guard.rotate_key('aud_phi') AS version;
SELECT kind, command, relation, rows, patients, decrypts, statement, detail FROM aud_new();

-- A table bound with per-patient keys names its patients through the
-- binding, without set_patient_column(), in write and read records alike.
CREATE TABLE aud_bound (id int PRIMARY KEY, patient text, note hipaa_guard.encrypted_text('aud_phi'));
SELECT hipaa_guard.bind_columns('aud_bound', 'patient', per_patient_keys => true);
SELECT hipaa_guard.enable_audit('aud_bound');
SELECT count(*) >= 0 AS skipped FROM aud_new();
INSERT INTO aud_bound VALUES (1, 'pb-1', 'first'::text), (2, 'pb-2', 'second'::text);
GRANT SELECT ON aud_bound TO regress_aud_reader;
SET SESSION AUTHORIZATION regress_aud_reader;
SELECT count(*) FROM aud_bound WHERE id = 2;
RESET SESSION AUTHORIZATION;
SELECT kind, command, row_key, patients, status FROM aud_new() WHERE relation = 'public.aud_bound';

-- A statement that reads many patients, each more than once and not in a
-- row, lists each of them once, in the order first read.
CREATE TABLE aud_many (patient_id int, n int);
INSERT INTO aud_many SELECT p, n FROM generate_series(1, 3) AS n, generate_series(3001, 3040) AS p;
SELECT hipaa_guard.enable_audit('aud_many');
SELECT hipaa_guard.set_patient_column('aud_many', 'patient_id');
GRANT SELECT ON aud_many TO regress_aud_reader;
SET SESSION AUTHORIZATION regress_aud_reader;
SELECT count(*) FROM aud_many;
RESET SESSION AUTHORIZATION;
SELECT rows, cardinality(patients) AS listed, patients[1] AS first, patients[40] AS last,
       patients = (SELECT array_agg(p::text ORDER BY p) FROM generate_series(3001, 3040) AS p) AS each_once
  FROM aud_new() WHERE kind = 'read';

-- Auditor views.
SET SESSION AUTHORIZATION regress_aud_auditor;
SELECT kind, command, relation, rows, status
  FROM hipaa_guard.patient_access_history('1001', now() - interval '1 hour', now() + interval '1 hour')
 ORDER BY kind, command, statement
 LIMIT 12;
SELECT recipient, description, purpose
  FROM hipaa_guard.accounting_of_disclosures('1002', now() - interval '10 years', now() + interval '1 hour')
 ORDER BY seq LIMIT 3;
SELECT count(*) > 0 AS has_activity
  FROM hipaa_guard.user_activity('regress_aud_reader', now() - interval '1 hour', now() + interval '1 hour');
SELECT * FROM hipaa_guard.patient_access_history('1001', now(), now() - interval '1 hour');
SELECT * FROM hipaa_guard.user_activity(NULL, now(), now());
-- The auditor reads no patient table and decrypts nothing.
SELECT count(*) FROM aud_patients;
SELECT has_function_privilege('hipaa_guard.decrypt(hipaa_guard.encrypted_text)', 'EXECUTE') AS can_decrypt;
-- No role changes the trail.
\set VERBOSITY sqlstate
UPDATE hipaa_guard.audit_log SET block = 0 WHERE first_seq = 1;
\set VERBOSITY default
RESET SESSION AUTHORIZATION;
UPDATE hipaa_guard.audit_log SET block = 0 WHERE first_seq = 1;
DELETE FROM hipaa_guard.audit_log WHERE first_seq = 1;
TRUNCATE hipaa_guard.audit_log;
-- The extension's recording and purging functions are not for other roles,
-- and an event needs a kind and a command.
SET SESSION AUTHORIZATION regress_aud_admin;
\set VERBOSITY sqlstate
SELECT hipaa_guard.purge_audit_blocks(1, 1);
SELECT hipaa_guard.audit_event('config', 'NOTE', NULL, 'forged');
\set VERBOSITY default
RESET SESSION AUTHORIZATION;
SELECT hipaa_guard.audit_event(NULL, 'NOTE', NULL, NULL);
-- The guards fire in replica mode too.
SET session_replication_role = replica;
UPDATE hipaa_guard.audit_log SET block = 0 WHERE first_seq = 1;
RESET session_replication_role;
SELECT ok, reason FROM hipaa_guard.verify_audit_chain();

-- disable_audit() is recorded, and reads stop being recorded.
SELECT hipaa_guard.disable_audit('aud_scratch');
SELECT count(*) FROM aud_scratch;
SELECT kind, command, relation, actor FROM aud_new();

-- The trail's own retention: old blocks go, a receipt stays and is sealed,
-- and the chain verifies from the receipt on.
SELECT aud_wait();
SELECT digest AS before_purge FROM hipaa_guard.audit_digest() \gset
SELECT blocks > 0 AS purged_blocks, records > 0 AS purged_records
  FROM hipaa_guard.purge_audit(interval '0 seconds');
SELECT (SELECT min(block) FROM hipaa_guard.audit_block) = through_block + 1 AS kept_from_next_block,
       blocks > 0 AS counted
  FROM hipaa_guard.audit_purges ORDER BY through_block DESC LIMIT 1;
SELECT ok, reason FROM hipaa_guard.verify_audit_chain();
SELECT aud_wait();
SELECT count(*) AS sealed_receipts FROM hipaa_guard.audit_trail
 WHERE kind = 'retention' AND command = 'PURGE AUDIT';
SELECT ok, reason FROM hipaa_guard.verify_audit_chain(:'before_purge');
-- Nothing is due again at once, and retention under six years is refused.
SELECT count(*) AS purged_again FROM hipaa_guard.purge_audit(interval '1 hour');
ALTER SYSTEM SET hipaa_guard.audit_retention = '1 year';
SELECT pg_reload_conf();
SELECT pg_sleep(0.3);
SELECT * FROM hipaa_guard.purge_audit();
ALTER SYSTEM RESET hipaa_guard.audit_retention;
SELECT pg_reload_conf();
SELECT pg_sleep(0.3);
SET SESSION AUTHORIZATION regress_aud_admin;
SELECT * FROM hipaa_guard.purge_audit(interval '1 day');
SELECT count(*) AS purged_at_six_years FROM hipaa_guard.purge_audit();
RESET SESSION AUTHORIZATION;
-- A receipt that no sealed event confirms is caught; undone afterwards.
BEGIN;
ALTER TABLE hipaa_guard.audit_purges DISABLE TRIGGER audit_purges_guard;
UPDATE hipaa_guard.audit_purges SET records = records + 1
 WHERE through_block = (SELECT max(through_block) FROM hipaa_guard.audit_purges);
ALTER TABLE hipaa_guard.audit_purges ENABLE ALWAYS TRIGGER audit_purges_guard;
COMMIT;
SELECT ok, regexp_replace(reason, '[0-9]+', 'N', 'g') AS reason FROM hipaa_guard.verify_audit_chain();
BEGIN;
ALTER TABLE hipaa_guard.audit_purges DISABLE TRIGGER audit_purges_guard;
UPDATE hipaa_guard.audit_purges SET records = records - 1
 WHERE through_block = (SELECT max(through_block) FROM hipaa_guard.audit_purges);
ALTER TABLE hipaa_guard.audit_purges ENABLE ALWAYS TRIGGER audit_purges_guard;
COMMIT;
SELECT ok, reason FROM hipaa_guard.verify_audit_chain();

-- Under audit_durable_reads, a read's record is inserted in the reading
-- transaction: it is in audit_queue before the commit and sealed with the
-- transaction's outcome, aborted ones included.  Only superusers set it.
SELECT count(*) >= 0 AS marked FROM aud_new();
SET hipaa_guard.audit_durable_reads = on;
BEGIN;
SET LOCAL ROLE regress_aud_reader;
SELECT name FROM aud_patients WHERE patient_id = 1001;
RESET ROLE;
SELECT kind, command, relation, rows FROM hipaa_guard.audit_queue WHERE kind = 'read';
COMMIT;
BEGIN;
SET LOCAL ROLE regress_aud_reader;
SELECT name FROM aud_patients WHERE patient_id = 1002;
ROLLBACK;
SELECT kind, command, relation, rows, status FROM aud_new();
SET SESSION AUTHORIZATION regress_aud_reader;
SET hipaa_guard.audit_durable_reads = off;
RESET SESSION AUTHORIZATION;
RESET hipaa_guard.audit_durable_reads;

-- VACUUM never truncates the queue, which would make the sealer wait for an
-- ACCESS EXCLUSIVE lock while writers keep queueing.
SELECT reloptions FROM pg_class WHERE oid = 'hipaa_guard.audit_queue'::regclass;

-- With the library preloaded, the read guard folds away: plans are unchanged.
EXPLAIN (COSTS OFF) SELECT name FROM aud_patients WHERE patient_id = 1001;

DROP VIEW aud_v;
DROP FUNCTION pg_temp.aud_sql(), pg_temp.aud_plpgsql();
DROP TABLE aud_scratch, aud_many, aud_visits, aud_patients, aud_bulk, aud_bound, aud_mark;
DROP FUNCTION aud_new(), aud_wait();
SELECT hipaa_guard.destroy_key('aud_phi');
SELECT hipaa_guard.destroy_key(hipaa_guard.patient_key_name(p)) FROM unnest(ARRAY['1001', '1002', 'pb-1', 'pb-2']) AS p;
DROP ROLE regress_aud_owner, regress_aud_reader, regress_aud_admin, regress_aud_auditor, regress_aud_other;
