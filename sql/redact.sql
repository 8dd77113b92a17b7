--
-- Statement redaction: redact_statement() returns the text that the audit
-- trail records for a statement, with every constant replaced by ? and
-- comments removed, in one canonical form whatever the session's settings.
--
-- The audit hooks call the C function with the statement's location and
-- length inside a multi-statement query string.  SQL cannot reach that path:
-- redact_statement() always redacts the whole string it is given, so the
-- multi-statement case below covers only that.
--
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_redact_auditor, regress_redact_admin,
    regress_redact_clinician, regress_redact_nobody;
CREATE ROLE regress_redact_auditor IN ROLE hipaa_auditor;
CREATE ROLE regress_redact_admin IN ROLE hipaa_admin;
CREATE ROLE regress_redact_clinician IN ROLE hipaa_clinician;
CREATE ROLE regress_redact_nobody;

-- Plain statements: strings, integers, negative numbers and floats become ?.
SELECT hipaa_guard.redact_statement($q$SELECT name, birth_date FROM patients WHERE ssn = '078-05-1120' AND age > 40$q$);
SELECT hipaa_guard.redact_statement($q$INSERT INTO patients (name, weight, balance) VALUES ('John Smith', 81.5, -12.75)$q$);
SELECT hipaa_guard.redact_statement($q$UPDATE patients SET score = -1.5e-3, visits = visits + 1 WHERE id = 2147483648$q$);
SELECT hipaa_guard.redact_statement($q$DELETE FROM notes WHERE patient = 'Jane Roe' RETURNING id$q$);

