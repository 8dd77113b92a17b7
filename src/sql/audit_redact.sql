
-- The statement text that the audit trail records, with constants replaced
-- by "?" and comments removed.  It is STABLE because standard_conforming_strings
-- decides where a string constant ends.  grants.sql later revokes EXECUTE
-- from PUBLIC only, so the grant below stays.
CREATE FUNCTION @extschema@.redact_statement(statement text) RETURNS text
    AS 'MODULE_PATHNAME', 'hg_redact_statement_sql' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.redact_statement(text) IS 'The statement as the audit trail records it: tokens in canonical form, constants replaced by ?, comments removed';
GRANT EXECUTE ON FUNCTION @extschema@.redact_statement(text) TO hipaa_auditor, hipaa_admin;
