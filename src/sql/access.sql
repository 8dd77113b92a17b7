
-- Access: protected tables under care-team row level security, care
-- assignments and break-glass access.
--
-- A clinician (or the application acting for a verified actor) sees the
-- rows of a protected table whose patient is in the actor's care now, or for
-- whom the actor broke the glass.  The policy tests the patient column
-- against the actor's patients, looked up once per statement from a
-- per-session cache, in a form the planner can turn into a condition on the
-- patient column's index.  Configuration goes through SECURITY
-- DEFINER functions that only hipaa_admin may call, and each change leaves a
-- row in access_log.

CREATE TABLE @extschema@.protected_table_list (
    tbl regclass NOT NULL,
    patient_column name NOT NULL,
    protected_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    protected_by name NOT NULL DEFAULT SESSION_USER,
    CONSTRAINT protected_table_list_pkey PRIMARY KEY (tbl)
);
COMMENT ON TABLE @extschema@.protected_table_list IS 'Tables under care-team row level security; change it with protect_table() and unprotect_table()';

CREATE SEQUENCE @extschema@.care_assignments_assignment_id_seq AS bigint;
CREATE TABLE @extschema@.care_assignments (
    assignment_id bigint NOT NULL DEFAULT pg_catalog.nextval('@extschema@.care_assignments_assignment_id_seq'::pg_catalog.regclass),
    actor text NOT NULL,
    patient text NOT NULL,
    relationship text NOT NULL,
    valid_from timestamptz NOT NULL DEFAULT pg_catalog.now(),
    valid_until timestamptz NOT NULL,
    assigned_by name NOT NULL DEFAULT SESSION_USER,
    ended_at timestamptz,
    ended_by name,
    CONSTRAINT care_assignments_pkey PRIMARY KEY (assignment_id)
);
ALTER SEQUENCE @extschema@.care_assignments_assignment_id_seq OWNED BY @extschema@.care_assignments.assignment_id;
CREATE INDEX care_assignments_actor_idx ON @extschema@.care_assignments (actor) WHERE ended_at IS NULL;
COMMENT ON TABLE @extschema@.care_assignments IS 'Which actor cares for which patient, until when';

CREATE SEQUENCE @extschema@.break_glass_events_event_id_seq AS bigint;
CREATE TABLE @extschema@.break_glass_events (
    event_id bigint NOT NULL DEFAULT pg_catalog.nextval('@extschema@.break_glass_events_event_id_seq'::pg_catalog.regclass),
    actor text NOT NULL,
    login name NOT NULL DEFAULT SESSION_USER,
    patient text NOT NULL,
    reason text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    expires_at timestamptz NOT NULL,
    acknowledged_at timestamptz,
    acknowledged_by name,
    review_note text,
    CONSTRAINT break_glass_events_pkey PRIMARY KEY (event_id)
);
ALTER SEQUENCE @extschema@.break_glass_events_event_id_seq OWNED BY @extschema@.break_glass_events.event_id;
CREATE INDEX break_glass_events_actor_idx ON @extschema@.break_glass_events (actor, expires_at);
COMMENT ON TABLE @extschema@.break_glass_events IS 'Every break-glass access, with its review';

CREATE SEQUENCE @extschema@.access_log_change_id_seq AS bigint;
CREATE TABLE @extschema@.access_log (
    change_id bigint NOT NULL DEFAULT pg_catalog.nextval('@extschema@.access_log_change_id_seq'::pg_catalog.regclass),
    changed_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    changed_by name NOT NULL DEFAULT SESSION_USER,
    change text NOT NULL,
    detail jsonb NOT NULL,
    CONSTRAINT access_log_pkey PRIMARY KEY (change_id)
);
ALTER SEQUENCE @extschema@.access_log_change_id_seq OWNED BY @extschema@.access_log.change_id;
COMMENT ON TABLE @extschema@.access_log IS 'Every change to protected tables, care assignments and break-glass reviews';

SELECT pg_catalog.pg_extension_config_dump('@extschema@.protected_table_list', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.care_assignments', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.care_assignments_assignment_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.break_glass_events', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.break_glass_events_event_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.access_log', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.access_log_change_id_seq', '');

CREATE FUNCTION @extschema@.log_event(message text) RETURNS void
    AS 'MODULE_PATHNAME', 'hg_log_event' LANGUAGE C STRICT;

CREATE FUNCTION @extschema@.log_access_change(change text, detail jsonb) RETURNS void
    LANGUAGE sql
