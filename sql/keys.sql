--
-- The keyring: creating, rotating and destroying keys, the keys view,
-- per-patient keys, row binding, blind indexes and privileges.
--
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_clinician, regress_app, regress_admin, regress_nobody;
CREATE ROLE regress_clinician IN ROLE hipaa_clinician;
CREATE ROLE regress_app IN ROLE hipaa_app;
CREATE ROLE regress_admin IN ROLE hipaa_admin;
CREATE ROLE regress_nobody;

SELECT hipaa_guard.create_key('ring') > 0 AS created;
SELECT name, kind, state, current_version, versions, last_rotated IS NULL AS never_rotated
  FROM hipaa_guard.keys WHERE name = 'ring';

-- The key material is stored only wrapped: 12-byte nonce, 32-byte key, tag.
SELECT version, octet_length(wrapped) AS wrapped_bytes, octet_length(kek_fingerprint) AS fingerprint_bytes
  FROM hipaa_guard.data_key_versions v JOIN hipaa_guard.data_keys k USING (key_id)
 WHERE k.name = 'ring' ORDER BY version;

-- Rotation: new values use the new version, old values still decrypt.
CREATE TABLE ring_values (id int PRIMARY KEY, v hipaa_guard.encrypted_text('ring'));
INSERT INTO ring_values SELECT g, ('value ' || g)::text FROM generate_series(1, 50) g;
SELECT hipaa_guard.rotate_key('ring') AS new_version;
INSERT INTO ring_values VALUES (51, 'after rotation'::text);
SELECT hipaa_guard.key_version(v) AS version, count(*) FROM ring_values GROUP BY 1 ORDER BY 1;
SELECT count(*) AS wrong_values FROM ring_values
 WHERE hipaa_guard.decrypt(v) <> CASE WHEN id = 51 THEN 'after rotation' ELSE 'value ' || id END;
SELECT name, current_version, versions, last_rotated IS NOT NULL AS rotated, encryptions >= 51 AS counted
  FROM hipaa_guard.keys WHERE name = 'ring';

-- Re-encryption moves every value to the current version, keeping it.
CALL hipaa_guard.reencrypt('ring_values', batch_size => 10);
SELECT hipaa_guard.key_version(v) AS version, count(*) FROM ring_values GROUP BY 1 ORDER BY 1;
SELECT count(*) AS wrong_values FROM ring_values
 WHERE hipaa_guard.decrypt(v) <> CASE WHEN id = 51 THEN 'after rotation' ELSE 'value ' || id END;
-- A second run finds nothing to do.
CALL hipaa_guard.reencrypt('ring_values');

-- Re-encryption reaches every partition of a partitioned table.
CREATE TABLE visits (visit_id int, visit_at date, reason hipaa_guard.encrypted_text('ring'))
    PARTITION BY RANGE (visit_at);
CREATE TABLE visits_2025 PARTITION OF visits FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE visits_2026 PARTITION OF visits FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
INSERT INTO visits SELECT g, date '2025-06-01' + g * 7, ('reason ' || g)::text FROM generate_series(1, 60) g;
SELECT hipaa_guard.rotate_key('ring');
CALL hipaa_guard.reencrypt('visits');
SELECT tableoid::regclass, hipaa_guard.key_version(reason), count(*) FROM visits GROUP BY 1, 2 ORDER BY 1, 2;
SELECT count(*) AS wrong_values FROM visits WHERE hipaa_guard.decrypt(reason) <> 'reason ' || visit_id;

-- Row binding: each value carries its row key, and a value copied into
-- another row is rejected.
SELECT hipaa_guard.create_key('bind');
CREATE TABLE patients (patient_id bigint PRIMARY KEY,
                       ssn hipaa_guard.encrypted_text('bind'),
                       name hipaa_guard.encrypted_text('bind'),
                       ssn_index bytea);
INSERT INTO patients VALUES (1001, '987-65-4320'::text, 'Jane Roe'::text),
                            (1002, '987-65-4321'::text, 'John Q. Sample'::text);
SELECT hipaa_guard.bind_columns('patients', 'patient_id');
SELECT hipaa_guard.row_key(ssn) FROM patients ORDER BY patient_id;
-- Rows written before bind_columns are bound by reencrypt.
CALL hipaa_guard.reencrypt('patients');
SELECT patient_id, hipaa_guard.row_key(ssn), hipaa_guard.decrypt(ssn) FROM patients ORDER BY patient_id;
INSERT INTO patients (patient_id, ssn) VALUES (1003, '987-65-4322'::text);
SELECT hipaa_guard.row_key(ssn), hipaa_guard.decrypt(ssn, '1003') FROM patients WHERE patient_id = 1003;
\set VERBOSITY default
UPDATE patients SET ssn = (SELECT ssn FROM patients WHERE patient_id = 1002) WHERE patient_id = 1001;
SELECT hipaa_guard.decrypt(ssn, '1001') FROM patients WHERE patient_id = 1002;
-- Changing the row key binds the unchanged value to the new key.
UPDATE patients SET patient_id = 2001 WHERE patient_id = 1001;
SELECT patient_id, hipaa_guard.row_key(ssn), hipaa_guard.decrypt(ssn), hipaa_guard.decrypt(name)
  FROM patients ORDER BY patient_id;
SELECT table_name, column_name, declared_key, row_key_column, per_patient_keys
  FROM hipaa_guard.encrypted_columns WHERE table_name = 'patients'::regclass ORDER BY column_name;

