--
-- Retention: policies, legal holds, purges with receipts, and who may do what.
-- Ages are relative to now(), so that the counts below do not depend on the
-- day the test runs.
--
SET TimeZone = 'UTC';
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_ret_admin, regress_ret_clinician, regress_ret_auditor;
CREATE ROLE regress_ret_admin IN ROLE hipaa_admin;
CREATE ROLE regress_ret_clinician IN ROLE hipaa_clinician;
CREATE ROLE regress_ret_auditor IN ROLE hipaa_auditor;
RESET client_min_messages;

-- 400 encounters of 10 patients, one a day going back from today.
CREATE TABLE ret_visits (id int PRIMARY KEY, patient text, seen timestamptz, note text);
INSERT INTO ret_visits
SELECT g, 'patient-' || (g % 10), now() - make_interval(days => g) + interval '1 hour', 'visit ' || g
  FROM generate_series(1, 400) AS g;

-- Configuration is hipaa_admin's, through the functions only.
SET ROLE regress_ret_admin;
SELECT hipaa_guard.set_retention('ret_visits', 'seen', interval '300 days');
SELECT table_name, age_column, keep, action, patient_column, table_on_hold, patient_holds
  FROM hipaa_guard.retention_policies;
INSERT INTO hipaa_guard.retention_config VALUES ('ret_visits', 'seen', '1 day', 'delete');
RESET ROLE;
SET ROLE regress_ret_clinician;
SELECT hipaa_guard.set_retention('ret_visits', 'seen', interval '1 day');
SELECT * FROM hipaa_guard.retention_policies;
CALL hipaa_guard.purge();
RESET ROLE;

-- Refusals: each with its SQLSTATE.
\set VERBOSITY sqlstate
SELECT hipaa_guard.set_retention('ret_visits', 'seen', interval '-1 day');
SELECT hipaa_guard.set_retention('ret_visits', 'seen', interval '0');
SELECT hipaa_guard.set_retention('ret_visits', 'seen', interval '1 year -400 days');
SELECT hipaa_guard.set_retention('ret_visits', 'seen', interval '1 year', 'archive');
SELECT hipaa_guard.set_retention('ret_visits', 'note', interval '1 year');
SELECT hipaa_guard.set_retention('ret_visits', 'nosuch', interval '1 year');
SELECT hipaa_guard.set_retention('ret_visits', NULL, interval '1 year');
SELECT hipaa_guard.set_retention('ret_visits', 'seen', NULL);
SELECT hipaa_guard.set_retention('hipaa_guard.retention_config', 'set_at', interval '1 year');
SELECT hipaa_guard.set_retention('pg_catalog.pg_class', 'relname', interval '1 year');
CREATE VIEW ret_visits_view AS SELECT * FROM ret_visits;
SELECT hipaa_guard.set_retention('ret_visits_view', 'seen', interval '1 year');
CREATE TABLE ret_nokey (seen date);
SELECT hipaa_guard.set_retention('ret_nokey', 'seen', interval '1 year');
SELECT hipaa_guard.set_retention('ret_visits', 'seen', interval '1 year', 'shred');
SELECT hipaa_guard.drop_retention('ret_nokey');
\set VERBOSITY default
SELECT hipaa_guard.set_retention('ret_visits', 'seen', interval '1 year', 'deidentify');

-- Legal holds: one patient, needing a patient column, a reason and a
-- future end.
\set VERBOSITY sqlstate
SELECT hipaa_guard.legal_hold('ret_visits', 'patient-3', 'Case 2026-CV-0042');
\set VERBOSITY default
SELECT hipaa_guard.legal_hold('ret_visits', 'patient-3', 'Case 2026-CV-0042');
SELECT hipaa_guard.set_patient_column('ret_visits', 'patient');
SELECT hipaa_guard.legal_hold('ret_visits', 'patient-3', 'Case 2026-CV-0042, Smith v. Clinic') AS hold_3 \gset
\set VERBOSITY sqlstate
SELECT hipaa_guard.legal_hold('ret_visits', 'patient-4', 'lawsuit');
SELECT hipaa_guard.legal_hold('ret_visits', 'patient-4', '   ');
SELECT hipaa_guard.legal_hold('ret_visits', 'patient-4', 'Case 2026-CV-0043', now() - interval '1 day');
SELECT hipaa_guard.legal_hold(NULL, 'patient-4', 'Case 2026-CV-0043');
\set VERBOSITY default
SELECT table_name, patient, reason, until, active, released_at FROM hipaa_guard.legal_holds;

