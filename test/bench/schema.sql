-- Tables, data and result bookkeeping for test/bench/run.
--
-- psql variable: rows, the number of rows in bench_source.
--
-- bench_source contains deterministic rows shaped like a Synthea patient
-- export.  Every value is derived from the row number through md5(), so two
-- runs with the same row count insert the same bytes.  The timed statements
-- read from bench_source, so that generating the data is never timed.
\set ON_ERROR_STOP on

CREATE EXTENSION hipaa_guard;
CREATE EXTENSION pgcrypto;
CREATE EXTENSION pg_prewarm;

SELECT hipaa_guard.create_key('bench');

-- SSN of patient i, unique for i up to 100,000,000: 900-00-0000, 900-00-0001, ...
-- Built from immutable functions only (to_char() is stable), so that the
-- planner inlines it into the lookups of measurement 5 instead of running it
-- as an SQL function on every execution.
CREATE FUNCTION bench_ssn(i bigint) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN lpad((900 + (i - 1) / 1000000 % 100)::text, 3, '0') || '-' ||
           lpad(((i - 1) / 10000 % 100)::text, 2, '0') || '-' ||
           lpad(((i - 1) % 10000)::text, 4, '0');

-- The fixed 256-bit key of the pgcrypto comparison; with a 32-byte key,
-- pgcrypto's encrypt(..., 'aes') is AES-256-CBC with PKCS#7 padding.
CREATE FUNCTION bench_pgcrypto_key() RETURNS bytea
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN '\x000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f'::bytea;

-- name 20 characters, ssn 11, diagnosis 40, notes 200.
CREATE TABLE bench_source AS
SELECT i AS patient_id,
       initcap(substr(md5('given' || i), 1, 8)) || ' ' ||
           initcap(substr(md5('family' || i), 1, 11)) AS name,
       bench_ssn(i) AS ssn,
       date '1930-01-01' + (('x' || substr(md5('birth' || i), 1, 7))::bit(28)::integer % 32000) AS birth_date,
       'Dx ' || substr(md5('dx' || i), 1, 32) || ' ' || substr(md5('code' || i), 1, 4) AS diagnosis,
       left('Note: ' || md5('n1' || i) || ' ' || md5('n2' || i) || ' ' || md5('n3' || i) || ' ' ||
            md5('n4' || i) || ' ' || md5('n5' || i) || ' ' || md5('n6' || i), 200) AS notes
  FROM generate_series(1::bigint, :rows) AS i;
VACUUM ANALYZE bench_source;

-- Targets of measurements 1 and 2, without indexes while they are loaded, so
-- that the write measurements compare heap inserts and encryption alone.
CREATE TABLE bench_plain (
    patient_id bigint NOT NULL,
    name text,
    ssn text,
    birth_date date,
    diagnosis text,
    notes text
);
CREATE TABLE bench_encrypted (
    patient_id bigint NOT NULL,
    name text,
    ssn hipaa_guard.encrypted_text('bench'),
    birth_date date,
    diagnosis hipaa_guard.encrypted_text('bench'),
    notes hipaa_guard.encrypted_text('bench')
);
CREATE TABLE bench_pgcrypto (
    patient_id bigint NOT NULL,
    name text,
    ssn bytea,
    birth_date date,
    diagnosis bytea,
    notes bytea
);
CREATE TABLE bench_pgp (LIKE bench_pgcrypto);
CREATE TABLE bench_plain_copy (LIKE bench_plain);
CREATE TABLE bench_encrypted_copy (LIKE bench_encrypted);

-- The blind index table: its row trigger decrypts each SSN and stores the
-- HMAC in ssn_index.
CREATE TABLE bench_blind (LIKE bench_encrypted);
ALTER TABLE bench_blind ADD COLUMN ssn_index bytea;
SELECT hipaa_guard.add_blind_index('bench_blind', 'ssn', 'ssn_index', 'bench');

-- Measurement 6: the same patients under one key and under one key each.
CREATE TABLE bench_single_key (LIKE bench_encrypted);
CREATE TABLE bench_per_patient (LIKE bench_encrypted);
SELECT hipaa_guard.bind_columns('bench_per_patient', 'patient_id', per_patient_keys => true);

-- Measurement 8: one value per size, stored inline and uncompressed, so that
-- reading it costs the same in every loop.
CREATE TABLE bench_value (size integer PRIMARY KEY, v text);
ALTER TABLE bench_value ALTER COLUMN v SET STORAGE PLAIN;
INSERT INTO bench_value
SELECT size, left(repeat(md5('value'), size / 32 + 1), size)
  FROM unnest(ARRAY[16, 64, 256, 4096]) AS size;
VACUUM ANALYZE bench_value;

-- One row per measured variant, in the order of the printed table.
-- role: baseline (the plaintext or OpenSSL figure that ratios divide by),
-- hipaa_guard, pgcrypto, or reference (shown without a goal).
-- goal_kind: max_ratio or min_ratio, when the ratio to the baseline must stay
-- within goal_value, or hipaa_guard_faster, when the hipaa_guard row of the
-- same measurement must beat this row.
CREATE TABLE bench_variant (
    variant_id serial PRIMARY KEY,
    section integer NOT NULL,
    measurement text NOT NULL,
    variant text NOT NULL,
    role text NOT NULL CHECK (role IN ('baseline', 'hipaa_guard', 'pgcrypto', 'reference')),
    unit text NOT NULL CHECK (unit IN ('s', 'TPS', 'rows/s', 'µs')),
    goal_kind text CHECK (goal_kind IN ('max_ratio', 'min_ratio', 'hipaa_guard_faster')),
    goal_value numeric,
    UNIQUE (measurement, variant)
);
CREATE TABLE bench_result (
    variant_id integer NOT NULL REFERENCES bench_variant,
    run integer NOT NULL,
    value double precision NOT NULL
);

CREATE FUNCTION bench_record(p_measurement text, p_variant text, p_run integer,
                             p_value double precision) RETURNS void
    LANGUAGE plpgsql
AS $$
DECLARE
    id integer;
BEGIN
    SELECT variant_id INTO id FROM bench_variant
     WHERE measurement = p_measurement AND variant = p_variant;
    IF id IS NULL THEN
        RAISE EXCEPTION 'no variant "%" of measurement "%" was declared', p_variant, p_measurement;
    END IF;
    INSERT INTO bench_result VALUES (id, p_run, p_value);
END
$$;
