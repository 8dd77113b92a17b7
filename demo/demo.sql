--
-- hipaa_guard demo on a Synthea CSV export (run by demo/run).
--
-- Loads patients, encounters and conditions with plain COPY into tables whose
-- identifiers are encrypted columns, then shows what each role can read, a
-- blind index lookup, a pg_dump without plaintext, a key rotation, the
-- shredding of one patient's key, a retention purge, a de-identified view,
-- and care-team access for a clinician, an admin, an auditor and an
-- application acting for a signed-in user.  psql variable: synthea_dir.
--
\set QUIET on
\pset footer off
SET client_min_messages = warning;
\set patients_csv :synthea_dir '/patients.csv'
\set encounters_csv :synthea_dir '/encounters.csv'
\set conditions_csv :synthea_dir '/conditions.csv'

\echo
\echo '== Step 1. Install hipaa_guard, create a data key, load the records with plain COPY'
\echo 'Encrypted: SSN, DRIVERS, PASSPORT, FIRST, LAST, MAIDEN, BIRTHDATE, ADDRESS, ZIP, LAT, LON of each'
\echo 'patient (under a key of their own), and the text of encounter reasons and conditions (key "phi").'
\echo 'The other columns stay in clear in this demo.'
CREATE EXTENSION hipaa_guard;
SELECT loaded, source, fingerprint AS master_key_fingerprint FROM hipaa_guard.master_key_status();
SELECT hipaa_guard.create_key('phi') AS key_id;

-- Roles: a reader with table access but no decrypt grant, a clinician, a loader.
DO $$
BEGIN
    DROP ROLE IF EXISTS demo_reader;
    DROP ROLE IF EXISTS demo_clinician;
    CREATE ROLE demo_reader;
    CREATE ROLE demo_clinician IN ROLE hipaa_clinician;
END
$$;

-- Synthea's columns, in its order; each identifier is an encrypted column
-- that declares its key, so COPY of the plaintext CSV encrypts it.
CREATE TABLE patients (
    id text PRIMARY KEY,
    birthdate hipaa_guard.encrypted_date('phi'),
    deathdate date,
    ssn hipaa_guard.encrypted_text('phi'),
    drivers hipaa_guard.encrypted_text('phi'),
    passport hipaa_guard.encrypted_text('phi'),
    prefix text,
    first hipaa_guard.encrypted_text('phi'),
    last hipaa_guard.encrypted_text('phi'),
    suffix text,
    maiden hipaa_guard.encrypted_text('phi'),
    marital text,
    race text,
    ethnicity text,
    gender text,
    birthplace text,
    address hipaa_guard.encrypted_text('phi'),
    city text,
    state text,
    county text,
    fips text,
    zip hipaa_guard.encrypted_text('phi'),
    lat hipaa_guard.encrypted_text('phi'),
    lon hipaa_guard.encrypted_text('phi'),
    healthcare_expenses numeric,
    healthcare_coverage numeric,
    income numeric,
    ssn_index bytea);
CREATE TABLE encounters (
    id text PRIMARY KEY, start timestamptz, stop timestamptz, patient text REFERENCES patients,
    organization text, provider text, payer text, encounterclass text, code text,
    description text, base_encounter_cost numeric, total_claim_cost numeric,
    payer_coverage numeric, reasoncode text,
    reasondescription hipaa_guard.encrypted_text('phi'));
CREATE TABLE conditions (
    start date, stop date, patient text REFERENCES patients, encounter text,
    code text, description hipaa_guard.encrypted_text('phi'));

-- Each patient's identifiers go under a key of their own, bound to the row.
-- Encounter and condition text is bound to the patient, and SSN gets a blind index.
DO $$
BEGIN
    PERFORM hipaa_guard.bind_columns('patients', 'id', per_patient_keys => true);
    PERFORM hipaa_guard.add_blind_index('patients', 'ssn', 'ssn_index', 'phi');
    PERFORM hipaa_guard.bind_columns('encounters', 'patient');
    PERFORM hipaa_guard.bind_columns('conditions', 'patient');
    -- Record every read, export and change of the three tables from here on.
    PERFORM hipaa_guard.set_patient_column('patients', 'id');
    PERFORM hipaa_guard.set_patient_column('encounters', 'patient');
    PERFORM hipaa_guard.set_patient_column('conditions', 'patient');
    PERFORM hipaa_guard.enable_audit('patients');
    PERFORM hipaa_guard.enable_audit('encounters');
    PERFORM hipaa_guard.enable_audit('conditions');
END
$$;
CREATE INDEX patients_ssn_index ON patients (ssn_index);

