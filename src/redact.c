/*
 * redact.c
 *		The statement text of audit records.  The statement is rescanned
 *		with PostgreSQL's core SQL scanner and printed back token by token,
 *		every constant replaced by "?" and every comment dropped, so that no
 *		literal value (a patient's name, an SSN) reaches the trail.
 *
 * Canonical form.  Tokens are joined by single spaces.  Keywords come out in
 * lower case, identifiers as quote_identifier() prints the scanned name
 * (folded to lower case unless it was quoted), operators and punctuation as
 * scanned, parameters as $n, and string, bit-string and numeric constants as
 * "?".  The scanner returns one token for both "<>" and "!=", printed "<>".
 * A typed literal keeps its type name: DATE '2020-01-01' becomes "date ?".
 * The same statement written with other literals, comments, letter case or
 * layout therefore gives the same text, which auditors can group on.
 *
 * What stays.  Identifiers, including quoted ones, are kept: a column alias
 * such as "John Smith" would reach the trail.  Negative numbers lose only
 * their value ("- ?"), because the sign is a separate token.  The jsonb
 * operators ?, ?| and ?& print as scanned, so a lone "?" can be either.
 *
 * Settings.  standard_conforming_strings and backslash_quote decide where a
 * string literal ends, so the scan uses the session's values, as the parser
 * did.  Nothing else of the session may change the text: quote_all_identifiers
 * is switched off during the scan, and the scanner's messages (the
 * nonstandard-escape warning, the identifier-truncation notice) are
 * suppressed, because the parser already raised them for the same statement.
 *
 * Errors.  A statement that parsed scans again without error, but a scanner
 * error must not abort the audited statement or leak the literal that its
 * message quotes.  The scan therefore runs in a PG_TRY block in a memory
 * context of its own and touches no shared memory, lock or buffer, which
 * makes it safe to catch the error without a subtransaction.  The record then gets
 * REDACT_PLACEHOLDER and the server log the SQLSTATE alone.
 */
#include "postgres.h"

#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "parser/scanner.h"
#include "parser/gram.h"		/* token codes, included after scanner.h */
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "audit.h"

/*
 * Maximum length in bytes of a redacted statement, marker included.  Each
 * audit record stores and hashes this text, and records of reads pass
 * through shared memory on their way to the trail.  Generated statements (a
 * bulk INSERT with thousands of VALUES rows, an IN list of every patient id)
 * can run to megabytes.  After redaction their tail is a run of "?" that
 * shows an auditor nothing the first 64 kB did not.
 */
#define REDACT_MAX_BYTES	65536

/*
 * Appended to a truncated text.  U+2026 in UTF-8, and three full stops in
 * other server encodings, some of which cannot represent U+2026.
 */
#define REDACT_MARKER_UTF8	" \xe2\x80\xa6"
#define REDACT_MARKER_ASCII	" ..."

/* Recorded in place of a statement that the scanner rejected. */
#define REDACT_PLACEHOLDER	"(statement not recorded)"

/* Room for "$" and a parameter number, or for a one-character token. */
#define TOKEN_SCRATCH_SIZE	16

static char *redact_tokens(const char *statement);
static const char *token_text(int token, const core_YYSTYPE *value,
							  char *scratch);
static bool append_token(StringInfo buf, const char *token, int token_len,
						 int limit);

/*
 * Return the literal-free, comment-free text of one statement of "query",
 * palloc'd in the current memory context, or NULL when there is no text.
 *
 * "location" and "len" are PlannedStmt's stmt_location and stmt_len: the
 * statement is the "len" bytes from byte "location", and a "len" of 0 or
 * less means up to the end of the string.  A negative "location" means
 * unknown and selects the whole string, as does a "location" past its end,
 * so that a bad offset redacts too much rather than nothing.  A statement
 * with no token, only comments or white space, also gives NULL.
 */
char *
hg_redact_statement(const char *query, int location, int len)
{
	size_t		query_len;
	const char *start;
	size_t		statement_len;
	char	   *statement;
	char	   *result;

	if (query == NULL)
		return NULL;

	query_len = strlen(query);
	if (location >= 0 && (size_t) location <= query_len)
	{
		start = query + location;
		statement_len = query_len - location;
		if (len > 0 && (size_t) len < statement_len)
			statement_len = len;
	}
	else
	{
		start = query;
		statement_len = query_len;
	}

	if (statement_len == 0)
		return NULL;

	/*
	 * The scanner needs a NUL-terminated string, so copy only a statement
	 * that ends before the query string does.
	 */
	if (start + statement_len == query + query_len)
		return redact_tokens(start);

	statement = pnstrdup(start, statement_len);
	result = redact_tokens(statement);
	pfree(statement);
	return result;
}

/*
 * Scan "statement" and return its canonical text, REDACT_PLACEHOLDER when
 * the scanner raised an error, or NULL when it has no token.
 */
