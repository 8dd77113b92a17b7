/*
 * auditchain.c
 *		The audit trail's tamper evidence: the record and block hashes of
 *		docs/audit-format.md, and the SQL functions that verify the chain,
 *		print its digest and report the trail's state.
 *
 * The sealer (sealer.c) and the verifier share the hashing code here, so
 * the two cannot drift apart; test/audit-verify checks both against the
 * format from outside.
 *
 * Verification reads audit_block and audit_log through their primary key
 * indexes, in block and seq order, in one pass: each record is hashed once
 * and fed into its block's hash.  It then compares the end of the chain with
 * the high-water file that the sealer writes after each block.  The file is
 * read before the snapshot is taken, so every block it names was committed
 * before the snapshot and must be visible in it.
 */
#include "postgres.h"

#include <unistd.h>

#include <openssl/evp.h>

#include "access/genam.h"
#include "access/heapam.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/fmgroids.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"

#include "auditqueue.h"

#define DIGEST_PREFIX	"hg1:"

struct HgAuditHasher
{
	EVP_MD	   *md;
	EVP_MD_CTX *record_ctx;
	EVP_MD_CTX *block_ctx;
	MemoryContextCallback cleanup;
};

/* ----------------------------------------------------------------
 *		Hashing
 * ---------------------------------------------------------------- */

static void
free_hasher(void *arg)
{
	HgAuditHasher *hasher = (HgAuditHasher *) arg;

	EVP_MD_CTX_free(hasher->record_ctx);
	EVP_MD_CTX_free(hasher->block_ctx);
	EVP_MD_free(hasher->md);
}

static void
openssl_failed(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_INTERNAL_ERROR),
			 errmsg("could not compute a SHA-256 hash of the audit trail")));
}

/*
 * Create a hasher in the current memory context.  Its OpenSSL state is freed
 * when that context is reset or deleted, also on error.
 */
HgAuditHasher *
hg_audit_hasher_create(void)
{
	HgAuditHasher *hasher = palloc0(sizeof(HgAuditHasher));

	hasher->cleanup.func = free_hasher;
	hasher->cleanup.arg = hasher;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &hasher->cleanup);

	hasher->md = EVP_MD_fetch(NULL, "SHA256", NULL);
	hasher->record_ctx = EVP_MD_CTX_new();
	hasher->block_ctx = EVP_MD_CTX_new();
	if (hasher->md == NULL || hasher->record_ctx == NULL || hasher->block_ctx == NULL)
		openssl_failed();
	return hasher;
}

/* Compute R, the SHA-256 of a record's bytes (see auditpack.c). */
void
hg_audit_record_hash(HgAuditHasher *hasher, const char *bytes, Size len, uint8 *out)
{
	if (EVP_DigestInit_ex(hasher->record_ctx, hasher->md, NULL) != 1 ||
		EVP_DigestUpdate(hasher->record_ctx, bytes, len) != 1 ||
		EVP_DigestFinal_ex(hasher->record_ctx, out, NULL) != 1)
		openssl_failed();
}

static void
block_update_be64(HgAuditHasher *hasher, int64 value)
{
	uint64		be = pg_hton64((uint64) value);

	if (EVP_DigestUpdate(hasher->block_ctx, &be, sizeof(be)) != 1)
		openssl_failed();
}

/* Start a block hash with its header; the records' R follow in seq order. */
void
hg_audit_block_begin(HgAuditHasher *hasher, const uint8 *prev_hash, int64 block,
					 int64 first_seq, int64 last_seq, TimestampTz sealed_at)
{
	int64		sealed_usecs;

	/* sealed_at comes from GetCurrentTimestamp() or a verified row. */
	if (pg_add_s64_overflow(sealed_at, HG_UNIX_EPOCH_OFFSET_USECS, &sealed_usecs))
		sealed_usecs = sealed_at;
	if (EVP_DigestInit_ex(hasher->block_ctx, hasher->md, NULL) != 1 ||
		EVP_DigestUpdate(hasher->block_ctx, prev_hash, HG_AUDIT_HASH_LEN) != 1)
		openssl_failed();
	block_update_be64(hasher, block);
	block_update_be64(hasher, first_seq);
	block_update_be64(hasher, last_seq);
	block_update_be64(hasher, sealed_usecs);
}

void
hg_audit_block_add(HgAuditHasher *hasher, const uint8 *record_hash)
{
	if (EVP_DigestUpdate(hasher->block_ctx, record_hash, HG_AUDIT_HASH_LEN) != 1)
		openssl_failed();
}

