--
-- Every refusal: malformed envelopes, tampered values, unknown and
-- destroyed keys, plaintext without a declared key, bad arguments.
-- error_of() runs a statement and returns its SQLSTATE and message, so
-- that the SQLSTATE is part of the expected output.
--
SET client_min_messages = warning;
SELECT hipaa_guard.create_key('err') > 0 AS created;

CREATE FUNCTION error_of(query text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE query;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;
CREATE FUNCTION envelope_bytes(v hipaa_guard.encrypted_text) RETURNS bytea
    LANGUAGE sql RETURN decode(substr(v::text, 5), 'base64');
CREATE FUNCTION envelope_text(b bytea) RETURNS text
    LANGUAGE sql RETURN 'hg1:' || translate(encode(b, 'base64'), E'\n', '');
CREATE TABLE sample (id int, v hipaa_guard.encrypted_text);
INSERT INTO sample VALUES (1, hipaa_guard.encrypt('987-65-4320', 'err'));

-- Malformed text input: 22P02, and the message never echoes the input.
SELECT 'garbage'::hipaa_guard.encrypted_text;
SELECT ''::hipaa_guard.encrypted_text;
SELECT 'HG1:AAAA'::hipaa_guard.encrypted_text;
SELECT 'hg1:'::hipaa_guard.encrypted_text;
SELECT 'hg1:!!!!'::hipaa_guard.encrypted_text;
SELECT 'hg1:AAA'::hipaa_guard.encrypted_text;
SELECT 'hg1:AAAA'::hipaa_guard.encrypted_date;
SELECT 'Jane Roe'::hipaa_guard.encrypted_text;

-- Envelopes built from a real one with one part wrong.
SELECT label, error_of(format('SELECT %L::hipaa_guard.encrypted_text', t)) AS result
  FROM sample, LATERAL (VALUES
    ('truncated', envelope_text(substr(envelope_bytes(v), 1, 40))),
    ('trailing bytes', envelope_text(envelope_bytes(v) || '\x00'::bytea)),
    ('missing tag byte', envelope_text(substr(envelope_bytes(v), 1, octet_length(envelope_bytes(v)) - 1))),
    ('unknown version', envelope_text(set_byte(envelope_bytes(v), 0, 2))),
    ('unknown type', envelope_text(set_byte(envelope_bytes(v), 1, 9))),
    ('unknown flag', envelope_text(set_byte(envelope_bytes(v), 2, 128))),
    ('reserved byte', envelope_text(set_byte(envelope_bytes(v), 3, 1))),
    ('length too large', envelope_text(set_byte(envelope_bytes(v), 24, 255))),
    ('embedded space', overlay(v::text PLACING ' ' FROM 10 FOR 1)),
    ('date read as text', (SELECT hipaa_guard.encrypt(current_date, 'err')::text))
  ) AS cases(label, t);

-- One flipped bit anywhere in a stored value: never a value, always an
-- error, and only the two documented ones.
CREATE TABLE flipped (position int, outcome text);
DO $$
DECLARE
    original bytea := (SELECT envelope_bytes(v) FROM sample WHERE id = 1);
    damaged bytea;
BEGIN
    FOR i IN 0 .. octet_length(original) - 1 LOOP
        damaged := set_byte(original, i, get_byte(original, i) # 1);
        INSERT INTO flipped VALUES (i, error_of(format(
            'SELECT hipaa_guard.decrypt(%L::hipaa_guard.encrypted_text)', envelope_text(damaged))));
    END LOOP;
END
$$;
SELECT outcome, count(*) FROM flipped GROUP BY outcome ORDER BY outcome;

-- A value whose header names a key or version that does not exist.
SELECT label, error_of(format('SELECT hipaa_guard.decrypt(%L::hipaa_guard.encrypted_text)', t)) AS result
  FROM sample, LATERAL (VALUES
    ('unknown key id', envelope_text(overlay(envelope_bytes(v) PLACING '\x00002710'::bytea FROM 5 FOR 4))),
    ('unknown version', envelope_text(overlay(envelope_bytes(v) PLACING '\x00000063'::bytea FROM 9 FOR 4))),
    ('blind index key version', envelope_text(overlay(envelope_bytes(v) PLACING '\x00000000'::bytea FROM 9 FOR 4)))
  ) AS cases(label, t);

-- Binary input is validated as strictly as text input: 22P03.
\getenv abs_builddir PG_ABS_BUILDDIR
\set bad_binary :abs_builddir '/results/bad.bin'
COPY (SELECT '\x0102'::bytea) TO :'bad_binary' WITH (FORMAT binary);
COPY sample (v) FROM :'bad_binary' WITH (FORMAT binary);
COPY (SELECT set_byte(envelope_bytes(v), 0, 7) FROM sample) TO :'bad_binary' WITH (FORMAT binary);
COPY sample (v) FROM :'bad_binary' WITH (FORMAT binary);

-- Plaintext where no key is declared.
CREATE TABLE undeclared (id int, v hipaa_guard.encrypted_text);
INSERT INTO undeclared VALUES (1, 'Jane Roe');
INSERT INTO undeclared VALUES (1, 'Jane Roe'::text);
SELECT error_of('INSERT INTO undeclared VALUES (1, ''Jane Roe''::text)') AS typed_text,
       error_of('INSERT INTO undeclared VALUES (1, ''Jane Roe'')') AS untyped_literal;
COPY undeclared FROM STDIN WITH (FORMAT csv);
2,Jane Roe
\.
SELECT count(*) AS rows_stored FROM undeclared;

-- Keys: unknown, NULL, empty, badly named, duplicated, destroyed.
SELECT label, error_of(q) AS result FROM (VALUES
    ('encrypt, unknown key', 'SELECT hipaa_guard.encrypt(''x'', ''no_such_key'')'),
    ('encrypt, NULL key', 'SELECT hipaa_guard.encrypt(''x'', NULL)'),
    ('encrypt NULL value, NULL key', 'SELECT hipaa_guard.encrypt(NULL::text, NULL)'),
    ('blind index, unknown key', 'SELECT hipaa_guard.blind_index(''x'', ''no_such_key'')'),
    ('blind index, NULL key', 'SELECT hipaa_guard.blind_index(''x'', NULL)'),
    ('decrypt with NULL row key', 'SELECT hipaa_guard.decrypt(v, NULL) FROM sample'),
    ('create, NULL name', 'SELECT hipaa_guard.create_key(NULL)'),
    ('create, empty name', 'SELECT hipaa_guard.create_key('''')'),
    ('create, quote in name', 'SELECT hipaa_guard.create_key(''a''''b'')'),
    ('create, long name', 'SELECT hipaa_guard.create_key(repeat(''k'', 121))'),
    ('create, duplicate', 'SELECT hipaa_guard.create_key(''err'')'),
    ('rotate, unknown key', 'SELECT hipaa_guard.rotate_key(''no_such_key'')'),
    ('destroy, unknown key', 'SELECT hipaa_guard.destroy_key(''no_such_key'')'),
    ('column, unknown key', 'CREATE TABLE t_bad (v hipaa_guard.encrypted_text(''no_such_key''))'),
    ('column, two modifiers', 'CREATE TABLE t_bad (v hipaa_guard.encrypted_text(''err'', ''err''))')
  ) AS cases(label, q);
SELECT hipaa_guard.encrypt('x', NULL);

SELECT hipaa_guard.create_key('doomed') > 0 AS created;
CREATE TABLE doomed_values (id int, v hipaa_guard.encrypted_text('doomed'));
INSERT INTO doomed_values VALUES (1, 'to be shredded'::text);
SELECT hipaa_guard.destroy_key('doomed');
SELECT hipaa_guard.decrypt(v) FROM doomed_values;
SELECT label, error_of(q) AS result FROM (VALUES
    ('decrypt', 'SELECT hipaa_guard.decrypt(v) FROM doomed_values'),
    ('encrypt', 'SELECT hipaa_guard.encrypt(''x'', ''doomed'')'),
    ('insert', 'INSERT INTO doomed_values VALUES (2, ''x''::text)'),
    ('blind index', 'SELECT hipaa_guard.blind_index(''x'', ''doomed'')'),
    ('rotate', 'SELECT hipaa_guard.rotate_key(''doomed'')'),
    ('reuse the name', 'SELECT hipaa_guard.create_key(''doomed'')')
  ) AS cases(label, q);
SELECT count(*) AS rows_kept FROM doomed_values;

-- COPY FROM never echoes a plaintext field or line.  Neither the message of
-- a field that is invalid for the base type nor the CONTEXT of a field that
-- cannot be encrypted, or of a row the trigger rejects, quotes it.
CREATE TABLE copy_errors (id int, born hipaa_guard.encrypted_date('err'), name hipaa_guard.encrypted_text('doomed'));
COPY copy_errors (id, born) FROM STDIN WITH (FORMAT csv);
1,1961-13-45
\.
COPY copy_errors (id, name) FROM STDIN WITH (FORMAT csv);
2,Jane Roe
\.
CREATE TABLE copy_bound (pid text, v hipaa_guard.encrypted_text('err'));
SELECT hipaa_guard.bind_columns('copy_bound', 'pid', per_patient_keys => true);
INSERT INTO copy_bound VALUES ('gone', 'first note'::text);
SELECT hipaa_guard.destroy_key(hipaa_guard.patient_key_name('gone'));
COPY copy_bound FROM STDIN WITH (FORMAT csv);
gone,Jane Roe secret note
\.
COPY copy_errors (id, born) FROM STDIN WITH (FORMAT csv);
3,hg1:not an envelope but a note
\.
SELECT count(*) AS rows_stored FROM copy_errors;

-- An encrypted value turned into text and assigned again would be encrypted
-- a second time; text that starts like an envelope is refused instead.
CREATE TABLE reassigned (id int, v hipaa_guard.encrypted_text('err'));
INSERT INTO reassigned VALUES (1, 'Jane Roe'::text);
UPDATE reassigned SET v = v::text;
UPDATE reassigned SET v = v::text || 'x';
SELECT hipaa_guard.encrypt('hg1:looks encrypted', 'err');
UPDATE reassigned SET v = v;
SELECT hipaa_guard.decrypt(v) FROM reassigned;

-- A destroy_key() whose transaction rolls back has still erased the key, and
-- the keys view shows it as destroyed.
SELECT hipaa_guard.create_key('rolled_back') > 0 AS created;
BEGIN;
SELECT hipaa_guard.destroy_key('rolled_back');
ROLLBACK;
SELECT state, retired_versions FROM hipaa_guard.keys WHERE name = 'rolled_back';
SELECT hipaa_guard.encrypt('x', 'rolled_back');

-- Size limit: a clear 54000, no crash.
SELECT hipaa_guard.encrypt(repeat('x', 700 * 1024 * 1024 + 1), 'err');

-- Row binding refusals.
CREATE TABLE bound (patient_id text, v hipaa_guard.encrypted_text('err'));
SELECT hipaa_guard.bind_columns('bound', 'patient_id');
INSERT INTO bound VALUES (NULL, 'x'::text);
SELECT error_of('SELECT hipaa_guard.bind_columns(''bound'', ''no_such_column'')') AS unknown_column,
       error_of('SELECT hipaa_guard.bind_columns(''bound'', ''patient_id'', NULL)') AS null_flag,
       error_of('SELECT hipaa_guard.add_blind_index(''bound'', ''v'', ''patient_id'', ''err'')') AS index_not_bytea,
       error_of('SELECT hipaa_guard.add_blind_index(''bound'', ''v'', ''no_column'', ''err'')') AS index_missing;
CREATE TRIGGER wrong_time AFTER INSERT ON bound FOR EACH ROW EXECUTE FUNCTION hipaa_guard.encrypted_row_trigger('patient_id', 'f');
INSERT INTO bound VALUES ('p1', 'x'::text);
DROP TRIGGER wrong_time ON bound;
ALTER TABLE bound RENAME COLUMN patient_id TO pid;
INSERT INTO bound VALUES ('p1', 'x'::text);

-- Re-encryption arguments and transaction context.
CALL hipaa_guard.reencrypt('sample', batch_size => 0);
BEGIN;
CALL hipaa_guard.reencrypt('sample');
ROLLBACK;