-- A dry run counts and changes nothing, whatever the session's TimeZone.
SET TimeZone = 'Pacific/Kiritimati';
CALL hipaa_guard.purge(dry_run => true);
SET TimeZone = 'America/Adak';
SELECT table_name, action, rows_due, rows_held,
       cutoff = hipaa_guard.retention_cutoff(interval '300 days', now()) AS cutoff_as_policy
  FROM hipaa_guard.purge_due();
SET TimeZone = 'UTC';
SELECT count(*) AS still_all FROM ret_visits;

-- Purge inside a transaction block, a bad batch size, and a purge run in
-- batches of 25 rows.
\set VERBOSITY sqlstate
BEGIN;
CALL hipaa_guard.purge();
ROLLBACK;
CALL hipaa_guard.purge(batch_size => 0);
\set VERBOSITY default
SET hipaa_guard.purge_batch_delay = '1ms';
SET ROLE regress_ret_admin;
CALL hipaa_guard.purge(batch_size => 25);
RESET ROLE;
RESET hipaa_guard.purge_batch_delay;
SELECT count(*) AS remaining,
       count(*) FILTER (WHERE seen < now() - interval '300 days') AS expired_remaining,
       count(*) FILTER (WHERE seen < now() - interval '300 days' AND patient = 'patient-3') AS held_remaining
  FROM ret_visits;
SELECT table_name, action, rows_purged, rows_held, batches > 1 AS several_batches, status, run_by, runner, error
  FROM hipaa_guard.purge_receipts ORDER BY receipt_id;
-- Each batch's digest is SHA-256 of its keys, sorted, one per line; the
-- receipt's is SHA-256 of the batch digests in order.
SELECT sum(b.rows_purged) AS rows_in_batches,
       (SELECT keys_digest FROM hipaa_guard.purge_receipts) =
           sha256(string_agg(b.keys_digest, ''::bytea ORDER BY b.batch)) AS receipt_digest_matches
  FROM hipaa_guard.purge_receipt_batches AS b;

-- A run repeated at once finds nothing to do.
CALL hipaa_guard.purge();
SELECT rows_purged, rows_held, status FROM hipaa_guard.purge_receipts ORDER BY receipt_id DESC LIMIT 1;

-- A hold on the whole table stops everything; releasing it lets the purge go on.
INSERT INTO ret_visits VALUES (1001, 'patient-5', now() - interval '500 days', 'late entry');
SELECT hipaa_guard.legal_hold('ret_visits', NULL, 'Regulator inquiry 2026-117, all visits') AS hold_all \gset
CALL hipaa_guard.purge();
SET ROLE regress_ret_clinician;
\set VERBOSITY sqlstate
SELECT hipaa_guard.release_hold(:hold_all, 'inquiry closed');
RESET ROLE;
SELECT hipaa_guard.release_hold(:hold_all, '');
SELECT hipaa_guard.release_hold(999999, 'no such hold');
\set VERBOSITY default
SET ROLE regress_ret_admin;
SELECT hipaa_guard.release_hold(:hold_all, 'Inquiry closed on 2026-11-30');
\set VERBOSITY terse
SELECT hipaa_guard.release_hold(:hold_all, 'again');
\set VERBOSITY default
RESET ROLE;
CALL hipaa_guard.purge();
SELECT count(*) AS late_entry_left FROM ret_visits WHERE id = 1001;
SELECT hipaa_guard.release_hold(:hold_3, 'Case settled');
CALL hipaa_guard.purge();
SELECT count(*) FILTER (WHERE seen < now() - interval '300 days') AS expired_left FROM ret_visits;

