
-- PUBLIC gets only the schema, so that the types can be named, and the
-- functions that reveal nothing.  Each other function goes to the roles that need it.
REVOKE ALL ON ALL TABLES IN SCHEMA @extschema@ FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA @extschema@ FROM PUBLIC;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA @extschema@ FROM PUBLIC;
REVOKE EXECUTE ON ALL PROCEDURES IN SCHEMA @extschema@ FROM PUBLIC;
GRANT USAGE ON SCHEMA @extschema@ TO PUBLIC;

-- Type support: I/O, modifiers, metadata and the trigger carry no plaintext.
GRANT EXECUTE ON FUNCTION
    @extschema@.encrypted_typmod_in(cstring[]), @extschema@.encrypted_typmod_out(integer),
    @extschema@.encrypted_text_in(cstring, oid, integer), @extschema@.encrypted_text_out(@extschema@.encrypted_text),
    @extschema@.encrypted_text_recv(internal, oid, integer), @extschema@.encrypted_text_send(@extschema@.encrypted_text),
    @extschema@.encrypted_bytea_in(cstring, oid, integer), @extschema@.encrypted_bytea_out(@extschema@.encrypted_bytea),
    @extschema@.encrypted_bytea_recv(internal, oid, integer), @extschema@.encrypted_bytea_send(@extschema@.encrypted_bytea),
    @extschema@.encrypted_date_in(cstring, oid, integer), @extschema@.encrypted_date_out(@extschema@.encrypted_date),
    @extschema@.encrypted_date_recv(internal, oid, integer), @extschema@.encrypted_date_send(@extschema@.encrypted_date),
    @extschema@.encrypted_jsonb_in(cstring, oid, integer), @extschema@.encrypted_jsonb_out(@extschema@.encrypted_jsonb),
    @extschema@.encrypted_jsonb_recv(internal, oid, integer), @extschema@.encrypted_jsonb_send(@extschema@.encrypted_jsonb),
    @extschema@.key_version(@extschema@.encrypted_text), @extschema@.key_version(@extschema@.encrypted_bytea),
    @extschema@.key_version(@extschema@.encrypted_date), @extschema@.key_version(@extschema@.encrypted_jsonb),
    @extschema@.key_name(@extschema@.encrypted_text), @extschema@.key_name(@extschema@.encrypted_bytea),
    @extschema@.key_name(@extschema@.encrypted_date), @extschema@.key_name(@extschema@.encrypted_jsonb),
    @extschema@.row_key(@extschema@.encrypted_text), @extschema@.row_key(@extschema@.encrypted_bytea),
    @extschema@.row_key(@extschema@.encrypted_date), @extschema@.row_key(@extschema@.encrypted_jsonb),
    @extschema@.needs_reencrypt(@extschema@.encrypted_text), @extschema@.needs_reencrypt(@extschema@.encrypted_bytea),
    @extschema@.needs_reencrypt(@extschema@.encrypted_date), @extschema@.needs_reencrypt(@extschema@.encrypted_jsonb),
    @extschema@.encrypted_row_trigger(), @extschema@.row_trigger_args(regclass),
    @extschema@.patient_key_name(text),
    @extschema@.audit_guard(), @extschema@.audit_patient(text)
    TO PUBLIC;

-- Writers: plaintext assigned to an encrypted column runs these casts.
GRANT EXECUTE ON FUNCTION
    @extschema@.encrypted_text(text, integer, boolean), @extschema@.encrypted_bytea(bytea, integer, boolean),
    @extschema@.encrypted_date(date, integer, boolean), @extschema@.encrypted_jsonb(jsonb, integer, boolean),
    @extschema@.encrypt(text, text), @extschema@.encrypt(bytea, text),
    @extschema@.encrypt(date, text), @extschema@.encrypt(jsonb, text),
    @extschema@.blind_index(text, text)
    TO hipaa_clinician, hipaa_app;