BEGIN ATOMIC
    INSERT INTO @extschema@.access_log (change, detail) VALUES (change, detail);
    SELECT @extschema@.audit_event('access', change, detail OPERATOR(pg_catalog.->>) 'table', detail::text,
        CASE WHEN detail OPERATOR(pg_catalog.?) 'patient'
             THEN ARRAY[detail OPERATOR(pg_catalog.->>) 'patient'] END);
END;

-- The patients the current actor may see now: those in the actor's care and
-- those of an unexpired break-glass access, and the moment that list next
-- changes by itself.  None while hipaa_guard.require_mfa is on and the actor
-- has no second factor.
CREATE FUNCTION @extschema@.compute_my_patients(OUT patients text[], OUT valid_until timestamptz)
    LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL RESTRICTED
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    me text := @extschema@.actor();
BEGIN
    IF NOT @extschema@.actor_mfa_ok() THEN
        patients := '{}';
        RETURN;
    END IF;
    -- Sorted, because a btree scan sorts the array of "= ANY" at every
    -- execution, and sorting sorted input is quick.
    patients := ARRAY(
        SELECT c.patient FROM @extschema@.care_assignments AS c
         WHERE c.actor = me AND c.ended_at IS NULL AND c.valid_from <= now() AND c.valid_until > now()
        UNION
        SELECT b.patient FROM @extschema@.break_glass_events AS b
         WHERE b.actor = me AND b.started_at <= now() AND b.expires_at > now()
        ORDER BY 1);
    valid_until := least(
        (SELECT min(c.valid_until) FROM @extschema@.care_assignments AS c
          WHERE c.actor = me AND c.ended_at IS NULL AND c.valid_until > now()),
        (SELECT min(c.valid_from) FROM @extschema@.care_assignments AS c
          WHERE c.actor = me AND c.ended_at IS NULL AND c.valid_from > now()),
        (SELECT min(b.expires_at) FROM @extschema@.break_glass_events AS b
          WHERE b.actor = me AND b.expires_at > now()),
        (SELECT min(b.started_at) FROM @extschema@.break_glass_events AS b
          WHERE b.actor = me AND b.started_at > now()));
END
$$;

-- The same list, cached per session (see careteam.c).  The index condition
-- derived from cares_for(patient) calls it once per scan.  The policy on a
-- column of another type calls it once per statement, in a sub-select.  Both
-- run in the leader process.
CREATE FUNCTION @extschema@.my_patients() RETURNS text[]
    AS 'MODULE_PATHNAME', 'hg_my_patients' LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION @extschema@.my_patients() IS 'Patients the current actor may see now, through care assignments and break-glass access';

CREATE FUNCTION @extschema@.care_changed() RETURNS trigger
    AS 'MODULE_PATHNAME', 'hg_care_changed' LANGUAGE C;
CREATE TRIGGER care_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.care_assignments
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.care_changed();
CREATE TRIGGER care_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.break_glass_events
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.care_changed();