static char *
redact_tokens(const char *statement)
{
	MemoryContext caller_context = CurrentMemoryContext;
	MemoryContext scan_context;
	StringInfo	buf;
	int			limit;
	const char *marker;
	bool		saved_quote_all = quote_all_identifiers;
	int			saved_client_min = client_min_messages;
	int			saved_log_min = log_min_messages;
	uint32		saved_interrupt_holdoff = InterruptHoldoffCount;
	uint32		saved_cancel_holdoff = QueryCancelHoldoffCount;
	uint32		saved_crit_section = CritSectionCount;
	volatile bool failed = false;
	volatile int error_code = 0;
	char	   *result;
	bool		empty;

	if (GetDatabaseEncoding() == PG_UTF8)
		marker = REDACT_MARKER_UTF8;
	else
		marker = REDACT_MARKER_ASCII;
	limit = REDACT_MAX_BYTES - (int) strlen(marker);

	/*
	 * Build the result in the caller's context, so that deleting
	 * scan_context frees only what the scanner allocated.
	 */
	buf = makeStringInfo();
	scan_context = AllocSetContextCreate(caller_context,
										 "hipaa_guard statement redaction",
										 ALLOCSET_DEFAULT_SIZES);

	PG_TRY();
	{
		core_yy_extra_type extra;
		core_yyscan_t scanner;
		core_YYSTYPE value;
		int			location;
		char		scratch[TOKEN_SCRATCH_SIZE];
		bool		complete = true;

		/*
		 * Raising both message levels to ERROR silences the scanner's
		 * notices and warnings.  The code after PG_END_TRY() restores them.
		 */
		MemoryContextSwitchTo(scan_context);
		quote_all_identifiers = false;
		client_min_messages = ERROR;
		log_min_messages = ERROR;

		scanner = scanner_init(statement, &extra, &ScanKeywords, ScanKeywordTokens);
		extra.escape_string_warning = false;

		for (;;)
		{
			int			token = core_yylex(&value, &location, scanner);
			const char *text;

			if (token == 0)
				break;
			text = token_text(token, &value, scratch);
			if (!append_token(buf, text, strlen(text), limit))
			{
				complete = false;
				break;
			}
		}

		scanner_finish(scanner);
		if (!complete)
			appendBinaryStringInfo(buf, marker, strlen(marker));
	}
	PG_CATCH();
	{
		/* errfinish() zeroes these, but the caller may have held interrupts. */
		InterruptHoldoffCount = saved_interrupt_holdoff;
		QueryCancelHoldoffCount = saved_cancel_holdoff;
		CritSectionCount = saved_crit_section;
		MemoryContextSwitchTo(caller_context);
		error_code = geterrcode();
		FlushErrorState();
		failed = true;
	}
	PG_END_TRY();

	MemoryContextSwitchTo(caller_context);
	quote_all_identifiers = saved_quote_all;
	client_min_messages = saved_client_min;
	log_min_messages = saved_log_min;
	MemoryContextDelete(scan_context);

	if (failed)
	{
		/* The error's message may quote a literal, so only its code is logged. */
		ereport(LOG,
				(errhidestmt(true),
				 errmsg("could not redact statement text: the SQL scanner failed with SQLSTATE %s",
						unpack_sql_state(error_code)),
				 errdetail("The text \"%s\" replaces the statement.",
						   REDACT_PLACEHOLDER)));
		pfree(buf->data);
		pfree(buf);
		return pstrdup(REDACT_PLACEHOLDER);
	}

	result = buf->data;
	empty = (buf->len == 0);
	pfree(buf);
	if (empty)
	{
		pfree(result);
		return NULL;
	}
	return result;
}

/*
 * Return the canonical text of a token that core_yylex() returned.  The text
 * is in "scratch" (TOKEN_SCRATCH_SIZE bytes), in static storage or palloc'd.
 */
static const char *
token_text(int token, const core_YYSTYPE *value, char *scratch)
{
	StringInfoData ident;
	const char *c;

	switch (token)
	{
		case IDENT:
			return quote_identifier(value->str);
		case UIDENT:

			/*
			 * The scanner leaves the escapes of a U&"..." identifier for the
			 * parser to decode, so print it as written.
			 */
			initStringInfo(&ident);
			appendStringInfoString(&ident, "U&\"");
			for (c = value->str; *c; c++)
			{
				if (*c == '"')
					appendStringInfoChar(&ident, '"');
				appendStringInfoChar(&ident, *c);
			}
			appendStringInfoChar(&ident, '"');
			return ident.data;
		case SCONST:
		case USCONST:
		case BCONST:
		case XCONST:
		case ICONST:
		case FCONST:
			return "?";
		case Op:
			return value->str;
		case PARAM:
			snprintf(scratch, TOKEN_SCRATCH_SIZE, "$%d", value->ival);
			return scratch;
		case TYPECAST:
			return "::";
		case DOT_DOT:
			return "..";
		case COLON_EQUALS:
			return ":=";
		case EQUALS_GREATER:
			return "=>";
		case LESS_EQUALS:
			return "<=";
		case GREATER_EQUALS:
			return ">=";
		case NOT_EQUALS:
			return "<>";
	}

	/* The scanner returns every other token code above 255 for a keyword. */
	if (token >= 256)
		return value->keyword;

	/* Punctuation, or a stray character such as a lone "$". */
	if (token > ' ' && token < 127)
	{
		scratch[0] = (char) token;
		scratch[1] = '\0';
		return scratch;
	}

	/* A control character, which no statement that parsed contains. */
	return "?";
}

/*
 * Append a token, after a space unless it is the first, and return true.
 * Append nothing and return false when the text would exceed "limit" bytes.
 */
static bool
append_token(StringInfo buf, const char *token, int token_len, int limit)
{
	int			needed = token_len + (buf->len > 0 ? 1 : 0);

	if (buf->len + needed > limit)
		return false;
	if (buf->len > 0)
		appendStringInfoChar(buf, ' ');
	appendBinaryStringInfo(buf, token, token_len);
	return true;
}

PG_FUNCTION_INFO_V1(hg_redact_statement_sql);

/*
 * hipaa_guard.redact_statement(statement text): the text that the trail
 * records for a statement, for tests and for auditors who want to match a
 * statement against the trail.
 */
Datum
hg_redact_statement_sql(PG_FUNCTION_ARGS)
{
	char	   *statement = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *result = hg_redact_statement(statement, -1, 0);

	if (result == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(result));
}