\set QUIET off
COPY patients (id, birthdate, deathdate, ssn, drivers, passport, prefix, first, last, suffix, maiden,
               marital, race, ethnicity, gender, birthplace, address, city, state, county, fips, zip,
               lat, lon, healthcare_expenses, healthcare_coverage, income)
    FROM :'patients_csv' WITH (FORMAT csv, HEADER true);
COPY encounters FROM :'encounters_csv' WITH (FORMAT csv, HEADER true);
COPY conditions FROM :'conditions_csv' WITH (FORMAT csv, HEADER true);
\set QUIET on
GRANT SELECT ON patients, encounters, conditions TO demo_reader, demo_clinician;
SELECT kind, count(*) AS keys FROM hipaa_guard.keys GROUP BY kind ORDER BY kind;

\echo
\echo '== Step 2. SELECT * as a role without the decrypt grant: ciphertext only, and decrypt is refused'
SET ROLE demo_reader;
\x on
SELECT * FROM patients ORDER BY id LIMIT 1;
\x off
\set ON_ERROR_STOP off
SELECT hipaa_guard.decrypt(ssn) FROM patients LIMIT 1;
\set ON_ERROR_STOP on
RESET ROLE;

\echo
\echo '== Step 3. A clinician decrypts, and finds a patient by SSN through the blind index'
SET ROLE demo_clinician;
SELECT substr(id, 1, 8) AS id, hipaa_guard.decrypt(first) AS first, hipaa_guard.decrypt(last) AS last,
       hipaa_guard.decrypt(ssn) AS ssn, hipaa_guard.decrypt(birthdate) AS birthdate, hipaa_guard.decrypt(zip) AS zip
  FROM patients ORDER BY id LIMIT 3;
SELECT hipaa_guard.decrypt(ssn) AS wanted_ssn FROM patients ORDER BY id OFFSET 1 LIMIT 1 \gset
SELECT substr(id, 1, 8) AS id, hipaa_guard.decrypt(first) AS first, hipaa_guard.decrypt(last) AS last
  FROM patients WHERE ssn_index = hipaa_guard.blind_index(:'wanted_ssn', 'phi');
-- A generic plan, so that the plan shows $1 rather than the SSN searched for.
PREPARE find_by_ssn(text) AS SELECT id FROM patients WHERE ssn_index = hipaa_guard.blind_index($1, 'phi');
SET enable_seqscan = off;
SET plan_cache_mode = force_generic_plan;
EXPLAIN (COSTS OFF) EXECUTE find_by_ssn(:'wanted_ssn');
RESET plan_cache_mode;
RESET enable_seqscan;
RESET ROLE;

\echo
\echo '== Step 4. A plain-format pg_dump holds none of the SSNs or last names'
\setenv HG_SYNTHEA_DIR :synthea_dir
\! bash demo/dump_check.sh

\echo
\echo '== Step 5. Rotate the key and re-encrypt: every value still decrypts'
\echo 'Key "phi" encrypts encounter reasons (only encounters that have one) and conditions;'
\echo 'the patients table is under per-patient keys, which rotate on their own.'
CREATE TEMP VIEW phi_versions AS
SELECT 'encounters' AS table_name, hipaa_guard.key_version(reasondescription) AS key_version, count(*)
  FROM encounters WHERE reasondescription IS NOT NULL GROUP BY 2
UNION ALL
SELECT 'conditions', hipaa_guard.key_version(description), count(*) FROM conditions GROUP BY 2
ORDER BY 1, 2;
\echo 'Before:'
SELECT * FROM phi_versions;
SELECT hipaa_guard.rotate_key('phi') AS new_version;
SET client_min_messages = notice;
CALL hipaa_guard.reencrypt('encounters');
CALL hipaa_guard.reencrypt('conditions');
SET client_min_messages = warning;
\echo 'After:'
SELECT * FROM phi_versions;
SELECT (SELECT count(*) FROM encounters WHERE hipaa_guard.decrypt(reasondescription) IS NOT NULL) AS encounter_reasons_decrypted,
       (SELECT count(*) FROM conditions WHERE hipaa_guard.decrypt(description) IS NOT NULL) AS conditions_decrypted,
       (SELECT count(*) FROM patients WHERE hipaa_guard.decrypt(ssn) IS NOT NULL) AS ssns_decrypted;

