
-- The actor: the end user that an application sharing one login acts for,
-- verified from an HS256 JSON Web Token signed under a signing key.  The
-- actor is kept in C, not in a setting, as src/actor.c explains.
CREATE FUNCTION @extschema@.create_signing_key(name text) RETURNS integer
    AS 'MODULE_PATHNAME', 'hg_create_signing_key' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.create_signing_key(text) IS 'Create a key that signs actor tokens (its name is the tokens'' "kid"); returns its id';

CREATE FUNCTION @extschema@.signing_secret(name text) RETURNS text
    AS 'MODULE_PATHNAME', 'hg_signing_secret' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.signing_secret(text) IS 'The HS256 secret of a signing key in base64url, for the token issuer; superusers only, and every call is logged';

CREATE FUNCTION @extschema@.set_actor(token text) RETURNS text
    AS 'MODULE_PATHNAME', 'hg_set_actor' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.set_actor(text) IS 'Verify an actor token and act for its subject until the end of the transaction; returns the actor id';

CREATE FUNCTION @extschema@.reset_actor() RETURNS void
    AS 'MODULE_PATHNAME', 'hg_reset_actor' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.reset_actor() IS 'Clear the actor set by set_actor()';

CREATE FUNCTION @extschema@.actor() RETURNS text
    AS 'MODULE_PATHNAME', 'hg_actor' LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION @extschema@.actor() IS 'The actor id: the token''s subject, or without a token the login role';

CREATE FUNCTION @extschema@.actor_roles() RETURNS text[]
    AS 'MODULE_PATHNAME', 'hg_actor_roles' LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION @extschema@.actor_roles() IS 'The "roles" claim of the actor''s token; empty without a token';

CREATE FUNCTION @extschema@.actor_purpose() RETURNS text
    AS 'MODULE_PATHNAME', 'hg_actor_purpose' LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION @extschema@.actor_purpose() IS 'The "purpose" claim of the actor''s token, or NULL';

CREATE FUNCTION @extschema@.actor_mfa() RETURNS boolean
    AS 'MODULE_PATHNAME', 'hg_actor_mfa' LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION @extschema@.actor_mfa() IS 'Whether the actor authenticated with a second factor: the token''s "amr", or a client certificate for a direct login';

CREATE FUNCTION @extschema@.actor_mfa_ok() RETURNS boolean
    AS 'MODULE_PATHNAME', 'hg_actor_mfa_ok' LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION @extschema@.actor_mfa_ok() IS 'True unless hipaa_guard.require_mfa is on and the actor has no second factor';
