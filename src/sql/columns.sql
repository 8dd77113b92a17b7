
-- Binding values to their row, per-patient keys and blind indexes, all
-- carried out by one C row trigger whose arguments hold the declaration, so
-- that the declaration is dumped and restored with the table itself.
CREATE FUNCTION @extschema@.encrypted_row_trigger() RETURNS trigger
    AS 'MODULE_PATHNAME', 'hg_encrypted_row_trigger' LANGUAGE C;
COMMENT ON FUNCTION @extschema@.encrypted_row_trigger() IS 'Row trigger that binds encrypted values to their row and keeps blind indexes';

-- Arguments of a table's row trigger, or NULL when it has none.
CREATE FUNCTION @extschema@.row_trigger_args(tbl regclass) RETURNS text[]
    LANGUAGE sql STABLE STRICT
BEGIN ATOMIC
    SELECT (pg_catalog.string_to_array(pg_catalog.encode(t.tgargs, 'escape'), '\000'))[1:t.tgnargs]
      FROM pg_catalog.pg_trigger AS t
     WHERE t.tgrelid OPERATOR(pg_catalog.=) tbl
       AND t.tgname OPERATOR(pg_catalog.=) 'zz_hipaa_guard_encrypt'
       AND NOT t.tgisinternal;
END;

-- Replace the table's row trigger by one with these arguments.
CREATE FUNCTION @extschema@.set_row_trigger(tbl regclass, args text[]) RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF @extschema@.row_trigger_args(tbl) IS NOT NULL THEN
        EXECUTE format('DROP TRIGGER zz_hipaa_guard_encrypt ON %s', tbl);
    END IF;
    EXECUTE format('CREATE TRIGGER zz_hipaa_guard_encrypt BEFORE INSERT OR UPDATE ON %s '
                   'FOR EACH ROW EXECUTE FUNCTION @extschema@.encrypted_row_trigger(%s)',
                   tbl, (SELECT string_agg(quote_literal(a), ', ' ORDER BY o) FROM unnest(args) WITH ORDINALITY AS u(a, o)));
END
$$;

CREATE FUNCTION @extschema@.check_column(tbl regclass, col name) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF col IS NULL OR NOT EXISTS (SELECT FROM pg_attribute
                                   WHERE attrelid = tbl AND attname = col
                                     AND attnum > 0 AND NOT attisdropped) THEN
        RAISE EXCEPTION 'column "%" of table "%" does not exist', col, tbl
            USING ERRCODE = 'undefined_column';
    END IF;
END
$$;

CREATE FUNCTION @extschema@.bind_columns(tbl regclass, row_key_column name,
                                          per_patient_keys boolean DEFAULT false)
    RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    args text[] := @extschema@.row_trigger_args(tbl);
BEGIN
    PERFORM @extschema@.check_column(tbl, row_key_column);
    IF per_patient_keys IS NULL THEN
        RAISE EXCEPTION 'per_patient_keys must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM @extschema@.set_row_trigger(tbl,
        ARRAY[row_key_column::text, CASE WHEN per_patient_keys THEN 't' ELSE 'f' END]
        || COALESCE(args[3:], '{}'));
END
$$;
COMMENT ON FUNCTION @extschema@.bind_columns(regclass, name, boolean) IS 'Bind every encrypted value of a table to its row key, optionally under one key per patient';

CREATE FUNCTION @extschema@.add_blind_index(tbl regclass, col name, index_column name, key_name text)
    RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    args text[] := COALESCE(@extschema@.row_trigger_args(tbl), ARRAY['', 'f']);
BEGIN
    PERFORM @extschema@.check_column(tbl, col);
    PERFORM @extschema@.check_column(tbl, index_column);
    IF (SELECT atttypid FROM pg_attribute WHERE attrelid = tbl AND attname = index_column)
       <> 'bytea'::regtype THEN
        RAISE EXCEPTION 'blind index column "%" must be of type bytea', index_column
            USING ERRCODE = 'datatype_mismatch';
    END IF;
    IF (SELECT atttypid FROM pg_attribute WHERE attrelid = tbl AND attname = col)
       <> '@extschema@.encrypted_text'::regtype THEN
        RAISE EXCEPTION 'column "%" must be of type hipaa_guard.encrypted_text', col
            USING ERRCODE = 'datatype_mismatch';
    END IF;
    PERFORM @extschema@.blind_index('', key_name);    -- the key must exist
    PERFORM @extschema@.set_row_trigger(tbl, args || ARRAY[col::text, index_column::text, key_name]);
    -- Fill the index column of existing rows; the trigger computes it.
    EXECUTE format('UPDATE %s SET %I = NULL WHERE %I IS NOT NULL', tbl, index_column, col);
