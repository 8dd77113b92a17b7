--
-- Access: protected tables, care assignments, break-glass access, and the
-- ways a clinician could try to learn about other patients' rows.
-- SET SESSION AUTHORIZATION changes the login, which is the actor of a
-- direct login.
--
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_dr_a, regress_dr_b, regress_acc_admin, regress_acc_auditor;
CREATE ROLE regress_dr_a IN ROLE hipaa_clinician;
CREATE ROLE regress_dr_b IN ROLE hipaa_clinician;
CREATE ROLE regress_acc_admin IN ROLE hipaa_admin;
CREATE ROLE regress_acc_auditor IN ROLE hipaa_auditor;
RESET client_min_messages;

-- 20,000 encounters of 2,000 patients.
CREATE TABLE acc_patients (patient text PRIMARY KEY, name text);
INSERT INTO acc_patients SELECT 'pat-' || g, 'Name ' || g FROM generate_series(0, 1999) AS g;
CREATE TABLE acc_encounters (
    id int PRIMARY KEY,
    patient text NOT NULL REFERENCES acc_patients,
    seen date NOT NULL,
    note text);
INSERT INTO acc_encounters
SELECT g, 'pat-' || (g % 2000), date '2026-01-01' + (g % 300), 'note ' || g FROM generate_series(1, 20000) AS g;

-- Protecting and assigning care is hipaa_admin's.
SET SESSION AUTHORIZATION regress_acc_admin;
SELECT hipaa_guard.protect_table('acc_encounters', 'patient');
SELECT hipaa_guard.protect_table('acc_patients', 'patient');
SELECT hipaa_guard.assign_care('regress_dr_a', 'pat-1', 'attending', now() + interval '1 day') > 0 AS assigned;
SELECT hipaa_guard.assign_care('regress_dr_a', 'pat-2', 'consulting', now() + interval '1 day') > 0 AS assigned;
SELECT hipaa_guard.assign_care('regress_dr_b', 'pat-3', 'attending', now() + interval '1 day') > 0 AS assigned;
SELECT table_name, patient_column, row_security, forced FROM hipaa_guard.protected_tables ORDER BY 1;
-- hipaa_admin reads no protected rows and decrypts nothing.
\set VERBOSITY sqlstate
SELECT count(*) FROM acc_encounters;
\set VERBOSITY default
SELECT has_function_privilege('hipaa_guard.decrypt(hipaa_guard.encrypted_text)', 'EXECUTE') AS can_decrypt;
RESET SESSION AUTHORIZATION;
ANALYZE acc_patients, acc_encounters;
SELECT polname, polroles::regrole[], polcmd FROM pg_policy
 WHERE polrelid = 'acc_encounters'::regclass ORDER BY 1;
SELECT indexdef FROM pg_indexes WHERE tablename = 'acc_encounters' ORDER BY 1;

-- A clinician sees the rows of the patients in their care, and no others.
SET SESSION AUTHORIZATION regress_dr_a;
SELECT hipaa_guard.actor();
SELECT patient, count(*) FROM acc_encounters GROUP BY 1 ORDER BY 1;
SELECT count(*) FROM acc_encounters;
SELECT count(*) FROM acc_encounters WHERE patient = 'pat-3';
SELECT * FROM acc_patients ORDER BY 1;
-- cares_for(patient) is the policy's test: whether the actor may see the
-- patient now.
SELECT hipaa_guard.cares_for('pat-1') AS pat_1, hipaa_guard.cares_for('pat-3') AS pat_3,
       hipaa_guard.cares_for(NULL) AS no_patient;
-- Each execution remembers the last patient it found, for the next rows of
-- the same patient.  A patient out of care right after one in care still
-- gets false from both forms.
SELECT v.n, v.patient, hipaa_guard.cares_for(v.patient) AS actor_set,
       hipaa_guard.cares_for(v.patient, ARRAY['pat-1', 'pat-3']) AS given_list
  FROM (VALUES (1, 'pat-1'), (2, 'pat-1'), (3, 'pat-2'), (4, 'pat-1'), (5, 'pat-3'),
               (6, 'pat-3'), (7, 'pat-0'), (8, 'pat-3')) AS v(n, patient)
 ORDER BY v.n;
