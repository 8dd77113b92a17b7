/*
 * enctypes.c
 *		The encrypted types encrypted_text, encrypted_bytea, encrypted_date
 *		and encrypted_jsonb: type I/O, type modifiers, casts from plaintext,
 *		encrypt(), decrypt() and blind_index().
 *
 * A stored value is the binary envelope of envelope.h in a varlena.  Text
 * and binary output print the envelope and never decrypt, because PostgreSQL
 * prints values with the output function in errors such as "Failing row
 * contains".  Text and binary input accept an envelope of the right base type
 * and store it unchanged, so pg_dump, COPY and replication carry ciphertext
 * as it is and a restore never encrypts twice.
 *
 * A column declares its key in its type modifier, for example
 * encrypted_text('phi').  The modifier is the key id, which survives
 * dump and restore because the keyring rows keep their ids.  The assignment
 * cast from the base type encrypts plaintext under that key (INSERT, UPDATE,
 * bound text parameters).  The input function encrypts only when it is given
 * the modifier of such a column, which PostgreSQL does for COPY FROM alone.
 * Literals reach input functions with modifier -1, so a plaintext literal is
 * rejected instead of being stored or guessed at.
 */
#include "postgres.h"

#include <limits.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "libpq/pqformat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/jsonb.h"

#include "actor.h"
#include "auditcapture.h"
#include "enctypes.h"
#include "keyring.h"
#include "masterkey.h"

static const char *
type_label(HgTypeCode code)
{
	switch (code)
	{
		case HG_TYPE_TEXT:
			return "encrypted_text";
		case HG_TYPE_BYTEA:
			return "encrypted_bytea";
		case HG_TYPE_DATE:
			return "encrypted_date";
		case HG_TYPE_JSONB:
			return "encrypted_jsonb";
	}
	return "encrypted value";
}

/* ----------------------------------------------------------------
 *		Encrypting and decrypting
 * ---------------------------------------------------------------- */

/*
 * Encrypt plain under the current version of key_id, bound to row_key when
 * it is not NULL, and return the stored form.
 */
bytea *
hg_encrypt_bytes(HgTypeCode type_code, uint32 key_id, const char *row_key,
				 const uint8_t *plain, size_t plain_len)
{
	size_t		row_key_len = row_key != NULL ? strlen(row_key) : 0;
	uint8_t		nonce[HG_NONCE_LEN];
	const uint8_t *key;
	uint32		version;
	size_t		env_len;
	bytea	   *result;
	uint8_t    *out;

	if (plain_len > HG_MAX_PLAIN_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("value is too large to encrypt"),
				 errdetail("Encrypted values hold at most %d bytes of plaintext.", HG_MAX_PLAIN_LEN)));
	if (row_key_len > HG_MAX_ROW_KEY_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("row key is too long to bind an encrypted value to"),
				 errdetail("Row keys have at most %d bytes.", HG_MAX_ROW_KEY_LEN)));

	key = hg_key_for_encrypt(key_id, &version);
	if (!hg_random_nonce(nonce))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random nonce")));

	env_len = hg_envelope_size(row_key_len, plain_len);
	result = palloc(VARHDRSZ + env_len);
	SET_VARSIZE(result, VARHDRSZ + env_len);
	out = (uint8_t *) VARDATA(result);
	hg_envelope_write_header(out, type_code, key_id, version, nonce,
							 (const uint8_t *) row_key, row_key_len,
							 (uint32) plain_len);
	if (hg_aead_encrypt(key, nonce, out, HG_HEADER_LEN + row_key_len,
						plain, plain_len,
						out + HG_HEADER_LEN + row_key_len,
						out + HG_HEADER_LEN + row_key_len + plain_len) != HG_CRYPTO_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not encrypt value")));
	return result;
}

