--
-- Safe Harbor helpers: ZIP prefixes, dates, ages over 89, keyed pseudonyms.
--
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_deid_nobody;
CREATE ROLE regress_deid_nobody;

-- The 17 restricted prefixes of the 2000 Census become 000, each with its
-- neighbours kept.
SELECT count(*) AS prefixes, min(census) AS census FROM hipaa_guard.restricted_zip3;
SELECT r.prefix,
       hipaa_guard.safe_harbor_zip(r.prefix || '42') AS restricted,
       hipaa_guard.safe_harbor_zip(lpad((r.prefix::int - 1)::text, 3, '0') || '42') AS below,
       hipaa_guard.safe_harbor_zip(lpad((r.prefix::int + 1)::text, 3, '0') || '42') AS above
  FROM hipaa_guard.restricted_zip3 r ORDER BY r.prefix;

-- ZIP+4, spaces, short and malformed values (NULL, never a guessed prefix),
-- NULL, and no integer form that would drop a leading zero.
SELECT z, hipaa_guard.safe_harbor_zip(z) AS zip3
  FROM (VALUES ('02139'), ('03601'), ('89301'), ('82301-1234'), ('02139-4307'), (' 68504 '),
               ('0213'), ('2139'), ('021'), ('ABCDE'), ('6850A'), ('02139-43'), (''), (NULL)) AS v(z);
SELECT hipaa_guard.safe_harbor_zip(2139);

-- Dates keep the year only; leap days too.
SELECT d, hipaa_guard.safe_harbor_date(d) AS year
  FROM (VALUES ('2024-02-29'::date), ('1961-04-02'), ('2000-01-01'), (NULL)) AS v(d);

-- Ages: 89 stays, 90 becomes 90+, on the day and the day before.
SELECT birth, at, hipaa_guard.safe_harbor_age(birth, at) AS age,
       hipaa_guard.safe_harbor_birth_year(birth, at) AS birth_year
  FROM (VALUES ('1931-11-30'::date, '2021-11-29'::date),
               ('1931-11-30', '2021-11-30'),
               ('1931-11-30', '2026-12-04'),
               ('2000-02-29', '2001-02-28'),
               ('2000-02-29', '2001-03-01'),
               ('2000-02-29', '2089-02-28'),
               ('2000-02-29', '2090-03-01'),
               ('2026-12-04', '2026-12-04'),
               (NULL, '2026-12-04')) AS v(birth, at);
SELECT hipaa_guard.safe_harbor_age('2026-12-04', '2026-12-03');
-- The birth year goes once the years reach 90, even at age 89.
SELECT d AS birth, hipaa_guard.safe_harbor_birth_year(d, '2026-12-04') AS birth_year,
       hipaa_guard.safe_harbor_age(d, '2026-12-04') AS age
  FROM (VALUES ('1961-04-02'::date), ('1937-12-04'), ('1936-12-05'), ('1936-12-04'),
               ('1931-11-30'), ('2024-02-29')) AS v(d);
SELECT hipaa_guard.safe_harbor_date('2024-03-15');

-- Pseudonyms: stable for one key, different under another key, different
-- for different values, not the blind index, and no plaintext inside.
SELECT hipaa_guard.create_key('pseudo') > 0 AS created;
SELECT hipaa_guard.create_key('pseudo_other') > 0 AS created;
SELECT length(hipaa_guard.pseudonym('987-65-4320', 'pseudo')) AS hex_digits,
       hipaa_guard.pseudonym('987-65-4320', 'pseudo') = hipaa_guard.pseudonym('987-65-4320', 'pseudo') AS stable,
       hipaa_guard.pseudonym('987-65-4320', 'pseudo') <> hipaa_guard.pseudonym('987-65-4320', 'pseudo_other') AS keyed,
       hipaa_guard.pseudonym('987-65-4320', 'pseudo') <> hipaa_guard.pseudonym('987-65-4321', 'pseudo') AS distinct_values,
       decode(hipaa_guard.pseudonym('987-65-4320', 'pseudo'), 'hex')
         <> substr(hipaa_guard.blind_index('987-65-4320', 'pseudo'), 1, 16) AS not_blind_index,
       hipaa_guard.pseudonym(NULL, 'pseudo') IS NULL AS null_stays_null;
-- A dictionary of every SSN-shaped value under 1,000 guesses finds nothing
-- without the key: the unkeyed hash of the value is not the pseudonym.
SELECT count(*) AS dictionary_hits
  FROM generate_series(4000, 4999) g
 WHERE encode(sha256(convert_to('987-65-' || g, 'UTF8')), 'hex') LIKE hipaa_guard.pseudonym('987-65-4320', 'pseudo') || '%'
    OR md5('987-65-' || g) = hipaa_guard.pseudonym('987-65-4320', 'pseudo');
SELECT hipaa_guard.pseudonym('x', NULL);
SELECT hipaa_guard.pseudonym('x', 'no_such_key');

