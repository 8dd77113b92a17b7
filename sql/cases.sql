--
-- Cases from public bug reports of similar tools, on a small patients and
-- visits fixture.  Each block names the failure it guards against.
--
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_app_owner, regress_clin_a;
CREATE ROLE regress_app_owner IN ROLE hipaa_app;
CREATE ROLE regress_clin_a IN ROLE hipaa_clinician;
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM hipaa_guard.keys WHERE name = 'phi') THEN
        PERFORM hipaa_guard.create_key('phi');
    END IF;
END
$$;
GRANT CREATE ON SCHEMA public TO regress_app_owner;

SET ROLE regress_app_owner;
CREATE TABLE patients (
    patient_id bigint PRIMARY KEY,
    full_name  hipaa_guard.encrypted_text,
    ssn        hipaa_guard.encrypted_text,
    zip        text,
    birth_date date,
    note       hipaa_guard.encrypted_text);
CREATE TABLE visits (
    visit_id   bigint,
    patient_id bigint REFERENCES patients,
    visit_at   timestamptz NOT NULL,
    reason     hipaa_guard.encrypted_text,
    PRIMARY KEY (visit_id, visit_at)) PARTITION BY RANGE (visit_at);
CREATE TABLE visits_2026 PARTITION OF visits FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
INSERT INTO patients VALUES
    (1001, hipaa_guard.encrypt('Jane Roe', 'phi'), hipaa_guard.encrypt('987-65-4320', 'phi'), '02139', '1961-04-02', NULL),
    (1002, hipaa_guard.encrypt('John Q. Sample', 'phi'), hipaa_guard.encrypt('987-65-4321', 'phi'), '03601', '1931-11-30', NULL);
INSERT INTO visits VALUES (1, 1001, '2026-11-20 09:00+00', hipaa_guard.encrypt('follow-up', 'phi'));
GRANT SELECT, INSERT, UPDATE ON patients, visits TO regress_clin_a;
RESET ROLE;

-- C01: NULL, empty string and NULL key name.  The empty string round-trips
-- as '' and is not NULL; a NULL key name is an error, never a NULL result.
CREATE TABLE c01 (id int PRIMARY KEY, v hipaa_guard.encrypted_text);
INSERT INTO c01 VALUES
    (1, hipaa_guard.encrypt('', 'phi')),
    (2, hipaa_guard.encrypt(NULL, 'phi')),
    (3, hipaa_guard.encrypt('  ', 'phi')),
    (4, NULL);
SELECT id, v IS NULL AS ct_null,
       hipaa_guard.decrypt(v) IS NULL AS pt_null,
       octet_length(hipaa_guard.decrypt(v)) AS pt_len
  FROM c01 ORDER BY id;
\set VERBOSITY terse
SELECT hipaa_guard.encrypt('Jane Roe', NULL);
\set VERBOSITY default
SELECT hipaa_guard.decrypt(NULL::hipaa_guard.encrypted_text);

-- C02: every UPDATE path keeps values decryptable; the key travels inside
-- the ciphertext, so no separate key column can drift.
CREATE TABLE c02 (id bigint PRIMARY KEY, zip text, ssn hipaa_guard.encrypted_text,
                  name hipaa_guard.encrypted_text('phi'));
INSERT INTO c02 VALUES (1, '02139', hipaa_guard.encrypt('987-65-4320', 'phi'), hipaa_guard.encrypt('Jane Roe', 'phi'));
SELECT hipaa_guard.bind_columns('c02', 'id');
CALL hipaa_guard.reencrypt('c02');
CREATE TEMP TABLE snap AS SELECT ssn::text AS ct FROM c02 WHERE id = 1;
UPDATE c02 SET zip = '02140' WHERE id = 1;
SELECT (SELECT ct FROM snap) = ssn::text AS unchanged, hipaa_guard.decrypt(ssn) FROM c02 WHERE id = 1;
SELECT hipaa_guard.create_key('phi_b') > 0 AS created;
UPDATE c02 SET ssn = hipaa_guard.encrypt('987-65-4329', 'phi_b') WHERE id = 1;
SELECT hipaa_guard.decrypt(ssn), hipaa_guard.key_name(ssn) FROM c02 WHERE id = 1;
-- A plain text literal: rejected for an undeclared column, encrypted for
-- a declared one, never stored in clear.
UPDATE c02 SET ssn = 'Jane A. Roe' WHERE id = 1;
UPDATE c02 SET name = 'Jane A. Roe'::text WHERE id = 1;
SELECT hipaa_guard.decrypt(name), strpos(name::text, 'Jane') FROM c02 WHERE id = 1;
UPDATE c02 SET id = 2 WHERE id = 1;
SELECT hipaa_guard.decrypt(ssn), hipaa_guard.row_key(ssn) FROM c02 WHERE id = 2;