void
hg_audit_block_finish(HgAuditHasher *hasher, uint8 *out)
{
	if (EVP_DigestFinal_ex(hasher->block_ctx, out, NULL) != 1)
		openssl_failed();
}

/* ----------------------------------------------------------------
 *		Reading the trail in key order
 * ---------------------------------------------------------------- */

/* A scan of a trail table through its primary key. */
typedef struct KeyScan
{
	Relation	heap;
	Relation	index;
	IndexScanDesc scan;
	TupleTableSlot *slot;
} KeyScan;

static Relation
open_trail_for_read(const char *name, int natts)
{
	Oid			relid = hg_audit_table_oid(name);
	Relation	rel;

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("table \"hipaa_guard.%s\" does not exist", name)));
	rel = table_open(relid, AccessShareLock);
	hg_audit_check_layout(rel, natts);
	return rel;
}

static void
key_scan_open(KeyScan *ks, Relation heap, Snapshot snapshot)
{
	Oid			index_oid = RelationGetPrimaryKeyIndex(heap);

	if (!OidIsValid(index_oid))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("table \"%s\" has no primary key", RelationGetRelationName(heap)),
				 errdetail("The audit trail is read in key order through its primary key index."),
				 errhint("Reinstall the extension; do not alter the audit trail's tables.")));
	ks->heap = heap;
	ks->index = index_open(index_oid, AccessShareLock);
	ks->scan = index_beginscan(heap, ks->index, snapshot, 0, 0);
	index_rescan(ks->scan, NULL, 0, NULL, 0);
	ks->slot = table_slot_create(heap, NULL);
}

/* Fetch the next row into ks->slot with all its columns; false at the end. */
static bool
key_scan_next(KeyScan *ks, ScanDirection direction)
{
	if (!index_getnext_slot(ks->scan, direction, ks->slot))
		return false;
	slot_getallattrs(ks->slot);
	return true;
}

static void
key_scan_close(KeyScan *ks)
{
	index_endscan(ks->scan);
	ExecDropSingleTupleTableSlot(ks->slot);
	index_close(ks->index, AccessShareLock);
}

static bool
copy_hash(Datum value, uint8 *out)
{
	bytea	   *b = DatumGetByteaPP(value);

	if (VARSIZE_ANY_EXHDR(b) != HG_AUDIT_HASH_LEN)
		return false;
	memcpy(out, VARDATA_ANY(b), HG_AUDIT_HASH_LEN);
	return true;
}

/* Read the latest block of audit_block, or set head->found to false. */
void
hg_audit_read_head(Relation block_rel, Snapshot snapshot, HgAuditHead *head)
{
	KeyScan		ks;

	memset(head, 0, sizeof(HgAuditHead));
	key_scan_open(&ks, block_rel, snapshot);
	if (key_scan_next(&ks, BackwardScanDirection))
	{
		Datum	   *values = ks.slot->tts_values;

		head->found = true;
		head->block = DatumGetInt64(values[0]);
		head->first_seq = DatumGetInt64(values[1]);
		head->last_seq = DatumGetInt64(values[2]);
		head->sealed_at = DatumGetTimestampTz(values[3]);
		if (!copy_hash(values[5], head->hash))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("hash of audit block " INT64_FORMAT " is not %d bytes",
							head->block, HG_AUDIT_HASH_LEN)));
	}
	key_scan_close(&ks);
}

/* ----------------------------------------------------------------
 *		Digests and the high-water file
 * ---------------------------------------------------------------- */

/* A block that the chain must contain, from a digest or the high-water file. */
typedef struct Anchor
{
	bool		present;
	int64		block;
	int64		last_seq;
	uint8		hash[HG_AUDIT_HASH_LEN];
	bool		seen;			/* the walk reached the block */
	bool		matches;		/* and it ended at last_seq with that hash */
} Anchor;

