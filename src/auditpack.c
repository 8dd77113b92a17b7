/*
 * auditpack.c
 *		The sealed trail's storage format: a record's bytes in the hashed
 *		format of docs/audit-format.md, and the packed rows of audit_log
 *		that hold them back to back.
 *
 * A row of audit_log holds the consecutive records first_seq to last_seq of
 * one block, each stored as exactly the bytes that are hashed.  Storing the
 * hashed bytes means the sealer encodes each record once, for the hash and
 * for the table, and the verifier hashes them without decoding.  Packing
 * means a heap tuple and an index entry per few dozen records instead of
 * per record, which is what lets the sealer keep up with a read-heavy load.
 * The other columns of a row (block, the range of logged_at, the union of
 * the records' patients) are not hashed.  They serve the indexes, so the
 * verifier checks them against the records.
 *
 * The views decode the records with hipaa_guard.audit_records() and
 * hipaa_guard.audit_record_fields(); a record that does not decode is an
 * error, never a row with a wrong value.
 */
#include "postgres.h"

#include "catalog/pg_type_d.h"
#include "common/int.h"
#include "port/pg_bswap.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"

#include "auditqueue.h"

#define NULL_FIELD_LEN	0xFFFFFFFF

/* Array I/O functions, looked up once per process. */
static FmgrInfo array_out_info;
static FmgrInfo array_in_info;
static bool array_io_ready = false;

static void
prepare_array_io(void)
{
	if (array_io_ready)
		return;
	fmgr_info_cxt(F_ARRAY_OUT, &array_out_info, TopMemoryContext);
	fmgr_info_cxt(F_ARRAY_IN, &array_in_info, TopMemoryContext);
	array_io_ready = true;
}

/* ----------------------------------------------------------------
 *		Encoding
 * ---------------------------------------------------------------- */

static inline void
put_length(char *dest, uint32 len)
{
	uint32		be_len = pg_hton32(len);

	memcpy(dest, &be_len, 4);
}

void
hg_audit_append_field(StringInfo buf, const char *data, int len)
{
	char	   *dest = hg_audit_reserve(buf, 4 + len);

	put_length(dest, (uint32) len);
	memcpy(dest + 4, data, len);
}

void
hg_audit_append_null(StringInfo buf)
{
	put_length(hg_audit_reserve(buf, 4), NULL_FIELD_LEN);
}

/* Write the digits in place, then give back the room they did not take. */
void
hg_audit_append_int64(StringInfo buf, int64 value)
{
	char	   *dest = hg_audit_reserve(buf, 4 + MAXINT8LEN + 1);
	int			len = pg_lltoa(value, dest + 4);

	put_length(dest, (uint32) len);
	buf->len -= MAXINT8LEN + 1 - len;
	buf->data[buf->len] = '\0';
}

void
hg_audit_append_uint64(StringInfo buf, uint64 value)
{
	char		digits[MAXINT8LEN + 1];

	hg_audit_append_field(buf, digits, pg_ulltoa_n(value, digits));
}

/* Append text in UTF-8, which the format prescribes in any server encoding. */
void
hg_audit_append_text(StringInfo buf, const char *s, int len)
{
	char	   *utf8;

	if (GetDatabaseEncoding() == PG_UTF8)
	{
		hg_audit_append_field(buf, s, len);
		return;
	}
	utf8 = pg_server_to_any(s, len, PG_UTF8);
	hg_audit_append_field(buf, utf8, utf8 == s ? len : (int) strlen(utf8));
	if (utf8 != s)
		pfree(utf8);
}