-- A hold that has ended covers nothing.
SELECT table_name, patient, active, released_by IS NOT NULL AS released, release_note
  FROM hipaa_guard.legal_holds ORDER BY hold_id;

-- Every change is in the log.
SELECT change, table_name, detail - 'until' - 'hold_id' AS detail
  FROM hipaa_guard.retention_log ORDER BY change_id;

-- Auditors read the views and the log, and change nothing.
SET ROLE regress_ret_auditor;
SELECT count(*) > 0 AS sees_receipts FROM hipaa_guard.purge_receipts;
SELECT count(*) > 0 AS sees_holds FROM hipaa_guard.legal_holds;
SELECT count(*) > 0 AS sees_log FROM hipaa_guard.retention_log;
\set VERBOSITY sqlstate
SELECT hipaa_guard.drop_retention('ret_visits');
DELETE FROM hipaa_guard.purge_receipt_log;
UPDATE hipaa_guard.retention_log SET changed_by = 'someone';
SELECT count(*) FROM ret_visits;
\set VERBOSITY default
RESET ROLE;
SET ROLE regress_ret_admin;
\set VERBOSITY sqlstate
DELETE FROM hipaa_guard.purge_receipt_log;
TRUNCATE hipaa_guard.retention_log;
SELECT count(*) FROM ret_visits;
\set VERBOSITY default
RESET ROLE;

-- Date and timestamp columns are read as UTC: the day 30 days before
-- today (UTC) is due under keep 30 days, the next day is not, whatever the
-- session's TimeZone.
CREATE TABLE ret_dates (id int PRIMARY KEY, d date, ts timestamp);
INSERT INTO ret_dates
SELECT g, (now() AT TIME ZONE 'UTC')::date - 28 - g, (now() AT TIME ZONE 'UTC') - make_interval(days => 28 + g)
  FROM generate_series(0, 4) AS g;
SELECT hipaa_guard.set_retention('ret_dates', 'd', interval '30 days');
SELECT hipaa_guard.drop_retention('ret_visits');
SET TimeZone = 'Pacific/Kiritimati';
SELECT rows_due FROM hipaa_guard.purge_due();
SET TimeZone = 'America/Adak';
SELECT rows_due FROM hipaa_guard.purge_due();
SELECT hipaa_guard.set_retention('ret_dates', 'ts', interval '30 days');
SELECT rows_due FROM hipaa_guard.purge_due();
SET TimeZone = 'Pacific/Kiritimati';
SELECT rows_due FROM hipaa_guard.purge_due();
SET TimeZone = 'UTC';
SELECT hipaa_guard.drop_retention('ret_dates');

-- Partitioned tables: every partition is purged, a hold on the parent covers them all.
CREATE TABLE ret_parts (id int, patient text, seen date, PRIMARY KEY (id, seen)) PARTITION BY RANGE (seen);
CREATE TABLE ret_parts_old PARTITION OF ret_parts FOR VALUES FROM ('2000-01-01') TO ('2020-01-01');
CREATE TABLE ret_parts_new PARTITION OF ret_parts FOR VALUES FROM ('2020-01-01') TO ('2100-01-01');
INSERT INTO ret_parts SELECT g, 'patient-' || (g % 4), date '2019-12-01' + g FROM generate_series(1, 80) AS g;
SELECT hipaa_guard.set_retention('ret_parts', 'seen', (current_date - date '2020-01-15') * interval '1 day');
SELECT hipaa_guard.set_patient_column('ret_parts', 'patient');
SELECT hipaa_guard.legal_hold('ret_parts', 'patient-1', 'Case 2026-CV-0099, partitioned') AS hold_parts \gset
CALL hipaa_guard.purge(batch_size => 7);
SELECT tableoid::regclass AS part, count(*) AS left_rows, count(*) FILTER (WHERE patient = 'patient-1') AS held
  FROM ret_parts GROUP BY 1 ORDER BY 1;
