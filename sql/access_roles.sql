--
-- Group roles: grant_group(), revoke_group() and role_conflicts().
-- grant_group() rejects making a role a member of both hipaa_admin and
-- hipaa_clinician, counting memberships through other roles.  A plain GRANT
-- does not check, and role_conflicts() lists what it let through.
-- role_error_of() runs a statement and returns its SQLSTATE and message.
--
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_roles_admin, regress_roles_clinician, regress_roles_ward,
    regress_roles_nurse, regress_roles_team, regress_roles_keyteam,
    regress_roles_auditor, regress_roles_app, regress_roles_nobody;

CREATE FUNCTION role_error_of(query text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE query;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;

-- The memberships of the roles of this test, without the grantor's name.
CREATE VIEW regress_roles_memberships AS
SELECT m.member::regrole AS member, m.roleid::regrole AS group_role,
       m.grantor = (SELECT oid FROM pg_roles WHERE rolname = current_user) AS granted_by_caller
  FROM pg_auth_members AS m
 WHERE m.member::regrole::text LIKE 'regress\_roles\_%'
 ORDER BY m.member::regrole::text, m.roleid::regrole::text;

-- regress_roles_admin manages keys, and regress_roles_clinician decrypts.
CREATE ROLE regress_roles_admin LOGIN;
CREATE ROLE regress_roles_clinician LOGIN;
-- regress_roles_ward is a care team role that decrypts, and
-- regress_roles_nurse is a clinician through it.
CREATE ROLE regress_roles_ward NOLOGIN;
CREATE ROLE regress_roles_nurse LOGIN IN ROLE regress_roles_ward;
-- regress_roles_team groups administrators: regress_roles_admin is in it.
CREATE ROLE regress_roles_team NOLOGIN ROLE regress_roles_admin;
-- regress_roles_keyteam is used below to give hipaa_admin behind the
-- helpers' back.
CREATE ROLE regress_roles_keyteam NOLOGIN;
CREATE ROLE regress_roles_auditor LOGIN;
CREATE ROLE regress_roles_app LOGIN;
-- regress_roles_nobody is in no group role.
CREATE ROLE regress_roles_nobody LOGIN;

-- Each group role once.
SELECT hipaa_guard.grant_group('regress_roles_admin', 'hipaa_admin');
SELECT hipaa_guard.grant_group('regress_roles_clinician', 'hipaa_clinician');
SELECT hipaa_guard.grant_group('regress_roles_ward', 'hipaa_clinician');
SELECT hipaa_guard.grant_group('regress_roles_auditor', 'hipaa_auditor');
SELECT hipaa_guard.grant_group('regress_roles_app', 'hipaa_app');
-- Granting a membership that exists changes nothing.
SELECT hipaa_guard.grant_group('regress_roles_admin', 'hipaa_admin');
SELECT * FROM regress_roles_memberships;
SELECT pg_has_role('regress_roles_nurse', 'hipaa_clinician', 'MEMBER') AS nurse_is_clinician;

-- Rejected: a member of both hipaa_admin and hipaa_clinician (0LP01).
SELECT label, role_error_of(query) AS result
  FROM (VALUES
    ('clinician made admin', $$SELECT hipaa_guard.grant_group('regress_roles_clinician', 'hipaa_admin')$$),
    ('admin made clinician', $$SELECT hipaa_guard.grant_group('regress_roles_admin', 'hipaa_clinician')$$),
    ('clinician through a team made admin', $$SELECT hipaa_guard.grant_group('regress_roles_nurse', 'hipaa_admin')$$),
    ('team role made admin', $$SELECT hipaa_guard.grant_group('regress_roles_ward', 'hipaa_admin')$$),
    ('role with an admin member made clinician', $$SELECT hipaa_guard.grant_group('regress_roles_team', 'hipaa_clinician')$$),
    ('group role into the other', $$SELECT hipaa_guard.grant_group('hipaa_admin', 'hipaa_clinician')$$)
  ) AS cases (label, query);
-- The whole message: the role that would hold both, and its path.
\set SHOW_CONTEXT never
SELECT hipaa_guard.grant_group('regress_roles_team', 'hipaa_clinician');
SELECT hipaa_guard.grant_group('regress_roles_nurse', 'hipaa_admin');
\set SHOW_CONTEXT errors

-- Rejected arguments.
SELECT label, role_error_of(query) AS result
  FROM (VALUES
    ('not a group role', $$SELECT hipaa_guard.grant_group('regress_roles_nobody', 'hipaa_purger')$$),
    ('predefined role', $$SELECT hipaa_guard.grant_group('regress_roles_nobody', 'pg_read_all_data')$$),
    ('unknown member', $$SELECT hipaa_guard.grant_group('regress_roles_missing', 'hipaa_app')$$),
    ('null member', $$SELECT hipaa_guard.grant_group(NULL, 'hipaa_app')$$),
    ('null group role', $$SELECT hipaa_guard.grant_group('regress_roles_nobody', NULL)$$),
    ('revoke, not a group role', $$SELECT hipaa_guard.revoke_group('regress_roles_nobody', 'pg_monitor')$$),
    ('revoke, unknown member', $$SELECT hipaa_guard.revoke_group('regress_roles_missing', 'hipaa_app')$$)
  ) AS cases (label, query);
-- The check needs a snapshot taken after its lock.
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT role_error_of($$SELECT hipaa_guard.grant_group('regress_roles_nobody', 'hipaa_admin')$$) AS repeatable_read;
ROLLBACK;
-- Nothing above changed a membership.
SELECT * FROM regress_roles_memberships;

-- Only superusers can call grant_group and revoke_group (42501).
SET ROLE regress_roles_admin;
SELECT role_error_of($$SELECT hipaa_guard.grant_group('regress_roles_nobody', 'hipaa_app')$$) AS admin_grants;
SELECT role_error_of($$SELECT hipaa_guard.revoke_group('regress_roles_clinician', 'hipaa_clinician')$$) AS admin_revokes;
RESET ROLE;

-- No conflicts while every grant went through the helpers.
SELECT * FROM hipaa_guard.role_conflicts() WHERE role_name::text LIKE 'regress\_roles\_%';

-- Conflicts made with plain GRANT: directly, and through an intermediate
-- role on the hipaa_admin side for a role that is a clinician through its
-- team.
GRANT hipaa_admin TO regress_roles_clinician;
GRANT hipaa_admin TO regress_roles_keyteam;
GRANT regress_roles_keyteam TO regress_roles_nurse;
SELECT * FROM hipaa_guard.role_conflicts() WHERE role_name::text LIKE 'regress\_roles\_%';

-- Members of hipaa_admin and hipaa_auditor read the conflicts, and others
-- may not.
SET ROLE regress_roles_admin;
SELECT role_name FROM hipaa_guard.role_conflicts() WHERE role_name::text LIKE 'regress\_roles\_%';
RESET ROLE;
SET ROLE regress_roles_auditor;
SELECT role_name FROM hipaa_guard.role_conflicts() WHERE role_name::text LIKE 'regress\_roles\_%';
RESET ROLE;
SET ROLE regress_roles_nobody;
SELECT role_error_of('SELECT * FROM hipaa_guard.role_conflicts()') AS nobody_reads;
RESET ROLE;
SET ROLE regress_roles_ward;
SELECT role_error_of('SELECT * FROM hipaa_guard.role_conflicts()') AS clinician_reads;
RESET ROLE;

-- revoke_group removes a direct membership.
SELECT hipaa_guard.revoke_group('regress_roles_clinician', 'hipaa_admin');
-- The nurse is a member only through other roles: REVOKE changes nothing,
-- and revoke_group warns about it.
SELECT hipaa_guard.revoke_group('regress_roles_nurse', 'hipaa_admin');
SELECT * FROM hipaa_guard.role_conflicts() WHERE role_name::text LIKE 'regress\_roles\_%';
REVOKE regress_roles_keyteam FROM regress_roles_nurse;
SELECT * FROM hipaa_guard.role_conflicts() WHERE role_name::text LIKE 'regress\_roles\_%';
SELECT hipaa_guard.revoke_group('regress_roles_app', 'hipaa_app');
-- Once regress_roles_admin has left hipaa_admin, its team may decrypt.
SELECT hipaa_guard.revoke_group('regress_roles_admin', 'hipaa_admin');
SELECT hipaa_guard.grant_group('regress_roles_team', 'hipaa_clinician');
SELECT * FROM regress_roles_memberships;

DROP VIEW regress_roles_memberships;
DROP FUNCTION role_error_of(text);
DROP ROLE regress_roles_admin, regress_roles_clinician, regress_roles_ward,
    regress_roles_nurse, regress_roles_team, regress_roles_keyteam,
    regress_roles_auditor, regress_roles_app, regress_roles_nobody;