/* Parse a stored value; a value that fails here was altered on disk. */
void
hg_parse_stored(bytea *value, HgEnvelope *env)
{
	HgParseStatus status;

	status = hg_envelope_parse((const uint8_t *) VARDATA_ANY(value),
							   VARSIZE_ANY_EXHDR(value), env);
	if (status != HG_PARSE_OK)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("could not decrypt value: authentication failed"),
				 errdetail("%s", hg_parse_status_detail(status))));
}

/*
 * Decrypt and authenticate env into a palloc'd buffer (one spare byte for a
 * terminator).  Every integrity failure raises the same message, so that an
 * attacker cannot tell which part of a forged value was wrong.
 */
static void
decrypt_envelope_into(const HgEnvelope *env, uint8_t *plain)
{
	const uint8_t *key = hg_key_for_decrypt(env->key_id, env->key_version);
	HgCryptoStatus status;

	status = hg_aead_decrypt(key, env->nonce, env->aad, env->aad_len,
							 env->cipher, env->cipher_len, env->tag, plain);
	if (status != HG_CRYPTO_OK)
	{
		hg_wipe(plain, env->cipher_len);
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("could not decrypt value: authentication failed"),
				 errdetail("The value was altered, or was not encrypted under this keyring.")));
	}
}

uint8_t *
hg_decrypt_envelope(const HgEnvelope *env, size_t *plain_len)
{
	uint8_t    *plain = palloc(env->cipher_len + 1);

	decrypt_envelope_into(env, plain);
	plain[env->cipher_len] = '\0';
	*plain_len = env->cipher_len;
	return plain;
}

/* Serialize a plaintext Datum of the base type into bytes to encrypt. */
static uint8_t *
plain_bytes(HgTypeCode code, Datum value, size_t *len)
{
	switch (code)
	{
		case HG_TYPE_TEXT:
		case HG_TYPE_BYTEA:
			{
				struct varlena *v = PG_DETOAST_DATUM_PACKED(value);

				*len = VARSIZE_ANY_EXHDR(v);
				return (uint8_t *) VARDATA_ANY(v);
			}
		case HG_TYPE_DATE:
			{
				uint8_t    *buf = palloc(4);
				uint32		d = (uint32) DatumGetDateADT(value);

				buf[0] = (uint8_t) (d >> 24);
				buf[1] = (uint8_t) (d >> 16);
				buf[2] = (uint8_t) (d >> 8);
				buf[3] = (uint8_t) d;
				*len = 4;
				return buf;
			}
		case HG_TYPE_JSONB:
			{
				/* The text form, so that stored values outlive jsonb's binary format. */
				char	   *s = DatumGetCString(DirectFunctionCall1(jsonb_out, value));

				*len = strlen(s);
				return (uint8_t *) s;
			}
	}
	elog(ERROR, "hipaa_guard: unknown type code %d", (int) code);
	return NULL;
}

/* Rebuild a base-type Datum from decrypted bytes. */
static Datum
plain_datum(HgTypeCode code, uint8_t *plain, size_t len)
{
	switch (code)
	{
		case HG_TYPE_TEXT:
			return PointerGetDatum(cstring_to_text_with_len((char *) plain, (int) len));
		case HG_TYPE_BYTEA:
			{
				bytea	   *b = palloc(VARHDRSZ + len);

				SET_VARSIZE(b, VARHDRSZ + len);
				memcpy(VARDATA(b), plain, len);
				return PointerGetDatum(b);
			}
		case HG_TYPE_DATE:
			if (len != 4)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("could not decrypt value: authentication failed"),
						 errdetail("An encrypted date holds %zu bytes instead of 4.", len)));
			return DateADTGetDatum((DateADT) (((uint32) plain[0] << 24) | ((uint32) plain[1] << 16) |
											  ((uint32) plain[2] << 8) | (uint32) plain[3]));
		case HG_TYPE_JSONB:
			return DirectFunctionCall1(jsonb_in, CStringGetDatum((char *) plain));
	}
	elog(ERROR, "hipaa_guard: unknown type code %d", (int) code);
	return (Datum) 0;
}