\echo
\echo '== Step 6. Destroy one patient''s key: that patient is unreadable, every other patient still is'
SELECT id AS shredded_id FROM patients ORDER BY id LIMIT 1 \gset
SELECT hipaa_guard.destroy_key(hipaa_guard.patient_key_name(:'shredded_id')) \gset
\echo destroyed the key of patient :shredded_id
\set ON_ERROR_STOP off
SELECT hipaa_guard.decrypt(last) FROM patients WHERE id = :'shredded_id';
\set ON_ERROR_STOP on
SELECT count(*) AS other_patients, count(hipaa_guard.decrypt(last)) AS still_readable
  FROM patients WHERE id <> :'shredded_id';
SELECT name, state, destroyed IS NOT NULL AS erased FROM hipaa_guard.keys
 WHERE name = hipaa_guard.patient_key_name(:'shredded_id');

\echo
\echo '== Step 7. Retention: encounters are kept 7 years after they end, one patient is on legal hold'
SELECT hipaa_guard.set_retention('encounters', 'stop', interval '7 years');
SELECT hipaa_guard.set_patient_column('encounters', 'patient');
SELECT table_name, age_column, keep, action, patient_column FROM hipaa_guard.retention_policies;
SELECT patient AS held_patient FROM encounters
 WHERE stop < hipaa_guard.retention_cutoff(interval '7 years', now())
 GROUP BY patient ORDER BY count(*) DESC, patient LIMIT 1 \gset
SELECT hipaa_guard.legal_hold('encounters', :'held_patient',
                              'Demo matter 2026-CV-0001: records preserved for litigation') AS hold_id \gset
SELECT hold_id, table_name, patient, reason, active FROM hipaa_guard.legal_holds;
\echo 'A dry run counts and changes nothing:'
SET client_min_messages = notice;
CALL hipaa_guard.purge(dry_run => true);
\echo 'The purge, in committed batches:'
CALL hipaa_guard.purge(batch_size => 1000);
SET client_min_messages = warning;
SELECT table_name, action, cutoff, rows_purged, rows_held, batches, status, run_by,
       encode(keys_digest, 'hex') AS keys_digest
  FROM hipaa_guard.purge_receipts ORDER BY receipt_id;
SELECT count(*) FILTER (WHERE stop < hipaa_guard.retention_cutoff(interval '7 years', now())) AS expired_left,
       count(*) FILTER (WHERE stop < hipaa_guard.retention_cutoff(interval '7 years', now())
                          AND patient = :'held_patient') AS held_left,
       count(*) AS encounters_left
  FROM encounters;
\echo 'A second purge at once finds nothing to do:'
SET client_min_messages = notice;
CALL hipaa_guard.purge();
SET client_min_messages = warning;

\echo
\echo '== Step 8. A de-identified view of the patients, built from column labels (Safe Harbor)'
SELECT count(hipaa_guard.label_column('patients', c, k)) AS labelled_columns
  FROM (VALUES ('id', 'medical_record_number'), ('birthdate', 'dates'), ('deathdate', 'dates'),
               ('ssn', 'ssn'), ('drivers', 'licence_number'), ('passport', 'other_unique_id'),
               ('prefix', 'quasi'), ('first', 'names'), ('last', 'names'), ('suffix', 'quasi'),
               ('maiden', 'names'), ('marital', 'quasi'), ('race', 'quasi'), ('ethnicity', 'quasi'),
               ('gender', 'quasi'), ('birthplace', 'geographic'), ('address', 'geographic'),
               ('city', 'geographic'), ('state', 'not_identifying'), ('county', 'geographic'),
               ('fips', 'geographic'), ('zip', 'zip'), ('lat', 'geographic'), ('lon', 'geographic'),
               ('healthcare_expenses', 'not_identifying'), ('healthcare_coverage', 'not_identifying'),
               ('income', 'quasi')) AS labels(c, k);
\echo 'ssn_index has no label, so the view leaves it out (fail closed).'
SELECT hipaa_guard.create_deidentified_view('patients', 'patients_deidentified');
GRANT SELECT ON patients_deidentified TO demo_reader;
SET ROLE demo_reader;
\echo 'As demo_reader, who cannot decrypt (the shredded patient of step 6 shows NULL ZIP and birth year):'
SELECT * FROM patients_deidentified ORDER BY zip NULLS FIRST, birthdate NULLS FIRST LIMIT 5;
SELECT count(*) AS patients, count(zip) AS with_zip3, count(*) FILTER (WHERE zip = '000') AS restricted_zip,
       count(*) FILTER (WHERE birthdate IS NULL) AS birth_year_suppressed
  FROM patients_deidentified;
RESET ROLE;


