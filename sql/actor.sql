--
-- The actor: signing keys, set_actor() with HS256 tokens, every rejection,
-- the actor's lifetime, privileges and hipaa_guard.require_mfa.
--
-- Tokens are minted here with pgcrypto's hmac() and base64url built from
-- encode(), the way any JWT library builds them, from the secret that
-- signing_secret() returns.
--
SET client_min_messages = warning;
CREATE EXTENSION pgcrypto;
DROP ROLE IF EXISTS regress_actor_app, regress_actor_admin, regress_actor_nobody;
CREATE ROLE regress_actor_app IN ROLE hipaa_app, hipaa_clinician;
CREATE ROLE regress_actor_admin IN ROLE hipaa_admin;
CREATE ROLE regress_actor_nobody;

SET hipaa_guard.token_issuer = 'https://issuer.example';
SET hipaa_guard.token_audience = 'hipaa-guard-test';

-- Signing keys are keyring keys of their own kind.
SELECT hipaa_guard.create_signing_key('app') > 0 AS created;
SELECT hipaa_guard.create_signing_key('other') > 0 AS created;
SELECT hipaa_guard.create_key('actor_phi') > 0 AS created;
SELECT name, kind, state FROM hipaa_guard.keys WHERE name IN ('app', 'other', 'actor_phi') ORDER BY name;

-- The secret is base64url of 32 bytes, the same on every call.
SELECT length(hipaa_guard.signing_secret('app')) AS secret_length,
       hipaa_guard.signing_secret('app') ~ '^[A-Za-z0-9_-]{43}$' AS base64url,
       hipaa_guard.signing_secret('app') = hipaa_guard.signing_secret('app') AS stable,
       hipaa_guard.signing_secret('app') <> hipaa_guard.signing_secret('other') AS per_key;
CREATE TABLE signing_secrets AS
SELECT name, decode(translate(hipaa_guard.signing_secret(name), '-_', '+/') || '=', 'base64') AS secret
  FROM (VALUES ('app'), ('other')) AS k(name);
GRANT SELECT ON signing_secrets TO PUBLIC;

-- Token helpers: base64url, HS256, and default header and claims.
CREATE FUNCTION b64url(data bytea) RETURNS text LANGUAGE sql IMMUTABLE
    RETURN rtrim(translate(encode(data, 'base64'), E'+/\n', '-_'), '=');
CREATE FUNCTION b64url(data text) RETURNS text LANGUAGE sql IMMUTABLE
    RETURN b64url(convert_to(data, 'UTF8'));
CREATE FUNCTION mint_parts(header_part text, payload_part text, key text DEFAULT 'app',
                           algorithm text DEFAULT 'sha256') RETURNS text LANGUAGE sql STABLE
    RETURN header_part || '.' || payload_part || '.' ||
           b64url(hmac(convert_to(header_part || '.' || payload_part, 'UTF8'),
                       (SELECT s.secret FROM signing_secrets s WHERE s.name = key), algorithm));
CREATE FUNCTION mint(header jsonb, claims jsonb, key text DEFAULT 'app') RETURNS text
    LANGUAGE sql STABLE
    RETURN mint_parts(b64url(header::text), b64url(claims::text), key);
CREATE FUNCTION epoch(seconds_from_now integer DEFAULT 0) RETURNS bigint LANGUAGE sql STABLE
    RETURN extract(epoch FROM now())::bigint + seconds_from_now;
CREATE FUNCTION header(extra jsonb DEFAULT '{}') RETURNS jsonb LANGUAGE sql IMMUTABLE
    RETURN '{"alg": "HS256", "typ": "JWT", "kid": "app"}'::jsonb || extra;
CREATE FUNCTION claims(extra jsonb DEFAULT '{}') RETURNS jsonb LANGUAGE sql STABLE
    RETURN jsonb_build_object('sub', 'alice@example.org', 'iss', 'https://issuer.example',
                              'aud', 'hipaa-guard-test', 'exp', epoch(300),
                              'roles', '["clinician", "nurse"]'::jsonb, 'purpose', 'treatment')
           || extra;
