--
-- The sealed audit trail: the sealing worker, the append-only guard, and
-- verify_audit_chain() against four kinds of tampering by a superuser.
--
-- Records are queued by inserting into hipaa_guard.audit_queue as a
-- superuser, which is what the capture paths do for row changes.  Earlier
-- tests may have left records in the trail, so seqs and blocks are shown
-- relative to the state at the start, and the numbers in failure reasons
-- are replaced by N.
--
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_audit_writer, regress_audit_auditor;

CREATE FUNCTION audit_error_of(query text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE query;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;

-- Wait (at most about 10 s) until the sealer has emptied the queue and
-- sealed at least the given number of records.
CREATE FUNCTION audit_wait_sealed(target bigint) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    status record;
BEGIN
    FOR i IN 1 .. 100 LOOP
        SELECT * INTO status FROM hipaa_guard.audit_status();
        IF status.queued_in_table = 0 AND status.queued_in_memory = 0
           AND status.sealed_records >= target THEN
            RETURN true;
        END IF;
        PERFORM pg_sleep(0.1);
    END LOOP;
    RETURN false;
END
$$;

-- verify_audit_chain() with the numbers of its reason replaced by N.
CREATE FUNCTION audit_verdict(digest text DEFAULT NULL)
RETURNS TABLE (ok boolean, failed_block bigint, failed_seq bigint, reason text)
LANGUAGE sql AS $$
    SELECT v.ok, v.failed_block, v.failed_seq,
           pg_catalog.regexp_replace(v.reason, '[0-9]+', 'N', 'g')
      FROM hipaa_guard.verify_audit_chain(digest) AS v
$$;

-- Earlier tests' last records are sealed first.
SELECT audit_wait_sealed(0) AS earlier_sealed;
SELECT sealed_records AS start_seq, sealed_blocks AS start_block
  FROM hipaa_guard.audit_status() \gset

-- Five records, queued in one transaction, land in one block with
-- consecutive seqs after the previous end of the trail.
INSERT INTO hipaa_guard.audit_queue (logged_at, kind, command, relation, columns, rows, detail)
SELECT pg_catalog.now(), 'write', 'UPDATE', 'public.regress_audit', ARRAY['name', 'note'], 1,
       'regress record ' || n
  FROM generate_series(1, 5) AS n;
SELECT audit_wait_sealed(:start_seq + 5) AS sealed;
-- The commit started a sealer in this database, as its own backend type.
SELECT count(*) AS sealers FROM pg_stat_activity
 WHERE backend_type = 'hipaa_guard sealer' AND datname = current_database();
SELECT sealer_pid = (SELECT pid FROM pg_stat_activity
                      WHERE backend_type = 'hipaa_guard sealer' AND datname = current_database())
       AS status_names_sealer
  FROM hipaa_guard.audit_status();
SELECT seq - :start_seq AS seq, block - :start_block AS block, kind, command, columns, rows,
       status, detail
  FROM hipaa_guard.audit_trail WHERE seq > :start_seq ORDER BY seq;
-- They are stored packed in one row of audit_log, as the bytes that are
-- hashed; the row's other columns summarize them for the indexes.
SELECT first_seq - :start_seq AS first_seq, last_seq - :start_seq AS last_seq,
       block - :start_block AS block, logged_from <= logged_to AS ordered, patients,
       position(convert_to('regress record 3', 'UTF8') IN records) > 0 AS holds_record_3
  FROM hipaa_guard.audit_log WHERE last_seq > :start_seq ORDER BY first_seq;
-- Rows larger than PostgreSQL's 2 kB threshold are compressed with LZ4 in
-- their heap page.
SELECT attname, attstorage, attcompression FROM pg_catalog.pg_attribute
 WHERE attrelid = 'hipaa_guard.audit_log'::regclass AND attname IN ('patients', 'records')
 ORDER BY attname;
SELECT block - :start_block AS block, first_seq - :start_seq AS first_seq,
       last_seq - :start_seq AS last_seq, pg_catalog.length(hash) AS hash_bytes
  FROM hipaa_guard.audit_block WHERE block > :start_block ORDER BY block;
SELECT * FROM audit_verdict();

-- The digest of the latest block verifies.  One with another hash, or of a
-- block that does not exist, fails, and a malformed one is an error (22023).
SELECT digest AS good_digest, block AS last_block, last_seq AS last_seq
  FROM hipaa_guard.audit_digest() \gset
SELECT :'good_digest' ~ '^hg1:[0-9]+:[0-9]+:[0-9a-f]{64}$' AS digest_form;
SELECT * FROM audit_verdict(:'good_digest');
SELECT ok, failed_block = :last_block AS at_digest_block, reason
  FROM audit_verdict(pg_catalog.regexp_replace(:'good_digest', '[0-9a-f]{8}$', '00000000'));
SELECT ok, failed_block = :last_block + 1 AS at_digest_block, reason
  FROM audit_verdict(pg_catalog.format('hg1:%s:%s:%s', :last_block + 1, :last_seq + 1,
                                       pg_catalog.repeat('ab', 32)));
SELECT label, audit_error_of(pg_catalog.format('SELECT * FROM hipaa_guard.verify_audit_chain(%L)', digest)) AS result
  FROM (VALUES ('no prefix', '1:5:' || pg_catalog.repeat('ab', 32)),
               ('short hash', 'hg1:1:5:abcd'),
               ('upper case', 'hg1:1:5:' || pg_catalog.repeat('AB', 32)),
               ('leading zero', 'hg1:01:5:' || pg_catalog.repeat('ab', 32)),
               ('block 0', 'hg1:0:5:' || pg_catalog.repeat('ab', 32)),
               ('trailing text', :'good_digest' || ' ')) AS t(label, digest);

-- The guard refuses changes to the trail (42501), to superusers too, while
-- its triggers are on.
SELECT label, audit_error_of(query) AS result
  FROM (VALUES
    ('update log', 'UPDATE hipaa_guard.audit_log SET records = ''\x'' WHERE last_seq > ' || :start_seq),
    ('delete log', 'DELETE FROM hipaa_guard.audit_log WHERE last_seq > ' || :start_seq),
    ('truncate log', 'TRUNCATE hipaa_guard.audit_log'),
    ('update block', 'UPDATE hipaa_guard.audit_block SET sealed_at = now() WHERE block = ' || :last_block),
    ('delete block', 'DELETE FROM hipaa_guard.audit_block WHERE block = ' || :last_block),
    ('truncate block', 'TRUNCATE hipaa_guard.audit_block'),
    ('truncate queue', 'TRUNCATE hipaa_guard.audit_queue')) AS t(label, query);
-- A queued row cannot be removed before the sealer takes it.
BEGIN;
INSERT INTO hipaa_guard.audit_queue (logged_at, kind, detail) VALUES (now(), 'admin', 'pending');
SELECT audit_error_of('DELETE FROM hipaa_guard.audit_queue') AS delete_queue;
SELECT audit_error_of('UPDATE hipaa_guard.audit_queue SET detail = ''changed''') AS update_queue;
ROLLBACK;

-- regress_audit_writer has every privilege on the trail's tables and is
-- refused all the same (42501).
CREATE ROLE regress_audit_writer;
GRANT ALL ON hipaa_guard.audit_log, hipaa_guard.audit_block, hipaa_guard.audit_queue
    TO regress_audit_writer;
SET ROLE regress_audit_writer;
SELECT label, audit_error_of(query) AS result
  FROM (VALUES
    ('update log', 'UPDATE hipaa_guard.audit_log SET records = ''\x'''),
    ('delete log', 'DELETE FROM hipaa_guard.audit_log'),
    ('truncate log', 'TRUNCATE hipaa_guard.audit_log'),
    ('delete block', 'DELETE FROM hipaa_guard.audit_block')) AS t(label, query);
BEGIN;
INSERT INTO hipaa_guard.audit_queue (logged_at, kind, detail) VALUES (now(), 'admin', 'pending');
SELECT audit_error_of('DELETE FROM hipaa_guard.audit_queue') AS delete_queue;
ROLLBACK;
RESET ROLE;

-- regress_audit_auditor, a member of hipaa_auditor, reads and verifies the
-- trail, and may not queue records or write notes.
CREATE ROLE regress_audit_auditor IN ROLE hipaa_auditor;
SET ROLE regress_audit_auditor;
SELECT ok FROM hipaa_guard.verify_audit_chain();
SELECT count(*) > 0 AS reads_log FROM hipaa_guard.audit_log;
SELECT count(*) > 0 AS reads_trail FROM hipaa_guard.audit_trail;
SELECT count(*) > 0 AS reads_export FROM hipaa_guard.audit_export;
SELECT audit_error_of('INSERT INTO hipaa_guard.audit_queue (logged_at, kind) VALUES (now(), ''read'')') AS insert_queue;
SELECT audit_error_of('SELECT hipaa_guard.audit_note(''hello'')') AS note;
RESET ROLE;

-- The tampering below rewrites the packed bytes as an attacker would, with
-- the helpers of test/lib/audit_tamper.sql, which turn the guard trigger off
-- around each change.  The rows are put back after each case.
\set ECHO none
\i test/lib/audit_tamper.sql
\set ECHO all
SELECT pg_temp.tamper_save(:start_seq + 1, :start_seq + 5);

-- Tampering 1: a superuser edits a sealed record.  The block's hash no
-- longer matches.
SELECT pg_temp.tamper_edit(:start_seq + 3, 22, 'edited');
SELECT detail FROM hipaa_guard.audit_trail WHERE seq = :start_seq + 3;
SELECT ok, failed_block - :start_block AS failed_block, failed_seq, reason FROM audit_verdict();
SELECT pg_temp.tamper_restore();
SELECT * FROM audit_verdict();

-- Tampering 2: a superuser deletes a sealed record and shortens its row's
-- range to match.
SELECT pg_temp.tamper_delete(:start_seq + 2);
SELECT count(*) AS records_left FROM hipaa_guard.audit_trail
 WHERE seq > :start_seq AND seq <= :start_seq + 5;
SELECT ok, failed_block - :start_block AS failed_block, failed_seq - :start_seq AS failed_seq, reason
  FROM audit_verdict();
SELECT pg_temp.tamper_restore();
SELECT * FROM audit_verdict();

-- Tampering 3: a superuser inserts a forged record after the last sealed
-- one.  Inserting needs no trigger change; the record lies outside every
-- block.  Removed afterwards.  The refusals and the DDL above were recorded
-- themselves, so the end of the chain is read again once they are sealed.
SELECT audit_wait_sealed(0) AS sealed;
SELECT block AS last_block, last_seq AS last_seq FROM hipaa_guard.audit_digest() \gset
INSERT INTO hipaa_guard.audit_log (first_seq, last_seq, block, logged_from, logged_to, records)
VALUES (:last_seq + 1, :last_seq + 1, :last_block, now(), now(),
        pg_temp.tamper_record(:last_seq + 1, 'read', 'forged'));
SELECT kind, detail FROM hipaa_guard.audit_trail WHERE seq = :last_seq + 1;
SELECT ok, failed_block, failed_seq - :last_seq AS failed_seq, reason FROM audit_verdict();
SELECT pg_temp.tamper_unguarded(format('DELETE FROM hipaa_guard.audit_log WHERE first_seq = %s',
                                       :last_seq + 1));
SELECT * FROM audit_verdict();
-- The same record slipped into a sealed row, whose range is left alone.
SELECT pg_temp.tamper_unguarded(format(
    'UPDATE hipaa_guard.audit_log SET records = records || %L WHERE first_seq = %s',
    pg_temp.tamper_record(:start_seq + 6, 'read', 'forged'), :start_seq + 1));
SELECT ok, failed_block - :start_block AS failed_block, reason FROM audit_verdict();
SELECT pg_temp.tamper_restore();
SELECT * FROM audit_verdict();

-- Tampering 4: a superuser swaps the places of two records, which
-- reorders them.
SELECT pg_temp.tamper_swap(:start_seq + 4, :start_seq + 5);
SELECT ok, failed_block - :start_block AS failed_block, failed_seq - :start_seq AS failed_seq, reason
  FROM audit_verdict();
SELECT pg_temp.tamper_restore();
SELECT * FROM audit_verdict();

-- The unhashed columns that the indexes use are checked too: a row whose
-- time range or patients were changed would hide its records from the
-- auditors' functions.
SELECT pg_temp.tamper_unguarded(format(
    'UPDATE hipaa_guard.audit_log SET logged_to = logged_to - interval ''1 day'' WHERE first_seq = %s',
    :start_seq + 1));
SELECT ok, failed_block - :start_block AS failed_block, failed_seq - :start_seq AS failed_seq, reason
  FROM audit_verdict();
SELECT pg_temp.tamper_restore();
SELECT * FROM audit_verdict();
-- A row moved to another block, or stretched past its block's end.
SELECT pg_temp.tamper_unguarded(format(
    'UPDATE hipaa_guard.audit_log SET block = block + 1 WHERE first_seq = %s', :start_seq + 1));
SELECT ok, failed_block - :start_block AS failed_block, failed_seq - :start_seq AS failed_seq, reason
  FROM audit_verdict();
SELECT pg_temp.tamper_restore();
SELECT pg_temp.tamper_unguarded(format(
    'UPDATE hipaa_guard.audit_log SET last_seq = last_seq + 1 WHERE first_seq = %s', :start_seq + 1));
SELECT ok, failed_block - :start_block AS failed_block, failed_seq - :start_seq AS failed_seq, reason
  FROM audit_verdict();
SELECT pg_temp.tamper_restore();
-- A row whose first record is cut short cannot be read at all.
SELECT pg_temp.tamper_unguarded(format(
    'UPDATE hipaa_guard.audit_log SET records = substring(records FROM 1 FOR 10) WHERE first_seq = %s',
    :start_seq + 1));
SELECT ok, failed_block - :start_block AS failed_block, failed_seq - :start_seq AS failed_seq, reason
  FROM audit_verdict();
SELECT audit_error_of('SELECT count(*) FROM hipaa_guard.audit_trail') AS read_malformed;
SELECT pg_temp.tamper_restore();
SELECT * FROM audit_verdict();
-- A record whose bytes end early is malformed; the views refuse to show it.
SELECT pg_temp.tamper_unguarded(format(
    'UPDATE hipaa_guard.audit_log SET records = substring(records FROM 1 FOR length(records) - 3) WHERE first_seq = %s',
    :start_seq + 1));
SELECT ok, failed_block - :start_block AS failed_block, failed_seq - :start_seq AS failed_seq, reason
  FROM audit_verdict();
SELECT pg_catalog.regexp_replace(audit_error_of('SELECT count(*) FROM hipaa_guard.audit_trail'),
                                  '[0-9]+ is', 'N is') AS read_malformed;
SELECT pg_temp.tamper_restore();
SELECT * FROM audit_verdict();

-- A block row edited to match a forged range breaks the hash too.
BEGIN;
ALTER TABLE hipaa_guard.audit_block DISABLE TRIGGER audit_block_guard;
UPDATE hipaa_guard.audit_block SET sealed_at = sealed_at + interval '1 second' WHERE block = :last_block;
ALTER TABLE hipaa_guard.audit_block ENABLE ALWAYS TRIGGER audit_block_guard;
COMMIT;
SELECT ok, failed_block = :last_block AS at_last_block, reason FROM audit_verdict();
BEGIN;
ALTER TABLE hipaa_guard.audit_block DISABLE TRIGGER audit_block_guard;
UPDATE hipaa_guard.audit_block SET sealed_at = sealed_at - interval '1 second' WHERE block = :last_block;
ALTER TABLE hipaa_guard.audit_block ENABLE ALWAYS TRIGGER audit_block_guard;
COMMIT;
SELECT * FROM audit_verdict(:'good_digest');

DROP ROLE regress_audit_auditor;
REVOKE ALL ON hipaa_guard.audit_log, hipaa_guard.audit_block, hipaa_guard.audit_queue
    FROM regress_audit_writer;
DROP ROLE regress_audit_writer;
DROP FUNCTION audit_error_of(text), audit_wait_sealed(bigint), audit_verdict(text);