\echo
\echo '== Step 9. Care-team access: a clinician, an admin, an auditor, break-the-glass and a signed actor token'
DO $$
BEGIN
    DROP ROLE IF EXISTS demo_dr_grey;
    DROP ROLE IF EXISTS demo_admin;
    DROP ROLE IF EXISTS demo_auditor;
    DROP ROLE IF EXISTS demo_app;
    CREATE ROLE demo_dr_grey IN ROLE hipaa_clinician;
    CREATE ROLE demo_admin IN ROLE hipaa_admin;
    CREATE ROLE demo_auditor IN ROLE hipaa_auditor;
    CREATE ROLE demo_app IN ROLE hipaa_app;
END
$$;
SELECT patient AS grey_patient FROM encounters GROUP BY patient ORDER BY count(*) DESC, patient LIMIT 1 \gset
SELECT patient AS other_patient FROM encounters WHERE patient <> :'grey_patient'
 GROUP BY patient ORDER BY count(*) DESC, patient LIMIT 1 \gset
SET SESSION AUTHORIZATION demo_admin;
\echo 'The admin protects the encounters and puts one patient in the care of dr_grey for 30 days:'
SELECT hipaa_guard.protect_table('encounters', 'patient');
SELECT hipaa_guard.assign_care('demo_dr_grey', :'grey_patient', 'attending', now() + interval '30 days') AS assignment_id;
\echo 'The admin manages access but reads no protected row:'
\set ON_ERROR_STOP off
SELECT count(*) FROM encounters;
\set ON_ERROR_STOP on
RESET SESSION AUTHORIZATION;

SET SESSION AUTHORIZATION demo_dr_grey;
\echo 'dr_grey sees the encounters of the patient in their care, and decrypts their reasons:'
SELECT count(*) AS encounters_visible, count(DISTINCT patient) AS patients_visible FROM encounters;
SELECT start::date, description, hipaa_guard.decrypt(reasondescription) AS reason
  FROM encounters WHERE reasondescription IS NOT NULL ORDER BY start DESC LIMIT 3;
SELECT count(*) AS other_patient_encounters FROM encounters WHERE patient = :'other_patient';
\echo 'dr_grey starts to change an encounter''s description, then rolls back; the trail will show it as aborted:'
BEGIN;
UPDATE encounters SET description = description || ' (draft)'
 WHERE id = (SELECT id FROM encounters ORDER BY start DESC, id LIMIT 1);
ROLLBACK;
\echo 'An emergency: dr_grey breaks the glass for another patient, for 30 minutes:'
SELECT hipaa_guard.break_glass(:'other_patient', 'Patient unconscious in the ED, medication history needed',
                               interval '30 minutes') AS glass_event \gset
SELECT count(*) AS other_patient_encounters FROM encounters WHERE patient = :'other_patient';
RESET SESSION AUTHORIZATION;

SET SESSION AUTHORIZATION demo_auditor;
\echo 'The auditor reviews break-glass access, and reads no patient table:'
SELECT event_id, severity, actor, reason, access, acknowledged FROM hipaa_guard.break_glass_review;
\set ON_ERROR_STOP off
SELECT count(*) FROM encounters;
\set ON_ERROR_STOP on
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION demo_admin;
SELECT hipaa_guard.acknowledge_break_glass(:glass_event, 'Reviewed with the ED lead: justified');
SELECT event_id, acknowledged, acknowledged_by, review_note FROM hipaa_guard.break_glass_review;
RESET SESSION AUTHORIZATION;

\echo 'An application shares one login (demo_app) and passes the signed-in user as an HS256 token.'
\echo 'The token issuer holds the secret of signing key "demo_issuer"; here pgcrypto mints the token.'
\echo 'The issuer and audience settings belong in postgresql.conf; the demo sets them for its session.'
CREATE EXTENSION IF NOT EXISTS pgcrypto;
SELECT hipaa_guard.create_signing_key('demo_issuer') AS signing_key_id;
SET hipaa_guard.token_issuer = 'https://login.demo.example';
SET hipaa_guard.token_audience = 'demo-ehr';
CREATE FUNCTION pg_temp.b64url(data bytea) RETURNS text LANGUAGE sql IMMUTABLE
    RETURN rtrim(translate(encode(data, 'base64'), E'+/\n', '-_'), '=');
SELECT body || '.' || pg_temp.b64url(hmac(convert_to(body, 'UTF8'), secret, 'sha256')) AS token
  FROM (SELECT pg_temp.b64url(convert_to('{"alg":"HS256","typ":"JWT","kid":"demo_issuer"}', 'UTF8')) || '.' ||
               pg_temp.b64url(convert_to(jsonb_build_object(
                   'sub', 'demo_dr_grey', 'iss', 'https://login.demo.example', 'aud', 'demo-ehr',
                   'exp', extract(epoch FROM now())::bigint + 300, 'amr', '["pwd", "otp"]'::jsonb,
                   'purpose', 'treatment')::text, 'UTF8')) AS body,
               decode(translate(hipaa_guard.signing_secret('demo_issuer'), '-_', '+/') || '=', 'base64') AS secret) AS t
