
-- Encrypted types.  Text and binary I/O carry the envelope only, and the output
-- function never decrypts.  The type modifier is the column's key id.
CREATE FUNCTION @extschema@.encrypted_typmod_in(cstring[]) RETURNS integer
    AS 'MODULE_PATHNAME', 'encrypted_typmod_in' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.encrypted_typmod_out(integer) RETURNS cstring
    AS 'MODULE_PATHNAME', 'encrypted_typmod_out' LANGUAGE C STABLE STRICT PARALLEL SAFE;

CREATE TYPE @extschema@.encrypted_text;
-- Given a column's key (COPY FROM), input encrypts plaintext.  PostgreSQL
-- requires input functions to be declared at most STABLE.
CREATE FUNCTION @extschema@.encrypted_text_in(cstring, oid, integer) RETURNS @extschema@.encrypted_text
    AS 'MODULE_PATHNAME', 'encrypted_text_in' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.encrypted_text_out(@extschema@.encrypted_text) RETURNS cstring
    AS 'MODULE_PATHNAME', 'encrypted_text_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.encrypted_text_recv(internal, oid, integer) RETURNS @extschema@.encrypted_text
    AS 'MODULE_PATHNAME', 'encrypted_text_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.encrypted_text_send(@extschema@.encrypted_text) RETURNS bytea
    AS 'MODULE_PATHNAME', 'encrypted_text_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE TYPE @extschema@.encrypted_text (
    INPUT = @extschema@.encrypted_text_in,
    OUTPUT = @extschema@.encrypted_text_out,
    RECEIVE = @extschema@.encrypted_text_recv,
    SEND = @extschema@.encrypted_text_send,
    TYPMOD_IN = @extschema@.encrypted_typmod_in,
    TYPMOD_OUT = @extschema@.encrypted_typmod_out,
    INTERNALLENGTH = VARIABLE,
    STORAGE = external,
    CATEGORY = 'U'
);
COMMENT ON TYPE @extschema@.encrypted_text IS 'AES-256-GCM encrypted text; declare the key as encrypted_text(''key_name'')';

-- Assignment cast: plaintext written to a column encrypts under its key.
CREATE FUNCTION @extschema@.encrypted_text(text, integer, boolean) RETURNS @extschema@.encrypted_text
    AS 'MODULE_PATHNAME', 'encrypted_text_cast' LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;
CREATE CAST (text AS @extschema@.encrypted_text) WITH FUNCTION @extschema@.encrypted_text(text, integer, boolean) AS ASSIGNMENT;

CREATE FUNCTION @extschema@.encrypt(value text, key_name text) RETURNS @extschema@.encrypted_text
    AS 'MODULE_PATHNAME', 'encrypted_text_encrypt' LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION @extschema@.encrypt(text, text) IS 'Encrypt a value under the named data key; NULL stays NULL';

CREATE FUNCTION @extschema@.decrypt(value @extschema@.encrypted_text) RETURNS text
    AS 'MODULE_PATHNAME', 'encrypted_text_decrypt' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.decrypt(@extschema@.encrypted_text) IS 'Decrypt and authenticate a value';

CREATE FUNCTION @extschema@.decrypt(value @extschema@.encrypted_text, row_key text) RETURNS text
    AS 'MODULE_PATHNAME', 'encrypted_text_decrypt_bound' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.decrypt(@extschema@.encrypted_text, text) IS 'Decrypt a value, failing unless it is bound to the given row key';

CREATE FUNCTION @extschema@.key_version(value @extschema@.encrypted_text) RETURNS integer
    AS 'MODULE_PATHNAME', 'encrypted_key_version' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.key_name(value @extschema@.encrypted_text) RETURNS text
    AS 'MODULE_PATHNAME', 'encrypted_key_name' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.row_key(value @extschema@.encrypted_text) RETURNS text
    AS 'MODULE_PATHNAME', 'encrypted_row_key' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.needs_reencrypt(value @extschema@.encrypted_text) RETURNS boolean
    AS 'MODULE_PATHNAME', 'encrypted_needs_reencrypt' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.reencrypt_value(value @extschema@.encrypted_text) RETURNS @extschema@.encrypted_text
    AS 'MODULE_PATHNAME', 'encrypted_reencrypt_value' LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;