/* Parse a positive decimal without sign or leading zeros; advance *p. */
static bool
parse_positive(const char **p, int64 *value)
{
	const char *s = *p;
	int64		v = 0;

	if (*s < '1' || *s > '9')
		return false;
	while (*s >= '0' && *s <= '9')
	{
		if (pg_mul_s64_overflow(v, 10, &v) || pg_add_s64_overflow(v, *s - '0', &v))
			return false;
		s++;
	}
	*p = s;
	*value = v;
	return true;
}

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Parse 'hg1:<block>:<last_seq>:<64 lowercase hex digits>' exactly. */
static bool
parse_digest(const char *s, Anchor *anchor)
{
	memset(anchor, 0, sizeof(Anchor));
	if (strncmp(s, DIGEST_PREFIX, strlen(DIGEST_PREFIX)) != 0)
		return false;
	s += strlen(DIGEST_PREFIX);
	if (!parse_positive(&s, &anchor->block) || *s++ != ':' ||
		!parse_positive(&s, &anchor->last_seq) || *s++ != ':')
		return false;
	for (int i = 0; i < HG_AUDIT_HASH_LEN; i++)
	{
		int			high = hex_value(s[2 * i]);
		int			low = high < 0 ? -1 : hex_value(s[2 * i + 1]);

		if (low < 0)
			return false;
		anchor->hash[i] = (uint8) (high * 16 + low);
	}
	if (s[2 * HG_AUDIT_HASH_LEN] != '\0')
		return false;
	anchor->present = true;
	return true;
}

static char *
format_digest(int64 block, int64 last_seq, const uint8 *hash)
{
	char		hex[HG_AUDIT_HASH_LEN * 2 + 1];

	hex_encode((const char *) hash, HG_AUDIT_HASH_LEN, hex);
	hex[HG_AUDIT_HASH_LEN * 2] = '\0';
	return psprintf(DIGEST_PREFIX INT64_FORMAT ":" INT64_FORMAT ":%s", block, last_seq, hex);
}

/*
 * Read the high-water file of this database.  Returns false when it exists
 * but cannot be read or parsed; a missing file leaves the anchor absent.
 */
static bool
read_head_file(Anchor *anchor)
{
	char		path[MAXPGPATH];
	char		content[128];
	int			fd;
	int			len;

	memset(anchor, 0, sizeof(Anchor));
	hg_audit_head_path(MyDatabaseId, path, sizeof(path));
	fd = OpenTransientFile(path, O_RDONLY | PG_BINARY);
	if (fd < 0)
	{
		if (errno == ENOENT)
			return true;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open file \"%s\": %m", path)));
	}
	len = read(fd, content, sizeof(content) - 1);
	CloseTransientFile(fd);
	if (len <= 1 || content[len - 1] != '\n')
		return false;
	content[len - 1] = '\0';
	return parse_digest(content, anchor);
}

/*
 * Read the high-water file for the sealer.  Returns false when it exists
 * but is malformed; otherwise sets *present and, when present, the block,
 * its last seq and its hash.
 */
bool
hg_audit_read_head_file(bool *present, int64 *block, int64 *last_seq, uint8 *hash)
{
	Anchor		anchor;

	if (!read_head_file(&anchor))
		return false;
	*present = anchor.present;
	*block = anchor.block;
	*last_seq = anchor.last_seq;
	memcpy(hash, anchor.hash, HG_AUDIT_HASH_LEN);
	return true;
}

/* ----------------------------------------------------------------
 *		Verification
 * ---------------------------------------------------------------- */

typedef struct VerifyResult
{
	bool		ok;
	int64		blocks;			/* blocks verified before a failure */
	int64		records;		/* their records */
	int64		last_block;		/* number of the last block verified */
	bool		has_failed_block;
	int64		failed_block;
	bool		has_failed_seq;
	int64		failed_seq;
	char	   *reason;
} VerifyResult;

/* The latest purge receipt of audit_purges: where the kept chain starts. */
typedef struct Receipt
{
	bool		present;
	int64		through_block;
	int64		through_seq;
	uint8		last_hash[HG_AUDIT_HASH_LEN];
	int64		blocks;
	int64		records;
	TimestampTz purged_at;
	char	   *detail;			/* the text of its event in the chain */
	bool		sealed;			/* the walk met that event */
} Receipt;

/* The state of the walk through both tables. */
typedef struct ChainWalk
{
	KeyScan		blocks;
	KeyScan		rows;			/* audit_log, in first_seq order */
	bool		have_row;		/* rows.slot holds the next packed row */
	HgAuditHasher *hasher;
	int64		next_block;
	int64		next_seq;
	uint8		prev_hash[HG_AUDIT_HASH_LEN];
	TimestampTz last_sealed_at;
	Receipt    *receipt;
	VerifyResult *result;
} ChainWalk;

static bool fail(VerifyResult *result, bool has_block, int64 block, bool has_seq,
				 int64 seq, const char *fmt,...) pg_attribute_printf(6, 7);