static void
append_text_datum(StringInfo buf, Datum value)
{
	text	   *t = DatumGetTextPP(value);

	hg_audit_append_text(buf, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
}

void
hg_audit_append_array(StringInfo buf, Datum value)
{
	char	   *s;

	prepare_array_io();
	s = OutputFunctionCall(&array_out_info, value);

	hg_audit_append_text(buf, s, strlen(s));
	pfree(s);
}

/* Append the text form of one queue column, as docs/audit-format.md lists it. */
static void
append_column(StringInfo buf, int att, Datum value)
{
	switch (att)
	{
		case HG_QUEUE_LOGGED_AT:
			/* The sealer stores finite times only (normalize_logged_at). */
			hg_audit_append_int64(buf, DatumGetTimestampTz(value) + HG_UNIX_EPOCH_OFFSET_USECS);
			break;
		case HG_QUEUE_ROWS:
		case HG_QUEUE_DECRYPTS:
		case HG_QUEUE_QUERY_ID:
			hg_audit_append_int64(buf, DatumGetInt64(value));
			break;
		case HG_QUEUE_XID:
			hg_audit_append_uint64(buf, U64FromFullTransactionId(DatumGetFullTransactionId(value)));
			break;
		case HG_QUEUE_COLUMNS:
		case HG_QUEUE_PATIENTS:
			hg_audit_append_array(buf, value);
			break;
		default:
			append_text_datum(buf, value);
			break;
	}
}

/*
 * Append a record's hashed bytes to buf: seq, then the 21 columns of an
 * audit_queue row.  Allocates in the current memory context.
 */
void
hg_audit_encode_record(StringInfo buf, int64 seq, const Datum *values, const bool *nulls)
{
	prepare_array_io();
	hg_audit_append_int64(buf, seq);
	for (int att = 0; att < HG_QUEUE_NATTS; att++)
	{
		if (nulls[att])
			hg_audit_append_null(buf);
		else
			append_column(buf, att, values[att]);
	}
}

/* ----------------------------------------------------------------
 *		Splitting
 * ---------------------------------------------------------------- */

/*
 * Split the record that starts at *offset of data[0..len) into its fields
 * and advance *offset past it.  Returns false when the bytes end inside the
 * record.
 */
bool
hg_audit_split_record(const char *data, Size len, Size *offset, HgAuditField *fields)
{
	Size		pos = *offset;

	for (int i = 0; i < HG_RECORD_NFIELDS; i++)
	{
		uint32		be_len;
		uint32		field_len;

		if (len - pos < 4)
			return false;
		memcpy(&be_len, data + pos, 4);
		pos += 4;
		field_len = pg_ntoh32(be_len);
		if (field_len == NULL_FIELD_LEN)
		{
			fields[i].data = NULL;
			fields[i].len = -1;
			continue;
		}
		if (field_len > len - pos)
			return false;
		fields[i].data = data + pos;
		fields[i].len = (int) field_len;
		pos += field_len;
	}
	*offset = pos;
	return true;
}

/* Parse a field in the format's decimal form: no '+', no leading zeros. */
bool
hg_audit_field_int64(const HgAuditField *field, int64 *value)
{
	const char *p = field->data;
	const char *end = p + field->len;
	bool		negative = false;
	int64		v = 0;

	if (field->len <= 0)
		return false;
	if (*p == '-')
	{
		negative = true;
		p++;
	}
	if (p == end || (*p == '0' && (end - p > 1 || negative)))
		return false;
	for (; p < end; p++)
	{
		if (*p < '0' || *p > '9')
			return false;
		/* Accumulate negatively, so that the minimum value fits. */
		if (pg_mul_s64_overflow(v, 10, &v) || pg_sub_s64_overflow(v, *p - '0', &v))
			return false;
	}
	if (!negative)
	{
		if (v == PG_INT64_MIN)
			return false;
		v = -v;
	}
	*value = v;
	return true;
}

/* Return whether a field is exactly the given ASCII text. */
bool
hg_audit_field_equals(const HgAuditField *field, const char *expected)
{
	size_t		len = strlen(expected);

	return field->len == (int) len && memcmp(field->data, expected, len) == 0;
}

/*
 * Return a text field in the server encoding, palloc'd and NUL-terminated,
 * or NULL when the field contains a NUL byte.
 */
char *
hg_audit_field_cstring(const HgAuditField *field)
{
	char	   *s = pnstrdup(field->data, field->len);

	if ((int) strlen(s) != field->len)
		return NULL;
	return pg_any_to_server(s, field->len, PG_UTF8);
}

/*
 * Convert the logged_at field to a timestamptz.  Returns false when it is
 * not one.
 */
bool
hg_audit_field_timestamp(const HgAuditField *field, TimestampTz *ts)
{
	int64		usecs;

	if (!hg_audit_field_int64(field, &usecs) ||
		pg_sub_s64_overflow(usecs, HG_UNIX_EPOCH_OFFSET_USECS, ts) ||
		!IS_VALID_TIMESTAMP(*ts))
		return false;
	return true;
}

/*
 * Convert a text[] field to an array.  Sets *ok to false when the field is
 * not valid text; array_in() raises an error on a malformed array.
 */
Datum
hg_audit_field_array(const HgAuditField *field, bool *ok)
{
	char	   *s = hg_audit_field_cstring(field);

	prepare_array_io();
	*ok = (s != NULL);
	if (s == NULL)
		return (Datum) 0;
	/* array_in raises an error on malformed input, which is what a view wants. */
	return InputFunctionCall(&array_in_info, s, TEXTOID, -1);
}

/* ----------------------------------------------------------------
 *		A row's patients
 * ---------------------------------------------------------------- */

/* Add the elements of a text[] to a list of patient ids (char *). */
List *
hg_audit_collect_patients(List *patients, Datum array)
{
	Datum	   *elements;
	bool	   *element_nulls;
	int			n;

	deconstruct_array(DatumGetArrayTypeP(array), TEXTOID, -1, false, TYPALIGN_INT,
					  &elements, &element_nulls, &n);
	for (int i = 0; i < n; i++)
		if (!element_nulls[i])
			patients = lappend(patients, TextDatumGetCString(elements[i]));
	return patients;
}

static int
compare_cstrings(const ListCell *a, const ListCell *b)
{
	return strcmp((const char *) lfirst(a), (const char *) lfirst(b));
}

/*
 * The patients of a row's records, sorted bytewise and without repeats, as
 * the row's patients column stores them; *isnull when there are none.  The
 * sealer and the verifier both build it here, so they agree.
 */
Datum
hg_audit_patient_union(List *patients, bool *isnull)
{
	Datum	   *elements;
	int			n = 0;
	const char *previous = NULL;
	ListCell   *cell;

	*isnull = (patients == NIL);
	if (patients == NIL)
		return (Datum) 0;
	list_sort(patients, compare_cstrings);
	elements = palloc(sizeof(Datum) * list_length(patients));
	foreach(cell, patients)
	{
		const char *patient = lfirst(cell);

		if (previous != NULL && strcmp(patient, previous) == 0)
			continue;
		elements[n++] = CStringGetTextDatum(patient);
		previous = patient;
	}
	return PointerGetDatum(construct_array(elements, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/* Return whether two text[] values print the same. */
bool
hg_audit_arrays_equal(Datum a, Datum b)
{
	char	   *text_a;
	char	   *text_b;

	prepare_array_io();
	text_a = OutputFunctionCall(&array_out_info, a);
	text_b = OutputFunctionCall(&array_out_info, b);
	return strcmp(text_a, text_b) == 0;
}

/* ----------------------------------------------------------------
 *		The views' decoders
 * ---------------------------------------------------------------- */

/* Raise the error for a malformed record.  index counts from 0 within its row. */
static void
corrupt_record(int64 first_seq, int index)
{
	if (index == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("a sealed audit record is malformed"),
				 errhint("Run hipaa_guard.verify_audit_chain().")));
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("sealed audit record " INT64_FORMAT " is malformed", first_seq + index),
			 errhint("Run hipaa_guard.verify_audit_chain().")));
}

static Datum
text_field(const HgAuditField *field, bool *ok)
{
	char	   *s = hg_audit_field_cstring(field);

	*ok = (s != NULL);
	return s == NULL ? (Datum) 0 : CStringGetTextDatum(s);
}

/* Convert one field to the type of its audit_queue column. */
static bool
typed_field(int att, const HgAuditField *field, Datum *value)
{
	int64		i;
	TimestampTz ts;
	bool		ok = true;

	switch (att)
	{
		case HG_QUEUE_LOGGED_AT:
			ok = hg_audit_field_timestamp(field, &ts);
			*value = TimestampTzGetDatum(ts);
			break;
		case HG_QUEUE_ROWS:
		case HG_QUEUE_DECRYPTS:
		case HG_QUEUE_QUERY_ID:
			ok = hg_audit_field_int64(field, &i);
			*value = Int64GetDatum(i);
			break;
		case HG_QUEUE_XID:
			ok = hg_audit_field_int64(field, &i);
			*value = FullTransactionIdGetDatum(FullTransactionIdFromU64((uint64) i));
			break;
		case HG_QUEUE_COLUMNS:
		case HG_QUEUE_PATIENTS:
			*value = hg_audit_field_array(field, &ok);
			break;
		default:
			*value = text_field(field, &ok);
			break;
	}
	return ok;
}

/*
 * Decode packed records into the caller's materialized result.  With typed,
 * the columns have the types of audit_queue's columns, with seq first;
 * otherwise every column is the field's text, as the export shows it.
 */
static void
decode_records(FunctionCallInfo fcinfo, bool typed)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	bytea	   *packed = PG_GETARG_BYTEA_PP(0);
	const char *data = VARDATA_ANY(packed);
	Size		len = VARSIZE_ANY_EXHDR(packed);
	Size		offset = 0;
	int64		first_seq = 0;
	MemoryContext per_record;

	InitMaterializedSRF(fcinfo, 0);
	per_record = AllocSetContextCreate(CurrentMemoryContext, "hipaa_guard audit record",
									   ALLOCSET_SMALL_SIZES);
	for (int index = 0; offset < len; index++)
	{
		HgAuditField fields[HG_RECORD_NFIELDS];
		Datum		values[HG_RECORD_NFIELDS];
		bool		nulls[HG_RECORD_NFIELDS];
		MemoryContext old = MemoryContextSwitchTo(per_record);
		int64		seq;

		if (!hg_audit_split_record(data, len, &offset, fields) ||
			!hg_audit_field_int64(&fields[0], &seq))
			corrupt_record(first_seq, index);
		if (index == 0)
			first_seq = seq;
		for (int i = 0; i < HG_RECORD_NFIELDS; i++)
		{
			bool		ok;

			nulls[i] = (fields[i].len < 0);
			values[i] = (Datum) 0;
			if (nulls[i])
				continue;
			if (!typed)
				values[i] = text_field(&fields[i], &ok);
			else if (i == 0)
			{
				values[i] = Int64GetDatum(seq);
				ok = true;
			}
			else
				ok = typed_field(i - 1, &fields[i], &values[i]);
			if (!ok)
				corrupt_record(first_seq, index);
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		MemoryContextSwitchTo(old);
		MemoryContextReset(per_record);
	}
	MemoryContextDelete(per_record);
}

/* hipaa_guard.audit_records(records bytea) returns the records of a packed row. */
PG_FUNCTION_INFO_V1(hg_audit_records);
Datum
hg_audit_records(PG_FUNCTION_ARGS)
{
	decode_records(fcinfo, true);
	return (Datum) 0;
}

/* hipaa_guard.audit_record_fields(records bytea) returns them as hashed text. */
PG_FUNCTION_INFO_V1(hg_audit_record_fields);
Datum
hg_audit_record_fields(PG_FUNCTION_ARGS)
{
	decode_records(fcinfo, false);
	return (Datum) 0;
}