CREATE TYPE @extschema@.encrypted_bytea;
-- Given a column's key (COPY FROM), input encrypts plaintext.  PostgreSQL
-- requires input functions to be declared at most STABLE.
CREATE FUNCTION @extschema@.encrypted_bytea_in(cstring, oid, integer) RETURNS @extschema@.encrypted_bytea
    AS 'MODULE_PATHNAME', 'encrypted_bytea_in' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.encrypted_bytea_out(@extschema@.encrypted_bytea) RETURNS cstring
    AS 'MODULE_PATHNAME', 'encrypted_bytea_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.encrypted_bytea_recv(internal, oid, integer) RETURNS @extschema@.encrypted_bytea
    AS 'MODULE_PATHNAME', 'encrypted_bytea_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.encrypted_bytea_send(@extschema@.encrypted_bytea) RETURNS bytea
    AS 'MODULE_PATHNAME', 'encrypted_bytea_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE TYPE @extschema@.encrypted_bytea (
    INPUT = @extschema@.encrypted_bytea_in,
    OUTPUT = @extschema@.encrypted_bytea_out,
    RECEIVE = @extschema@.encrypted_bytea_recv,
    SEND = @extschema@.encrypted_bytea_send,
    TYPMOD_IN = @extschema@.encrypted_typmod_in,
    TYPMOD_OUT = @extschema@.encrypted_typmod_out,
    INTERNALLENGTH = VARIABLE,
    STORAGE = external,
    CATEGORY = 'U'
);
COMMENT ON TYPE @extschema@.encrypted_bytea IS 'AES-256-GCM encrypted bytea; declare the key as encrypted_bytea(''key_name'')';

-- Assignment cast: plaintext written to a column encrypts under its key.
CREATE FUNCTION @extschema@.encrypted_bytea(bytea, integer, boolean) RETURNS @extschema@.encrypted_bytea
    AS 'MODULE_PATHNAME', 'encrypted_bytea_cast' LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;
CREATE CAST (bytea AS @extschema@.encrypted_bytea) WITH FUNCTION @extschema@.encrypted_bytea(bytea, integer, boolean) AS ASSIGNMENT;

CREATE FUNCTION @extschema@.encrypt(value bytea, key_name text) RETURNS @extschema@.encrypted_bytea
    AS 'MODULE_PATHNAME', 'encrypted_bytea_encrypt' LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION @extschema@.encrypt(bytea, text) IS 'Encrypt a value under the named data key; NULL stays NULL';

CREATE FUNCTION @extschema@.decrypt(value @extschema@.encrypted_bytea) RETURNS bytea
    AS 'MODULE_PATHNAME', 'encrypted_bytea_decrypt' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.decrypt(@extschema@.encrypted_bytea) IS 'Decrypt and authenticate a value';

CREATE FUNCTION @extschema@.decrypt(value @extschema@.encrypted_bytea, row_key text) RETURNS bytea
    AS 'MODULE_PATHNAME', 'encrypted_bytea_decrypt_bound' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.decrypt(@extschema@.encrypted_bytea, text) IS 'Decrypt a value, failing unless it is bound to the given row key';

CREATE FUNCTION @extschema@.key_version(value @extschema@.encrypted_bytea) RETURNS integer
    AS 'MODULE_PATHNAME', 'encrypted_key_version' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.key_name(value @extschema@.encrypted_bytea) RETURNS text
    AS 'MODULE_PATHNAME', 'encrypted_key_name' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.row_key(value @extschema@.encrypted_bytea) RETURNS text
    AS 'MODULE_PATHNAME', 'encrypted_row_key' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.needs_reencrypt(value @extschema@.encrypted_bytea) RETURNS boolean
    AS 'MODULE_PATHNAME', 'encrypted_needs_reencrypt' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.reencrypt_value(value @extschema@.encrypted_bytea) RETURNS @extschema@.encrypted_bytea
    AS 'MODULE_PATHNAME', 'encrypted_reencrypt_value' LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;