/* Record the first failure; returns false, so callers can return fail(...). */
static bool
fail(VerifyResult *result, bool has_block, int64 block, bool has_seq, int64 seq,
	 const char *fmt,...)
{
	va_list		args;
	StringInfoData reason;

	initStringInfo(&reason);
	for (;;)
	{
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(&reason, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&reason, needed);
	}
	result->ok = false;
	result->has_failed_block = has_block;
	result->failed_block = block;
	result->has_failed_seq = has_seq;
	result->failed_seq = seq;
	result->reason = reason.data;
	return false;
}

/* Check a block row's number, range and link before its records. */
static bool
check_block_header(ChainWalk *walk, int64 block, int64 first_seq, int64 last_seq,
				   Datum prev_value)
{
	VerifyResult *r = walk->result;
	uint8		prev_hash[HG_AUDIT_HASH_LEN];

	if (block != walk->next_block)
		return fail(r, true, walk->next_block, false, 0,
					"block " INT64_FORMAT " is missing: the next block in the table is " INT64_FORMAT,
					walk->next_block, block);
	if (first_seq != walk->next_seq)
		return fail(r, true, block, true, walk->next_seq,
					"block " INT64_FORMAT " starts at record " INT64_FORMAT ", but the previous block ends at record " INT64_FORMAT,
					block, first_seq, walk->next_seq - 1);
	if (last_seq < first_seq)
		return fail(r, true, block, false, 0,
					"block " INT64_FORMAT " ends at record " INT64_FORMAT ", before its first record " INT64_FORMAT,
					block, last_seq, first_seq);
	if (copy_hash(prev_value, prev_hash) &&
		memcmp(prev_hash, walk->prev_hash, HG_AUDIT_HASH_LEN) == 0)
		return true;
	if (block == 1)
		return fail(r, true, block, false, 0, "prev_hash of block 1 is not 32 zero bytes");
	return fail(r, true, block, false, 0,
				"prev_hash of block " INT64_FORMAT " does not match the hash of block " INT64_FORMAT,
				block, block - 1);
}

/* Note the sealed event of the latest purge receipt when the walk meets it. */
static void
note_receipt_event(Receipt *receipt, const HgAuditField *fields)
{
	const int	kind = 1 + HG_QUEUE_KIND;

	if (!receipt->present || receipt->sealed)
		return;
	if (hg_audit_field_equals(&fields[kind], "retention") &&
		hg_audit_field_equals(&fields[kind + 1], "PURGE AUDIT") &&
		hg_audit_field_equals(&fields[HG_RECORD_NFIELDS - 1], receipt->detail))
		receipt->sealed = true;
}

/* The values that a packed row's unhashed columns must match. */
typedef struct RowSummary
{
	TimestampTz logged_from;
	TimestampTz logged_to;
	List	   *patients;
} RowSummary;

static bool
summarize_record(RowSummary *summary, const HgAuditField *fields, bool first)
{
	TimestampTz logged_at;

	if (!hg_audit_field_timestamp(&fields[1 + HG_QUEUE_LOGGED_AT], &logged_at))
		return false;
	if (first || logged_at < summary->logged_from)
		summary->logged_from = logged_at;
	if (first || logged_at > summary->logged_to)
		summary->logged_to = logged_at;
	if (fields[1 + HG_QUEUE_PATIENTS].len >= 0)
	{
		bool		ok;
		Datum		patients = hg_audit_field_array(&fields[1 + HG_QUEUE_PATIENTS], &ok);

		if (!ok)
			return false;
		summary->patients = hg_audit_collect_patients(summary->patients, patients);
	}
	return true;
}

/* Whether a row's logged_from, logged_to and patients match its records. */
static bool
summary_matches(const RowSummary *summary, const Datum *values, const bool *nulls)
{
	bool		union_null;
	Datum		patient_union = hg_audit_patient_union(summary->patients, &union_null);

	if (nulls[HG_LOG_LOGGED_FROM] || nulls[HG_LOG_LOGGED_TO] ||
		DatumGetTimestampTz(values[HG_LOG_LOGGED_FROM]) != summary->logged_from ||
		DatumGetTimestampTz(values[HG_LOG_LOGGED_TO]) != summary->logged_to)
		return false;
	if (union_null || nulls[HG_LOG_PATIENTS])
		return union_null && nulls[HG_LOG_PATIENTS];
	return hg_audit_arrays_equal(patient_union, values[HG_LOG_PATIENTS]);
}