-- One patient's lookup uses the patient index, and cares_for() checks each
-- of its rows against the actor's patients, looked up once per statement.
-- A query for all of them scans the index for the list, which
-- my_patients() returns once per scan.
EXPLAIN (COSTS OFF) SELECT * FROM acc_encounters WHERE patient = 'pat-1';
EXPLAIN (COSTS OFF) SELECT * FROM acc_encounters;
-- All of the actor's patients are read with a plain index scan of the list,
-- because it is faster than a bitmap heap scan on rows in memory.
-- hipaa_guard.enable_care_bitmapscan leaves that choice to the cost model.
-- Either way the rows are the same.
EXPLAIN (COSTS OFF) SELECT count(*) FROM acc_encounters;
SELECT count(*) FROM acc_encounters;
SET hipaa_guard.enable_care_bitmapscan = on;
EXPLAIN (COSTS OFF) SELECT count(*) FROM acc_encounters;
SELECT count(*) FROM acc_encounters;
RESET hipaa_guard.enable_care_bitmapscan;
-- A bitmap scan that ORs a list with another condition stays, because a
-- scan of the list alone would miss the other condition's rows (id 2 is
-- pat-2's).
EXPLAIN (COSTS OFF) SELECT patient, count(*) FROM acc_encounters
 WHERE hipaa_guard.cares_for(patient, ARRAY['pat-1', 'pat-3']) OR id < 3 GROUP BY 1 ORDER BY 1;
SELECT patient, count(*) FROM acc_encounters
 WHERE hipaa_guard.cares_for(patient, ARRAY['pat-1', 'pat-3']) OR id < 3 GROUP BY 1 ORDER BY 1;

-- Writes: only for patients in care, and never moving a row to another patient.
INSERT INTO acc_encounters VALUES (100001, 'pat-1', '2026-12-01', 'new visit');
\set VERBOSITY sqlstate
INSERT INTO acc_encounters VALUES (100002, 'pat-3', '2026-12-01', 'not in my care');
UPDATE acc_encounters SET patient = 'pat-3' WHERE id = 100001;
\set VERBOSITY default
UPDATE acc_encounters SET note = 'changed' WHERE patient = 'pat-3';
DELETE FROM acc_encounters WHERE patient = 'pat-3';

-- No leaks: a leaky function in WHERE sees only visible rows ...
CREATE TEMP TABLE seen_by_leak (patient text);
CREATE FUNCTION pg_temp.leak(p text) RETURNS boolean LANGUAGE plpgsql COST 0.0000001 AS $$
BEGIN
    INSERT INTO seen_by_leak VALUES (p);
    RETURN true;
END
$$;
SELECT count(*) FROM acc_encounters WHERE pg_temp.leak(patient);
SELECT DISTINCT patient FROM seen_by_leak ORDER BY 1;
-- ... and so does a view without security_barrier.
CREATE TEMP VIEW acc_plain_view AS SELECT * FROM acc_encounters;
TRUNCATE seen_by_leak;
SELECT count(*) FROM acc_plain_view WHERE pg_temp.leak(patient);
SELECT DISTINCT patient FROM seen_by_leak ORDER BY 1;
-- An expression that fails only on another patient's row does not fail.
SELECT count(*) FROM acc_encounters WHERE 1 / (CASE WHEN patient = 'pat-3' THEN 0 ELSE 1 END) = 1;
-- EXPLAIN ANALYZE would count the rows the policy removes, so it is
-- refused, also through a view and for a prepared statement.  Plain EXPLAIN
-- is allowed.
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT * FROM acc_encounters WHERE patient = 'pat-3';
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT count(*) FROM acc_plain_view;
PREPARE acc_count AS SELECT count(*) FROM acc_encounters WHERE note LIKE 'note 1%';
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE acc_count;
EXPLAIN (ANALYZE false, COSTS OFF) EXECUTE acc_count;
DEALLOCATE acc_count;
RESET SESSION AUTHORIZATION;
-- A superuser, whom row level security does not apply to, may.
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT count(*) FROM acc_encounters WHERE id = 1;
-- Plain EXPLAIN shows estimates, which PostgreSQL computes from the patient
-- column's statistics even under row level security, and from those of an
-- index expression over it and of each partition.  Here pat-3 has 500 rows
-- and pat-1 has 3.  A clinician gets the same estimates for both, and for a
-- patient with no rows, and a superuser gets the true ones.
CREATE TABLE acc_skewed (id int PRIMARY KEY, patient text NOT NULL);
CREATE TABLE acc_skewed_parts (id int NOT NULL, patient text NOT NULL) PARTITION BY RANGE (id);
CREATE TABLE acc_skewed_low PARTITION OF acc_skewed_parts FOR VALUES FROM (1) TO (300);
CREATE TABLE acc_skewed_high PARTITION OF acc_skewed_parts FOR VALUES FROM (300) TO (10000);
INSERT INTO acc_skewed
SELECT g, CASE WHEN g <= 500 THEN 'pat-3' WHEN g <= 503 THEN 'pat-1' ELSE 'pat-' || (10 + g % 900) END
  FROM generate_series(1, 3000) AS g;