CREATE TYPE @extschema@.encrypted_date;
-- Given a column's key (COPY FROM), input encrypts plaintext.  PostgreSQL
-- requires input functions to be declared at most STABLE.
CREATE FUNCTION @extschema@.encrypted_date_in(cstring, oid, integer) RETURNS @extschema@.encrypted_date
    AS 'MODULE_PATHNAME', 'encrypted_date_in' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.encrypted_date_out(@extschema@.encrypted_date) RETURNS cstring
    AS 'MODULE_PATHNAME', 'encrypted_date_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.encrypted_date_recv(internal, oid, integer) RETURNS @extschema@.encrypted_date
    AS 'MODULE_PATHNAME', 'encrypted_date_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.encrypted_date_send(@extschema@.encrypted_date) RETURNS bytea
    AS 'MODULE_PATHNAME', 'encrypted_date_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE TYPE @extschema@.encrypted_date (
    INPUT = @extschema@.encrypted_date_in,
    OUTPUT = @extschema@.encrypted_date_out,
    RECEIVE = @extschema@.encrypted_date_recv,
    SEND = @extschema@.encrypted_date_send,
    TYPMOD_IN = @extschema@.encrypted_typmod_in,
    TYPMOD_OUT = @extschema@.encrypted_typmod_out,
    INTERNALLENGTH = VARIABLE,
    STORAGE = external,
    CATEGORY = 'U'
);
COMMENT ON TYPE @extschema@.encrypted_date IS 'AES-256-GCM encrypted date; declare the key as encrypted_date(''key_name'')';

-- Assignment cast: plaintext written to a column encrypts under its key.
CREATE FUNCTION @extschema@.encrypted_date(date, integer, boolean) RETURNS @extschema@.encrypted_date
    AS 'MODULE_PATHNAME', 'encrypted_date_cast' LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;
CREATE CAST (date AS @extschema@.encrypted_date) WITH FUNCTION @extschema@.encrypted_date(date, integer, boolean) AS ASSIGNMENT;

CREATE FUNCTION @extschema@.encrypt(value date, key_name text) RETURNS @extschema@.encrypted_date
    AS 'MODULE_PATHNAME', 'encrypted_date_encrypt' LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION @extschema@.encrypt(date, text) IS 'Encrypt a value under the named data key; NULL stays NULL';

CREATE FUNCTION @extschema@.decrypt(value @extschema@.encrypted_date) RETURNS date
    AS 'MODULE_PATHNAME', 'encrypted_date_decrypt' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.decrypt(@extschema@.encrypted_date) IS 'Decrypt and authenticate a value';

CREATE FUNCTION @extschema@.decrypt(value @extschema@.encrypted_date, row_key text) RETURNS date
    AS 'MODULE_PATHNAME', 'encrypted_date_decrypt_bound' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.decrypt(@extschema@.encrypted_date, text) IS 'Decrypt a value, failing unless it is bound to the given row key';

CREATE FUNCTION @extschema@.key_version(value @extschema@.encrypted_date) RETURNS integer
    AS 'MODULE_PATHNAME', 'encrypted_key_version' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.key_name(value @extschema@.encrypted_date) RETURNS text
    AS 'MODULE_PATHNAME', 'encrypted_key_name' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.row_key(value @extschema@.encrypted_date) RETURNS text
    AS 'MODULE_PATHNAME', 'encrypted_row_key' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.needs_reencrypt(value @extschema@.encrypted_date) RETURNS boolean
    AS 'MODULE_PATHNAME', 'encrypted_needs_reencrypt' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.reencrypt_value(value @extschema@.encrypted_date) RETURNS @extschema@.encrypted_date
    AS 'MODULE_PATHNAME', 'encrypted_reencrypt_value' LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;