-- Membership of a text patient id in the actor's list.  Its planner support
-- function makes it an index condition "patient = ANY (list)" for queries
-- that do not name patients themselves (see careteam.c).
CREATE FUNCTION @extschema@.cares_for_support(internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'hg_cares_for_support' LANGUAGE C STRICT;
CREATE FUNCTION @extschema@.cares_for(patient text, patients text[]) RETURNS boolean
    AS 'MODULE_PATHNAME', 'hg_cares_for' LANGUAGE C STABLE STRICT PARALLEL SAFE LEAKPROOF COST 1
    SUPPORT @extschema@.cares_for_support;
COMMENT ON FUNCTION @extschema@.cares_for(text, text[]) IS 'Whether a patient id is in a list of patient ids';
-- The care-team policy's test.  It is PARALLEL RESTRICTED because only the
-- leader's session knows the actor.
CREATE FUNCTION @extschema@.cares_for(patient text) RETURNS boolean
    AS 'MODULE_PATHNAME', 'hg_cares_for_actor' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED LEAKPROOF COST 1
    SUPPORT @extschema@.cares_for_support;
COMMENT ON FUNCTION @extschema@.cares_for(text) IS 'Whether the current actor may see this patient now (care assignment or break-glass access)';

-- The care-team policy on one table.  A text or varchar patient column is
-- tested with cares_for(patient); a column of another type is compared, cast
-- to its own type, with "= ANY" and the list from an InitPlan.
-- XXX: for those other types, a query that names one patient makes
-- PostgreSQL 15's btree start one primitive scan per patient of the list.
-- A point lookup then runs at about 0.67 of the unprotected rate (see
-- docs/benchmarks.md).  A support function like cares_for()'s for each type
-- would avoid that.
CREATE FUNCTION @extschema@.care_policy_sql(tbl regclass, patient_column name) RETURNS text
    LANGUAGE sql STABLE STRICT
BEGIN ATOMIC
    SELECT pg_catalog.format(
        'CREATE POLICY hipaa_guard_care ON %1$s AS PERMISSIVE FOR ALL TO hipaa_clinician, hipaa_app '
        'USING (%2$s) WITH CHECK (%2$s)',
        tbl,
        CASE WHEN a.atttypid OPERATOR(pg_catalog.=) ANY (ARRAY['text'::pg_catalog.regtype, 'varchar'::pg_catalog.regtype]::pg_catalog.oid[])
             THEN pg_catalog.format('@extschema@.cares_for(%I)', patient_column)
             ELSE pg_catalog.format('%I OPERATOR(pg_catalog.=) ANY ((SELECT @extschema@.my_patients())::%s[])',
                                    patient_column, pg_catalog.format_type(a.atttypid, NULL)) END)
      FROM pg_catalog.pg_attribute AS a
     WHERE a.attrelid OPERATOR(pg_catalog.=) tbl AND a.attname OPERATOR(pg_catalog.=) patient_column;
END;

-- The table and its partitions: a partition read directly has row level
-- security of its own.
CREATE FUNCTION @extschema@.table_and_partitions(tbl regclass) RETURNS SETOF regclass
    LANGUAGE sql STABLE STRICT
BEGIN ATOMIC
    SELECT c.oid::pg_catalog.regclass FROM pg_catalog.pg_class AS c
     WHERE c.oid OPERATOR(pg_catalog.=) tbl::pg_catalog.oid
        OR c.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT p.relid::pg_catalog.oid FROM pg_catalog.pg_partition_tree(tbl) AS p))
     ORDER BY c.oid;
END;

CREATE FUNCTION @extschema@.protect_table(tbl regclass, patient_column name) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rel regclass;
    kind "char";
BEGIN
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'table must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT c.relkind INTO kind FROM pg_class AS c WHERE c.oid = tbl;
    IF kind NOT IN ('r', 'p')
       OR (SELECT relnamespace FROM pg_class WHERE oid = tbl) IN ('pg_catalog'::regnamespace, '@extschema@'::regnamespace) THEN
        RAISE EXCEPTION '"%" is not a table that can be protected', tbl
            USING ERRCODE = 'wrong_object_type';
    END IF;
    PERFORM @extschema@.check_column(tbl, patient_column);
    FOR rel IN SELECT @extschema@.table_and_partitions(tbl)
    LOOP
        EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY', rel);
        IF EXISTS (SELECT FROM pg_policy AS p WHERE p.polrelid = rel AND p.polname = 'hipaa_guard_care') THEN
            EXECUTE format('DROP POLICY hipaa_guard_care ON %s', rel);
        END IF;
        EXECUTE @extschema@.care_policy_sql(rel, patient_column);
        EXECUTE format('REVOKE ALL ON %s FROM PUBLIC', rel);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO hipaa_clinician, hipaa_app', rel);
    END LOOP;
    -- A clinician's lookup of one patient needs an index led by the patient column.
    IF NOT EXISTS (SELECT FROM pg_index AS i JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                    WHERE i.indrelid = tbl AND a.attname = patient_column) THEN
        EXECUTE format('CREATE INDEX ON %s (%I)', tbl, patient_column);
        RAISE NOTICE 'created an index on column "%" of table "%"', patient_column, tbl;
    END IF;
    PERFORM @extschema@.set_patient_column(tbl, patient_column);
    -- Audit reads and writes; the care-team policy now filters the rows, so
    -- the policy that an earlier enable_audit() opened them with must go.
    FOR rel IN SELECT p.polrelid FROM pg_policy AS p
                WHERE p.polrelid IN (SELECT @extschema@.table_and_partitions(tbl))
                  AND p.polname = 'hipaa_guard_audit_open'
    LOOP
        EXECUTE format('DROP POLICY hipaa_guard_audit_open ON %s', rel);
    END LOOP;
    UPDATE @extschema@.audited_tables AS a SET rls_enabled_by_audit = false WHERE a.tbl = protect_table.tbl;
    PERFORM @extschema@.enable_audit(tbl);
    IF EXISTS (SELECT FROM @extschema@.retention_config AS r WHERE r.tbl = protect_table.tbl) THEN
        PERFORM @extschema@.grant_purger(tbl);
    END IF;
    INSERT INTO @extschema@.protected_table_list AS p (tbl, patient_column)
    VALUES (protect_table.tbl, protect_table.patient_column)
    ON CONFLICT ON CONSTRAINT protected_table_list_pkey DO UPDATE
    SET patient_column = excluded.patient_column, protected_at = now(), protected_by = SESSION_USER;
    PERFORM @extschema@.log_access_change('protect_table',
        jsonb_build_object('table', tbl::text, 'patient_column', patient_column));