INSERT INTO acc_skewed_parts SELECT * FROM acc_skewed;
CREATE INDEX acc_skewed_lower_idx ON acc_skewed (lower(patient));
SET SESSION AUTHORIZATION regress_acc_admin;
SELECT hipaa_guard.protect_table('acc_skewed', 'patient');
SELECT hipaa_guard.protect_table('acc_skewed_parts', 'patient');
RESET SESSION AUTHORIZATION;
ANALYZE acc_skewed, acc_skewed_parts, acc_skewed_low, acc_skewed_high;
SET SESSION AUTHORIZATION regress_dr_a;
CREATE FUNCTION pg_temp.estimates(p text, column_expression text DEFAULT 'patient',
                                  tbl text DEFAULT 'acc_skewed') RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    line text;
    result text := '';
BEGIN
    FOR line IN EXECUTE format('EXPLAIN SELECT * FROM %I WHERE %s = %L', tbl, column_expression, p) LOOP
        result := result || coalesce(substring(line FROM 'rows=[0-9]+'), '') || ' ';
    END LOOP;
    RETURN result;
END
$$;
SELECT pg_temp.estimates('pat-3') = pg_temp.estimates('pat-1') AS same_for_pat_3_and_pat_1,
       pg_temp.estimates('pat-1') = pg_temp.estimates('pat-none') AS same_for_a_patient_without_rows,
       pg_temp.estimates('pat-3', 'lower(patient)') = pg_temp.estimates('pat-1', 'lower(patient)')
           AS same_through_index_expression,
       pg_temp.estimates('pat-3', 'patient', 'acc_skewed_parts') =
           pg_temp.estimates('pat-1', 'patient', 'acc_skewed_parts') AS same_for_partitions;
RESET SESSION AUTHORIZATION;
SELECT pg_temp.estimates('pat-3') = pg_temp.estimates('pat-1') AS same_for_superuser,
       pg_temp.estimates('pat-3') LIKE '%rows=500 %' AS superuser_sees_500,
       pg_temp.estimates('pat-3', 'lower(patient)') LIKE '%rows=500 %' AS superuser_sees_500_through_index,
       pg_temp.estimates('pat-3', 'patient', 'acc_skewed_parts') <>
           pg_temp.estimates('pat-1', 'patient', 'acc_skewed_parts') AS superuser_partitions_differ;
DROP TABLE acc_skewed, acc_skewed_parts;
SET SESSION AUTHORIZATION regress_dr_a;
-- A unique violation on another patient's row names no key and no column.
INSERT INTO acc_encounters VALUES (3, 'pat-1', '2026-12-01', 'id of a hidden row');
-- A foreign key violation names no key either.
RESET SESSION AUTHORIZATION;
SELECT hipaa_guard.assign_care('regress_dr_a', 'pat-new', 'attending', now() + interval '1 day') > 0 AS assigned;
SET SESSION AUTHORIZATION regress_dr_a;
INSERT INTO acc_encounters VALUES (100003, 'pat-new', '2026-12-01', 'patient not registered');
RESET SESSION AUTHORIZATION;