-- Readers of plaintext: decryption is a privilege of its own.
GRANT EXECUTE ON FUNCTION
    @extschema@.decrypt(@extschema@.encrypted_text), @extschema@.decrypt(@extschema@.encrypted_bytea),
    @extschema@.decrypt(@extschema@.encrypted_date), @extschema@.decrypt(@extschema@.encrypted_jsonb),
    @extschema@.decrypt(@extschema@.encrypted_text, text), @extschema@.decrypt(@extschema@.encrypted_bytea, text),
    @extschema@.decrypt(@extschema@.encrypted_date, text), @extschema@.decrypt(@extschema@.encrypted_jsonb, text)
    TO hipaa_clinician;

-- Key administration, which never shows plaintext.
GRANT EXECUTE ON FUNCTION
    @extschema@.create_key(text), @extschema@.rotate_key(text), @extschema@.destroy_key(text),
    @extschema@.rewrap_keys(), @extschema@.master_key_status(),
    @extschema@.reencrypt_value(@extschema@.encrypted_text), @extschema@.reencrypt_value(@extschema@.encrypted_bytea),
    @extschema@.reencrypt_value(@extschema@.encrypted_date), @extschema@.reencrypt_value(@extschema@.encrypted_jsonb),
    @extschema@.bind_columns(regclass, name, boolean), @extschema@.add_blind_index(regclass, name, name, text),
    @extschema@.set_row_trigger(regclass, text[]), @extschema@.check_column(regclass, name)
    TO hipaa_admin;
GRANT EXECUTE ON PROCEDURE @extschema@.reencrypt(regclass, integer) TO hipaa_admin;
-- Only checks whether the caller is in a transaction block.
GRANT EXECUTE ON FUNCTION @extschema@.require_own_transaction(text) TO PUBLIC;
GRANT SELECT ON @extschema@.keys, @extschema@.encrypted_columns TO hipaa_admin, hipaa_auditor;
GRANT EXECUTE ON FUNCTION @extschema@.create_signing_key(text) TO hipaa_admin;
GRANT EXECUTE ON FUNCTION @extschema@.master_key_status() TO hipaa_auditor;

-- De-identification: the Safe Harbor helpers reveal nothing; pseudonyms need
-- a key, so only the roles that prepare de-identified data compute them.
GRANT SELECT ON @extschema@.restricted_zip3 TO PUBLIC;
GRANT EXECUTE ON FUNCTION
    @extschema@.safe_harbor_zip(text), @extschema@.safe_harbor_date(date),
    @extschema@.safe_harbor_age(date, date), @extschema@.safe_harbor_birth_year(date, date)
    TO PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.pseudonym(text, text) TO hipaa_admin, hipaa_app, hipaa_clinician;
GRANT SELECT ON @extschema@.identifier_kinds, @extschema@.column_labels TO PUBLIC;
GRANT INSERT, UPDATE, DELETE ON @extschema@.column_labels TO hipaa_admin;
GRANT EXECUTE ON FUNCTION
    @extschema@.label_column(regclass, name, text),
    @extschema@.create_deidentified_view(regclass, name)
    TO hipaa_admin;
-- Generalized values only (a ZIP prefix, a year), for readers of views.
GRANT EXECUTE ON FUNCTION
    @extschema@.deidentified_zip(@extschema@.encrypted_text),
    @extschema@.deidentified_year(@extschema@.encrypted_date)
    TO PUBLIC;

-- Retention: hipaa_admin configures and purges, through functions that log
-- each change, and no role writes the tables directly.  Auditors read the
-- views.
GRANT EXECUTE ON FUNCTION
    @extschema@.retention_cutoff(interval, timestamptz),
    @extschema@.hold_is_active(@extschema@.legal_hold_records),
    @extschema@.deidentify_date(date, date), @extschema@.deidentify_zip(text)
    TO PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.patient_column(regclass) TO hipaa_admin, hipaa_auditor;
GRANT EXECUTE ON FUNCTION
    @extschema@.set_retention(regclass, name, interval, text), @extschema@.drop_retention(regclass),
    @extschema@.set_patient_column(regclass, name),
    @extschema@.legal_hold(regclass, text, text, timestamptz), @extschema@.release_hold(bigint, text),
    @extschema@.purge_due(), @extschema@.purge_policies(), @extschema@.purge_begin(regclass),
    @extschema@.purge_step(bigint, integer), @extschema@.purge_finish(bigint, text),
    @extschema@.purge_lock(), @extschema@.purge_unlock()
    TO hipaa_admin;