END
$$;
COMMENT ON FUNCTION @extschema@.protect_table(regclass, name) IS 'Put a table under care-team row level security keyed by its patient column';

-- Drop the care-team policy.  Row level security stays enabled and forced,
-- so the table is closed to clinicians rather than opened to all.
CREATE FUNCTION @extschema@.unprotect_table(tbl regclass) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rel regclass;
BEGIN
    DELETE FROM @extschema@.protected_table_list AS p WHERE p.tbl = unprotect_table.tbl;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'table "%" is not protected', tbl USING ERRCODE = 'undefined_object';
    END IF;
    FOR rel IN SELECT @extschema@.table_and_partitions(tbl)
    LOOP
        IF EXISTS (SELECT FROM pg_policy AS p WHERE p.polrelid = rel AND p.polname = 'hipaa_guard_care') THEN
            EXECUTE format('DROP POLICY hipaa_guard_care ON %s', rel);
        END IF;
    END LOOP;
    PERFORM @extschema@.log_access_change('unprotect_table', jsonb_build_object('table', tbl::text));
END
$$;
COMMENT ON FUNCTION @extschema@.unprotect_table(regclass) IS 'Remove the care-team policy of a protected table; row level security stays on';

CREATE VIEW @extschema@.protected_tables AS
SELECT p.tbl AS table_name, p.patient_column, c.relrowsecurity AS row_security, c.relforcerowsecurity AS forced,
       p.protected_at, p.protected_by
  FROM @extschema@.protected_table_list AS p
  JOIN pg_catalog.pg_class AS c ON c.oid OPERATOR(pg_catalog.=) p.tbl::pg_catalog.oid;
COMMENT ON VIEW @extschema@.protected_tables IS 'Tables under care-team row level security';

CREATE FUNCTION @extschema@.assign_care(actor text, patient text, relationship text, valid_until timestamptz DEFAULT NULL)
    RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    id bigint;
BEGIN
    IF coalesce(btrim(actor), '') = '' OR coalesce(btrim(patient), '') = '' OR coalesce(btrim(relationship), '') = '' THEN
        RAISE EXCEPTION 'actor, patient and relationship must not be empty'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF valid_until IS NULL OR valid_until <= now() THEN
        RAISE EXCEPTION 'a care assignment must end in the future'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Care assignments are time-bounded: give the end of the episode of care.';
    END IF;
    -- An assignment in force is replaced, so that one pair has one row in force.
    UPDATE @extschema@.care_assignments AS c SET ended_at = now(), ended_by = SESSION_USER
     WHERE c.actor = assign_care.actor AND c.patient = assign_care.patient AND c.ended_at IS NULL;
    INSERT INTO @extschema@.care_assignments (actor, patient, relationship, valid_until)
    VALUES (assign_care.actor, assign_care.patient, assign_care.relationship, assign_care.valid_until)
    RETURNING assignment_id INTO id;
    PERFORM @extschema@.log_access_change('assign_care',
        jsonb_build_object('assignment_id', id, 'actor', actor, 'relationship', relationship, 'valid_until', valid_until));
    RETURN id;
END
$$;
COMMENT ON FUNCTION @extschema@.assign_care(text, text, text, timestamptz) IS 'Put a patient in an actor''s care until a given time; returns the assignment id';