\gset
SET SESSION AUTHORIZATION demo_app;
\echo 'Without a token the application login sees nothing:'
SELECT hipaa_guard.actor() AS actor, (SELECT count(*) FROM encounters) AS encounters_visible;
BEGIN;
SELECT hipaa_guard.set_actor(:'token') AS actor_set;
\echo 'With the token, for this transaction, it sees what dr_grey sees, the break-the-glass patient included:'
SELECT hipaa_guard.actor() AS actor, hipaa_guard.actor_purpose() AS purpose, hipaa_guard.actor_mfa() AS second_factor,
       (SELECT count(*) FROM encounters) AS encounters_visible;
COMMIT;
SELECT hipaa_guard.actor() AS actor_after_commit, (SELECT count(*) FROM encounters) AS encounters_visible;
\echo 'A forged token (signature changed) is rejected:'
\set ON_ERROR_STOP off
SELECT hipaa_guard.set_actor(overlay(:'token' PLACING CASE WHEN substr(:'token', length(:'token') - 10, 1) = 'A'
                                                        THEN 'B' ELSE 'A' END
                                     FROM length(:'token') - 10 FOR 1));
\set ON_ERROR_STOP on
RESET SESSION AUTHORIZATION;

\echo
\echo '== Step 10. The audit trail of this demo, sealed in a hash chain'
\echo 'Waiting for the sealing worker to seal the last records...'
DO $$
BEGIN
    FOR i IN 1 .. 600 LOOP
        EXIT WHEN (SELECT queued_in_memory = 0 AND queued_in_table = 0 FROM hipaa_guard.audit_status());
        PERFORM pg_sleep(0.1);
    END LOOP;
END
$$;
\echo 'What the trail holds, by kind of event (the load of Step 1 is one write record per row):'
SELECT kind, command, count(*) AS records, count(DISTINCT actor) AS actors
  FROM hipaa_guard.audit_trail GROUP BY kind, command ORDER BY kind, command;
SET SESSION AUTHORIZATION demo_auditor;
\echo 'The auditor asks who touched the break-the-glass patient, and how:'
SELECT logged_at::timestamp(0) AS at, actor, kind, command, relation, rows, purpose, status
  FROM hipaa_guard.patient_access_history(:'other_patient', now() - interval '1 day', now())
 WHERE kind <> 'write' ORDER BY seq;
\echo 'Changes that were rolled back, recorded with their row key and status:'
SELECT actor, command, relation, row_key, columns, status
  FROM hipaa_guard.audit_trail WHERE kind = 'write' AND status = 'aborted' ORDER BY seq;
\echo 'Refused attempts (the reader without decrypt, the admin, the auditor, the forged token):'
SELECT actor, kind, command, relation, statement
  FROM hipaa_guard.audit_trail WHERE kind = 'denied' ORDER BY seq;
\echo 'The accounting of disclosures for that patient (reads whose purpose was not treatment):'
SELECT disclosed_at::timestamp(0) AS at, recipient, description, purpose
  FROM hipaa_guard.accounting_of_disclosures(:'other_patient', now() - interval '1 day', now()) ORDER BY seq;
\echo 'Verification of the whole chain, and the digest to store outside the database:'
SELECT ok, blocks, records, reason FROM hipaa_guard.verify_audit_chain();
SELECT block, last_seq, digest FROM hipaa_guard.audit_digest() \gset
SELECT :block AS block, :last_seq AS last_seq, :'digest' AS digest;
RESET SESSION AUTHORIZATION;
\echo 'A superuser edits one sealed record with the triggers switched off; verification catches it:'
\ir ../test/lib/audit_tamper.sql
SELECT actor AS original_actor FROM hipaa_guard.audit_trail WHERE seq = 2 \gset
SELECT pg_temp.tamper_edit(2, 11, 'someone_else');
SELECT seq, actor FROM hipaa_guard.audit_trail WHERE seq = 2;
SELECT ok, failed_block, failed_seq, reason FROM hipaa_guard.verify_audit_chain(:'digest');
SELECT pg_temp.tamper_edit(2, 11, :'original_actor');
SELECT ok AS verified_again FROM hipaa_guard.verify_audit_chain(:'digest');

\echo
\echo 'Demo finished.'
