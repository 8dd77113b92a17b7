/*
 * auditqueue.h
 *		The audit trail's storage side: the shared memory queue of durable
 *		events, the sealing worker that drains it and audit_queue into
 *		hash-chained blocks, and the record hash that both the worker and
 *		the verifier compute.
 */
#ifndef HG_AUDITQUEUE_H
#define HG_AUDITQUEUE_H

#include "postgres.h"

#include "access/htup.h"
#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
#include "storage/itemptr.h"
#include "utils/relcache.h"
#include "utils/snapshot.h"
#include "utils/timestamp.h"

/* Settings, defined in hipaa_guard.c. */
extern int	hg_audit_databases;
extern int	hg_audit_queue_size;
extern int	hg_audit_seal_interval;

/*
 * Columns of hipaa_guard.audit_queue, in table order.  audit_log has the
 * same columns after its first two, seq and block.
 */
#define HG_QUEUE_NATTS			21
#define HG_QUEUE_LOGGED_AT		0
#define HG_QUEUE_KIND			1
#define HG_QUEUE_COLUMNS		5
#define HG_QUEUE_ROWS			6
#define HG_QUEUE_PATIENTS		7
#define HG_QUEUE_DECRYPTS		8
#define HG_QUEUE_XID			15
#define HG_QUEUE_STATUS			16
#define HG_QUEUE_QUERY_ID		17

/* A sealed record's hashed fields: seq, then the columns of audit_queue. */
#define HG_RECORD_NFIELDS		(HG_QUEUE_NATTS + 1)

/* Columns of hipaa_guard.audit_log, each row a run of packed records. */
#define HG_LOG_NATTS			7
#define HG_LOG_FIRST_SEQ		0
#define HG_LOG_LAST_SEQ			1
#define HG_LOG_BLOCK			2
#define HG_LOG_LOGGED_FROM		3
#define HG_LOG_LOGGED_TO		4
#define HG_LOG_PATIENTS			5
#define HG_LOG_RECORDS			6

/*
 * Bytes of records after which the sealer starts a new row.  Compressed, a
 * row takes about 500 bytes; uncompressed (a server without LZ4), it still
 * fits in one heap page with its patients.  A single larger record is
 * stored alone and may be moved out of line.
 */
#define HG_LOG_ROW_BYTES		6000

#define HG_BLOCK_NATTS			6

#define HG_AUDIT_HASH_LEN		32	/* SHA-256 */