CREATE FUNCTION @extschema@.end_care(actor text, patient text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ended bigint[];
BEGIN
    WITH e AS (
        UPDATE @extschema@.care_assignments AS c SET ended_at = now(), ended_by = SESSION_USER
         WHERE c.actor = end_care.actor AND c.patient = end_care.patient AND c.ended_at IS NULL
        RETURNING c.assignment_id)
    SELECT array_agg(assignment_id) INTO ended FROM e;
    IF ended IS NULL THEN
        RAISE EXCEPTION 'actor "%" has no care assignment in force for this patient', actor
            USING ERRCODE = 'undefined_object';
    END IF;
    PERFORM @extschema@.log_access_change('end_care', jsonb_build_object('assignment_ids', ended, 'actor', actor));
END
$$;
COMMENT ON FUNCTION @extschema@.end_care(text, text) IS 'End an actor''s care of a patient now';

-- Emergency access to one patient outside the actor's care, for at most
-- hipaa_guard.break_glass_max_duration.  It ends by itself: my_patients()
-- stops listing the patient when it expires.
CREATE FUNCTION @extschema@.break_glass(patient text, reason text, duration interval DEFAULT '1 hour')
    RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    id bigint;
    longest interval := current_setting('hipaa_guard.break_glass_max_duration')::interval;
    me text := @extschema@.actor();
BEGIN
    IF coalesce(btrim(patient), '') = '' THEN
        RAISE EXCEPTION 'patient must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF length(regexp_replace(coalesce(reason, ''), '\s', '', 'g')) < 20
       OR array_length(regexp_split_to_array(btrim(reason), '\s+'), 1) < 3 THEN
        RAISE EXCEPTION 'break-glass access needs a substantive reason'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'The reason must have at least three words and 20 characters besides spaces.',
                  HINT = 'Say what the emergency is, for example "unconscious patient in the ED, allergy history needed".';
    END IF;
    IF duration IS NULL OR duration <= interval '0' OR duration > longest THEN
        RAISE EXCEPTION 'break-glass duration must be positive and at most %', longest
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'hipaa_guard.break_glass_max_duration sets the longest duration.';
    END IF;
    INSERT INTO @extschema@.break_glass_events (actor, patient, reason, expires_at)
    VALUES (me, break_glass.patient, break_glass.reason, now() + duration)
    RETURNING event_id INTO id;
    -- The log line outlives a rolled back transaction.  It names no patient,
    -- and log_event() leaves out the statement, which does.
    PERFORM @extschema@.log_event(format('hipaa_guard: break-glass access by actor "%s" (login "%s"), event %s, for %s',
                                         me, session_user, id, duration));
    -- Durable like the log line, with the patient.  The reason is free text
    -- that may name the patient, so it stays in break_glass_events.
    PERFORM @extschema@.audit_event('access', 'BREAK GLASS', NULL,
                                    format('event %s, severity high, for %s', id, duration),
                                    ARRAY[break_glass.patient]);
    RAISE WARNING 'break-glass access recorded as event % for review', id
        USING DETAIL = format('Access ends at %s.', now() + duration);
    RETURN id;
END
$$;
COMMENT ON FUNCTION @extschema@.break_glass(text, text, interval) IS 'Open time-boxed emergency access to one patient, recorded for review; returns the event id';

CREATE VIEW @extschema@.break_glass_review AS
SELECT b.event_id,
       'high'::text AS severity,
       b.actor,
       b.login,
       b.patient,
       b.reason,
       b.started_at,
       b.expires_at,
       CASE WHEN b.expires_at OPERATOR(pg_catalog.>) pg_catalog.now() THEN 'active' ELSE 'ended' END AS access,
       b.acknowledged_at IS NOT NULL AS acknowledged,
       b.acknowledged_at,
       b.acknowledged_by,
       b.review_note
  FROM @extschema@.break_glass_events AS b;
COMMENT ON VIEW @extschema@.break_glass_review IS 'Every break-glass access, for the privacy officer''s review';

CREATE FUNCTION @extschema@.acknowledge_break_glass(id bigint, note text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    event @extschema@.break_glass_events;
BEGIN
    IF coalesce(btrim(note), '') = '' THEN
        RAISE EXCEPTION 'a break-glass review needs a note' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO event FROM @extschema@.break_glass_events AS b WHERE b.event_id = id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'break-glass event % does not exist', id USING ERRCODE = 'undefined_object';
    END IF;
    IF event.acknowledged_at IS NOT NULL THEN
        RAISE EXCEPTION 'break-glass event % was already acknowledged', id
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    UPDATE @extschema@.break_glass_events AS b
       SET acknowledged_at = now(), acknowledged_by = SESSION_USER, review_note = note
     WHERE b.event_id = id;
    PERFORM @extschema@.log_access_change('acknowledge_break_glass', jsonb_build_object('event_id', id));
END
$$;
COMMENT ON FUNCTION @extschema@.acknowledge_break_glass(bigint, text) IS 'Record the review of a break-glass access';