-- Another clinician sees only their own patient.
SET SESSION AUTHORIZATION regress_dr_b;
SELECT patient, count(*) FROM acc_encounters GROUP BY 1 ORDER BY 1;
RESET SESSION AUTHORIZATION;

-- Care ends: explicitly, or when valid_until passes.
SELECT hipaa_guard.end_care('regress_dr_a', 'pat-2');
SET SESSION AUTHORIZATION regress_dr_a;
SELECT patient, count(*) FROM acc_encounters GROUP BY 1 ORDER BY 1;
RESET SESSION AUTHORIZATION;
SELECT hipaa_guard.assign_care('regress_dr_b', 'pat-4', 'nurse', clock_timestamp() + interval '1 second') > 0 AS assigned;
SELECT pg_sleep(1.2);
SET SESSION AUTHORIZATION regress_dr_b;
SELECT patient, count(*) FROM acc_encounters GROUP BY 1 ORDER BY 1;
RESET SESSION AUTHORIZATION;

-- Refusals of the care functions.
\set VERBOSITY sqlstate
SELECT hipaa_guard.assign_care('regress_dr_a', 'pat-5', 'attending', now() - interval '1 day');
SELECT hipaa_guard.assign_care('regress_dr_a', 'pat-5', 'attending', NULL);
-- Leaving out the end gives the same error, not an unknown function.
SELECT hipaa_guard.assign_care('regress_dr_a', 'pat-5', 'attending');
SELECT hipaa_guard.assign_care('', 'pat-5', 'attending', now() + interval '1 day');
SELECT hipaa_guard.assign_care('regress_dr_a', 'pat-5', ' ', now() + interval '1 day');
SELECT hipaa_guard.end_care('regress_dr_a', 'pat-5');
SET SESSION AUTHORIZATION regress_dr_a;
SELECT hipaa_guard.assign_care('regress_dr_a', 'pat-5', 'attending', now() + interval '1 day');
SELECT hipaa_guard.end_care('regress_dr_a', 'pat-1');
SELECT hipaa_guard.protect_table('acc_encounters', 'patient');
SELECT * FROM hipaa_guard.care_assignments;
RESET SESSION AUTHORIZATION;
SELECT hipaa_guard.protect_table('acc_encounters', 'nosuch');
CREATE VIEW acc_view AS SELECT * FROM acc_encounters;
SELECT hipaa_guard.protect_table('acc_view', 'patient');
SELECT hipaa_guard.protect_table('pg_catalog.pg_class', 'relname');
SELECT hipaa_guard.unprotect_table('acc_view');
\set VERBOSITY default