/*
 * Hash the records of the packed row in walk->rows.slot, which must hold
 * exactly the records first_seq..last_seq, into the block hash.
 */
static bool
walk_row(ChainWalk *walk, int64 block, int64 first_seq, int64 last_seq)
{
	VerifyResult *r = walk->result;
	Datum	   *values = walk->rows.slot->tts_values;
	bool	   *nulls = walk->rows.slot->tts_isnull;
	bytea	   *packed;
	const char *data;
	Size		len;
	Size		offset = 0;
	int64		seq = first_seq;
	RowSummary	summary;

	if (nulls[HG_LOG_RECORDS])
		return fail(r, true, block, true, first_seq,
					"records " INT64_FORMAT " to " INT64_FORMAT " are missing: their row holds no bytes",
					first_seq, last_seq);
	packed = DatumGetByteaPP(values[HG_LOG_RECORDS]);
	data = VARDATA_ANY(packed);
	len = VARSIZE_ANY_EXHDR(packed);
	memset(&summary, 0, sizeof(summary));
	while (offset < len)
	{
		HgAuditField fields[HG_RECORD_NFIELDS];
		Size		start = offset;
		int64		record_seq;
		uint8		record_hash[HG_AUDIT_HASH_LEN];

		if (seq > last_seq)
			return fail(r, true, block, true, seq,
						"the row of records " INT64_FORMAT " to " INT64_FORMAT " holds more records: a record was inserted",
						first_seq, last_seq);
		if (!hg_audit_split_record(data, len, &offset, fields) ||
			!hg_audit_field_int64(&fields[0], &record_seq) ||
			!summarize_record(&summary, fields, seq == first_seq))
			return fail(r, true, block, true, seq,
						"record " INT64_FORMAT " is malformed", seq);
		if (record_seq != seq)
			return fail(r, true, block, true, seq,
						"record " INT64_FORMAT " of block " INT64_FORMAT " is stored as record " INT64_FORMAT ": records were removed, inserted or reordered",
						seq, block, record_seq);
		hg_audit_record_hash(walk->hasher, data + start, offset - start, record_hash);
		hg_audit_block_add(walk->hasher, record_hash);
		note_receipt_event(walk->receipt, fields);
		seq++;
	}
	if (seq <= last_seq)
		return fail(r, true, block, true, seq,
					"record " INT64_FORMAT " of block " INT64_FORMAT " is missing", seq, block);
	if (!summary_matches(&summary, values, nulls))
		return fail(r, true, block, true, first_seq,
					"logged_from, logged_to or patients of the row of records " INT64_FORMAT " to " INT64_FORMAT " does not match its records",
					first_seq, last_seq);
	return true;
}

/* Hash the records first_seq..last_seq of a block into the block hash. */
static bool
walk_block_records(ChainWalk *walk, int64 block, int64 first_seq, int64 last_seq)
{
	VerifyResult *r = walk->result;
	int64		seq = first_seq;

	while (seq <= last_seq)
	{
		Datum	   *values = walk->rows.slot->tts_values;
		int64		row_first;
		int64		row_last;

		CHECK_FOR_INTERRUPTS();
		row_first = walk->have_row ? DatumGetInt64(values[HG_LOG_FIRST_SEQ]) : 0;
		if (!walk->have_row || row_first > seq)
			return fail(r, true, block, true, seq,
						"record " INT64_FORMAT " of block " INT64_FORMAT " is missing", seq, block);
		if (row_first < seq)
			return fail(r, true, block, true, row_first,
						"record " INT64_FORMAT " lies outside every block or repeats a seq", row_first);
		row_last = DatumGetInt64(values[HG_LOG_LAST_SEQ]);
		if (DatumGetInt64(values[HG_LOG_BLOCK]) != block)
			return fail(r, true, block, true, seq,
						"records " INT64_FORMAT " to " INT64_FORMAT " name block " INT64_FORMAT ", but lie in the range of block " INT64_FORMAT,
						seq, row_last, DatumGetInt64(values[HG_LOG_BLOCK]), block);
		if (row_last < row_first || row_last > last_seq)
			return fail(r, true, block, true, seq,
						"the row of records " INT64_FORMAT " to " INT64_FORMAT " does not fit in block " INT64_FORMAT ", which ends at record " INT64_FORMAT,
						row_first, row_last, block, last_seq);
		if (!walk_row(walk, block, row_first, row_last))
			return false;
		seq = row_last + 1;
		walk->have_row = key_scan_next(&walk->rows, ForwardScanDirection);
	}
	return true;
}