/*
 * Refuse text that starts like an envelope: it is nearly always an encrypted
 * value turned into text (ssn::text) and assigned again, which would store an
 * encryption of the envelope instead of the value.
 */
static void
check_not_envelope_text(const uint8_t *bytes, size_t len)
{
	if (len >= HG_TEXT_PREFIX_LEN &&
		memcmp(bytes, HG_TEXT_PREFIX, HG_TEXT_PREFIX_LEN) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("plaintext starts with \"%s\", the prefix of an encrypted value", HG_TEXT_PREFIX),
				 errdetail("Encrypting it would store an encrypted value inside another."),
				 errhint("To copy an encrypted value, assign the column itself, not its text form; to change it, assign the new plaintext.")));
}

static bytea *
encrypt_datum(HgTypeCode code, uint32 key_id, Datum value)
{
	size_t		len;
	uint8_t    *bytes = plain_bytes(code, value, &len);
	bytea	   *result;

	if (code == HG_TYPE_TEXT)
		check_not_envelope_text(bytes, len);
	result = hg_encrypt_bytes(code, key_id, NULL, bytes, len);

	if (code == HG_TYPE_DATE || code == HG_TYPE_JSONB)
	{
		hg_wipe(bytes, len);
		pfree(bytes);
	}
	return result;
}

/*
 * Decrypt a stored value of type code, checking its row key if given.  Every
 * decrypt() variant comes here, and only they do, so this is where
 * hipaa_guard.require_mfa applies.
 */
static Datum
decrypt_value(HgTypeCode code, bytea *value, const char *row_key)
{
	HgEnvelope	env;
	uint8_t    *plain;
	size_t		len;
	Datum		result;

	hg_require_second_factor();
	/* A standby may refuse the call, so check before any plaintext exists. */
	hg_audit_check_standby(NULL);
	hg_parse_stored(value, &env);
	if (env.type_code != code)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("could not decrypt value: authentication failed"),
				 errdetail("The envelope holds a value of another base type than %s.", type_label(code))));
	if (row_key != NULL &&
		(env.row_key_len != strlen(row_key) ||
		 memcmp(env.row_key, row_key, env.row_key_len) != 0))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("could not decrypt value: authentication failed"),
				 errdetail("The value is not bound to the given row key.")));
	if (code == HG_TYPE_TEXT || code == HG_TYPE_BYTEA)
	{
		/* Decrypt straight into the result, saving a copy of the value. */
		struct varlena *out = palloc(VARHDRSZ + env.cipher_len + 1);

		decrypt_envelope_into(&env, (uint8_t *) VARDATA(out));
		SET_VARSIZE(out, VARHDRSZ + env.cipher_len);
		hg_audit_note_decrypt(env.key_id);
		return PointerGetDatum(out);
	}
	plain = hg_decrypt_envelope(&env, &len);
	result = plain_datum(code, plain, len);
	hg_wipe(plain, len);
	pfree(plain);
	hg_audit_note_decrypt(env.key_id);
	return result;
}

/* ----------------------------------------------------------------
 *		Type I/O
 * ---------------------------------------------------------------- */

static void
report_bad_text(HgTypeCode code, HgParseStatus status, int32 typmod)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("invalid input syntax for type %s", type_label(code)),
			 errdetail("%s", hg_parse_status_detail(status)),
			 status == HG_PARSE_BAD_PREFIX && typmod < 0 ?
			 errhint("To store plaintext, assign a value of the base type to a column that declares its key, for example '...'::text, or call hipaa_guard.encrypt(value, key_name).") : 0));
}