CREATE TYPE @extschema@.encrypted_jsonb;
-- Given a column's key (COPY FROM), input encrypts plaintext.  PostgreSQL
-- requires input functions to be declared at most STABLE.
CREATE FUNCTION @extschema@.encrypted_jsonb_in(cstring, oid, integer) RETURNS @extschema@.encrypted_jsonb
    AS 'MODULE_PATHNAME', 'encrypted_jsonb_in' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.encrypted_jsonb_out(@extschema@.encrypted_jsonb) RETURNS cstring
    AS 'MODULE_PATHNAME', 'encrypted_jsonb_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.encrypted_jsonb_recv(internal, oid, integer) RETURNS @extschema@.encrypted_jsonb
    AS 'MODULE_PATHNAME', 'encrypted_jsonb_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.encrypted_jsonb_send(@extschema@.encrypted_jsonb) RETURNS bytea
    AS 'MODULE_PATHNAME', 'encrypted_jsonb_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE TYPE @extschema@.encrypted_jsonb (
    INPUT = @extschema@.encrypted_jsonb_in,
    OUTPUT = @extschema@.encrypted_jsonb_out,
    RECEIVE = @extschema@.encrypted_jsonb_recv,
    SEND = @extschema@.encrypted_jsonb_send,
    TYPMOD_IN = @extschema@.encrypted_typmod_in,
    TYPMOD_OUT = @extschema@.encrypted_typmod_out,
    INTERNALLENGTH = VARIABLE,
    STORAGE = external,
    CATEGORY = 'U'
);
COMMENT ON TYPE @extschema@.encrypted_jsonb IS 'AES-256-GCM encrypted jsonb; declare the key as encrypted_jsonb(''key_name'')';

-- Assignment cast: plaintext written to a column encrypts under its key.
CREATE FUNCTION @extschema@.encrypted_jsonb(jsonb, integer, boolean) RETURNS @extschema@.encrypted_jsonb
    AS 'MODULE_PATHNAME', 'encrypted_jsonb_cast' LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;
CREATE CAST (jsonb AS @extschema@.encrypted_jsonb) WITH FUNCTION @extschema@.encrypted_jsonb(jsonb, integer, boolean) AS ASSIGNMENT;

CREATE FUNCTION @extschema@.encrypt(value jsonb, key_name text) RETURNS @extschema@.encrypted_jsonb
    AS 'MODULE_PATHNAME', 'encrypted_jsonb_encrypt' LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION @extschema@.encrypt(jsonb, text) IS 'Encrypt a value under the named data key; NULL stays NULL';

CREATE FUNCTION @extschema@.decrypt(value @extschema@.encrypted_jsonb) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'encrypted_jsonb_decrypt' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.decrypt(@extschema@.encrypted_jsonb) IS 'Decrypt and authenticate a value';

CREATE FUNCTION @extschema@.decrypt(value @extschema@.encrypted_jsonb, row_key text) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'encrypted_jsonb_decrypt_bound' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.decrypt(@extschema@.encrypted_jsonb, text) IS 'Decrypt a value, failing unless it is bound to the given row key';

CREATE FUNCTION @extschema@.key_version(value @extschema@.encrypted_jsonb) RETURNS integer
    AS 'MODULE_PATHNAME', 'encrypted_key_version' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.key_name(value @extschema@.encrypted_jsonb) RETURNS text
    AS 'MODULE_PATHNAME', 'encrypted_key_name' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.row_key(value @extschema@.encrypted_jsonb) RETURNS text
    AS 'MODULE_PATHNAME', 'encrypted_row_key' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.needs_reencrypt(value @extschema@.encrypted_jsonb) RETURNS boolean
    AS 'MODULE_PATHNAME', 'encrypted_needs_reencrypt' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.reencrypt_value(value @extschema@.encrypted_jsonb) RETURNS @extschema@.encrypted_jsonb
    AS 'MODULE_PATHNAME', 'encrypted_reencrypt_value' LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;

-- varchar reaches encrypted_text through the text cast function.
CREATE CAST (varchar AS @extschema@.encrypted_text)
    WITH FUNCTION @extschema@.encrypted_text(text, integer, boolean) AS ASSIGNMENT;

CREATE FUNCTION @extschema@.blind_index(value text, key_name text) RETURNS bytea
    AS 'MODULE_PATHNAME', 'hg_blind_index' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.blind_index(text, text) IS 'Keyed HMAC-SHA-256 of a value, for equality search on an encrypted column';