GRANT EXECUTE ON PROCEDURE @extschema@.purge(boolean, integer) TO hipaa_admin;
GRANT SELECT ON @extschema@.patient_columns, @extschema@.retention_log, @extschema@.purge_receipt_batches,
    @extschema@.retention_policies, @extschema@.legal_holds, @extschema@.purge_receipts
    TO hipaa_admin, hipaa_auditor;

-- Access: hipaa_admin protects tables and manages care and reviews.
-- Clinicians and the application's login find their patients and break the
-- glass.  Auditors read the views and the log.
GRANT EXECUTE ON FUNCTION @extschema@.my_patients(), @extschema@.cares_for(text, text[]), @extschema@.cares_for(text)
    TO hipaa_clinician, hipaa_app;
GRANT EXECUTE ON FUNCTION @extschema@.break_glass(text, text, interval) TO hipaa_clinician, hipaa_app;
GRANT EXECUTE ON FUNCTION
    @extschema@.protect_table(regclass, name), @extschema@.unprotect_table(regclass),
    @extschema@.assign_care(text, text, text, timestamptz), @extschema@.end_care(text, text),
    @extschema@.acknowledge_break_glass(bigint, text)
    TO hipaa_admin;
GRANT SELECT ON @extschema@.protected_tables, @extschema@.break_glass_review, @extschema@.access_log,
    @extschema@.care_assignments
    TO hipaa_admin, hipaa_auditor;

-- Group role membership.  Membership in hipaa_clinician is the right to
-- decrypt, so grant_group and revoke_group are granted to no role and only
-- superusers can call them.  They run with the caller's rights.  The helpers
-- they call read nothing that pg_auth_members does not show to every role.
GRANT EXECUTE ON FUNCTION
    @extschema@.group_member_paths(name), @extschema@.check_group_change(name, name)
    TO PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.role_conflicts() TO hipaa_admin, hipaa_auditor;

-- The actor: only applications present tokens, and the read functions show
-- the caller only its own actor.  signing_secret() is granted to no role,
-- so that only superusers run it.
GRANT EXECUTE ON FUNCTION @extschema@.set_actor(text) TO hipaa_app;
GRANT EXECUTE ON FUNCTION
    @extschema@.reset_actor(), @extschema@.actor(), @extschema@.actor_roles(),
    @extschema@.actor_purpose(), @extschema@.actor_mfa(), @extschema@.actor_mfa_ok()
    TO PUBLIC;

-- The audit: admins switch it on and off and watch it; auditors read it.
GRANT EXECUTE ON FUNCTION
    @extschema@.enable_audit(regclass, boolean, boolean), @extschema@.disable_audit(regclass)
    TO hipaa_admin;
GRANT SELECT ON @extschema@.audit_trail, @extschema@.audit_log, @extschema@.audit_block,
    @extschema@.audit_export, @extschema@.audit_block_export, @extschema@.audited_tables
    TO hipaa_auditor;
GRANT EXECUTE ON FUNCTION
    @extschema@.patient_access_history(text, timestamptz, timestamptz),
    @extschema@.accounting_of_disclosures(text, timestamptz, timestamptz),
    @extschema@.user_activity(text, timestamptz, timestamptz),
    @extschema@.check_audit_window(timestamptz, timestamptz), @extschema@.is_tpo_purpose(text),
    @extschema@.audit_records(bytea), @extschema@.audit_record_fields(bytea)
    TO hipaa_auditor;
GRANT EXECUTE ON FUNCTION
    @extschema@.verify_audit_chain(text), @extschema@.audit_digest(), @extschema@.audit_status()
    TO hipaa_admin, hipaa_auditor;
GRANT EXECUTE ON FUNCTION @extschema@.audit_note(text) TO hipaa_admin;
GRANT EXECUTE ON FUNCTION @extschema@.purge_audit(interval) TO hipaa_admin;
GRANT SELECT ON @extschema@.audit_purges TO hipaa_auditor, hipaa_admin;