/* Copy an envelope decoded from text into a stored value of type code. */
static Datum
envelope_datum(HgTypeCode code, uint8_t *bin, size_t bin_len)
{
	bytea	   *result;

	if (bin[1] != code)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid input syntax for type %s", type_label(code)),
				 errdetail("The envelope holds an %s value.", type_label((HgTypeCode) bin[1]))));
	result = palloc(VARHDRSZ + bin_len);
	SET_VARSIZE(result, VARHDRSZ + bin_len);
	memcpy(VARDATA(result), bin, bin_len);
	pfree(bin);
	return PointerGetDatum(result);
}

/*
 * Read one field of COPY FROM into a column that declares its key: an
 * envelope is kept as it is, anything else is parsed as the base type and
 * encrypted.  *parsed is set once the field was read, so that the caller
 * can tell a plaintext parse error from a later one.
 */
static Datum
read_copy_field(HgTypeCode code, char *str, int32 typmod, volatile bool *parsed)
{
	size_t		len = strlen(str);
	uint8_t    *bin;
	size_t		bin_len;
	HgParseStatus status;
	Datum		plain;

	status = hg_text_decode(str, len, &bin, &bin_len, palloc);
	if (status != HG_PARSE_BAD_PREFIX)
	{
		*parsed = true;
		if (status != HG_PARSE_OK)
			report_bad_text(code, status, typmod);
		return envelope_datum(code, bin, bin_len);
	}
	switch (code)
	{
		case HG_TYPE_TEXT:
			/* No parsing: encrypt the field's bytes where they are. */
			*parsed = true;
			return PointerGetDatum(hg_encrypt_bytes(code, (uint32) typmod, NULL,
													(uint8_t *) str, len));
		case HG_TYPE_BYTEA:
			plain = DirectFunctionCall1(byteain, CStringGetDatum(str));
			break;
		case HG_TYPE_DATE:
			plain = DirectFunctionCall1(date_in, CStringGetDatum(str));
			break;
		default:
			plain = DirectFunctionCall1(jsonb_in, CStringGetDatum(str));
			break;
	}
	*parsed = true;
	return PointerGetDatum(encrypt_datum(code, (uint32) typmod, plain));
}

/*
 * Keep only where an error happened in a COPY context: PostgreSQL's COPY
 * context quotes the raw field or the whole input line, which is plaintext
 * here.  Lines other than COPY's are dropped, because they may quote SQL.
 */
void
hg_strip_copy_values(ErrorData *edata)
{
	StringInfoData kept_lines;
	char	   *line;
	char	   *next;

	if (edata->context == NULL)
		return;
	initStringInfo(&kept_lines);
	for (line = edata->context; line != NULL && *line != '\0'; line = next)
	{
		char	   *end = strchr(line, '\n');
		char	   *quote;

		next = end != NULL ? end + 1 : NULL;
		if (end != NULL)
			*end = '\0';
		if (strncmp(line, "COPY ", 5) != 0)
			continue;
		quote = strstr(line, ": \"");
		if (quote != NULL)
			*quote = '\0';
		appendStringInfo(&kept_lines, "%s%s", kept_lines.len > 0 ? "\n" : "", line);
	}
	edata->context = kept_lines.len > 0 ? kept_lines.data : NULL;
}

/*
 * Read a COPY FROM field into a declared column.  An error is raised again
 * with COPY's context cut before the quoted values, and a plaintext parse
 * error without the value, because the base type's input functions quote it.
 */
static Datum
copy_field_in(HgTypeCode code, char *str, int32 typmod)
{
	MemoryContext caller_context = CurrentMemoryContext;
	volatile Datum result = (Datum) 0;
	volatile bool parsed = false;

	PG_TRY();
	{
		result = read_copy_field(code, str, typmod, &parsed);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(caller_context);
		edata = CopyErrorData();
		FlushErrorState();
		if (!parsed)
		{
			edata->message = psprintf("invalid plaintext for a column of type %s", type_label(code));
			edata->detail = pstrdup("The value is not valid input for the base type; it is not shown because it is protected health information.");
			edata->detail_log = NULL;
			edata->hint = NULL;
		}
		hg_strip_copy_values(edata);
		ReThrowError(edata);
	}
	PG_END_TRY();
	return result;
}

