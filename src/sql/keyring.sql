
-- The keyring.  Data keys are stored only wrapped under the master key.
-- Version rows are written once, then changed only in place by the C code
-- (nonce budget, rewrap, destroy), never by UPDATE.
CREATE SEQUENCE @extschema@.data_keys_key_id_seq AS integer;

CREATE TABLE @extschema@.data_keys (
    key_id integer NOT NULL DEFAULT pg_catalog.nextval('@extschema@.data_keys_key_id_seq'::pg_catalog.regclass),
    name text NOT NULL,
    kind text NOT NULL DEFAULT 'data',
    state text NOT NULL DEFAULT 'active',
    current_version integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    rotated_at timestamptz,
    destroyed_at timestamptz,
    CONSTRAINT data_keys_pkey PRIMARY KEY (key_id),
    CONSTRAINT data_keys_name_key UNIQUE (name),
    CONSTRAINT data_keys_kind_check CHECK (kind OPERATOR(pg_catalog.=) ANY (ARRAY['data', 'patient', 'signing'])),
    CONSTRAINT data_keys_state_check CHECK (state OPERATOR(pg_catalog.=) ANY (ARRAY['active', 'destroyed']))
);
ALTER SEQUENCE @extschema@.data_keys_key_id_seq OWNED BY @extschema@.data_keys.key_id;

CREATE TABLE @extschema@.data_key_versions (
    key_id integer NOT NULL,
    version integer NOT NULL,
    encryptions bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    wrapped bytea NOT NULL,
    kek_fingerprint bytea NOT NULL,
    CONSTRAINT data_key_versions_pkey PRIMARY KEY (key_id, version)
);
-- In-place writes overwrite bytes inside the stored tuple: the fixed-width
-- columns come first so that their offsets never move, and the key bytes
-- are kept inline, uncompressed.
ALTER TABLE @extschema@.data_key_versions
    ALTER COLUMN wrapped SET STORAGE PLAIN,
    ALTER COLUMN kek_fingerprint SET STORAGE PLAIN;

CREATE TABLE @extschema@.keyring_check (
    fingerprint bytea NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);

SELECT pg_catalog.pg_extension_config_dump('@extschema@.data_keys', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.data_key_versions', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.keyring_check', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.data_keys_key_id_seq', '');

COMMENT ON TABLE @extschema@.data_keys IS 'Data keys by name; the key material is in data_key_versions, wrapped';
COMMENT ON TABLE @extschema@.data_key_versions IS 'Wrapped data key versions; version 0 is the blind index key';
COMMENT ON TABLE @extschema@.keyring_check IS 'Fingerprint of the master key the keyring is wrapped under';

CREATE VIEW @extschema@.keys AS
SELECT k.name,
       k.kind,
       -- A destroy_key() whose transaction rolled back still erased the key.
       CASE WHEN v.key_erased THEN 'destroyed' ELSE k.state END AS state,
       k.current_version,
       v.versions,
       CASE WHEN v.key_erased OR k.state OPERATOR(pg_catalog.=) 'destroyed' THEN 0
            ELSE v.erased_versions END AS retired_versions,
       k.created_at AS created,
       k.rotated_at AS last_rotated,
       k.destroyed_at AS destroyed,
       v.encryptions
  FROM @extschema@.data_keys AS k
  LEFT JOIN LATERAL (
        SELECT pg_catalog.count(*) FILTER (WHERE dv.version OPERATOR(pg_catalog.>) 0) AS versions,
               pg_catalog.count(*) FILTER (WHERE dv.version OPERATOR(pg_catalog.>) 0
                                             AND dv.wrapped OPERATOR(pg_catalog.=) z.erased) AS erased_versions,
               COALESCE(pg_catalog.bool_or(dv.version OPERATOR(pg_catalog.=) 0
                                           AND dv.wrapped OPERATOR(pg_catalog.=) z.erased), false) AS key_erased,
               COALESCE(pg_catalog.sum(dv.encryptions), 0)::bigint AS encryptions
          FROM @extschema@.data_key_versions AS dv,
               (SELECT pg_catalog.decode(pg_catalog.repeat('00', 60), 'hex') AS erased) AS z
         WHERE dv.key_id OPERATOR(pg_catalog.=) k.key_id) AS v ON true;
COMMENT ON VIEW @extschema@.keys IS 'Data keys with their versions and encryption counts (an upper bound: reserved nonce budget); never key bytes';

CREATE FUNCTION @extschema@.create_key(name text) RETURNS integer
    AS 'MODULE_PATHNAME', 'hg_create_key' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.create_key(text) IS 'Create a data key; returns its id';

CREATE FUNCTION @extschema@.rotate_key(name text) RETURNS integer
    AS 'MODULE_PATHNAME', 'hg_rotate_key' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.rotate_key(text) IS 'Add a new current version to a data key; returns the version';

CREATE FUNCTION @extschema@.destroy_key(name text) RETURNS void
    AS 'MODULE_PATHNAME', 'hg_destroy_key' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.destroy_key(text) IS 'Erase a data key for good (crypto-shredding), at once and even if the transaction rolls back';

CREATE FUNCTION @extschema@.rewrap_keys() RETURNS bigint
    AS 'MODULE_PATHNAME', 'hg_rewrap_keys' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.rewrap_keys() IS 'Rewrap data keys under the current master key; returns how many versions were rewrapped';

CREATE FUNCTION @extschema@.loaded_master_key(
        OUT loaded boolean, OUT source text, OUT fingerprint text, OUT previous_fingerprint text)
    RETURNS record
    AS 'MODULE_PATHNAME', 'hg_master_key_status' LANGUAGE C VOLATILE;

-- Runs as the extension owner to read the keyring's fingerprint.
CREATE FUNCTION @extschema@.master_key_status(
        OUT loaded boolean, OUT source text, OUT fingerprint text, OUT previous_fingerprint text,
        OUT keyring_fingerprint text)
    RETURNS record
    LANGUAGE sql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT m.loaded, m.source, m.fingerprint, m.previous_fingerprint,
           (SELECT pg_catalog.encode(c.fingerprint, 'hex') FROM @extschema@.keyring_check AS c LIMIT 1)
      FROM @extschema@.loaded_master_key() AS m
$$;
COMMENT ON FUNCTION @extschema@.master_key_status() IS 'Whether the master key is loaded, from which setting, its fingerprint, and the one this database''s keyring expects';

CREATE FUNCTION @extschema@.patient_key_name(patient text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN 'patient:' OPERATOR(pg_catalog.||) patient;
COMMENT ON FUNCTION @extschema@.patient_key_name(text) IS 'Name of the per-patient key of a patient';
