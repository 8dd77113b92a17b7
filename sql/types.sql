--
-- Encrypted types: round trips, text and binary I/O, casts and NULLs.
-- Envelopes are random, so tests print lengths, prefixes and booleans.
--
SET client_min_messages = warning;
SELECT hipaa_guard.create_key('phi');

-- Every base type round-trips through encrypt() and decrypt().
SELECT hipaa_guard.decrypt(hipaa_guard.encrypt('Jane Roe'::text, 'phi')) AS text_value,
       hipaa_guard.decrypt(hipaa_guard.encrypt('\x00ff10'::bytea, 'phi')) AS bytea_value,
       hipaa_guard.decrypt(hipaa_guard.encrypt('2024-02-29'::date, 'phi')) AS date_value,
       hipaa_guard.decrypt(hipaa_guard.encrypt('{"dx": ["E11.9"], "n": 1}'::jsonb, 'phi')) AS jsonb_value;

-- Dates at the edges of the type, infinity included.
SELECT d, hipaa_guard.decrypt(hipaa_guard.encrypt(d, 'phi')) = d AS same
  FROM (VALUES ('4713-01-01 BC'::date), ('5874897-12-31'::date), ('infinity'::date), ('-infinity'::date)) AS v(d);

-- NULL stays NULL; the empty string is a value of its own.
SELECT hipaa_guard.encrypt(NULL::text, 'phi') IS NULL AS null_stays_null,
       hipaa_guard.decrypt(NULL::hipaa_guard.encrypted_text) IS NULL AS decrypt_null,
       hipaa_guard.encrypt('', 'phi') IS NULL AS empty_is_null,
       hipaa_guard.decrypt(hipaa_guard.encrypt('', 'phi')) = '' AS empty_round_trip;

-- Multi-byte text and emoji.
SELECT hipaa_guard.decrypt(hipaa_guard.encrypt(v, 'phi')) = v AS same, octet_length(v)
  FROM (VALUES ('Zoë Ødegård'), ('患者 山田太郎'), ('🩺💉🧬'), (repeat('ß', 1000))) AS t(v);

-- The text form is the envelope, never the plaintext.
SELECT hipaa_guard.encrypt('Jane Roe', 'phi')::text LIKE 'hg1:%' AS envelope_prefix,
       strpos(hipaa_guard.encrypt('Jane Roe', 'phi')::text, 'Jane') AS plaintext_position,
       length(hipaa_guard.encrypt('Jane Roe', 'phi')::text) AS text_length;

-- Two encryptions of one value differ (random nonces).
SELECT hipaa_guard.encrypt('Jane Roe', 'phi')::text <> hipaa_guard.encrypt('Jane Roe', 'phi')::text AS differs;

-- An envelope in text form reads back as the same value.
CREATE TABLE envelope_io (id int PRIMARY KEY, v hipaa_guard.encrypted_text);
INSERT INTO envelope_io VALUES (1, hipaa_guard.encrypt('987-65-4320', 'phi'));
SELECT hipaa_guard.decrypt(hipaa_guard.encrypted_text_in(v::text::cstring, 0, -1)) AS reread FROM envelope_io;

-- Metadata functions read the envelope header without decrypting.
SELECT hipaa_guard.key_name(v), hipaa_guard.key_version(v), hipaa_guard.row_key(v) FROM envelope_io;

-- A column declares its key in the type modifier.
CREATE TABLE declared (
    id int PRIMARY KEY,
    name hipaa_guard.encrypted_text('phi'),
    birth hipaa_guard.encrypted_date(phi),
    notes hipaa_guard.encrypted_jsonb('phi'),
    scan hipaa_guard.encrypted_bytea('phi'),
    plain_col hipaa_guard.encrypted_text);
SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
 WHERE attrelid = 'declared'::regclass AND attnum > 0 ORDER BY attnum;

-- Plaintext of the base type assigned to the column is encrypted.
INSERT INTO declared (id, name, birth, notes, scan)
    VALUES (1, 'Jane Roe'::text, '1961-04-02'::date, '{"a": 1}'::jsonb, '\x0102'::bytea);