-- C06: rotation reaches every ciphertext, including tables never declared
-- anywhere; old versions keep decrypting meanwhile, and a version is retired
-- only when nothing uses it.  (Partitions: see the keys test.)  The case's
-- key is called c06 here, so that the counts do not depend on other tests.
SELECT hipaa_guard.create_key('c06') > 0 AS created;
CREATE TABLE c06_notes (id int PRIMARY KEY, body hipaa_guard.encrypted_text);
INSERT INTO c06_notes SELECT g, hipaa_guard.encrypt('note ' || g, 'c06') FROM generate_series(1, 5000) g;
SELECT hipaa_guard.rotate_key('c06') AS new_version;
INSERT INTO c06_notes VALUES (5001, hipaa_guard.encrypt('after rotate', 'c06'));
SELECT hipaa_guard.key_version(body) AS v, count(*) FROM c06_notes GROUP BY 1 ORDER BY 1;
SELECT count(*) AS undecryptable FROM c06_notes WHERE hipaa_guard.decrypt(body) IS NULL;
\set VERBOSITY terse
SELECT hipaa_guard.retire_key_version('c06', 1);
\set VERBOSITY default
SELECT body::text AS stray_v1 FROM c06_notes WHERE id = 1 \gset
CALL hipaa_guard.reencrypt('c06_notes', batch_size => 700);
SELECT hipaa_guard.key_version(body) AS v, count(*) FROM c06_notes GROUP BY 1;
SELECT count(*) AS changed FROM c06_notes WHERE hipaa_guard.decrypt(body) <> 'note ' || id AND id <= 5000;
SELECT hipaa_guard.retire_key_version('c06', 1);
SELECT name, current_version, versions, retired_versions FROM hipaa_guard.keys WHERE name = 'c06';
SELECT hipaa_guard.decrypt(:'stray_v1'::hipaa_guard.encrypted_text);
SELECT hipaa_guard.retire_key_version('c06', 2);
SELECT hipaa_guard.retire_key_version('c06', 0);
SELECT count(*) AS still_readable FROM c06_notes WHERE hipaa_guard.decrypt(body) IS NOT NULL;

-- C07: crypto-shredding one patient's key leaves the rows and every other
-- patient readable, and a reused name never decrypts old ciphertext.
SELECT hipaa_guard.create_key('patient_1002') > 0 AS created;
UPDATE patients SET note = hipaa_guard.encrypt('Dx: sample condition', 'patient_1002') WHERE patient_id = 1002;
UPDATE patients SET note = hipaa_guard.encrypt('Dx: other', 'phi') WHERE patient_id = 1001;
SELECT hipaa_guard.destroy_key('patient_1002');
SELECT hipaa_guard.decrypt(note) FROM patients WHERE patient_id = 1002;
SELECT hipaa_guard.decrypt(note) FROM patients WHERE patient_id = 1001;
SELECT count(*) FROM patients;
SELECT hipaa_guard.encrypt('x', 'patient_1002');
SELECT hipaa_guard.create_key('patient_1002');
SELECT hipaa_guard.decrypt(note) FROM patients WHERE patient_id = 1002;

-- C08: binary COPY round-trips; send and receive both exist.
SELECT typsend::regproc, typreceive::regproc FROM pg_type WHERE oid = 'hipaa_guard.encrypted_text'::regtype;
\getenv abs_builddir PG_ABS_BUILDDIR
\set patients_file :abs_builddir '/results/patients.bin'
COPY patients TO :'patients_file' WITH (FORMAT binary);
CREATE TABLE patients_copy (LIKE patients);
COPY patients_copy FROM :'patients_file' WITH (FORMAT binary);
SELECT count(*) AS mismatches FROM patients a JOIN patients_copy b USING (patient_id)
 WHERE hipaa_guard.decrypt(a.ssn) IS DISTINCT FROM hipaa_guard.decrypt(b.ssn);

-- C10: nonces never repeat, tampering is an error, a value copied to
-- another patient's row is refused, large values round-trip.
CREATE TABLE c10 AS SELECT g AS id, hipaa_guard.encrypt('987-65-4320', 'phi') AS v FROM generate_series(1, 200000) g;
SELECT count(DISTINCT v::text) AS distinct_values,
       count(DISTINCT substr(decode(substr(v::text, 5), 'base64'), 13, 12)) AS distinct_nonces
  FROM c10;
SELECT format('SELECT hipaa_guard.decrypt(%L::hipaa_guard.encrypted_text)',
              overlay(v::text PLACING CASE WHEN substr(v::text, 30, 1) = 'A' THEN 'B' ELSE 'A' END FROM 30 FOR 1)) AS tampered
  FROM c10 WHERE id = 1 \gset
\set VERBOSITY terse
:tampered;
\set VERBOSITY default
SELECT hipaa_guard.bind_columns('patients', 'patient_id');
CALL hipaa_guard.reencrypt('patients');
UPDATE patients SET ssn = (SELECT ssn FROM patients WHERE patient_id = 1002) WHERE patient_id = 1001;
SELECT hipaa_guard.decrypt(ssn) FROM patients WHERE patient_id = 1001;
SELECT octet_length(hipaa_guard.decrypt(hipaa_guard.encrypt(repeat('x', 200 * 1024 * 1024), 'phi'))) AS large_round_trip;
SELECT hipaa_guard.encrypt(repeat('x', 1073741800), 'phi');
SELECT name, versions, encryptions >= 200000 AS counted, encryptions < 4294967296 AS under_budget
  FROM hipaa_guard.keys WHERE name = 'phi';

DROP TABLE c01, c02, c06_notes, c10, patients_copy, visits, patients;
DROP OWNED BY regress_app_owner, regress_clin_a;
DROP ROLE regress_app_owner, regress_clin_a;