static void
note_anchor(Anchor *anchor, int64 block, int64 last_seq, const uint8 *hash)
{
	if (!anchor->present || anchor->block != block)
		return;
	anchor->seen = true;
	anchor->matches = anchor->last_seq == last_seq &&
		memcmp(anchor->hash, hash, HG_AUDIT_HASH_LEN) == 0;
}

/* Verify one block row and its records; false on the first failure. */
static bool
walk_block(ChainWalk *walk, Anchor *head_file, Anchor *digest)
{
	Datum	   *values = walk->blocks.slot->tts_values;
	int64		block = DatumGetInt64(values[0]);
	int64		first_seq = DatumGetInt64(values[1]);
	int64		last_seq = DatumGetInt64(values[2]);
	uint8		stored[HG_AUDIT_HASH_LEN];
	uint8		computed[HG_AUDIT_HASH_LEN];

	if (!check_block_header(walk, block, first_seq, last_seq, values[4]))
		return false;
	hg_audit_block_begin(walk->hasher, walk->prev_hash, block, first_seq, last_seq,
						 DatumGetTimestampTz(values[3]));
	if (!walk_block_records(walk, block, first_seq, last_seq))
		return false;
	hg_audit_block_finish(walk->hasher, computed);
	if (!copy_hash(values[5], stored) || memcmp(stored, computed, HG_AUDIT_HASH_LEN) != 0)
		return fail(walk->result, true, block, false, 0,
					"hash of block " INT64_FORMAT " does not match its contents: a record from " INT64_FORMAT " to " INT64_FORMAT " or the block's row was changed",
					block, first_seq, last_seq);

	note_anchor(head_file, block, last_seq, stored);
	note_anchor(digest, block, last_seq, stored);
	memcpy(walk->prev_hash, stored, HG_AUDIT_HASH_LEN);
	walk->last_sealed_at = DatumGetTimestampTz(values[3]);
	walk->next_block = block + 1;
	walk->next_seq = last_seq + 1;
	walk->result->blocks++;
	walk->result->records += last_seq - first_seq + 1;
	walk->result->last_block = block;
	return true;
}

static bool
check_anchor(VerifyResult *r, const Anchor *anchor, const Receipt *receipt, const char *what)
{
	if (!anchor->present)
		return true;
	/*
	 * A block that retention removed cannot be checked any more, except
	 * the last one, whose hash the receipt keeps.
	 */
	if (receipt->present && anchor->block < receipt->through_block)
		return fail(r, true, anchor->block, false, 0,
					"block " INT64_FORMAT ", which %s names, was removed by the retention purge through block " INT64_FORMAT ": verify against a later digest",
					anchor->block, what, receipt->through_block);
	if (receipt->present && anchor->block == receipt->through_block)
	{
		if (anchor->last_seq == receipt->through_seq &&
			memcmp(anchor->hash, receipt->last_hash, HG_AUDIT_HASH_LEN) == 0)
			return true;
		return fail(r, true, anchor->block, false, 0,
					"block " INT64_FORMAT ", removed by retention, did not end at record " INT64_FORMAT " with the hash that %s names",
					anchor->block, anchor->last_seq, what);
	}
	if (!anchor->seen && r->blocks == 0)
		return fail(r, true, anchor->block, true, 1,
					"the trail has no blocks, but %s names block " INT64_FORMAT ": sealed blocks were removed",
					what, anchor->block);
	if (!anchor->seen)
		return fail(r, true, anchor->block, false, 0,
					"the chain ends at block " INT64_FORMAT ", but %s names block " INT64_FORMAT ": sealed blocks were removed",
					r->last_block, what, anchor->block);
	if (!anchor->matches)
		return fail(r, true, anchor->block, false, 0,
					"block " INT64_FORMAT " does not end at record " INT64_FORMAT " with the hash that %s names",
					anchor->block, anchor->last_seq, what);
	return true;
}

/*
 * Read the receipt of the latest purge.  audit_purges has few rows, so
 * a sequential scan is fine.
 */