CREATE FUNCTION token(extra_claims jsonb DEFAULT '{}', extra_header jsonb DEFAULT '{}') RETURNS text
    LANGUAGE sql STABLE
    RETURN mint(header(extra_header), claims(extra_claims));
-- Set an actor whose token has the given "amr" and return actor_mfa().
CREATE FUNCTION mfa_of(amr jsonb) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    PERFORM hipaa_guard.set_actor(token(jsonb_build_object('amr', amr)));
    RETURN hipaa_guard.actor_mfa();
END
$$;
-- Run set_actor() and return its SQLSTATE, message and detail, or the actor.
CREATE FUNCTION try_token(token text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    detail text;
BEGIN
    RETURN 'actor ' || hipaa_guard.set_actor(token);
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
    RETURN SQLSTATE || ': ' || SQLERRM || ': ' || detail;
END
$$;
-- The same for any statement.
CREATE FUNCTION error_of_statement(query text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    detail text;
BEGIN
    EXECUTE query;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
    RETURN SQLSTATE || ': ' || SQLERRM || coalesce(': ' || nullif(detail, ''), '');
END
$$;

-- regress_actor_app: the application's login, which presents tokens.
SET ROLE regress_actor_app;

-- A valid token sets the actor until the end of the transaction.
BEGIN;
SELECT hipaa_guard.set_actor(token()) AS actor_id;
SELECT hipaa_guard.actor(), hipaa_guard.actor_roles(), hipaa_guard.actor_purpose(),
       hipaa_guard.actor_mfa();
COMMIT;
SELECT hipaa_guard.actor() = session_user AS login_after_commit,
       hipaa_guard.actor_roles() AS roles, hipaa_guard.actor_purpose() IS NULL AS no_purpose;
BEGIN;
SELECT hipaa_guard.set_actor(token()) AS actor_id;
ROLLBACK;
SELECT hipaa_guard.actor() = session_user AS login_after_rollback;
BEGIN;
SELECT hipaa_guard.set_actor(token()) AS actor_id;
SELECT hipaa_guard.reset_actor();
SELECT hipaa_guard.actor() = session_user AS login_after_reset;
-- A new token replaces the actor.
SELECT hipaa_guard.set_actor(token('{"sub": "bob@example.org"}', '{}')) AS actor_id;
SELECT hipaa_guard.set_actor(token('{"sub": "carol@example.org", "roles": []}')) AS actor_id;
SELECT hipaa_guard.actor(), hipaa_guard.actor_roles(), hipaa_guard.actor_purpose();
COMMIT;

-- Outside a transaction block the actor lasts one statement, with a warning.
SELECT hipaa_guard.set_actor(token()) AS actor_id;
SELECT hipaa_guard.actor() = session_user AS login_next_statement;

-- Without a token the login role is the actor.
SELECT hipaa_guard.actor() = session_user AS direct_login, hipaa_guard.actor_mfa() AS mfa;

-- Tokens that are accepted: leeway, nbf, an audience list, no roles or
-- purpose, typ in another case, unknown claims and header parameters.
BEGIN;
SELECT label, try_token(t) AS result
  FROM (VALUES
    (1, 'expired 10 s ago, within the leeway', token(jsonb_build_object('exp', epoch(-10)))),
    (2, 'nbf 10 s ahead, within the leeway', token(jsonb_build_object('nbf', epoch(10)))),
    (3, 'nbf passed', token(jsonb_build_object('nbf', epoch(-100)))),
    (4, 'fractional exp', token(jsonb_build_object('exp', epoch(300) + 0.5))),
    (5, 'aud array with ours', token('{"aud": ["other", "hipaa-guard-test"]}')),
    (6, 'no roles, no purpose', mint(header(), claims() - 'roles' - 'purpose')),
    (7, 'typ in lower case', token('{}', '{"typ": "jwt"}')),
    (8, 'no typ', mint(header() - 'typ', claims())),
    (9, 'unknown claim and header parameter', token('{"jti": "x1", "email": {"a": 1}}', '{"x5t": "abc"}')),
    (10, 'escaped slash in iss', mint_parts(b64url(header()::text),
          b64url(replace(claims()::text, 'https://', 'https:\/\/')))),
    (11, 'non-ASCII subject', token('{"sub": "José"}')),
    (12, 'brackets inside a string', token(jsonb_build_object('note', repeat('[', 20))))
  ) AS cases(n, label, t)
 ORDER BY n;
COMMIT;

-- Every rejection: 28000, one message, a detail naming the reason and
-- never the token.
SELECT label, try_token(t) AS result
  FROM (VALUES
    (1, 'expired', token(jsonb_build_object('exp', epoch(-60)))),
    (2, 'nbf in the future', token(jsonb_build_object('nbf', epoch(120)))),
    (3, 'wrong iss', token('{"iss": "https://other.example"}')),
    (4, 'no iss', mint(header(), claims() - 'iss')),
    (5, 'iss not a string', token('{"iss": 1}')),
    (6, 'wrong aud', token('{"aud": "other"}')),
    (7, 'aud array without ours', token('{"aud": ["other", "hipaa"]}')),
    (8, 'no aud', mint(header(), claims() - 'aud')),
    (9, 'aud a number', token('{"aud": 7}')),
    (10, 'alg none', b64url('{"alg":"none","typ":"JWT"}') || '.' || b64url(claims()::text) || '.'),
    (11, 'alg HS384', mint_parts(b64url(header('{"alg": "HS384"}')::text), b64url(claims()::text), 'app', 'sha384')),
    (12, 'alg RS256', token('{}', '{"alg": "RS256"}')),
    (13, 'alg in lower case', token('{}', '{"alg": "hs256"}')),
    (14, 'no alg', mint(header() - 'alg', claims())),
    (15, 'alg not a string', token('{}', '{"alg": ["HS256"]}')),
    (16, 'typ not JWT', token('{}', '{"typ": "at+jwt"}')),
    (17, 'crit', token('{}', '{"crit": ["exp"]}')),
    (18, 'one signature character changed',
         (SELECT overlay(t2 PLACING CASE WHEN substr(t2, length(t2) - 20, 1) = 'A' THEN 'B' ELSE 'A' END
                         FROM length(t2) - 20 FOR 1) FROM token() AS t2)),
    (19, 'signed with another key', mint(header(), claims(), 'other')),
    (20, 'payload changed after signing',
         (SELECT split_part(t2, '.', 1) || '.' || b64url(claims('{"sub": "mallory"}')::text) || '.' || split_part(t2, '.', 3)
            FROM token() AS t2)),
    (21, 'signature too short', (SELECT left(t2, length(t2) - 3) FROM token() AS t2)),
    (22, 'two parts', (SELECT split_part(t2, '.', 1) || '.' || split_part(t2, '.', 2) FROM token() AS t2)),
    (23, 'four parts', token() || '.x'),
    (24, 'empty string', ''),
    (25, 'padding in the header', translate(encode(convert_to(header()::text, 'UTF8'), 'base64'), E'+/\n', '-_')
                                  || '.' || b64url(claims()::text) || '.x'),
    (26, 'standard base64 in the payload', mint_parts(b64url(header()::text), b64url(claims()::text) || '+')),
    (27, 'payload not JSON', mint_parts(b64url(header()::text), b64url('{"sub": "alice", "exp": '))),
    (28, 'payload an array', mint_parts(b64url(header()::text), b64url('[1, 2]'))),
    (29, 'header not JSON', mint_parts(b64url('HS256'), b64url(claims()::text))),
    (30, 'payload not UTF-8', mint_parts(b64url(header()::text), b64url('\x7b22737562223a22ff227d'::bytea))),
    (31, 'sub twice', mint_parts(b64url(header()::text),
         b64url(rtrim(claims()::text, '}') || ', "sub": "mallory"}'))),
    (32, 'no sub', mint(header(), claims() - 'sub')),
    (33, 'empty sub', token('{"sub": ""}')),
    (34, 'sub a number', token('{"sub": 42}')),
    (35, 'sub with a line break', token(jsonb_build_object('sub', E'alice\nroot'))),
    (36, 'no exp', mint(header(), claims() - 'exp')),
    (37, 'exp a string', token(jsonb_build_object('exp', epoch(300)::text))),
    (38, 'nbf null', token('{"nbf": null}')),
    (39, 'roles a string', token('{"roles": "clinician"}')),
    (40, 'roles with a number', token('{"roles": ["clinician", 1]}')),
    (41, 'amr an object', token('{"amr": {"pwd": true}}')),
    (42, 'purpose an array', token('{"purpose": ["treatment"]}')),
    (43, 'nested too deep', mint_parts(b64url(header()::text),
          b64url(rtrim(claims()::text, '}') || ', "deep": ' || repeat('[', 17) || repeat(']', 17) || '}'))),
    (44, 'unknown kid', token('{}', '{"kid": "nosuchkey"}')),
    (45, 'kid naming a data key', token('{}', '{"kid": "actor_phi"}')),
    (46, 'kid not a string', token('{}', '{"kid": 1}')),
    (47, 'kid longer than a key name', token('{}', jsonb_build_object('kid', repeat('k', 200)))),
    (48, 'no kid and no hipaa_guard.token_signing_key', mint(header() - 'kid', claims())),
    (49, 'over 8192 bytes', token(jsonb_build_object('padding', repeat('x', 8200)))),
    (50, 'null', NULL)
  ) AS cases(n, label, t)
 ORDER BY n;

-- A rejected token leaves no actor, also after a good one.
BEGIN;
SELECT hipaa_guard.set_actor(token()) AS actor_id;
SAVEPOINT before_bad_token;
SELECT hipaa_guard.set_actor(token('{"aud": "other"}'));
ROLLBACK TO SAVEPOINT before_bad_token;
SELECT hipaa_guard.actor() = session_user AS login_after_rejected_token;
COMMIT;
-- Rolling back the subtransaction that set the actor clears it; releasing
-- the savepoint keeps it.
BEGIN;
SAVEPOINT s1;
SELECT hipaa_guard.set_actor(token()) AS actor_id;
ROLLBACK TO SAVEPOINT s1;
SELECT hipaa_guard.actor() = session_user AS login_after_savepoint_rollback;
SAVEPOINT s2;
SELECT hipaa_guard.set_actor(token()) AS actor_id;
RELEASE SAVEPOINT s2;
SELECT hipaa_guard.actor() AS actor_after_release;
COMMIT;

-- Neither SET nor set_config() can name an actor: the prefix is reserved,
-- and the actor is not a setting.
BEGIN;
SELECT hipaa_guard.set_actor(token()) AS actor_id;
SELECT error_of_statement($$SET hipaa_guard.actor = 'mallory'$$) AS set_actor_setting;
SELECT error_of_statement($$SELECT set_config('hipaa_guard.actor', 'mallory', true)$$) AS set_config_actor;
SELECT hipaa_guard.actor() AS actor_unchanged;
COMMIT;
SET hipaa_guard.actor = 'mallory';
SELECT hipaa_guard.actor() = session_user AS login_unchanged;

-- The application cannot change how tokens are checked.
SELECT error_of_statement($$SET hipaa_guard.token_issuer = 'https://mallory.example'$$) AS set_issuer;
SELECT error_of_statement($$SET hipaa_guard.token_leeway = 100000$$) AS set_leeway;
SELECT error_of_statement($$SET hipaa_guard.require_mfa = off$$) AS set_require_mfa;
RESET ROLE;

-- Settings, as superuser: leeway 0, a default signing key, destroyed and
-- missing keys, and no issuer or audience (fail closed, 55000).
BEGIN;
SET hipaa_guard.token_leeway = 0;
SELECT try_token(token(jsonb_build_object('exp', epoch(-10)))) AS leeway_0;
SELECT try_token(token(jsonb_build_object('nbf', epoch(10)))) AS leeway_0_nbf;
RESET hipaa_guard.token_leeway;
SET hipaa_guard.token_signing_key = 'app';
SELECT try_token(mint(header() - 'kid', claims())) AS default_key;
SELECT try_token(mint(header() - 'kid', claims(), 'other')) AS default_key_other_signature;
SET hipaa_guard.token_signing_key = 'nosuchkey';
SELECT try_token(mint(header() - 'kid', claims())) AS default_key_missing;
RESET hipaa_guard.token_signing_key;
SELECT hipaa_guard.create_signing_key('retired') > 0 AS created;
INSERT INTO signing_secrets
SELECT 'retired', decode(translate(hipaa_guard.signing_secret('retired'), '-_', '+/') || '=', 'base64');
SELECT try_token(mint(header('{"kid": "retired"}'), claims(), 'retired')) AS before_destroy;
SELECT hipaa_guard.destroy_key('retired');
SELECT try_token(mint(header('{"kid": "retired"}'), claims(), 'retired')) AS after_destroy;
RESET hipaa_guard.token_issuer;
SELECT try_token(token()) AS no_issuer;
SET hipaa_guard.token_issuer = 'https://issuer.example';
RESET hipaa_guard.token_audience;
SELECT try_token(token()) AS no_audience;
SET hipaa_guard.token_audience = 'hipaa-guard-test';
COMMIT;

-- Signing keys sign tokens only.
SELECT error_of_statement($$SELECT hipaa_guard.rotate_key('app')$$) AS rotate;
SELECT error_of_statement($$SELECT hipaa_guard.encrypt('x', 'app')$$) AS encrypt;
SELECT error_of_statement($$SELECT hipaa_guard.blind_index('x', 'app')$$) AS blind_index;
SELECT error_of_statement($$SELECT hipaa_guard.pseudonym('x', 'app')$$) AS pseudonym;
SELECT error_of_statement($$SELECT hipaa_guard.signing_secret('actor_phi')$$) AS secret_of_data_key;
SELECT error_of_statement($$SELECT hipaa_guard.signing_secret('nosuchkey')$$) AS secret_of_missing_key;
SELECT error_of_statement($$SELECT hipaa_guard.create_signing_key('bad name')$$) AS bad_name;
SELECT error_of_statement($$SELECT hipaa_guard.create_signing_key('app')$$) AS duplicate;

-- regress_actor_admin: creates signing keys, cannot read their secrets,
-- not even when granted EXECUTE.
SET ROLE regress_actor_admin;
SELECT hipaa_guard.create_signing_key('admin_signing') > 0 AS created;
SELECT error_of_statement($$SELECT hipaa_guard.signing_secret('app')$$) AS signing_secret;
SELECT error_of_statement($$SELECT hipaa_guard.set_actor('x.y.z')$$) AS set_actor;
RESET ROLE;
GRANT EXECUTE ON FUNCTION hipaa_guard.signing_secret(text) TO regress_actor_admin;
SET ROLE regress_actor_admin;
SELECT error_of_statement($$SELECT hipaa_guard.signing_secret('app')$$) AS signing_secret_granted;
RESET ROLE;
REVOKE EXECUTE ON FUNCTION hipaa_guard.signing_secret(text) FROM regress_actor_admin;

-- regress_actor_nobody: no set_actor(); reads its own actor, the login.
SET ROLE regress_actor_nobody;
SELECT error_of_statement(format('SELECT hipaa_guard.set_actor(%L)', token())) AS set_actor;
SELECT hipaa_guard.actor() = session_user AS direct_login, hipaa_guard.actor_roles() AS roles,
       hipaa_guard.actor_mfa() AS mfa, hipaa_guard.actor_mfa_ok() AS mfa_ok;
SELECT hipaa_guard.reset_actor();
RESET ROLE;

-- Privileges and properties of the actor functions.
SELECT p.oid::regprocedure AS function, p.provolatile AS volatility, p.proparallel AS parallel,
       has_function_privilege('regress_actor_nobody', p.oid, 'EXECUTE') AS nobody,
       has_function_privilege('regress_actor_app', p.oid, 'EXECUTE') AS app,
       has_function_privilege('regress_actor_admin', p.oid, 'EXECUTE') AS admin
  FROM pg_proc p
 WHERE p.pronamespace = 'hipaa_guard'::regnamespace
   AND (p.proname LIKE '%actor%' OR p.proname LIKE '%signing%')
 ORDER BY p.oid::regprocedure::text;

-- hipaa_guard.require_mfa: decrypt() and actor_mfa_ok() need a second factor.
CREATE TABLE actor_charts (id int PRIMARY KEY, note hipaa_guard.encrypted_text('actor_phi'));
INSERT INTO actor_charts VALUES (1, 'allergic to penicillin'::text);
GRANT SELECT ON actor_charts TO regress_actor_app;
SET hipaa_guard.require_mfa = on;
SET ROLE regress_actor_app;
-- Which "amr" values show a second factor.
BEGIN;
SELECT amr, mfa_of(amr) AS mfa
  FROM (VALUES ('["pwd"]'::jsonb), ('["otp"]'), ('["hwk"]'), ('["pwd", "kba"]'), ('["otp", "sms"]'),
               ('["pwd", "otp"]'), ('["hwk", "pin"]'), ('["swk", "fpt"]'), ('["mfa"]'), ('["pwd", "mfa"]'),
               ('["mca"]'), ('["pwd", "mca", "geo", "rba", "user", "wia"]'), ('["PWD", "OTP"]'), ('[]')) AS a(amr);
COMMIT;
-- A direct login without a client certificate: no second factor.
SELECT hipaa_guard.actor_mfa() AS mfa, hipaa_guard.actor_mfa_ok() AS mfa_ok;
SELECT error_of_statement('SELECT hipaa_guard.decrypt(note) FROM actor_charts') AS decrypt_direct_login;
BEGIN;
SELECT hipaa_guard.set_actor(token('{"amr": ["pwd"]}')) AS actor_id;
SELECT hipaa_guard.actor_mfa() AS mfa, hipaa_guard.actor_mfa_ok() AS mfa_ok;
SELECT error_of_statement('SELECT hipaa_guard.decrypt(note) FROM actor_charts') AS decrypt_password_only;
SELECT error_of_statement($$SELECT hipaa_guard.decrypt(note, '1') FROM actor_charts$$) AS decrypt_bound_password_only;
SELECT hipaa_guard.set_actor(token('{"amr": ["pwd", "otp"]}')) AS actor_id;
SELECT hipaa_guard.actor_mfa() AS mfa, hipaa_guard.actor_mfa_ok() AS mfa_ok;
SELECT hipaa_guard.decrypt(note) FROM actor_charts;
COMMIT;
-- Reading rows stays possible; only plaintext needs the second factor.
SELECT id, hipaa_guard.key_name(note) FROM actor_charts;
RESET ROLE;
SET hipaa_guard.require_mfa = off;
SET ROLE regress_actor_app;
SELECT hipaa_guard.actor_mfa() AS mfa, hipaa_guard.actor_mfa_ok() AS mfa_ok;
SELECT hipaa_guard.decrypt(note) FROM actor_charts;
RESET ROLE;

DROP FUNCTION mfa_of(jsonb), try_token(text), error_of_statement(text), token(jsonb, jsonb), claims(jsonb),
    header(jsonb), epoch(integer), mint(jsonb, jsonb, text), mint_parts(text, text, text, text),
    b64url(text), b64url(bytea);
DROP TABLE actor_charts, signing_secrets;
DROP EXTENSION pgcrypto;
DROP OWNED BY regress_actor_app, regress_actor_admin, regress_actor_nobody;
DROP ROLE regress_actor_app, regress_actor_admin, regress_actor_nobody;
RESET hipaa_guard.token_issuer;
RESET hipaa_guard.token_audience;