-- The Safe Harbor helpers are for everyone; pseudonyms need a granted role.
SET ROLE regress_deid_nobody;
SELECT hipaa_guard.safe_harbor_zip('03601') AS zip3, hipaa_guard.safe_harbor_age('1931-11-30', '2021-11-30') AS age;
SELECT hipaa_guard.pseudonym('987-65-4320', 'pseudo');
RESET ROLE;

-- Labels and de-identified views.  The view removes identifiers, generalizes
-- ZIP codes and dates, keeps what is labelled as not identifying, and leaves
-- out every column without a label, free text included.
SELECT count(*) FILTER (WHERE treatment <> 'keep') AS identifier_kinds,
       count(*) AS kinds FROM hipaa_guard.identifier_kinds;
CREATE TABLE deid_patients (
    patient_id text PRIMARY KEY,
    name hipaa_guard.encrypted_text('pseudo'),
    ssn hipaa_guard.encrypted_text('pseudo'),
    zip hipaa_guard.encrypted_text('pseudo'),
    plain_zip text,
    birth hipaa_guard.encrypted_date('pseudo'),
    admitted timestamptz,
    gender text,
    diagnosis_code text,
    notes text);
INSERT INTO deid_patients VALUES
    ('p1', 'Jane Roe'::text, '987-65-4320'::text, '02139'::text, '02139', '1961-04-02'::date,
     '2026-11-20 09:00+00', 'F', 'E11.9', 'Lives with her daughter on Main Street'),
    ('p2', 'John Q. Sample'::text, '987-65-4321'::text, '03601'::text, '03601', '1931-11-30'::date,
     '1930-01-01 00:00+00', 'M', 'I10', 'Retired farmer');
SELECT hipaa_guard.label_column('deid_patients', 'patient_id', 'medical_record_number');
SELECT hipaa_guard.label_column('deid_patients', 'name', 'names');
SELECT hipaa_guard.label_column('deid_patients', 'ssn', 'ssn');
SELECT hipaa_guard.label_column('deid_patients', 'zip', 'zip');
SELECT hipaa_guard.label_column('deid_patients', 'plain_zip', 'zip');
SELECT hipaa_guard.label_column('deid_patients', 'birth', 'dates');
SELECT hipaa_guard.label_column('deid_patients', 'admitted', 'dates');
SELECT hipaa_guard.label_column('deid_patients', 'gender', 'quasi');
SELECT hipaa_guard.label_column('deid_patients', 'diagnosis_code', 'not_identifying');
SELECT tbl, col, kind FROM hipaa_guard.column_labels WHERE tbl = 'deid_patients'::regclass ORDER BY col;
SELECT hipaa_guard.create_deidentified_view('deid_patients', 'deid_patients_view');
SELECT attname FROM pg_attribute WHERE attrelid = 'deid_patients_view'::regclass AND attnum > 0 ORDER BY attnum;
SELECT * FROM deid_patients_view ORDER BY gender;
SELECT reloptions FROM pg_class WHERE oid = 'deid_patients_view'::regclass;
-- A reader of the view needs no decrypt grant.
GRANT SELECT ON deid_patients_view TO regress_deid_nobody;
SET ROLE regress_deid_nobody;
SELECT zip, birth FROM deid_patients_view ORDER BY gender;
SELECT * FROM deid_patients;
RESET ROLE;

-- A value whose key was destroyed shows as NULL in the view, not as an error.
SELECT hipaa_guard.create_key('deid_gone') > 0 AS created;
CREATE TABLE deid_gone (id int, zip hipaa_guard.encrypted_text('deid_gone'), born hipaa_guard.encrypted_date('deid_gone'));
INSERT INTO deid_gone VALUES (1, '02139'::text, '1961-04-02'::date);
SELECT hipaa_guard.label_column('deid_gone', 'id', 'not_identifying');
SELECT hipaa_guard.label_column('deid_gone', 'zip', 'zip');
SELECT hipaa_guard.label_column('deid_gone', 'born', 'dates');
SELECT hipaa_guard.create_deidentified_view('deid_gone', 'deid_gone_view');
SELECT * FROM deid_gone_view;
SELECT hipaa_guard.destroy_key('deid_gone');
SELECT * FROM deid_gone_view;

-- Refusals.
SELECT hipaa_guard.label_column('deid_patients', 'notes', 'free_text');
SELECT hipaa_guard.label_column('deid_patients', 'no_such_column', 'names');
SELECT hipaa_guard.label_column('deid_patients', 'gender', NULL);
SELECT hipaa_guard.label_column('deid_patients', 'name', 'not_identifying');
SELECT hipaa_guard.create_deidentified_view('deid_patients', 'deid_patients_view2');
SELECT hipaa_guard.label_column('deid_patients', 'name', 'names');
CREATE TABLE deid_unlabelled (id int, notes text);
SELECT hipaa_guard.create_deidentified_view('deid_unlabelled', 'deid_unlabelled_view');
SET ROLE regress_deid_nobody;
SELECT hipaa_guard.label_column('deid_patients', 'notes', 'not_identifying');
RESET ROLE;

DROP TABLE deid_patients, deid_unlabelled, deid_gone CASCADE;
DROP ROLE regress_deid_nobody;