-- Break-glass: a substantive reason, a bounded duration, access that ends
-- by itself, and a review.
SET SESSION AUTHORIZATION regress_dr_a;
\set VERBOSITY sqlstate
SELECT hipaa_guard.break_glass('pat-3', 'emergency');
SELECT hipaa_guard.break_glass('pat-3', 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx');
SELECT hipaa_guard.break_glass('pat-3', 'Unconscious patient in the ED, allergy history needed', interval '10 days');
SELECT hipaa_guard.break_glass('pat-3', 'Unconscious patient in the ED, allergy history needed', interval '-1 minute');
SELECT hipaa_guard.break_glass('', 'Unconscious patient in the ED, allergy history needed');
\set VERBOSITY terse
SELECT hipaa_guard.break_glass('pat-3', 'Unconscious patient in the ED, allergy history needed') AS glass_1 \gset
\set VERBOSITY default
SELECT patient, count(*) FROM acc_encounters GROUP BY 1 ORDER BY 1;
\set VERBOSITY terse
SELECT hipaa_guard.break_glass('pat-6', 'Cardiac arrest on ward 4, medication list needed',
                               interval '1 second') AS glass_2 \gset
\set VERBOSITY default
SELECT pg_sleep(1.2);
SELECT count(*) AS pat_6_rows FROM acc_encounters WHERE patient = 'pat-6';
RESET SESSION AUTHORIZATION;
SET hipaa_guard.break_glass_max_duration = '15min';
SET SESSION AUTHORIZATION regress_dr_a;
\set VERBOSITY sqlstate
SET hipaa_guard.break_glass_max_duration = '1d';
SELECT hipaa_guard.break_glass('pat-7', 'Unconscious patient in the ED, allergy history needed', interval '20 minutes');
\set VERBOSITY default
RESET SESSION AUTHORIZATION;
RESET hipaa_guard.break_glass_max_duration;

-- Each use is an access record in the audit trail with its patient, also
-- when its transaction rolls back.  The reason stays out of the trail.
SET SESSION AUTHORIZATION regress_dr_a;
BEGIN;
\set VERBOSITY terse
SELECT hipaa_guard.break_glass('pat-8', 'Unconscious patient in the ED, allergy history needed') > 0 AS opened;
\set VERBOSITY default
ROLLBACK;
RESET SESSION AUTHORIZATION;
DO $$
BEGIN
    FOR i IN 1 .. 100 LOOP
        EXIT WHEN (SELECT queued_in_memory + queued_in_table = 0 FROM hipaa_guard.audit_status());
        PERFORM pg_sleep(0.1);
    END LOOP;
END
$$;
SELECT kind, actor, patients, status,
       regexp_replace(detail, '[0-9]+', 'N', 'g') AS detail,
       detail LIKE '%ED%' AS reason_in_trail
  FROM hipaa_guard.audit_trail WHERE command = 'BREAK GLASS' ORDER BY seq;

SET SESSION AUTHORIZATION regress_acc_auditor;
SELECT event_id = :glass_1 AS first, severity, actor, login, patient, reason, access, acknowledged
  FROM hipaa_guard.break_glass_review ORDER BY event_id;
\set VERBOSITY sqlstate
SELECT hipaa_guard.acknowledge_break_glass(:glass_1, 'Looks fine');
SELECT hipaa_guard.break_glass('pat-3', 'Auditor curious about this patient record');
SELECT count(*) FROM acc_encounters;
\set VERBOSITY default
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION regress_acc_admin;
SELECT hipaa_guard.acknowledge_break_glass(:glass_1, 'Reviewed with the ED lead: justified');
\set VERBOSITY sqlstate
SELECT hipaa_guard.acknowledge_break_glass(:glass_1, 'Again');
SELECT hipaa_guard.acknowledge_break_glass(:glass_2, '');
SELECT hipaa_guard.acknowledge_break_glass(999999, 'No such event');
\set VERBOSITY default
SELECT event_id = :glass_1 AS first, acknowledged, acknowledged_by, review_note
  FROM hipaa_guard.break_glass_review ORDER BY event_id;

-- The application's pooled login sees the rows of the actor it sets with a
-- signed token, only until the transaction ends, and nothing without one.
RESET SESSION AUTHORIZATION;
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgcrypto;
RESET client_min_messages;
SELECT hipaa_guard.create_signing_key('acc_app') > 0 AS created;
SET hipaa_guard.token_issuer = 'https://issuer.example';
SET hipaa_guard.token_audience = 'access-test';
CREATE FUNCTION pg_temp.b64url(data bytea) RETURNS text LANGUAGE sql IMMUTABLE
    RETURN rtrim(translate(encode(data, 'base64'), E'+/\n', '-_'), '=');
CREATE FUNCTION pg_temp.acc_token(sub text, amr text[]) RETURNS text LANGUAGE sql STABLE
    RETURN (SELECT body || '.' || pg_temp.b64url(hmac(convert_to(body, 'UTF8'), secret, 'sha256'))
              FROM (SELECT pg_temp.b64url(convert_to('{"alg":"HS256","kid":"acc_app"}', 'UTF8')) || '.' ||
                           pg_temp.b64url(convert_to(jsonb_build_object(
                               'sub', sub, 'iss', 'https://issuer.example', 'aud', 'access-test',
                               'exp', extract(epoch FROM now())::bigint + 300, 'amr', amr)::text, 'UTF8')) AS body,
                           decode(translate(hipaa_guard.signing_secret('acc_app'), '-_', '+/') || '=', 'base64') AS secret) AS t);
SELECT pg_temp.acc_token('regress_dr_a', '{pwd}') AS token_pwd,
       pg_temp.acc_token('regress_dr_a', '{pwd,otp}') AS token_mfa \gset
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_acc_app;
CREATE ROLE regress_acc_app IN ROLE hipaa_app;
RESET client_min_messages;
SET SESSION AUTHORIZATION regress_acc_app;
SELECT hipaa_guard.actor() AS actor, (SELECT count(*) FROM acc_encounters) AS visible_rows;
BEGIN;
SELECT hipaa_guard.set_actor(:'token_pwd');
SELECT patient, count(*) FROM acc_encounters GROUP BY 1 ORDER BY 1;
COMMIT;
SELECT hipaa_guard.actor() AS actor, (SELECT count(*) FROM acc_encounters) AS visible_rows;
RESET SESSION AUTHORIZATION;
-- A generic plan, which the pooled login reuses for every actor it sets,
-- reads the list of the actor of each execution.
SELECT pg_temp.acc_token('regress_dr_b', '{pwd}') AS token_dr_b \gset
SET SESSION AUTHORIZATION regress_acc_app;
SET plan_cache_mode = force_generic_plan;
PREPARE acc_since(date) AS
    SELECT patient, count(*) FROM acc_encounters WHERE seen >= $1 GROUP BY 1 ORDER BY 1;
EXPLAIN (COSTS OFF) EXECUTE acc_since('2026-01-01');
BEGIN;
SELECT hipaa_guard.set_actor(:'token_pwd');
EXECUTE acc_since('2026-01-01');
COMMIT;
BEGIN;
SELECT hipaa_guard.set_actor(:'token_dr_b');
EXECUTE acc_since('2026-01-01');
COMMIT;
SELECT hipaa_guard.actor() AS actor;
EXECUTE acc_since('2026-01-01');
DEALLOCATE acc_since;
RESET plan_cache_mode;
RESET SESSION AUTHORIZATION;
-- Under require_mfa, only an actor with a second factor sees rows; a direct
-- login without a client certificate has one factor.
SET hipaa_guard.require_mfa = on;
SET SESSION AUTHORIZATION regress_acc_app;
BEGIN;
SELECT hipaa_guard.set_actor(:'token_pwd');
SELECT count(*) AS rows_single_factor FROM acc_encounters;
ROLLBACK;
BEGIN;
SELECT hipaa_guard.set_actor(:'token_mfa');
SELECT count(*) AS rows_second_factor FROM acc_encounters;
ROLLBACK;
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION regress_dr_a;
SELECT count(*) AS rows_direct_login FROM acc_encounters;
RESET SESSION AUTHORIZATION;
RESET hipaa_guard.require_mfa;

-- Unprotecting keeps row level security on: the table closes, it does not open.
SET SESSION AUTHORIZATION regress_acc_admin;
SELECT hipaa_guard.unprotect_table('acc_encounters');
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION regress_dr_a;
SELECT count(*) FROM acc_encounters;
RESET SESSION AUTHORIZATION;

-- Partitions read directly are protected too.
CREATE TABLE acc_parts (id int, patient text, seen date) PARTITION BY RANGE (seen);
CREATE TABLE acc_parts_2025 PARTITION OF acc_parts FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE acc_parts_2026 PARTITION OF acc_parts FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
INSERT INTO acc_parts SELECT g, 'pat-' || (g % 10), date '2025-06-01' + g FROM generate_series(1, 400) AS g;
SELECT hipaa_guard.protect_table('acc_parts', 'patient');
SET SESSION AUTHORIZATION regress_dr_a;
SELECT tableoid::regclass, patient, count(*) FROM acc_parts GROUP BY 1, 2 ORDER BY 1, 2;
SELECT patient, count(*) FROM acc_parts_2026 GROUP BY 1 ORDER BY 1;
RESET SESSION AUTHORIZATION;

-- Every change is in the log.
SELECT change, detail - 'valid_until' - 'assignment_id' - 'assignment_ids' - 'event_id' AS detail
  FROM hipaa_guard.access_log ORDER BY change_id;

DISCARD TEMP;
DROP TABLE acc_encounters, acc_patients, acc_parts CASCADE;
DROP ROLE regress_dr_a, regress_dr_b, regress_acc_admin, regress_acc_auditor, regress_acc_app;