-- E'' strings with escaped quotes, dollar quotes with and without a tag,
-- and N'' strings.
SELECT hipaa_guard.redact_statement($q$SELECT E'O\'Brien\n', 'it''s', $$Mary's $x$ note$$, $tag$Bob $$ Jones$tag$, N'Müller'$q$);

-- Bit and hexadecimal strings.
SELECT hipaa_guard.redact_statement($q$UPDATE flags SET bits = B'1010', mask = X'1F', other = b'01' WHERE id = 3$q$);

-- Typed literals keep their type name, casts keep their target type.
SELECT hipaa_guard.redact_statement($q$SELECT * FROM visits WHERE seen_on >= DATE '2020-01-01' AND seen_at < TIMESTAMPTZ '2021-01-01 10:00' - INTERVAL '1 day'$q$);
SELECT hipaa_guard.redact_statement($q$SELECT '42'::int, CAST('1980-02-03' AS date), x::text::varchar(20) FROM t$q$);

-- IN lists: each element is a constant of its own.
SELECT hipaa_guard.redact_statement($q$SELECT id FROM patients WHERE mrn IN ('A123', 'B456', 'C789') AND ward NOT IN (1, 2, 3)$q$);

-- Comments are removed, nested block comments included.
SELECT hipaa_guard.redact_statement($q$SELECT id -- patient John Smith
FROM /* outer /* nested: SSN 078-05-1120 */ still a comment */ patients$q$);

-- Identifiers: unquoted names fold to lower case, quoted names keep their
-- case and quotes, and a quoted keyword stays quoted.
SELECT hipaa_guard.redact_statement($q$SELECT "Last Name", "MixedCase", MixedCase, "select", "order".x, "Größe" FROM "Patients"$q$);

-- Keywords come out in lower case however they were written.
SELECT hipaa_guard.redact_statement($q$SeLeCt DISTINCT id FrOm patients WhErE deleted Is NoT nULL oRdEr By id DESC$q$);

-- Parameters are kept.
SELECT hipaa_guard.redact_statement($q$SELECT * FROM patients WHERE id = $1 AND ward = $12$q$);

-- Multi-character tokens.
SELECT hipaa_guard.redact_statement($q$SELECT f(a => 1, b := 2), x <= 3, y >= 4, z <> 5, w != 6, arr[1:2], v || 'x', j ->> 'k', 1..10$q$);
SELECT hipaa_guard.redact_statement($q$SELECT a=-1, b<-2, c<=-3$q$);
-- jsonb's ? operator prints like a constant.
SELECT hipaa_guard.redact_statement($q$SELECT doc ? 'ssn', doc ?| ARRAY['a'] FROM records$q$);

-- Unicode escapes: the identifier is kept as written, the string is a constant.
SELECT hipaa_guard.redact_statement($q$SELECT U&"d\0061ta", U&'J\006fhn' FROM t$q$);

-- COPY to a file or to the client: the file name is a constant too.
SELECT hipaa_guard.redact_statement($q$COPY (SELECT * FROM patients WHERE name = 'John Smith') TO '/tmp/export.csv' WITH (FORMAT csv, HEADER true)$q$);
SELECT hipaa_guard.redact_statement($q$COPY patients (id, name) TO STDOUT$q$);

-- A multi-statement string is redacted as a whole.
SELECT hipaa_guard.redact_statement($q$SELECT 1; UPDATE patients SET name = 'Jane Roe' WHERE id = 7; DELETE FROM t$q$);

-- A patient's name and SSN never appear in the output, whatever quoting
-- carried them.
SELECT r AS redacted,
       strpos(r, 'Smith') = 0 AS no_name,
       strpos(r, '078') = 0 AND strpos(r, '1120') = 0 AS no_ssn
  FROM hipaa_guard.redact_statement($q$INSERT INTO patients VALUES ('John Smith', E'078-05-1120', $$John Smith$$, $s$078-05-1120$s$, U&'John Smith', 078051120)$q$) AS r;

-- Empty input, white space and comments alone give NULL, and so does NULL.
SELECT hipaa_guard.redact_statement('') IS NULL AS empty,
       hipaa_guard.redact_statement(E' \n\t ') IS NULL AS blank,
       hipaa_guard.redact_statement('-- John Smith') IS NULL AS line_comment,
       hipaa_guard.redact_statement('/* John Smith */') IS NULL AS block_comment,
       hipaa_guard.redact_statement(NULL) IS NULL AS null_input;

-- Text the scanner rejects gives the placeholder, never the text.
SELECT hipaa_guard.redact_statement($q$SELECT 'John Smith$q$) AS unterminated_string,
       hipaa_guard.redact_statement($q$SELECT "John Smith$q$) AS unterminated_identifier,
       hipaa_guard.redact_statement($q$SELECT /* John Smith$q$) AS unterminated_comment,
       hipaa_guard.redact_statement($q$SELECT $$John Smith$q$) AS unterminated_dollar,
       hipaa_guard.redact_statement($q$SELECT ""$q$) AS empty_identifier;

-- A long identifier is truncated to 63 bytes as the parser truncates it,
-- without repeating the parser's notice.
SET client_min_messages = notice;
SELECT hipaa_guard.redact_statement('SELECT ' || repeat('a', 70) || ' FROM t');
SET client_min_messages = warning;

-- The result is capped at 64 kB, ending in " …".
SELECT octet_length(r) AS bytes, right(r, 12) AS tail, r LIKE 'insert into t values ( ? , ? ) , ( ? , ? ) ,%' AS prefix
  FROM hipaa_guard.redact_statement('INSERT INTO t VALUES ' ||
       (SELECT string_agg(format('(%s, ''patient %s'')', g, g), ', ') FROM generate_series(1, 20000) AS g)) AS r;
-- "select" and 16381 times " ? ," and " ?" make 65532 bytes, the most
-- that leaves room for the marker, so the text is complete.  One more
-- element does not fit and ends the text with the marker instead.
SELECT n, octet_length(r) AS bytes, right(r, 7) AS tail
  FROM generate_series(16381, 16382) AS n,
       hipaa_guard.redact_statement('SELECT ' || repeat('1, ', n) || '1') AS r;

-- The session's settings do not change the text, except where
-- standard_conforming_strings changes where a string ends.
SET quote_all_identifiers = on;
SELECT hipaa_guard.redact_statement('SELECT a, "B" FROM t');
RESET quote_all_identifiers;
SET standard_conforming_strings = off;
SET escape_string_warning = on;
SET client_min_messages = notice;
-- Here 'O\'Brien' is one string, and its warning is not repeated.
SELECT hipaa_guard.redact_statement($q$SELECT 'O\'Brien', 'c:\temp'$q$);
SET client_min_messages = warning;
SET backslash_quote = off;
SELECT hipaa_guard.redact_statement($q$SELECT 'O\'Brien'$q$);
RESET backslash_quote;
RESET escape_string_warning;
RESET standard_conforming_strings;
-- With standard strings, 'c:\' ends at its second quote.
SELECT hipaa_guard.redact_statement($q$SELECT 'c:\', x$q$);

-- The function is STABLE, STRICT and PARALLEL SAFE.
SELECT provolatile, proisstrict, proparallel
  FROM pg_proc WHERE oid = 'hipaa_guard.redact_statement(text)'::regprocedure;

-- Auditors and administrators may call it, but clinicians and other roles may not.
SELECT r AS role_name,
       has_function_privilege(r, 'hipaa_guard.redact_statement(text)', 'EXECUTE') AS can_execute
  FROM unnest(ARRAY['regress_redact_auditor', 'regress_redact_admin',
                    'regress_redact_clinician', 'regress_redact_nobody']) AS r;
SET ROLE regress_redact_auditor;
SELECT hipaa_guard.redact_statement('SELECT 1');
RESET ROLE;
SET ROLE regress_redact_nobody;
SELECT hipaa_guard.redact_statement('SELECT 1');
RESET ROLE;

DROP ROLE regress_redact_auditor, regress_redact_admin,
    regress_redact_clinician, regress_redact_nobody;