INSERT INTO declared (id, name) VALUES (2, 'John Q. Sample'::varchar);
INSERT INTO declared (id, name) VALUES (3, 'Ann Other'::text)
    ON CONFLICT (id) DO UPDATE SET name = excluded.name;
INSERT INTO declared (id, name) VALUES (3, 'Ann B. Other'::text)
    ON CONFLICT (id) DO UPDATE SET name = excluded.name;
UPDATE declared SET birth = '1931-11-30'::date WHERE id = 2;
PREPARE put(int, text) AS INSERT INTO declared (id, name) VALUES ($1, $2);
EXECUTE put(4, 'Bound Parameter');
SELECT id, hipaa_guard.decrypt(name) AS name, hipaa_guard.decrypt(birth) AS birth,
       hipaa_guard.decrypt(notes) AS notes, hipaa_guard.decrypt(scan) AS scan,
       strpos(name::text, 'Jane') AS plaintext_position
  FROM declared ORDER BY id;

-- COPY FROM of plaintext CSV into declared columns encrypts each field;
-- an envelope in the input is kept as it is, which is how restores work.
COPY declared (id, name, birth, notes) FROM STDIN WITH (FORMAT csv);
10,Carla Díaz,1980-01-15,"{""x"": true}"
11,,,
\.
INSERT INTO declared (id, name) SELECT 12, name FROM declared WHERE id = 1;
SELECT id, hipaa_guard.decrypt(name), hipaa_guard.decrypt(birth), hipaa_guard.decrypt(notes)
  FROM declared WHERE id >= 10 ORDER BY id;
SELECT (SELECT name::text FROM declared WHERE id = 12) = (SELECT name::text FROM declared WHERE id = 1) AS copied_unchanged;

-- Binary COPY round-trips the stored bytes.
\getenv abs_builddir PG_ABS_BUILDDIR
\set binary_file :abs_builddir '/results/declared.bin'
COPY declared TO :'binary_file' WITH (FORMAT binary);
CREATE TABLE declared_copy (LIKE declared);
COPY declared_copy FROM :'binary_file' WITH (FORMAT binary);
SELECT count(*) AS rows, count(*) FILTER (WHERE a.name::text IS DISTINCT FROM b.name::text) AS changed
  FROM declared a JOIN declared_copy b USING (id);

-- Text COPY round-trips the envelopes unchanged, without encrypting again.
\set text_file :abs_builddir '/results/declared.txt'
COPY declared TO :'text_file';
TRUNCATE declared_copy;
COPY declared_copy FROM :'text_file';
SELECT count(*) AS rows, count(*) FILTER (WHERE a.name::text IS DISTINCT FROM b.name::text
                                              OR a.birth::text IS DISTINCT FROM b.birth::text
                                              OR a.notes::text IS DISTINCT FROM b.notes::text
                                              OR a.scan::text IS DISTINCT FROM b.scan::text) AS changed
  FROM declared a JOIN declared_copy b USING (id);

-- Send and receive are defined for every type.
SELECT typname, typsend <> 0 AS has_send, typreceive <> 0 AS has_receive, typstorage
  FROM pg_type WHERE typnamespace = 'hipaa_guard'::regnamespace AND typname LIKE 'encrypted\_%' AND typtype = 'b'
 ORDER BY typname;

-- Large values go to TOAST and come back whole.
CREATE TABLE large_values (id int, v hipaa_guard.encrypted_text('phi'));
INSERT INTO large_values VALUES (1, repeat('x', 50 * 1024 * 1024)::text);
SELECT octet_length(hipaa_guard.decrypt(v)) AS plaintext_bytes,
       pg_column_size(v) > 50 * 1024 * 1024 AS stored_uncompressed
  FROM large_values;
DROP TABLE large_values;

-- Many sizes in one loop, no size mishandled at a block boundary.
DO $$
BEGIN
    FOR n IN 0..4200 BY 97 LOOP
        IF hipaa_guard.decrypt(hipaa_guard.encrypt(repeat('y', n), 'phi')) <> repeat('y', n) THEN
            RAISE EXCEPTION 'round trip failed at % bytes', n;
        END IF;
    END LOOP;
END
$$;