static void
read_latest_receipt(Snapshot snapshot, Receipt *receipt)
{
	Oid			relid = hg_audit_table_oid("audit_purges");
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tuple;

	memset(receipt, 0, sizeof(Receipt));
	if (!OidIsValid(relid))
		return;
	rel = table_open(relid, AccessShareLock);
	scan = table_beginscan(rel, snapshot, 0, NULL);
	while ((tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		TupleDesc	desc = RelationGetDescr(rel);
		bool		isnull;
		int64		through_block = DatumGetInt64(heap_getattr(tuple, 1, desc, &isnull));

		if (receipt->present && through_block <= receipt->through_block)
			continue;
		receipt->present = true;
		receipt->through_block = through_block;
		receipt->through_seq = DatumGetInt64(heap_getattr(tuple, 2, desc, &isnull));
		if (!copy_hash(heap_getattr(tuple, 3, desc, &isnull), receipt->last_hash))
			memset(receipt->last_hash, 0, HG_AUDIT_HASH_LEN);
		receipt->blocks = DatumGetInt64(heap_getattr(tuple, 4, desc, &isnull));
		receipt->records = DatumGetInt64(heap_getattr(tuple, 5, desc, &isnull));
		receipt->purged_at = DatumGetTimestampTz(heap_getattr(tuple, 7, desc, &isnull));
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	if (receipt->present)
	{
		StringInfoData detail;
		char		hex[HG_AUDIT_HASH_LEN * 2 + 1];

		for (int i = 0; i < HG_AUDIT_HASH_LEN; i++)
			snprintf(hex + 2 * i, 3, "%02x", receipt->last_hash[i]);
		initStringInfo(&detail);
		appendStringInfo(&detail, "purged through block " INT64_FORMAT ", record " INT64_FORMAT
						 ", hash %s: " INT64_FORMAT " blocks, " INT64_FORMAT " records",
						 receipt->through_block, receipt->through_seq, hex,
						 receipt->blocks, receipt->records);
		receipt->detail = detail.data;
	}
}

/* Walk the whole chain, then compare its end with the anchors. */
static void
verify_chain(Snapshot snapshot, Anchor *head_file, Anchor *digest, VerifyResult *r)
{
	Relation	block_rel = open_trail_for_read("audit_block", HG_BLOCK_NATTS);
	Relation	log_rel = open_trail_for_read("audit_log", HG_LOG_NATTS);
	ChainWalk	walk;
	Receipt		receipt;
	bool		ok = true;

	memset(&walk, 0, sizeof(walk));
	walk.result = r;
	walk.hasher = hg_audit_hasher_create();
	walk.next_block = 1;
	walk.next_seq = 1;
	read_latest_receipt(snapshot, &receipt);
	walk.receipt = &receipt;
	if (receipt.present)
	{
		walk.next_block = receipt.through_block + 1;
		walk.next_seq = receipt.through_seq + 1;
		memcpy(walk.prev_hash, receipt.last_hash, HG_AUDIT_HASH_LEN);
	}
	key_scan_open(&walk.blocks, block_rel, snapshot);
	key_scan_open(&walk.rows, log_rel, snapshot);
	walk.have_row = key_scan_next(&walk.rows, ForwardScanDirection);

	while (ok && key_scan_next(&walk.blocks, ForwardScanDirection))
		ok = walk_block(&walk, head_file, digest);
	if (ok && walk.have_row)
		ok = fail(r, false, 0, true, DatumGetInt64(walk.rows.slot->tts_values[HG_LOG_FIRST_SEQ]),
				  "record " INT64_FORMAT " lies outside every block",
				  DatumGetInt64(walk.rows.slot->tts_values[HG_LOG_FIRST_SEQ]));
	if (ok)
		ok = check_anchor(r, head_file, &receipt, "the high-water file");
	if (ok)
		ok = check_anchor(r, digest, &receipt, "the digest");
	if (ok && receipt.present && !receipt.sealed && receipt.purged_at <= walk.last_sealed_at)
		ok = fail(r, true, receipt.through_block, false, 0,
				  "the purge receipt through block " INT64_FORMAT " is not sealed in the chain: audit_purges was changed",
				  receipt.through_block);

	key_scan_close(&walk.rows);
	key_scan_close(&walk.blocks);
	table_close(log_rel, AccessShareLock);
	table_close(block_rel, AccessShareLock);
}

PG_FUNCTION_INFO_V1(hg_verify_audit_chain);
Datum
hg_verify_audit_chain(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Anchor		digest;
	Anchor		head_file;
	VerifyResult result;
	Snapshot	snapshot;
	Datum		values[6];
	bool		nulls[6] = {false};

	memset(&digest, 0, sizeof(digest));
	if (!PG_ARGISNULL(0) && !parse_digest(text_to_cstring(PG_GETARG_TEXT_PP(0)), &digest))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid audit digest"),
				 errdetail("A digest has the form hg1:<block>:<last seq>:<64 lowercase hexadecimal digits>, as hipaa_guard.audit_digest() returns it.")));

	memset(&result, 0, sizeof(result));
	result.ok = true;
	InitMaterializedSRF(fcinfo, 0);
	if (!read_head_file(&head_file))
		fail(&result, false, 0, false, 0, "the high-water file of this database is malformed");
	else
	{
		/* Taken after the file was read: see the header comment. */
		snapshot = RegisterSnapshot(GetLatestSnapshot());
		verify_chain(snapshot, &head_file, &digest, &result);
		UnregisterSnapshot(snapshot);
	}

	values[0] = BoolGetDatum(result.ok);
	values[1] = Int64GetDatum(result.blocks);
	values[2] = Int64GetDatum(result.records);
	values[3] = Int64GetDatum(result.failed_block);
	nulls[3] = !result.has_failed_block;
	values[4] = Int64GetDatum(result.failed_seq);
	nulls[4] = !result.has_failed_seq;
	values[5] = result.ok ? (Datum) 0 : CStringGetTextDatum(result.reason);
	nulls[5] = result.ok;
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}