END
$$;
COMMENT ON FUNCTION @extschema@.add_blind_index(regclass, name, name, text) IS 'Keep a bytea column filled with the blind index of an encrypted_text column';

CREATE VIEW @extschema@.encrypted_columns AS
SELECT c.oid::regclass AS table_name,
       a.attname AS column_name,
       pg_catalog.format_type(a.atttypid, a.atttypmod) AS column_type,
       k.name AS declared_key,
       NULLIF(x.args[1], '') AS row_key_column,
       COALESCE(x.args[2] OPERATOR(pg_catalog.=) 't', false) AS per_patient_keys
  FROM pg_catalog.pg_class AS c
  JOIN pg_catalog.pg_attribute AS a ON a.attrelid OPERATOR(pg_catalog.=) c.oid
  JOIN pg_catalog.pg_type AS t ON t.oid OPERATOR(pg_catalog.=) a.atttypid
  LEFT JOIN @extschema@.data_keys AS k ON k.key_id OPERATOR(pg_catalog.=) a.atttypmod
  LEFT JOIN LATERAL (SELECT @extschema@.row_trigger_args(c.oid) AS args) AS x ON true
 WHERE t.typnamespace OPERATOR(pg_catalog.=) '@extschema@'::pg_catalog.regnamespace
   AND t.typname OPERATOR(pg_catalog.=) ANY (ARRAY['encrypted_text', 'encrypted_bytea', 'encrypted_date', 'encrypted_jsonb'])
   AND c.relkind OPERATOR(pg_catalog.=) ANY (ARRAY['r', 'p']::"char"[])
   AND a.attnum OPERATOR(pg_catalog.>) 0
   AND NOT a.attisdropped;
COMMENT ON VIEW @extschema@.encrypted_columns IS 'Every encrypted column with its declared key and row binding';

CREATE FUNCTION @extschema@.require_own_transaction(procedure text) RETURNS void
    AS 'MODULE_PATHNAME', 'hg_require_own_transaction' LANGUAGE C STRICT;

-- Re-encrypt values under older key versions (and bind values not yet bound
-- to their row) in batches of about batch_size rows, each committed at once,
-- walking the table by block ranges.  What is left to do is defined by the
-- data, so a cancelled or crashed run is resumed by calling it again.  It
-- cannot pin search_path, because a procedure with SET cannot COMMIT, so
-- every name in it is qualified.
CREATE PROCEDURE @extschema@.reencrypt(tbl regclass, batch_size integer DEFAULT 1000)
    LANGUAGE plpgsql
AS $$
DECLARE
    args text[] := @extschema@.row_trigger_args(tbl);
    part regclass;
    cols text[];
    set_list text;
    predicate text;
    nblocks bigint;
    step bigint;
    blk bigint;
    n bigint;
    total bigint := 0;
BEGIN
    PERFORM @extschema@.require_own_transaction('hipaa_guard.reencrypt()');
    IF batch_size IS NULL OR batch_size OPERATOR(pg_catalog.<) 1 THEN
        RAISE EXCEPTION 'batch_size must be a positive integer' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- pg_partition_tree() lists nothing for a table that is not partitioned.
    FOR part IN SELECT p.relid FROM pg_catalog.pg_partition_tree(tbl) AS p WHERE p.isleaf
                UNION ALL
                SELECT tbl WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_partition_tree(tbl))
    LOOP
        SELECT pg_catalog.array_agg(pg_catalog.quote_ident(e.column_name) ORDER BY e.column_name)
          INTO cols
          FROM @extschema@.encrypted_columns AS e
         WHERE e.table_name OPERATOR(pg_catalog.=) part;
        CONTINUE WHEN cols IS NULL;

        SELECT pg_catalog.string_agg(pg_catalog.format('%1$s = @extschema@.reencrypt_value(%1$s)', c), ', '),
               pg_catalog.string_agg(pg_catalog.format('@extschema@.needs_reencrypt(%1$s)', c), ' OR ')
          INTO set_list, predicate
          FROM pg_catalog.unnest(cols) AS c;
        IF args IS NOT NULL AND args[1] OPERATOR(pg_catalog.<>) '' THEN
            SELECT predicate OPERATOR(pg_catalog.||) ' OR ' OPERATOR(pg_catalog.||) pg_catalog.string_agg(
                       pg_catalog.format('(%1$s IS NOT NULL AND @extschema@.row_key(%1$s) IS DISTINCT FROM %2$I::text)', c, args[1]), ' OR ')
              INTO predicate FROM pg_catalog.unnest(cols) AS c;
        END IF;

        nblocks := pg_catalog.pg_relation_size(part) OPERATOR(pg_catalog./) pg_catalog.current_setting('block_size')::bigint;
        SELECT GREATEST(1, batch_size::bigint OPERATOR(pg_catalog./)
                            GREATEST(1, (CASE WHEN c.reltuples OPERATOR(pg_catalog.>) 0 AND c.relpages OPERATOR(pg_catalog.>) 0
                                              THEN c.reltuples OPERATOR(pg_catalog./) c.relpages ELSE 50 END)::bigint))
          INTO step FROM pg_catalog.pg_class AS c WHERE c.oid OPERATOR(pg_catalog.=) part;
        blk := 0;
        WHILE blk OPERATOR(pg_catalog.<=) nblocks LOOP
            EXECUTE pg_catalog.format(
                'UPDATE %s SET %s WHERE ctid >= ''(%s,0)''::tid AND ctid < ''(%s,0)''::tid AND (%s)',
                part, set_list, blk, blk OPERATOR(pg_catalog.+) step, predicate);
            GET DIAGNOSTICS n = ROW_COUNT;
            total := total OPERATOR(pg_catalog.+) n;
            COMMIT;
            blk := blk OPERATOR(pg_catalog.+) step;
        END LOOP;
    END LOOP;
    RAISE NOTICE 'hipaa_guard: re-encrypted % rows of %', total, tbl;