SELECT hipaa_guard.release_hold(:hold_parts, 'Closed');
SELECT hipaa_guard.drop_retention('ret_parts');

-- Deidentify: labelled identifiers are removed or generalized in place,
-- and every column must be labelled first (fail closed).
CREATE TABLE ret_people (
    id int PRIMARY KEY, name text, zip text, birth date, visit timestamptz NOT NULL,
    ssn hipaa_guard.encrypted_text, diagnosis text);
SELECT hipaa_guard.create_key('ret_phi') > 0 AS created;
INSERT INTO ret_people VALUES
    (1, 'Ann Old', '03601', '1930-06-15', now() - interval '3 years', hipaa_guard.encrypt('111-22-3333', 'ret_phi'), 'flu'),
    (2, 'Bob Old', '02139-4307', '1980-02-29', now() - interval '3 years', hipaa_guard.encrypt('222-33-4444', 'ret_phi'), 'cold'),
    (3, 'Cy New', '68504', '1990-01-01', now() - interval '1 day', hipaa_guard.encrypt('333-44-5555', 'ret_phi'), 'sprain');
SELECT hipaa_guard.label_column('ret_people', c, k)
  FROM (VALUES ('id', 'not_identifying'), ('name', 'names'), ('zip', 'zip'), ('birth', 'dates'),
               ('visit', 'not_identifying'), ('ssn', 'ssn')) AS v(c, k);
SELECT hipaa_guard.set_retention('ret_people', 'visit', interval '2 years', 'deidentify');
SELECT hipaa_guard.label_column('ret_people', 'diagnosis', 'not_identifying');
SELECT hipaa_guard.label_column('ret_people', 'visit', 'dates');
SELECT hipaa_guard.set_retention('ret_people', 'visit', interval '2 years', 'deidentify');
SELECT hipaa_guard.label_column('ret_people', 'visit', 'not_identifying');
SELECT hipaa_guard.set_retention('ret_people', 'visit', interval '2 years', 'deidentify');
CALL hipaa_guard.purge(dry_run => true);
CALL hipaa_guard.purge();
SELECT id, name, zip, birth, ssn IS NULL AS ssn_removed, diagnosis FROM ret_people ORDER BY id;
CALL hipaa_guard.purge();
SELECT hipaa_guard.drop_retention('ret_people');

-- Shred: the keys of patients whose rows are all expired are destroyed;
-- a held patient's key survives, and so do the keys of recent patients.
CREATE TABLE ret_charts (patient text PRIMARY KEY, last_seen date, chart hipaa_guard.encrypted_text('ret_phi'));
SELECT hipaa_guard.bind_columns('ret_charts', 'patient', per_patient_keys => true);
INSERT INTO ret_charts VALUES
    ('shred-1', current_date - 4000, 'old chart 1'::text),
    ('shred-2', current_date - 4000, 'old chart 2'::text),
    ('shred-3', current_date - 4000, 'old chart 3, held'::text),
    ('shred-4', current_date - 10, 'recent chart'::text);
SELECT hipaa_guard.set_retention('ret_charts', 'last_seen', interval '10 years', 'shred');
SELECT hipaa_guard.legal_hold('ret_charts', 'shred-3', 'Case 2026-CV-0100, chart of shred-3') AS hold_shred \gset
CALL hipaa_guard.purge(dry_run => true);
CALL hipaa_guard.purge(batch_size => 1);
SELECT name, state FROM hipaa_guard.keys WHERE name LIKE 'patient:shred-%' ORDER BY name;
SELECT patient, hipaa_guard.decrypt(chart) FROM ret_charts WHERE patient IN ('shred-3', 'shred-4') ORDER BY 1;
\set VERBOSITY sqlstate
SELECT hipaa_guard.decrypt(chart) FROM ret_charts WHERE patient = 'shred-1';
\set VERBOSITY default
SELECT rows_purged, rows_held, batches, status FROM hipaa_guard.purge_receipts ORDER BY receipt_id DESC LIMIT 1;
CALL hipaa_guard.purge();
SELECT rows_purged, rows_held FROM hipaa_guard.purge_receipts ORDER BY receipt_id DESC LIMIT 1;
SELECT hipaa_guard.release_hold(:hold_shred, 'Closed');
SELECT hipaa_guard.drop_retention('ret_charts');

