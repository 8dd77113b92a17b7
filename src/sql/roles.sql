
-- Group roles that separate duties, and hipaa_purger, the role under which
-- retention purges read and change the purged tables.  Roles belong to the
-- cluster, not to this database, so they are created only when missing and
-- survive DROP EXTENSION.
DO $roles$
DECLARE
    role_name text;
BEGIN
    FOREACH role_name IN ARRAY ARRAY['hipaa_admin', 'hipaa_clinician', 'hipaa_auditor', 'hipaa_app', 'hipaa_purger']
    LOOP
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) role_name) THEN
            EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', role_name);
        END IF;
    END LOOP;
END
$roles$;