END
$$;
COMMENT ON PROCEDURE @extschema@.reencrypt(regclass, integer) IS 'Re-encrypt a table''s values under the current key versions, in committed batches';

CREATE FUNCTION @extschema@.erase_key_version(name text, version integer) RETURNS void
    AS 'MODULE_PATHNAME', 'hg_erase_key_version' LANGUAGE C VOLATILE;

-- Retire an old key version: refused while any value in any encrypted
-- column of this database is still under it, then erased in place.  It reads
-- every encrypted column, so it runs as the extension owner.
CREATE FUNCTION @extschema@.retire_key_version(name text, version integer) RETURNS void
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    col record;
    n bigint;
    total bigint := 0;
    tables text[] := '{}';
    current integer;
BEGIN
    IF name IS NULL OR version IS NULL THEN
        RAISE EXCEPTION 'key name and version must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT k.current_version INTO current FROM @extschema@.data_keys AS k WHERE k.name = retire_key_version.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'data key "%" does not exist', name USING ERRCODE = 'undefined_object';
    END IF;
    IF version < 1 OR version >= current THEN
        RAISE EXCEPTION 'cannot retire version % of data key "%"', version, name
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Only versions older than the current version %s can be retired.', current);
    END IF;
    -- A transaction that began before this one may still use the old version
    -- from its key cache, while later ones read the rotation first.  Waiting
    -- for the older ones ensures none writes under the version once counted.
    WHILE EXISTS (SELECT FROM pg_stat_activity AS a
                   WHERE a.pid <> pg_backend_pid() AND a.datname = current_database()
                     AND a.xact_start < transaction_timestamp()) LOOP
        PERFORM pg_sleep(0.1);
    END LOOP;
    FOR col IN SELECT e.table_name, e.column_name FROM @extschema@.encrypted_columns AS e
                WHERE NOT EXISTS (SELECT FROM pg_inherits AS i WHERE i.inhparent = e.table_name)
    LOOP
        EXECUTE format('SELECT count(*) FROM %s WHERE @extschema@.key_name(%I) = $1 AND @extschema@.key_version(%I) = $2',
                       col.table_name, col.column_name, col.column_name)
           INTO n USING name, version;
        IF n > 0 THEN
            total := total + n;
            tables := tables || format('%s.%I', col.table_name, col.column_name);
        END IF;
    END LOOP;
    IF total > 0 THEN
        RAISE EXCEPTION 'data key "%" version % still encrypts % values', name, version, total
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'Columns with such values: ' || array_to_string(tables, ', ') || '.',
                  HINT = 'Run CALL hipaa_guard.reencrypt() on those tables first.';
    END IF;
    PERFORM @extschema@.erase_key_version(name, version);
END
$$;
COMMENT ON FUNCTION @extschema@.retire_key_version(text, integer) IS 'Erase an old key version once no value in the database uses it';
REVOKE EXECUTE ON FUNCTION @extschema@.erase_key_version(text, integer), @extschema@.retire_key_version(text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.retire_key_version(text, integer) TO hipaa_admin;
