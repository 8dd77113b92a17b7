
-- Membership in the group roles, and separation of duties between them.
--
-- hipaa_admin manages keys and policies but must not decrypt, and
-- hipaa_clinician decrypts, so no role may be a member of both.
-- grant_group() rejects a grant that would make any role a member of both,
-- counting memberships through other roles.  A plain GRANT bypasses that
-- check, so role_conflicts() lists every role that is a member of both
-- anyway.
--
-- grant_group() and revoke_group() run with the caller's rights.  They add a
-- check to GRANT and REVOKE but no privilege: a caller still needs what
-- PostgreSQL requires for granting the role (superuser, CREATEROLE, or
-- ADMIN OPTION on the group role), and the grantor recorded in
-- pg_auth_members is the caller.  Only superusers may execute them.

-- Every role that is a member of group_role, directly or through other roles,
-- and group_role itself.  A role reached by several paths has a row for each.
-- path lists the role names from the member to group_role, joined by " -> ".
CREATE FUNCTION @extschema@.group_member_paths(group_role name)
    RETURNS TABLE (role_oid oid, path text)
    LANGUAGE sql STABLE STRICT
BEGIN ATOMIC
    WITH RECURSIVE chain (role_oid, roles) AS (
        SELECT r.oid, ARRAY[r.oid]
          FROM pg_catalog.pg_roles AS r
         WHERE r.rolname OPERATOR(pg_catalog.=) group_role
        UNION ALL
        SELECT m.member, ARRAY[m.member] OPERATOR(pg_catalog.||) c.roles
          FROM pg_catalog.pg_auth_members AS m
          JOIN chain AS c ON m.roleid OPERATOR(pg_catalog.=) c.role_oid
         -- PostgreSQL rejects circular memberships, so this only bounds the walk.
         WHERE m.member OPERATOR(pg_catalog.<>) ALL (c.roles)
    )
    SELECT DISTINCT c.role_oid,
           pg_catalog.array_to_string(ARRAY(
               SELECT u.role_oid::pg_catalog.regrole::pg_catalog.text
                 FROM pg_catalog.unnest(c.roles) WITH ORDINALITY AS u (role_oid, position)
                ORDER BY u.position), ' -> ')
      FROM chain AS c;
END;
COMMENT ON FUNCTION @extschema@.group_member_paths(name) IS 'Every role that is a member of a role, directly or through other roles, with the path of role names';

-- Check the arguments of grant_group() and revoke_group().
CREATE FUNCTION @extschema@.check_group_change(member name, group_role name) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF member IS NULL OR group_role IS NULL THEN
        RAISE EXCEPTION 'member and group_role must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF group_role NOT IN ('hipaa_admin', 'hipaa_clinician', 'hipaa_auditor', 'hipaa_app') THEN
        RAISE EXCEPTION 'role "%" is not a hipaa_guard group role', group_role
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use hipaa_admin, hipaa_clinician, hipaa_auditor or hipaa_app.';
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles AS r WHERE r.rolname = group_role) THEN
        RAISE EXCEPTION 'role "%" does not exist', group_role
            USING ERRCODE = 'undefined_object',
                  HINT = 'The extension creates the group roles; a superuser can create a missing one with CREATE ROLE ... NOLOGIN.';
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles AS r WHERE r.rolname = member) THEN
        RAISE EXCEPTION 'role "%" does not exist', member
            USING ERRCODE = 'undefined_object';
    END IF;
END
$$;

CREATE FUNCTION @extschema@.grant_group(member name, group_role name) RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    other_group name;
    conflict record;
BEGIN
    PERFORM @extschema@.check_group_change(member, group_role);
    IF group_role IN ('hipaa_admin', 'hipaa_clinician') THEN
        -- The check below reads memberships committed before this statement,
        -- and the lock keeps a concurrent grant_group() from committing a
        -- conflicting grant in between.  A transaction snapshot taken
        -- before the lock would miss that grant.
        IF current_setting('transaction_isolation') <> 'read committed' THEN
            RAISE EXCEPTION 'hipaa_guard.grant_group must run at isolation level read committed'
                USING ERRCODE = 'invalid_transaction_state';
        END IF;
        PERFORM pg_advisory_xact_lock(1751580672, 3);

        other_group := CASE group_role WHEN 'hipaa_admin' THEN 'hipaa_clinician' ELSE 'hipaa_admin' END;
        -- The grant makes member, and every role that is a member of member,
        -- a member of group_role.
        SELECT r.rolname AS role_name, o.path INTO conflict
          FROM @extschema@.group_member_paths(member) AS m
          JOIN @extschema@.group_member_paths(other_group) AS o USING (role_oid)
          JOIN pg_roles AS r ON r.oid = m.role_oid
         ORDER BY length(o.path), o.path
         LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'granting "%" to "%" would make role "%" a member of both hipaa_admin and hipaa_clinician',
                            group_role, member, conflict.role_name
                USING ERRCODE = 'invalid_grant_operation',
                      DETAIL = format('Role "%s" is a member of "%s" through %s.',
                                      conflict.role_name, other_group, conflict.path),
                      HINT = 'hipaa_admin manages keys and must not decrypt, so give it and hipaa_clinician to different roles.';
        END IF;
    END IF;
    EXECUTE format('GRANT %I TO %I', group_role, member);
END
$$;
COMMENT ON FUNCTION @extschema@.grant_group(name, name) IS 'Make a role a member of a hipaa_guard group role, never of both hipaa_admin and hipaa_clinician';

CREATE FUNCTION @extschema@.revoke_group(member name, group_role name) RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    remaining text;
BEGIN
    PERFORM @extschema@.check_group_change(member, group_role);
    EXECUTE format('REVOKE %I FROM %I', group_role, member);
    -- REVOKE removes only the direct grant.
    SELECT string_agg(g.path, '; ' ORDER BY length(g.path), g.path) INTO remaining
      FROM @extschema@.group_member_paths(group_role) AS g
     WHERE g.role_oid = (SELECT r.oid FROM pg_roles AS r WHERE r.rolname = member);
    IF remaining IS NOT NULL THEN
        RAISE WARNING 'role "%" is still a member of "%"', member, group_role
            USING DETAIL = format('It is a member through %s.', remaining),
                  HINT = 'Revoke the membership of the roles in between, or revoke the group role from them.';
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@.revoke_group(name, name) IS 'Revoke a role''s direct membership in a hipaa_guard group role';

CREATE FUNCTION @extschema@.role_conflicts()
    RETURNS TABLE (role_name name, admin_via text, clinician_via text)
    LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT r.rolname, a.paths, c.paths
      FROM pg_catalog.pg_roles AS r
      JOIN (SELECT g.role_oid,
                   pg_catalog.string_agg(g.path, '; ' ORDER BY pg_catalog.length(g.path), g.path) AS paths
              FROM @extschema@.group_member_paths('hipaa_admin') AS g
             GROUP BY g.role_oid) AS a ON a.role_oid OPERATOR(pg_catalog.=) r.oid
      JOIN (SELECT g.role_oid,
                   pg_catalog.string_agg(g.path, '; ' ORDER BY pg_catalog.length(g.path), g.path) AS paths
              FROM @extschema@.group_member_paths('hipaa_clinician') AS g
             GROUP BY g.role_oid) AS c ON c.role_oid OPERATOR(pg_catalog.=) r.oid
     ORDER BY r.rolname;
END;
COMMENT ON FUNCTION @extschema@.role_conflicts() IS 'Roles that are members of both hipaa_admin and hipaa_clinician, with every path to each';
