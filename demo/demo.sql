--
-- hipaa_guard demo on a Synthea CSV export (run by demo/run).
--
-- Loads patients, encounters and conditions with plain COPY into tables whose
-- identifiers are encrypted columns, then shows what each role can read, a
-- blind index lookup, a pg_dump without plaintext, a key rotation and the
-- shredding of one patient's key.  psql variable: synthea_dir.
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
SELECT * FROM patients_deidentified ORDER BY birthdate NULLS FIRST, zip LIMIT 5;
SELECT count(*) AS patients, count(zip) AS with_zip3, count(*) FILTER (WHERE zip = '000') AS restricted_zip,
       count(*) FILTER (WHERE birthdate IS NULL) AS birth_year_suppressed
  FROM patients_deidentified;
RESET ROLE;

\echo
\echo 'Demo finished.'