/* Microseconds from the PostgreSQL epoch (2000) back to the Unix epoch (1970). */
#define HG_UNIX_EPOCH_OFFSET_USECS \
	((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY)

/* Status of a sealed record from an audit_queue row: only commits are visible. */
#define HG_STATUS_COMMITTED		"committed"

/* ----------------------------------------------------------------
 *		Shared memory (auditqueue.c)
 * ---------------------------------------------------------------- */

typedef struct HgAuditSlot HgAuditSlot;

extern Size hg_audit_shmem_size(void);
extern void hg_audit_shmem_request(void);
extern void hg_audit_shmem_startup(void);
extern void hg_audit_init(void);
extern void hg_audit_preload_init(void);
extern bool hg_audit_drop_requested(Oid database_oid);

/* Events copied out of a ring, whose space is not released yet. */
typedef struct HgAuditBatch
{
	char	   *data;			/* the entries, back to back */
	Size		len;
	int			nevents;
	uint64		end_pos;		/* ring position after the last entry */
	bool		more;			/* entries were left in the ring */
} HgAuditBatch;

extern HgAuditSlot *hg_audit_sealer_attach(Oid database_oid);
extern void hg_audit_sealer_gave_up(Oid database_oid);
extern void hg_audit_ring_read(HgAuditSlot *slot, int max_events, HgAuditBatch *batch);
extern void hg_audit_ring_release(HgAuditSlot *slot, const HgAuditBatch *batch);
extern bool hg_audit_ring_busy(HgAuditSlot *slot);
extern bool hg_audit_ring_half_full(HgAuditSlot *slot);

/* What the sealer needs of an encoded entry besides its bytes. */
typedef struct HgAuditEntryInfo
{
	TimestampTz logged_at;
	Datum		patients;		/* text[], valid unless patients_null */
	bool		patients_null;
} HgAuditEntryInfo;

extern Size hg_audit_encode_entry(StringInfo buf, int64 seq, const char *entry,
								  TimestampTz sealed_at, HgAuditEntryInfo *info);
extern void hg_audit_note_sealed(HgAuditSlot *slot);
/* A database's queue in shared memory, for hipaa_guard.audit_status(). */
typedef struct HgAuditMemoryStatus
{
	int			sealer_pid;		/* 0 when no sealer runs */
	int64		queued;			/* events in the ring */
	int64		full_waits;		/* pushes that waited for space */
} HgAuditMemoryStatus;

extern bool hg_audit_memory_status(Oid database_oid, HgAuditMemoryStatus *status);
extern bool hg_audit_database_has_live_sealer(Oid database_oid, int pid);

/* The relation of the trail's tables in the extension's schema, or InvalidOid. */
extern Oid	hg_audit_table_oid(const char *name);

/* ----------------------------------------------------------------
 *		The sealing worker (sealer.c)
 * ---------------------------------------------------------------- */

extern bool hg_sealer_active;
extern bool hg_audit_purging;

extern bool hg_sealer_register(Oid database_oid, int notify_pid);
extern void hg_sealers_start_all(List *database_oids);
extern void hg_audit_head_path(Oid database_oid, char *path, Size size);

/* Entry point that the postmaster looks up by name in this library. */
extern PGDLLEXPORT void hg_sealer_main(Datum main_arg);

/* ----------------------------------------------------------------
 *		Hashing (auditchain.c)
 * ---------------------------------------------------------------- */

typedef struct HgAuditHasher HgAuditHasher;

extern HgAuditHasher *hg_audit_hasher_create(void);
extern void hg_audit_record_hash(HgAuditHasher *hasher, const char *bytes, Size len,
								 uint8 *out);
extern void hg_audit_block_begin(HgAuditHasher *hasher, const uint8 *prev_hash,
								 int64 block, int64 first_seq, int64 last_seq,
								 TimestampTz sealed_at);
extern void hg_audit_block_add(HgAuditHasher *hasher, const uint8 *record_hash);
extern void hg_audit_block_finish(HgAuditHasher *hasher, uint8 *out);

/* ----------------------------------------------------------------
 *		The packed records' format (auditpack.c)
 * ---------------------------------------------------------------- */

/*
 * Take len bytes at the end of buf and return where they start.  A record
 * has a score of small fields, and appendBinaryStringInfo() two or three
 * times per field cost measurable time per record, in the backend that
 * serializes it and in the sealer that encodes it.
 */
static inline char *
hg_audit_reserve(StringInfo buf, int len)
{
	char	   *dest;

	if (buf->maxlen - buf->len <= len)
		enlargeStringInfo(buf, len);
	dest = buf->data + buf->len;
	buf->len += len;
	buf->data[buf->len] = '\0';
	return dest;
}

/* One field of a record's bytes; len is -1 for NULL. */
typedef struct HgAuditField
{
	const char *data;
	int			len;
} HgAuditField;

extern void hg_audit_encode_record(StringInfo buf, int64 seq, const Datum *values,
								   const bool *nulls);
extern void hg_audit_append_field(StringInfo buf, const char *data, int len);
extern void hg_audit_append_null(StringInfo buf);
extern void hg_audit_append_int64(StringInfo buf, int64 value);
extern void hg_audit_append_uint64(StringInfo buf, uint64 value);
extern void hg_audit_append_text(StringInfo buf, const char *s, int len);
extern void hg_audit_append_array(StringInfo buf, Datum value);
extern bool hg_audit_split_record(const char *data, Size len, Size *offset,
								  HgAuditField *fields);
extern bool hg_audit_field_int64(const HgAuditField *field, int64 *value);
extern bool hg_audit_field_equals(const HgAuditField *field, const char *expected);
extern char *hg_audit_field_cstring(const HgAuditField *field);
extern bool hg_audit_field_timestamp(const HgAuditField *field, TimestampTz *ts);
extern Datum hg_audit_field_array(const HgAuditField *field, bool *ok);
extern List *hg_audit_collect_patients(List *patients, Datum array);
extern Datum hg_audit_patient_union(List *patients, bool *isnull);
extern bool hg_audit_arrays_equal(Datum a, Datum b);

/* The latest sealed block, read in the caller's transaction. */
typedef struct HgAuditHead
{
	bool		found;
	int64		block;
	int64		first_seq;
	int64		last_seq;
	TimestampTz sealed_at;
	uint8		hash[HG_AUDIT_HASH_LEN];
} HgAuditHead;

extern void hg_audit_read_head(Relation block_rel, Snapshot snapshot, HgAuditHead *head);
extern void hg_audit_check_layout(Relation rel, int natts);
extern bool hg_audit_read_head_file(bool *present, int64 *block, int64 *last_seq,
									uint8 *hash);

#endif							/* HG_AUDITQUEUE_H */