/* Stored form of a text envelope, or plaintext encrypted for COPY FROM. */
static Datum
encrypted_in_common(HgTypeCode code, char *str, int32 typmod)
{
	uint8_t    *bin;
	size_t		bin_len;
	HgParseStatus status;

	if (typmod > 0)
		return copy_field_in(code, str, typmod);
	status = hg_text_decode(str, strlen(str), &bin, &bin_len, palloc);
	if (status != HG_PARSE_OK)
		report_bad_text(code, status, typmod);
	return envelope_datum(code, bin, bin_len);
}

static Datum
encrypted_out_common(bytea *value)
{
	size_t		len = VARSIZE_ANY_EXHDR(value);
	char	   *out = palloc(hg_text_encoded_len(len) + 1);

	hg_text_encode((const uint8_t *) VARDATA_ANY(value), len, out);
	return CStringGetDatum(out);
}

static Datum
encrypted_recv_common(HgTypeCode code, StringInfo buf)
{
	int			len = buf->len - buf->cursor;
	const char *bytes = pq_getmsgbytes(buf, len);
	HgEnvelope	env;
	HgParseStatus status;
	bytea	   *result;

	status = hg_envelope_parse((const uint8_t *) bytes, len, &env);
	if (status == HG_PARSE_OK && env.type_code != code)
		status = HG_PARSE_BAD_TYPE;
	if (status != HG_PARSE_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid binary input for type %s", type_label(code)),
				 errdetail("%s", hg_parse_status_detail(status))));
	result = palloc(VARHDRSZ + len);
	SET_VARSIZE(result, VARHDRSZ + len);
	memcpy(VARDATA(result), bytes, len);
	return PointerGetDatum(result);
}

static Datum
encrypted_send_common(bytea *value)
{
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendbytes(&buf, VARDATA_ANY(value), VARSIZE_ANY_EXHDR(value));
	return PointerGetDatum(pq_endtypsend(&buf));
}

/* ----------------------------------------------------------------
 *		Type modifiers: the column's key
 * ---------------------------------------------------------------- */

PG_FUNCTION_INFO_V1(encrypted_typmod_in);
Datum
encrypted_typmod_in(PG_FUNCTION_ARGS)
{
	ArrayType  *mods = PG_GETARG_ARRAYTYPE_P(0);
	Datum	   *elems;
	int			n;
	char	   *spec;
	char	   *colon;
	char	   *end;
	long		id;

	deconstruct_array(mods, CSTRINGOID, -2, false, TYPALIGN_CHAR, &elems, NULL, &n);
	if (n != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("an encrypted type takes one type modifier, the name of its key"),
				 errhint("Write the key name, for example hipaa_guard.encrypted_text('phi').")));
	spec = DatumGetCString(elems[0]);

	/* "name:id" is what typmod_out writes, so that restores need no lookup. */
	colon = strrchr(spec, ':');
	if (colon != NULL)
	{
		errno = 0;
		id = strtol(colon + 1, &end, 10);
		if (errno == 0 && *end == '\0' && end != colon + 1 && id > 0 && id <= INT_MAX)
			PG_RETURN_INT32((int32) id);
	}
	PG_RETURN_INT32((int32) hg_key_id_by_name(spec, false));
}

PG_FUNCTION_INFO_V1(encrypted_typmod_out);
Datum
encrypted_typmod_out(PG_FUNCTION_ARGS)
{
	int32		typmod = PG_GETARG_INT32(0);
	char	   *name = NULL;

	if (typmod <= 0)
		PG_RETURN_CSTRING(pstrdup(""));
	PG_TRY();
	{
		name = hg_key_name((uint32) typmod);
	}
	PG_CATCH();
	{
		/* Outside a database with the extension, print the bare id. */
		FlushErrorState();
		name = NULL;
	}
	PG_END_TRY();
	PG_RETURN_CSTRING(psprintf("('%s:%d')", name != NULL ? name : "key", typmod));
}

