
-- Group roles that separate duties.  Roles belong to the cluster, not to
-- this database, so they are created only when missing and survive DROP
-- EXTENSION.
DO $roles$
DECLARE
    role_name text;
BEGIN
    FOREACH role_name IN ARRAY ARRAY['hipaa_admin', 'hipaa_clinician', 'hipaa_auditor', 'hipaa_app']
    LOOP
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) role_name) THEN
            EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', role_name);
        END IF;
    END LOOP;
END
$roles$;