-- Blind index: equality search without decrypting, through a btree index.
SELECT hipaa_guard.add_blind_index('patients', 'ssn', 'ssn_index', 'bind');
CREATE INDEX ON patients (ssn_index);
SELECT count(*) AS unindexed FROM patients WHERE ssn IS NOT NULL AND ssn_index IS NULL;
SELECT patient_id FROM patients WHERE ssn_index = hipaa_guard.blind_index('987-65-4321', 'bind');
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT patient_id FROM patients WHERE ssn_index = hipaa_guard.blind_index('987-65-4321', 'bind');
RESET enable_seqscan;
UPDATE patients SET ssn = '987-65-4329'::text WHERE patient_id = 1002;
SELECT patient_id FROM patients WHERE ssn_index = hipaa_guard.blind_index('987-65-4329', 'bind');
SELECT count(*) AS stale FROM patients WHERE ssn_index = hipaa_guard.blind_index('987-65-4321', 'bind');
SELECT octet_length(hipaa_guard.blind_index('x', 'bind')) AS mac_bytes,
       hipaa_guard.blind_index('x', 'bind') = hipaa_guard.blind_index('x', 'bind') AS stable,
       hipaa_guard.blind_index('x', 'bind') <> hipaa_guard.blind_index('x', 'ring') AS keyed;

-- Per-patient keys: destroying one shreds exactly that patient's values.
CREATE TABLE notes (patient_id text PRIMARY KEY, note hipaa_guard.encrypted_text('bind'));
SELECT hipaa_guard.bind_columns('notes', 'patient_id', per_patient_keys => true);
INSERT INTO notes VALUES ('p-1', 'Dx: sample condition'::text), ('p-2', 'Dx: other'::text);
COPY notes FROM STDIN WITH (FORMAT csv);
p-3,Dx: from COPY
\.
SELECT patient_id, hipaa_guard.key_name(note), hipaa_guard.decrypt(note) FROM notes ORDER BY 1;
SELECT name, kind FROM hipaa_guard.keys WHERE kind = 'patient' ORDER BY name;
SELECT hipaa_guard.destroy_key(hipaa_guard.patient_key_name('p-2'));
SELECT hipaa_guard.decrypt(note) FROM notes WHERE patient_id = 'p-2';
SELECT patient_id, hipaa_guard.decrypt(note) FROM notes WHERE patient_id <> 'p-2' ORDER BY 1;
SELECT count(*) AS rows_kept FROM notes;
SELECT state, destroyed IS NOT NULL AS has_destroyed_time FROM hipaa_guard.keys WHERE name = 'patient:p-2';
-- The wrapped key bytes are overwritten in place, not just flagged.
SELECT version, wrapped = decode(repeat('00', 60), 'hex') AS erased
  FROM hipaa_guard.data_key_versions v JOIN hipaa_guard.data_keys k USING (key_id)
 WHERE k.name = 'patient:p-2' ORDER BY version;
-- New writes for that patient fail, and the name is never reused.
UPDATE notes SET note = 'Dx: new'::text WHERE patient_id = 'p-2';
SELECT hipaa_guard.create_key('patient:p-2');

-- Privileges: decrypting needs membership in hipaa_clinician.
GRANT SELECT, INSERT ON patients TO regress_clinician, regress_app, regress_nobody;
SET ROLE regress_nobody;
SELECT ssn::text LIKE 'hg1:%' AS ciphertext_only FROM patients WHERE patient_id = 1002;
SELECT hipaa_guard.decrypt(ssn) FROM patients WHERE patient_id = 1002;
INSERT INTO patients (patient_id, ssn) VALUES (3001, '987-65-4323'::text);
SELECT hipaa_guard.create_key('nobody_key');
RESET ROLE;
SET ROLE regress_app;
INSERT INTO patients (patient_id, ssn) VALUES (3001, '987-65-4323'::text);
SELECT hipaa_guard.decrypt(ssn) FROM patients WHERE patient_id = 3001;
RESET ROLE;
SET ROLE regress_clinician;
SELECT hipaa_guard.decrypt(ssn) FROM patients WHERE patient_id = 3001;
SELECT hipaa_guard.rotate_key('bind');
RESET ROLE;
SET ROLE regress_admin;
SELECT hipaa_guard.create_key('admin_key') > 0 AS admin_created;
SELECT name FROM hipaa_guard.keys WHERE name = 'admin_key';
SELECT hipaa_guard.decrypt(ssn) FROM patients WHERE patient_id = 3001;
SELECT * FROM hipaa_guard.data_key_versions;
RESET ROLE;

-- Functions are STABLE or VOLATILE, never IMMUTABLE, and not leakproof.
SELECT p.oid::regprocedure, p.provolatile, p.proleakproof, p.proisstrict
  FROM pg_proc p WHERE p.pronamespace = 'hipaa_guard'::regnamespace
   AND p.proname IN ('encrypt', 'decrypt', 'blind_index')
 ORDER BY 1::text;
-- PUBLIC can execute nothing that reveals plaintext or changes keys.
SELECT p.oid::regprocedure FROM pg_proc p
 WHERE p.pronamespace = 'hipaa_guard'::regnamespace
   AND has_function_privilege('regress_nobody', p.oid, 'EXECUTE')
   AND p.proname IN ('decrypt', 'encrypt', 'create_key', 'rotate_key', 'destroy_key', 'rewrap_keys', 'blind_index', 'reencrypt_value')
 ORDER BY 1::text;

DROP TABLE patients, notes;
DROP OWNED BY regress_clinician, regress_app, regress_admin, regress_nobody;
DROP ROLE regress_clinician, regress_app, regress_admin, regress_nobody;
DROP TABLE ring_values, visits;