/* ----------------------------------------------------------------
 *		SQL-callable functions, one set per type
 * ---------------------------------------------------------------- */

static char *
key_name_arg(FunctionCallInfo fcinfo, int argno)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("key name must not be null")));
	return text_to_cstring(PG_GETARG_TEXT_PP(argno));
}

static void
require_declared_key(HgTypeCode code, int32 typmod)
{
	if (typmod <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("cannot assign plaintext to %s without a declared key", type_label(code)),
				 errhint("Declare the column's key in its type, for example hipaa_guard.%s('phi'), or call hipaa_guard.encrypt(value, key_name).",
						 type_label(code))));
}

#define HG_TYPE_FUNCTIONS(prefix, code) \
PG_FUNCTION_INFO_V1(prefix##_in); \
Datum prefix##_in(PG_FUNCTION_ARGS) \
{ \
	return encrypted_in_common(code, PG_GETARG_CSTRING(0), PG_GETARG_INT32(2)); \
} \
PG_FUNCTION_INFO_V1(prefix##_out); \
Datum prefix##_out(PG_FUNCTION_ARGS) \
{ \
	return encrypted_out_common(PG_GETARG_BYTEA_PP(0)); \
} \
PG_FUNCTION_INFO_V1(prefix##_recv); \
Datum prefix##_recv(PG_FUNCTION_ARGS) \
{ \
	return encrypted_recv_common(code, (StringInfo) PG_GETARG_POINTER(0)); \
} \
PG_FUNCTION_INFO_V1(prefix##_send); \
Datum prefix##_send(PG_FUNCTION_ARGS) \
{ \
	return encrypted_send_common(PG_GETARG_BYTEA_PP(0)); \
} \
PG_FUNCTION_INFO_V1(prefix##_encrypt); \
Datum prefix##_encrypt(PG_FUNCTION_ARGS) \
{ \
	char	   *key_name = key_name_arg(fcinfo, 1); \
	if (PG_ARGISNULL(0)) \
		PG_RETURN_NULL(); \
	PG_RETURN_BYTEA_P(encrypt_datum(code, hg_key_id_by_name(key_name, false), \
									PG_GETARG_DATUM(0))); \
} \
PG_FUNCTION_INFO_V1(prefix##_cast); \
Datum prefix##_cast(PG_FUNCTION_ARGS) \
{ \
	int32		typmod = PG_GETARG_INT32(1); \
	require_declared_key(code, typmod); \
	PG_RETURN_BYTEA_P(encrypt_datum(code, (uint32) typmod, PG_GETARG_DATUM(0))); \
} \
PG_FUNCTION_INFO_V1(prefix##_decrypt); \
Datum prefix##_decrypt(PG_FUNCTION_ARGS) \
{ \
	return decrypt_value(code, PG_GETARG_BYTEA_PP(0), NULL); \
} \
PG_FUNCTION_INFO_V1(prefix##_decrypt_bound); \
Datum prefix##_decrypt_bound(PG_FUNCTION_ARGS) \
{ \
	char	   *row_key; \
	if (PG_ARGISNULL(0)) \
		PG_RETURN_NULL(); \
	if (PG_ARGISNULL(1)) \
		ereport(ERROR, \
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), \
				 errmsg("row key must not be null"))); \
	row_key = text_to_cstring(PG_GETARG_TEXT_PP(1)); \
	return decrypt_value(code, PG_GETARG_BYTEA_PP(0), row_key); \
}

HG_TYPE_FUNCTIONS(encrypted_text, HG_TYPE_TEXT)
HG_TYPE_FUNCTIONS(encrypted_bytea, HG_TYPE_BYTEA)
HG_TYPE_FUNCTIONS(encrypted_date, HG_TYPE_DATE)
HG_TYPE_FUNCTIONS(encrypted_jsonb, HG_TYPE_JSONB)

/* ----------------------------------------------------------------
 *		Envelope metadata and the blind index
 * ---------------------------------------------------------------- */

PG_FUNCTION_INFO_V1(encrypted_key_version);
Datum
encrypted_key_version(PG_FUNCTION_ARGS)
{
	HgEnvelope	env;

	hg_parse_stored(PG_GETARG_BYTEA_PP(0), &env);
	PG_RETURN_INT32((int32) env.key_version);
}

PG_FUNCTION_INFO_V1(encrypted_key_name);
Datum
encrypted_key_name(PG_FUNCTION_ARGS)
{
	HgEnvelope	env;
	char	   *name;

	hg_parse_stored(PG_GETARG_BYTEA_PP(0), &env);
	name = hg_key_name(env.key_id);
	if (name == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(name));
}

PG_FUNCTION_INFO_V1(encrypted_row_key);
Datum
encrypted_row_key(PG_FUNCTION_ARGS)
{
	HgEnvelope	env;

	hg_parse_stored(PG_GETARG_BYTEA_PP(0), &env);
	if (env.row_key == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text_with_len((const char *) env.row_key, env.row_key_len));
}

/*
 * Whether a value is under an older version than its key's current one.
 * Values under a destroyed key never are: nothing can re-encrypt them.
 */
PG_FUNCTION_INFO_V1(encrypted_needs_reencrypt);
Datum
encrypted_needs_reencrypt(PG_FUNCTION_ARGS)
{
	HgEnvelope	env;

	hg_parse_stored(PG_GETARG_BYTEA_PP(0), &env);
	if (hg_key_is_destroyed(env.key_id))
		PG_RETURN_BOOL(false);
	PG_RETURN_BOOL(env.key_version < hg_key_current_version(env.key_id));
}

/*
 * Re-encrypt a value under the current version of its own key, keeping its
 * row key.  Values already current, or under a destroyed key, are returned
 * unchanged.
 */
PG_FUNCTION_INFO_V1(encrypted_reencrypt_value);
Datum
encrypted_reencrypt_value(PG_FUNCTION_ARGS)
{
	bytea	   *value = PG_GETARG_BYTEA_PP(0);
	HgEnvelope	env;
	uint8_t    *plain;
	size_t		len;
	char	   *row_key = NULL;
	bytea	   *result;

	hg_parse_stored(value, &env);
	if (hg_key_is_destroyed(env.key_id) ||
		env.key_version >= hg_key_current_version(env.key_id))
		PG_RETURN_BYTEA_P(value);
	plain = hg_decrypt_envelope(&env, &len);
	if (env.row_key != NULL)
		row_key = pnstrdup((const char *) env.row_key, env.row_key_len);
	result = hg_encrypt_bytes((HgTypeCode) env.type_code, env.key_id, row_key, plain, len);
	hg_wipe(plain, len);
	pfree(plain);
	PG_RETURN_BYTEA_P(result);
}

PG_FUNCTION_INFO_V1(hg_blind_index);
Datum
hg_blind_index(PG_FUNCTION_ARGS)
{
	char	   *key_name = key_name_arg(fcinfo, 1);
	text	   *value;
	uint8_t		mac[HG_MAC_LEN];
	const uint8_t *key;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	value = PG_GETARG_TEXT_PP(0);
	key = hg_key_for_mac(hg_key_id_by_name(key_name, false));
	if (hg_hmac_sha256(key, HG_KEY_LEN, (const uint8_t *) VARDATA_ANY(value),
					   VARSIZE_ANY_EXHDR(value), mac) != HG_CRYPTO_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not compute blind index")));
	PG_RETURN_BYTEA_P(cstring_to_text_with_len((const char *) mac, HG_MAC_LEN));
}