/* ----------------------------------------------------------------
 *		Digest and status
 * ---------------------------------------------------------------- */

static void
read_head_now(HgAuditHead *head)
{
	Relation	block_rel = open_trail_for_read("audit_block", HG_BLOCK_NATTS);

	hg_audit_read_head(block_rel, GetActiveSnapshot(), head);
	table_close(block_rel, AccessShareLock);
}

/*
 * Flush the WAL inserted so far.  The sealer commits blocks without waiting
 * for their flush (sealer.c), and a digest that named a block which a crash
 * then undid would make verification against it report a rewritten chain.
 */
static void
flush_inserted_wal(void)
{
	XLogRecPtr	end;

	if (RecoveryInProgress())
		return;
	end = GetXLogInsertRecPtr();
	/* At the start of a page, the position counts the header not written yet. */
	if (XLogSegmentOffset(end, wal_segment_size) == SizeOfXLogLongPHD)
		end -= SizeOfXLogLongPHD;
	else if (end % XLOG_BLCKSZ == SizeOfXLogShortPHD)
		end -= SizeOfXLogShortPHD;
	XLogFlush(end);
}

PG_FUNCTION_INFO_V1(hg_audit_digest);
Datum
hg_audit_digest(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	HgAuditHead head;
	Datum		values[4];
	bool		nulls[4] = {false};
	char	   *digest;

	InitMaterializedSRF(fcinfo, 0);
	read_head_now(&head);
	if (!head.found)
		return (Datum) 0;
	flush_inserted_wal();

	digest = format_digest(head.block, head.last_seq, head.hash);
	values[0] = Int64GetDatum(head.block);
	values[1] = Int64GetDatum(head.last_seq);
	values[2] = CStringGetTextDatum(strrchr(digest, ':') + 1);
	values[3] = CStringGetTextDatum(digest);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}

static int64
count_queue_rows(void)
{
	Relation	rel = open_trail_for_read("audit_queue", HG_QUEUE_NATTS);
	TableScanDesc scan = table_beginscan(rel, GetActiveSnapshot(), 0, NULL);
	int64		count = 0;

	while (heap_getnext(scan, ForwardScanDirection) != NULL)
		count++;
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	return count;
}

PG_FUNCTION_INFO_V1(hg_audit_status);
Datum
hg_audit_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	HgAuditHead head;
	HgAuditMemoryStatus memory;
	Datum		values[7];
	bool		nulls[7] = {false};

	InitMaterializedSRF(fcinfo, 0);
	(void) hg_audit_memory_status(MyDatabaseId, &memory);
	read_head_now(&head);

	values[0] = Int32GetDatum(memory.sealer_pid);
	nulls[0] = (memory.sealer_pid == 0);
	values[1] = Int64GetDatum(memory.queued);
	values[2] = Int64GetDatum(count_queue_rows());
	values[3] = Int64GetDatum(head.found ? head.last_seq : 0);
	values[4] = Int64GetDatum(head.found ? head.block : 0);
	values[5] = TimestampTzGetDatum(head.sealed_at);
	nulls[5] = !head.found;
	values[6] = Int64GetDatum(memory.full_waits);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}