-- A policy that cannot run any more is reported and skipped; the others run.
CREATE TABLE ret_broken (id int PRIMARY KEY, seen date);
CREATE TABLE ret_fine (id int PRIMARY KEY, seen date);
INSERT INTO ret_broken VALUES (1, '2000-01-01');
INSERT INTO ret_fine VALUES (1, '2000-01-01'), (2, current_date);
SELECT hipaa_guard.set_retention('ret_broken', 'seen', interval '1 year');
SELECT hipaa_guard.set_retention('ret_fine', 'seen', interval '1 year');
ALTER TABLE ret_broken DROP COLUMN seen;
CALL hipaa_guard.purge();
SELECT table_name, rows_purged, status, error FROM hipaa_guard.purge_receipts
 WHERE table_name IN ('public.ret_broken', 'public.ret_fine') ORDER BY receipt_id;
SELECT count(*) AS fine_left FROM ret_fine;
-- The digest recomputed by hand from the one key purged (id 1).
SELECT keys_digest = sha256(sha256(convert_to(E'1\n', 'UTF8'))) AS digest_recomputed
  FROM hipaa_guard.purge_receipts WHERE table_name = 'public.ret_fine';

SELECT hipaa_guard.drop_retention('ret_broken'), hipaa_guard.drop_retention('ret_fine');

-- Purges read and change tables as hipaa_purger, not as the extension owner:
-- a trigger of the table's owner runs with that role's rights only, and a
-- table under forced row level security is still purged.
CREATE TABLE ret_trigger_log (who name, allowed boolean);
GRANT INSERT ON ret_trigger_log TO PUBLIC;
CREATE TABLE ret_guarded (id int PRIMARY KEY, seen date);
INSERT INTO ret_guarded VALUES (1, '2000-01-01'), (2, current_date);
CREATE FUNCTION ret_note_user() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ret_trigger_log VALUES (current_user, has_table_privilege('pg_authid', 'SELECT'));
    RETURN OLD;
END
$$;
CREATE TRIGGER ret_note_user BEFORE DELETE ON ret_guarded FOR EACH ROW EXECUTE FUNCTION ret_note_user();
ALTER TABLE ret_guarded ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY ret_nobody ON ret_guarded USING (false);
SELECT hipaa_guard.set_retention('ret_guarded', 'seen', interval '1 year');
SELECT polname, polroles::regrole[] FROM pg_policy WHERE polrelid = 'ret_guarded'::regclass ORDER BY 1;
CALL hipaa_guard.purge();
SELECT who, allowed FROM ret_trigger_log;
SELECT id FROM ret_guarded;
-- A trigger that needs more than the purger has makes the purge fail loudly.
CREATE OR REPLACE FUNCTION ret_note_user() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM count(*) FROM pg_authid;
    RETURN OLD;
END
$$;
INSERT INTO ret_guarded VALUES (3, '2000-01-01');
CALL hipaa_guard.purge();
SELECT id FROM ret_guarded ORDER BY id;
SELECT hipaa_guard.drop_retention('ret_guarded');
SELECT polname FROM pg_policy WHERE polrelid = 'ret_guarded'::regclass ORDER BY 1;
SELECT has_table_privilege('hipaa_purger', 'ret_guarded', 'DELETE') AS purger_can_delete;

DROP TABLE ret_visits, ret_nokey, ret_trigger_log, ret_guarded, ret_dates, ret_parts, ret_people, ret_charts, ret_broken, ret_fine CASCADE;
DROP FUNCTION ret_note_user();
DROP ROLE regress_ret_admin, regress_ret_clinician, regress_ret_auditor;
