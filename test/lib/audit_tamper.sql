-- What an attacker with superuser rights does to the packed audit trail, for
-- the tests that check that verify_audit_chain() notices.  It works on the
-- stored bytes directly, from the format in docs/audit-format.md, and uses
-- none of the extension's functions.  Every function lives in pg_temp, so it
-- is gone when the session ends.  The functions that change rows turn the
-- trail's guard trigger off around the change, as a superuser can, and on
-- again with ENABLE ALWAYS.

-- The records of a packed row, in stored order.
CREATE FUNCTION pg_temp.tamper_split(records bytea) RETURNS TABLE (ord int, rec bytea)
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    pos int := 0;
    start int;
    len bigint;
BEGIN
    ord := 0;
    WHILE pos < length(records) LOOP
        start := pos;
        FOR i IN 1..22 LOOP
            len := (get_byte(records, pos)::bigint << 24) | (get_byte(records, pos + 1) << 16)
                 | (get_byte(records, pos + 2) << 8) | get_byte(records, pos + 3);
            pos := pos + 4;
            IF len <> 4294967295 THEN
                pos := pos + len::int;
            END IF;
        END LOOP;
        ord := ord + 1;
        rec := substring(records FROM start + 1 FOR pos - start);
        RETURN NEXT;
    END LOOP;
END
$$;

-- One field of a record as text, numbered from 1 as in the format.
CREATE FUNCTION pg_temp.tamper_field(rec bytea, k int) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    pos int := 0;
    len bigint;
BEGIN
    FOR i IN 1..22 LOOP
        len := (get_byte(rec, pos)::bigint << 24) | (get_byte(rec, pos + 1) << 16)
             | (get_byte(rec, pos + 2) << 8) | get_byte(rec, pos + 3);
        pos := pos + 4;
        IF i = k THEN
            RETURN CASE WHEN len = 4294967295 THEN NULL
                        ELSE convert_from(substring(rec FROM pos + 1 FOR len::int), 'UTF8') END;
        END IF;
        IF len <> 4294967295 THEN
            pos := pos + len::int;
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;

-- A record with field k replaced by value (NULL for NULL).
CREATE FUNCTION pg_temp.tamper_set_field(rec bytea, k int, value text) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    fields bytea := '';
BEGIN
    FOR i IN 1..22 LOOP
        IF i = k THEN
            fields := fields || CASE WHEN value IS NULL THEN '\xffffffff'::bytea
                                     ELSE int4send(length(convert_to(value, 'UTF8')))
                                          || convert_to(value, 'UTF8') END;
        ELSIF pg_temp.tamper_field(rec, i) IS NULL THEN
            fields := fields || '\xffffffff'::bytea;
        ELSE
            fields := fields || int4send(length(convert_to(pg_temp.tamper_field(rec, i), 'UTF8')))
                             || convert_to(pg_temp.tamper_field(rec, i), 'UTF8');
        END IF;
    END LOOP;
    RETURN fields;
END
$$;

-- A forged record: seq, the current time, kind and detail, the rest NULL.
CREATE FUNCTION pg_temp.tamper_record(seq bigint, kind text, detail text) RETURNS bytea
LANGUAGE sql AS $$
SELECT pg_temp.tamper_set_field(pg_temp.tamper_set_field(pg_temp.tamper_set_field(
           pg_temp.tamper_set_field(decode(repeat('ffffffff', 22), 'hex'), 1, seq::text),
           2, (extract(epoch FROM now()) * 1000000)::bigint::text), 3, kind), 22, detail)
$$;

-- Run a change to audit_log with its guard trigger off.
CREATE FUNCTION pg_temp.tamper_unguarded(statement text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    ALTER TABLE hipaa_guard.audit_log DISABLE TRIGGER audit_log_guard;
    EXECUTE statement;
    ALTER TABLE hipaa_guard.audit_log ENABLE ALWAYS TRIGGER audit_log_guard;
END
$$;

-- Edit field k of the sealed record seq.
CREATE FUNCTION pg_temp.tamper_edit(seq bigint, k int, value text) RETURNS void
LANGUAGE sql AS $$
SELECT pg_temp.tamper_unguarded(format($f$
UPDATE hipaa_guard.audit_log AS l
   SET records = (SELECT string_agg(CASE WHEN pg_temp.tamper_field(p.rec, 1) = %1$L
                                         THEN pg_temp.tamper_set_field(p.rec, %2$s, %3$L)
                                         ELSE p.rec END, ''::bytea ORDER BY p.ord)
                    FROM pg_temp.tamper_split(l.records) AS p)
 WHERE l.first_seq <= %1$s AND l.last_seq >= %1$s$f$, seq, k, value))
$$;

-- Remove the sealed record seq and shorten its row's range to match.
CREATE FUNCTION pg_temp.tamper_delete(seq bigint) RETURNS void
LANGUAGE sql AS $$
SELECT pg_temp.tamper_unguarded(format($f$
UPDATE hipaa_guard.audit_log AS l
   SET records = (SELECT string_agg(p.rec, ''::bytea ORDER BY p.ord)
                    FROM pg_temp.tamper_split(l.records) AS p
                   WHERE pg_temp.tamper_field(p.rec, 1) <> %1$L),
       last_seq = l.last_seq - 1
 WHERE l.first_seq <= %1$s AND l.last_seq >= %1$s$f$, seq))
$$;

-- Swap the stored places of the sealed records a and b of one row.
CREATE FUNCTION pg_temp.tamper_swap(a bigint, b bigint) RETURNS void
LANGUAGE sql AS $$
SELECT pg_temp.tamper_unguarded(format($f$
UPDATE hipaa_guard.audit_log AS l
   SET records = (SELECT string_agg(p.rec, ''::bytea
                                    ORDER BY CASE pg_temp.tamper_field(p.rec, 1)
                                                  WHEN %1$L THEN %2$s WHEN %2$L THEN %1$s
                                                  ELSE pg_temp.tamper_field(p.rec, 1)::bigint END)
                    FROM pg_temp.tamper_split(l.records) AS p)
 WHERE l.first_seq <= %1$s AND l.last_seq >= %1$s$f$, a, b))
$$;

-- Keep a copy of the rows that hold the records first to last.
CREATE FUNCTION pg_temp.tamper_save(first bigint, last bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    DROP TABLE IF EXISTS pg_temp.tamper_saved;
    CREATE TEMP TABLE tamper_saved AS
    SELECT * FROM hipaa_guard.audit_log AS l WHERE l.last_seq >= first AND l.first_seq <= last;
END
$$;

-- Put the saved rows back as they were.
CREATE FUNCTION pg_temp.tamper_restore() RETURNS void
LANGUAGE sql AS $$
SELECT pg_temp.tamper_unguarded($f$
UPDATE hipaa_guard.audit_log AS l
   SET records = s.records, last_seq = s.last_seq, block = s.block, patients = s.patients,
       logged_from = s.logged_from, logged_to = s.logged_to
  FROM pg_temp.tamper_saved AS s
 WHERE l.first_seq = s.first_seq$f$)
$$;
