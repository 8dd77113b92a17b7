-- What an attacker with superuser rights does to the packed audit trail, for
-- the tests that check that verify_audit_chain() notices.  It works on the
-- stored bytes directly, from the format in docs/audit-format.md, and uses
-- none of the extension's functions.  Every function lives in pg_temp, so it
-- is gone when the session ends.  The caller turns the trail's guard
-- triggers off around the calls that change rows.

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

-- Edit field k of the sealed record seq.
CREATE FUNCTION pg_temp.tamper_edit(seq bigint, k int, value text) RETURNS void
LANGUAGE sql AS $$
UPDATE hipaa_guard.audit_log AS l
   SET records = (SELECT string_agg(CASE WHEN pg_temp.tamper_field(p.rec, 1) = seq::text
                                         THEN pg_temp.tamper_set_field(p.rec, k, value)
                                         ELSE p.rec END, ''::bytea ORDER BY p.ord)
                    FROM pg_temp.tamper_split(l.records) AS p)
 WHERE l.first_seq <= seq AND l.last_seq >= seq
$$;

-- Remove the sealed record seq and shorten its row's range to match.
CREATE FUNCTION pg_temp.tamper_delete(seq bigint) RETURNS void
LANGUAGE sql AS $$
UPDATE hipaa_guard.audit_log AS l
   SET records = (SELECT string_agg(p.rec, ''::bytea ORDER BY p.ord)
                    FROM pg_temp.tamper_split(l.records) AS p
                   WHERE pg_temp.tamper_field(p.rec, 1) <> seq::text),
       last_seq = l.last_seq - 1
 WHERE l.first_seq <= seq AND l.last_seq >= seq
$$;

-- Swap the stored places of the sealed records a and b of one row.
CREATE FUNCTION pg_temp.tamper_swap(a bigint, b bigint) RETURNS void
LANGUAGE sql AS $$
UPDATE hipaa_guard.audit_log AS l
   SET records = (SELECT string_agg(p.rec, ''::bytea
                                    ORDER BY CASE pg_temp.tamper_field(p.rec, 1)
                                                  WHEN a::text THEN b WHEN b::text THEN a
                                                  ELSE pg_temp.tamper_field(p.rec, 1)::bigint END)
                    FROM pg_temp.tamper_split(l.records) AS p)
 WHERE l.first_seq <= a AND l.last_seq >= a
$$;
