/*
 * sealer.c
 *		The sealing worker: one background worker per database with the
 *		extension, which moves queued audit records into the hash-chained
 *		trail, and the trigger that keeps the trail append-only.
 *
 * Starting.  The launcher (worker.c) registers a sealer for every database
 * when it starts, and a backend registers one when it queues a record for a
 * database whose slot has no sealer (auditqueue.c).  A sealer exits with
 * code 0 when the extension is not installed or another sealer owns the
 * slot.  PostgreSQL 15 unregisters a background worker that exits with code
 * 0, restarts one that exits with code 1 after bgw_restart_time, and treats
 * any other exit code as a crash (see "Background Worker Processes" in the
 * PostgreSQL documentation, and CleanupBackgroundWorker() in postmaster.c).
 * So an ERROR, which exits with code 1, restarts the sealer after
 * HG_SEALER_RESTART_SECONDS, and so does pg_terminate_backend(): on SIGTERM
 * the sealer finishes its block, drains the ring and exits with code 1.  At
 * server shutdown the postmaster restarts nothing.
 *
 * Sealing.  One transaction per block.  It copies up to HG_BLOCK_MAX_RECORDS
 * events from the ring, whose space stays taken, and reads the committed
 * rows of audit_queue.  It numbers them after the last sealed record, inserts
 * them into audit_log, deletes the queue rows and inserts the audit_block
 * row, then commits.  Only then is the ring space released, with interrupts
 * held in between, so a failure anywhere before leaves every event queued
 * for the next attempt, and none is sealed twice.
 *
 * Flushing.  A block commits without waiting for its WAL to reach disk
 * (synchronous_commit is off in the sealer).  The sealer flushes the WAL and
 * writes the high-water file (see write_head_file) once per
 * audit_seal_interval, and when it stops.  Under load that is a few flushes
 * a second instead of one per block.  Each fsync put the sealer to sleep,
 * and on two busy CPUs every sleep and wake-up of a third process left a
 * CPU idle for a while.  A crash can undo the blocks committed since the
 * last flush.  Their audit_queue rows come back with them and are sealed
 * again; their read records are lost, as those still in the ring would be.
 * The high-water file never names an undone block, and audit_digest()
 * flushes the WAL before it returns a digest (auditchain.c).
 *
 * The tables are written through the executor's simple insert path, which
 * maintains their indexes and checks their constraints, with no SQL to parse
 * or plan per record.
 */
#include "postgres.h"

#include <unistd.h>

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "commands/dbcommands.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "auditqueue.h"
#include "worker.h"

#define HG_SEALER_TYPE				"hipaa_guard sealer"
#define HG_SEALER_RESTART_SECONDS	5

/* Records per block: bounds a sealing transaction and the verifier's unit. */
#define HG_BLOCK_MAX_RECORDS		4096

/* Milliseconds a stopping sealer keeps draining for backends still pushing. */
#define HG_DRAIN_TIMEOUT_MS			5000

/* How long the launcher waits for each sealer to claim its slot or exit. */
#define HG_START_WAIT_MS			30000

#define HG_HEAD_DIR					"hipaa_guard"

/* True in the sealing worker: the queue guard lets it delete sealed rows. */
bool		hg_sealer_active = false;

/*
 * Largest memory block of the sealer's per-block contexts.  malloc maps
 * larger blocks from the kernel and unmaps them at each reset, so touching
 * them again page faults.  Smaller blocks stay in malloc's heap.
 */
#define HG_SMALL_BLOCKS_MAXSIZE	(64 * 1024)

/* A table of the trail opened for inserts through the executor. */
/* Packed rows buffered for one multi-insert, which writes far less WAL. */
#define HG_WRITER_BUFFER_ROWS	32

typedef struct TrailWriter
{
	Relation	rel;
	EState	   *estate;
	ResultRelInfo *result_rel;
	TupleTableSlot *slot;
	TupleTableSlot *buffer[HG_WRITER_BUFFER_ROWS];
	int			nbuffered;
	MemoryContext buffer_cxt;	/* the buffered rows */
	BulkInsertState bistate;
} TrailWriter;

/* What one sealing transaction works on. */
typedef struct SealInput
{
	HgAuditBatch batch;			/* events copied from the ring */
	HeapTuple  *queued;			/* committed audit_queue rows */
	int			nqueued;
} SealInput;

/*
 * The newest block committed but not yet flushed, which the high-water file
 * will name once its commit record is on disk.
 */
typedef struct UnflushedHead
{
	bool		pending;
	XLogRecPtr	commit_end;
	int64		block;
	int64		last_seq;
	uint8		hash[HG_AUDIT_HASH_LEN];
} UnflushedHead;

static UnflushedHead unflushed;
static TimestampTz last_flush_at = 0;

/*
 * What the high-water file contains, as this sealer last read or wrote it.
 * Only the sealer writes the file, so it is read again only after a check
 * against it failed, which lets an administrator move it aside.
 */
typedef struct HeadFileCache
{
	bool		valid;
	bool		present;
	int64		block;
	int64		last_seq;
	uint8		hash[HG_AUDIT_HASH_LEN];
} HeadFileCache;

static HeadFileCache head_file;

/* ----------------------------------------------------------------
 *		Registration
 * ---------------------------------------------------------------- */

static void
fill_sealer_worker(BackgroundWorker *worker, Oid database_oid, int notify_pid)
{
	memset(worker, 0, sizeof(BackgroundWorker));
	worker->bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker->bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker->bgw_restart_time = HG_SEALER_RESTART_SECONDS;
	strlcpy(worker->bgw_library_name, "hipaa_guard", BGW_MAXLEN);
	strlcpy(worker->bgw_function_name, "hg_sealer_main", BGW_MAXLEN);
	snprintf(worker->bgw_name, BGW_MAXLEN, "%s for database %u", HG_SEALER_TYPE, database_oid);
	strlcpy(worker->bgw_type, HG_SEALER_TYPE, BGW_MAXLEN);
	worker->bgw_main_arg = ObjectIdGetDatum(database_oid);
	worker->bgw_notify_pid = notify_pid;
}

/*
 * Register a sealer for a database without waiting for it.  Returns false
 * when no worker slot is free.  Allocates nothing and raises no error, so
 * that pushers may call it in transaction callbacks.
 */
bool
hg_sealer_register(Oid database_oid, int notify_pid)
{
	BackgroundWorker worker;

	fill_sealer_worker(&worker, database_oid, notify_pid);
	return RegisterDynamicBackgroundWorker(&worker, NULL);
}

/*
 * Wait until the sealer behind the handle has claimed its database's slot or
 * exited.  Starting them one at a time keeps the sealers of databases
 * without the extension from taking many worker slots at once.
 */
static void
wait_for_sealer(BackgroundWorkerHandle *handle, Oid database_oid)
{
	TimestampTz start = GetCurrentTimestamp();

	for (;;)
	{
		pid_t		pid;
		BgwHandleStatus status = GetBackgroundWorkerPid(handle, &pid);

		if (status == BGWH_STOPPED || status == BGWH_POSTMASTER_DIED || ShutdownRequestPending)
			return;
		if (status == BGWH_STARTED && hg_audit_database_has_live_sealer(database_oid, pid))
			return;
		if (TimestampDifferenceExceeds(start, GetCurrentTimestamp(), HG_START_WAIT_MS))
			return;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 100, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/* Start a sealer for each database, one after another (the launcher). */
void
hg_sealers_start_all(List *database_oids)
{
	ListCell   *cell;

	foreach(cell, database_oids)
	{
		Oid			database_oid = lfirst_oid(cell);
		BackgroundWorker worker;
		BackgroundWorkerHandle *handle;

		if (ShutdownRequestPending)
			return;
		fill_sealer_worker(&worker, database_oid, MyProcPid);
		if (!RegisterDynamicBackgroundWorker(&worker, &handle))
		{
			ereport(WARNING,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("out of background worker slots for hipaa_guard sealers"),
					 errdetail("Sealers for the remaining databases start when their first audit record is queued."),
					 errhint("You might need to increase \"max_worker_processes\".")));
			return;
		}
		wait_for_sealer(handle, database_oid);
		pfree(handle);
	}
}

/* ----------------------------------------------------------------
 *		Writing the trail
 * ---------------------------------------------------------------- */

static void
writer_open(TrailWriter *writer, Relation rel, bool buffered)
{
	RangeTblEntry *rte = makeNode(RangeTblEntry);

	writer->rel = rel;
	writer->estate = CreateExecutorState();
	rte->rtekind = RTE_RELATION;
	rte->relid = RelationGetRelid(rel);
	rte->relkind = rel->rd_rel->relkind;
	rte->rellockmode = RowExclusiveLock;
	ExecInitRangeTable(writer->estate, list_make1(rte));
	writer->estate->es_output_cid = GetCurrentCommandId(true);

	writer->result_rel = makeNode(ResultRelInfo);
	InitResultRelInfo(writer->result_rel, rel, 1, NULL, 0);
	ExecOpenIndices(writer->result_rel, false);
	writer->slot = ExecInitExtraTupleSlot(writer->estate, RelationGetDescr(rel),
										  &TTSOpsVirtual);
	writer->nbuffered = 0;
	writer->buffer_cxt = NULL;
	if (buffered)
	{
		/* Made here, in the block's context: rows are formed in per-record ones. */
		writer->buffer_cxt = AllocSetContextCreate(CurrentMemoryContext, "hipaa_guard sealed rows",
												   ALLOCSET_DEFAULT_MINSIZE,
												   ALLOCSET_DEFAULT_INITSIZE,
												   HG_SMALL_BLOCKS_MAXSIZE);
		writer->bistate = GetBulkInsertState();
		for (int i = 0; i < HG_WRITER_BUFFER_ROWS; i++)
			writer->buffer[i] = MakeSingleTupleTableSlot(RelationGetDescr(rel), &TTSOpsHeapTuple);
	}
	AfterTriggerBeginQuery();
}

static void
writer_insert(TrailWriter *writer, const Datum *values, const bool *nulls)
{
	TupleTableSlot *slot = writer->slot;
	int			natts = RelationGetDescr(writer->rel)->natts;

	ExecClearTuple(slot);
	memcpy(slot->tts_values, values, sizeof(Datum) * natts);
	memcpy(slot->tts_isnull, nulls, sizeof(bool) * natts);
	ExecStoreVirtualTuple(slot);
	ExecSimpleRelationInsert(writer->result_rel, writer->estate, slot);
}

/* Insert the buffered rows with one multi-insert, then their index entries. */
static void
writer_flush(TrailWriter *writer)
{
	if (writer->nbuffered == 0)
		return;
	table_multi_insert(writer->rel, writer->buffer, writer->nbuffered,
					   writer->estate->es_output_cid, 0, writer->bistate);
	for (int i = 0; i < writer->nbuffered; i++)
	{
		ResetPerTupleExprContext(writer->estate);
		(void) ExecInsertIndexTuples(writer->result_rel, writer->buffer[i], writer->estate,
									 false, false, NULL, NIL);
		ExecClearTuple(writer->buffer[i]);
	}
	writer->nbuffered = 0;
	MemoryContextReset(writer->buffer_cxt);
}

/*
 * Buffer a row of audit_log.  The trail's tables have no insert triggers
 * and no constraints beyond their columns' NOT NULL, which the sealer
 * always fills, so the executor's single-row path has nothing more to do.
 */
static void
writer_buffer(TrailWriter *writer, const Datum *values, const bool *nulls)
{
	TupleDesc	desc = RelationGetDescr(writer->rel);
	TupleTableSlot *slot;
	MemoryContext old;

	slot = writer->buffer[writer->nbuffered++];
	old = MemoryContextSwitchTo(writer->buffer_cxt);
	ExecStoreHeapTuple(heap_form_tuple(desc, (Datum *) values, (bool *) nulls), slot, false);
	MemoryContextSwitchTo(old);
	if (writer->nbuffered == HG_WRITER_BUFFER_ROWS)
		writer_flush(writer);
}

static void
writer_close(TrailWriter *writer)
{
	if (writer->buffer_cxt != NULL)
	{
		writer_flush(writer);
		for (int i = 0; i < HG_WRITER_BUFFER_ROWS; i++)
			ExecDropSingleTupleTableSlot(writer->buffer[i]);
		FreeBulkInsertState(writer->bistate);
		MemoryContextDelete(writer->buffer_cxt);
	}
	AfterTriggerEndQuery(writer->estate);
	ExecCloseIndices(writer->result_rel);
	ExecResetTupleTable(writer->estate->es_tupleTable, false);
	FreeExecutorState(writer->estate);
}

/*
 * Open one of the trail's tables, or exit when the extension is gone:
 * DROP EXTENSION dropped the trail, and nothing is left to seal into.
 */
static Relation
open_trail_table(const char *name, int natts)
{
	Oid			relid = hg_audit_table_oid(name);
	Relation	rel;

	if (!OidIsValid(relid))
	{
		ereport(LOG,
				(errmsg("hipaa_guard sealer: extension dropped in database \"%s\", exiting",
						get_database_name(MyDatabaseId))));
		AbortCurrentTransaction();
		proc_exit(0);
	}
	rel = table_open(relid, RowExclusiveLock);
	hg_audit_check_layout(rel, natts);
	return rel;
}

/*
 * Rows of audit_queue that the sealer deleted since its last VACUUM of it.
 * The sealer scans the whole queue every round, so dead rows must not wait
 * for autovacuum.  At thousands of changes a second the queue would grow by
 * tens of megabytes a minute, and every round would scan them again.
 *
 * The VACUUM does not truncate the table.  Truncating needs an ACCESS
 * EXCLUSIVE lock, and while writers kept queueing records, VACUUM waited
 * for it for up to 5 seconds (wait event VacuumTruncate), in which time
 * nothing was sealed.
 */
static int64 queue_rows_since_vacuum = 0;

/* Read the committed rows of audit_queue, in physical order, up to max_rows. */
static void
read_queue(Relation queue_rel, int max_rows, SealInput *input)
{
	TableScanDesc scan;
	HeapTuple	tuple;

	input->queued = palloc(sizeof(HeapTuple) * Max(max_rows, 1));
	input->nqueued = 0;
	if (max_rows <= 0)
		return;
	scan = table_beginscan(queue_rel, GetActiveSnapshot(), 0, NULL);
	while (input->nqueued < max_rows &&
		   (tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
		input->queued[input->nqueued++] = heap_copytuple(tuple);
	table_endscan(scan);
}

/*
 * A logged_at of infinity has no place in the hashed format, which counts
 * microseconds.  Only a superuser inserting into audit_queue by hand can
 * produce one, and such a row is sealed with the sealing time instead of
 * being left to block the queue.
 */
static void
normalize_logged_at(Datum *queue_values, TimestampTz sealed_at)
{
	if (TIMESTAMP_NOT_FINITE(DatumGetTimestampTz(queue_values[HG_QUEUE_LOGGED_AT])))
		queue_values[HG_QUEUE_LOGGED_AT] = TimestampTzGetDatum(sealed_at);
}

/* A row of audit_log being filled with packed records. */
typedef struct PackedRow
{
	StringInfoData records;		/* the records' hashed bytes, back to back */
	int64		first_seq;
	int64		last_seq;
	TimestampTz logged_from;
	TimestampTz logged_to;
	List	   *patients;		/* of the records so far, with repeats */
	Size		patient_bytes;
	MemoryContext context;		/* the patients; reset with each row */
} PackedRow;

static void
packed_row_init(PackedRow *row)
{
	initStringInfo(&row->records);
	row->patients = NIL;
	row->patient_bytes = 0;
	row->context = AllocSetContextCreate(CurrentMemoryContext, "hipaa_guard packed row",
										 ALLOCSET_DEFAULT_MINSIZE,
										 ALLOCSET_DEFAULT_INITSIZE,
										 HG_SMALL_BLOCKS_MAXSIZE);
}

/* Buffer the row for insertion and empty it for the next records. */
static void
packed_row_flush(TrailWriter *writer, PackedRow *row, int64 block)
{
	Datum		values[HG_LOG_NATTS];
	bool		nulls[HG_LOG_NATTS] = {false};
	MemoryContext old_context;
	bytea	   *records;

	if (row->records.len == 0)
		return;
	old_context = MemoryContextSwitchTo(row->context);
	records = palloc(VARHDRSZ + row->records.len);
	SET_VARSIZE(records, VARHDRSZ + row->records.len);
	memcpy(VARDATA(records), row->records.data, row->records.len);
	values[HG_LOG_FIRST_SEQ] = Int64GetDatum(row->first_seq);
	values[HG_LOG_LAST_SEQ] = Int64GetDatum(row->last_seq);
	values[HG_LOG_BLOCK] = Int64GetDatum(block);
	values[HG_LOG_LOGGED_FROM] = TimestampTzGetDatum(row->logged_from);
	values[HG_LOG_LOGGED_TO] = TimestampTzGetDatum(row->logged_to);
	values[HG_LOG_PATIENTS] = hg_audit_patient_union(row->patients, &nulls[HG_LOG_PATIENTS]);
	values[HG_LOG_RECORDS] = PointerGetDatum(records);
	writer_buffer(writer, values, nulls);
	MemoryContextSwitchTo(old_context);

	resetStringInfo(&row->records);
	row->patients = NIL;
	row->patient_bytes = 0;
	MemoryContextReset(row->context);
}

/* Note a record's time and patients in the row's unhashed columns. */
static void
packed_row_summarize(PackedRow *row, TimestampTz logged_at, Datum patients, bool patients_null,
					 bool first)
{
	MemoryContext old_context;
	ListCell   *cell;
	int			before;

	if (first || logged_at < row->logged_from)
		row->logged_from = logged_at;
	if (first || logged_at > row->logged_to)
		row->logged_to = logged_at;
	if (patients_null)
		return;
	old_context = MemoryContextSwitchTo(row->context);
	before = list_length(row->patients);
	row->patients = hg_audit_collect_patients(row->patients, patients);
	for_each_from(cell, row->patients, before)
		row->patient_bytes += strlen(lfirst(cell));
	MemoryContextSwitchTo(old_context);
}

/*
 * Make room for one more record in the row, starting a new row when the
 * current one is full, and return where the record's bytes will start.
 */
static Size
packed_row_begin_record(TrailWriter *log_writer, PackedRow *row, int64 seq, int64 block)
{
	if (row->records.len + row->patient_bytes >= HG_LOG_ROW_BYTES)
		packed_row_flush(log_writer, row, block);
	if (row->records.len == 0)
		row->first_seq = seq;
	row->last_seq = seq;
	return row->records.len;
}

/* Add the hash of the record that starts at start to the block's hash. */
static void
chain_record(HgAuditHasher *hasher, PackedRow *row, Size start)
{
	uint8		record_hash[HG_AUDIT_HASH_LEN];

	hg_audit_record_hash(hasher, row->records.data + start, row->records.len - start,
						 record_hash);
	hg_audit_block_add(hasher, record_hash);
}

/* Seal a ring entry as record seq; returns the entry's length. */
static Size
seal_entry(TrailWriter *log_writer, PackedRow *row, HgAuditHasher *hasher,
		   const char *entry, int64 seq, int64 block, TimestampTz sealed_at)
{
	Size		start = packed_row_begin_record(log_writer, row, seq, block);
	HgAuditEntryInfo info;
	Size		entry_len;

	entry_len = hg_audit_encode_entry(&row->records, seq, entry, sealed_at, &info);
	chain_record(hasher, row, start);
	packed_row_summarize(row, info.logged_at, info.patients, info.patients_null, start == 0);
	return entry_len;
}

/* Seal an audit_queue row's values as record seq. */
static void
seal_record(TrailWriter *log_writer, PackedRow *row, HgAuditHasher *hasher,
			const Datum *queue_values, const bool *queue_nulls, int64 seq, int64 block)
{
	Size		start = packed_row_begin_record(log_writer, row, seq, block);

	hg_audit_encode_record(&row->records, seq, queue_values, queue_nulls);
	chain_record(hasher, row, start);
	packed_row_summarize(row, DatumGetTimestampTz(queue_values[HG_QUEUE_LOGGED_AT]),
						 queue_values[HG_QUEUE_PATIENTS], queue_nulls[HG_QUEUE_PATIENTS],
						 start == 0);
}

static void
insert_block_row(Relation block_rel, int64 block, int64 first_seq, int64 last_seq,
				 TimestampTz sealed_at, const uint8 *prev_hash, const uint8 *hash)
{
	TrailWriter writer;
	Datum		values[HG_BLOCK_NATTS];
	bool		nulls[HG_BLOCK_NATTS] = {false};
	bytea	   *prev = palloc(VARHDRSZ + HG_AUDIT_HASH_LEN);
	bytea	   *own = palloc(VARHDRSZ + HG_AUDIT_HASH_LEN);

	SET_VARSIZE(prev, VARHDRSZ + HG_AUDIT_HASH_LEN);
	memcpy(VARDATA(prev), prev_hash, HG_AUDIT_HASH_LEN);
	SET_VARSIZE(own, VARHDRSZ + HG_AUDIT_HASH_LEN);
	memcpy(VARDATA(own), hash, HG_AUDIT_HASH_LEN);

	values[0] = Int64GetDatum(block);
	values[1] = Int64GetDatum(first_seq);
	values[2] = Int64GetDatum(last_seq);
	values[3] = TimestampTzGetDatum(sealed_at);
	values[4] = PointerGetDatum(prev);
	values[5] = PointerGetDatum(own);

	writer_open(&writer, block_rel, false);
	writer_insert(&writer, values, nulls);
	writer_close(&writer);
}

/*
 * Seal the input as the block after head, in the current transaction, and
 * return the block's hash in hash.  Ring events come first, then the queue
 * rows, which are deleted as they are sealed.
 */
static void
seal_block(Relation queue_rel, Relation log_rel, Relation block_rel,
		   const HgAuditHead *head, SealInput *input, uint8 *hash)
{
	static const uint8 zero_hash[HG_AUDIT_HASH_LEN] = {0};
	int64		block = head->found ? head->block + 1 : 1;
	int64		first_seq = head->found ? head->last_seq + 1 : 1;
	int64		last_seq = first_seq + input->batch.nevents + input->nqueued - 1;
	const uint8 *prev_hash = head->found ? head->hash : zero_hash;
	TimestampTz sealed_at = GetCurrentTimestamp();
	HgAuditHasher *hasher = hg_audit_hasher_create();
	MemoryContext record_context;
	MemoryContext old_context;
	TrailWriter log_writer;
	PackedRow	row;
	Datum		queue_values[HG_QUEUE_NATTS];
	bool		queue_nulls[HG_QUEUE_NATTS];
	int64		seq = first_seq;
	Size		offset = 0;

	record_context = AllocSetContextCreate(CurrentMemoryContext, "hipaa_guard sealed record",
										   ALLOCSET_DEFAULT_SIZES);
	hg_audit_block_begin(hasher, prev_hash, block, first_seq, last_seq, sealed_at);
	writer_open(&log_writer, log_rel, true);
	packed_row_init(&row);

	for (int i = 0; i < input->batch.nevents; i++)
	{
		old_context = MemoryContextSwitchTo(record_context);
		offset += seal_entry(&log_writer, &row, hasher, input->batch.data + offset, seq++,
							 block, sealed_at);
		MemoryContextSwitchTo(old_context);
		MemoryContextReset(record_context);
	}

	for (int i = 0; i < input->nqueued; i++)
	{
		HeapTuple	tuple = input->queued[i];

		old_context = MemoryContextSwitchTo(record_context);
		heap_deform_tuple(tuple, RelationGetDescr(queue_rel), queue_values, queue_nulls);
		normalize_logged_at(queue_values, sealed_at);
		queue_values[HG_QUEUE_STATUS] = CStringGetTextDatum(HG_STATUS_COMMITTED);
		queue_nulls[HG_QUEUE_STATUS] = false;
		seal_record(&log_writer, &row, hasher, queue_values, queue_nulls, seq++, block);
		MemoryContextSwitchTo(old_context);
		MemoryContextReset(record_context);

		simple_heap_delete(queue_rel, &tuple->t_self);
	}
	packed_row_flush(&log_writer, &row, block);
	writer_close(&log_writer);

	hg_audit_block_finish(hasher, hash);
	insert_block_row(block_rel, block, first_seq, last_seq, sealed_at, prev_hash, hash);
	MemoryContextDelete(record_context);
}

/* ----------------------------------------------------------------
 *		The high-water file
 * ---------------------------------------------------------------- */

/*
 * The file lives outside the trail's tables, so a superuser who empties
 * audit_log and audit_block still leaves it behind, and the verifier then
 * reports a chain shorter than what was sealed.  Relative to the data
 * directory, which is every backend's working directory.
 */
void
hg_audit_head_path(Oid database_oid, char *path, Size size)
{
	snprintf(path, size, "%s/audit_head.%u", HG_HEAD_DIR, database_oid);
}

/*
 * Replace the file atomically: write a temporary file, fsync it, rename it
 * over the old one and fsync the directory (durable_rename).  A failure is
 * a WARNING: the block is sealed, and a file that lags behind the chain only
 * weakens the check until the next flush.
 */
static void
write_head_file(int64 block, int64 last_seq, const uint8 *hash)
{
	char		path[MAXPGPATH];
	char		temp_path[MAXPGPATH];
	char		content[128];
	char		hex[HG_AUDIT_HASH_LEN * 2 + 1];
	int			fd;
	int			len;

	head_file.valid = false;
	hex_encode((const char *) hash, HG_AUDIT_HASH_LEN, hex);
	hex[HG_AUDIT_HASH_LEN * 2] = '\0';
	len = snprintf(content, sizeof(content), "hg1:" INT64_FORMAT ":" INT64_FORMAT ":%s\n",
				   block, last_seq, hex);

	if (MakePGDirectory(HG_HEAD_DIR) < 0 && errno != EEXIST)
	{
		ereport(WARNING,
				(errcode_for_file_access(),
				 errmsg("could not create directory \"%s\": %m", HG_HEAD_DIR)));
		return;
	}
	hg_audit_head_path(MyDatabaseId, path, sizeof(path));
	snprintf(temp_path, sizeof(temp_path), "%s.tmp", path);

	fd = OpenTransientFile(temp_path, O_WRONLY | O_CREAT | O_TRUNC | PG_BINARY);
	if (fd < 0 || write(fd, content, len) != len || pg_fsync(fd) != 0)
	{
		ereport(WARNING,
				(errcode_for_file_access(),
				 errmsg("could not write file \"%s\": %m", temp_path)));
		if (fd >= 0)
			CloseTransientFile(fd);
		return;
	}
	if (CloseTransientFile(fd) != 0)
	{
		ereport(WARNING,
				(errcode_for_file_access(),
				 errmsg("could not close file \"%s\": %m", temp_path)));
		return;
	}
	if (durable_rename(temp_path, path, WARNING) != 0)
		return;
	head_file.valid = true;
	head_file.present = true;
	head_file.block = block;
	head_file.last_seq = last_seq;
	memcpy(head_file.hash, hash, HG_AUDIT_HASH_LEN);
}

/*
 * Whether the chain in the table still reaches the high-water file.  When a
 * superuser has emptied or cut the trail, sealing on would number new blocks
 * from the cut and overwrite the file, which erases the evidence.  So the
 * sealer stops, and records wait in audit_queue and the ring until an
 * administrator moves the file aside.  A file that lags behind the table
 * (after a failed write) is fine.
 */
static bool
chain_reaches_head_file(const HgAuditHead *head)
{
	bool		reaches;

	if (!head_file.valid)
	{
		if (!hg_audit_read_head_file(&head_file.present, &head_file.block,
									 &head_file.last_seq, head_file.hash))
			return false;
		head_file.valid = true;
	}
	if (!head_file.present)
		return true;
	if (!head->found || head->block < head_file.block)
		reaches = false;
	else
		reaches = head->block > head_file.block ||
			(head->last_seq == head_file.last_seq &&
			 memcmp(head->hash, head_file.hash, HG_AUDIT_HASH_LEN) == 0);
	if (!reaches)
		head_file.valid = false;
	return reaches;
}

static void
warn_chain_cut(void)
{
	static TimestampTz last_warning = 0;
	char		path[MAXPGPATH];

	if (!TimestampDifferenceExceeds(last_warning, GetCurrentTimestamp(), 60 * 1000))
		return;
	last_warning = GetCurrentTimestamp();
	hg_audit_head_path(MyDatabaseId, path, sizeof(path));
	ereport(WARNING,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("hipaa_guard sealer: the audit trail of database \"%s\" ends before its high-water mark, so sealing has stopped",
					get_database_name(MyDatabaseId)),
			 errdetail("Sealed blocks were removed from hipaa_guard.audit_block, or the high-water file \"%s\" is malformed. Queued records are kept.", path),
			 errhint("Run hipaa_guard.verify_audit_chain(). If the trail was restored on purpose, move the high-water file aside to resume sealing.")));
}

/* ----------------------------------------------------------------
 *		The worker
 * ---------------------------------------------------------------- */

static void
read_ring_and_queue(HgAuditSlot *slot, Relation queue_rel, SealInput *input)
{
	hg_audit_ring_read(slot, HG_BLOCK_MAX_RECORDS, &input->batch);
	read_queue(queue_rel, HG_BLOCK_MAX_RECORDS - input->batch.nevents, input);
}

/*
 * Seal one block of whatever is queued.  Returns whether more may be
 * queued: the block is full, or the ring contains more than was read.
 */
static bool
seal_next_block(HgAuditSlot *slot)
{
	Relation	queue_rel;
	Relation	log_rel;
	Relation	block_rel;
	SealInput	input;
	HgAuditHead head;
	uint8		hash[HG_AUDIT_HASH_LEN];
	int			total;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());

	queue_rel = open_trail_table("audit_queue", HG_QUEUE_NATTS);
	log_rel = open_trail_table("audit_log", HG_LOG_NATTS);
	block_rel = open_trail_table("audit_block", HG_BLOCK_NATTS);

	read_ring_and_queue(slot, queue_rel, &input);
	total = input.batch.nevents + input.nqueued;
	if (total > 0)
	{
		hg_audit_read_head(block_rel, GetActiveSnapshot(), &head);
		if (!chain_reaches_head_file(&head))
		{
			warn_chain_cut();
			total = 0;
		}
	}
	if (total > 0)
	{
		pgstat_report_activity(STATE_RUNNING, "sealing audit records");
		seal_block(queue_rel, log_rel, block_rel, &head, &input, hash);
	}

	table_close(block_rel, NoLock);
	table_close(log_rel, NoLock);
	table_close(queue_rel, NoLock);
	PopActiveSnapshot();
	CommitTransactionCommand();
	if (total == 0)
		return false;

	/*
	 * The block is committed.  A SIGTERM processed before the release would
	 * leave its events queued, and the next sealer would seal them again.
	 */
	HOLD_INTERRUPTS();
	hg_audit_ring_release(slot, &input.batch);
	RESUME_INTERRUPTS();
	queue_rows_since_vacuum += input.nqueued;

	unflushed.pending = true;
	unflushed.commit_end = XactLastCommitEnd;
	unflushed.block = head.found ? head.block + 1 : 1;
	unflushed.last_seq = (head.found ? head.last_seq : 0) + total;
	memcpy(unflushed.hash, hash, HG_AUDIT_HASH_LEN);
	hg_audit_note_sealed(slot);
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
	return total == HG_BLOCK_MAX_RECORDS || input.batch.more;
}


/* Flush the WAL of the committed blocks, then name the newest in the file. */
static void
flush_sealed_blocks(void)
{
	last_flush_at = GetCurrentTimestamp();
	if (!unflushed.pending)
		return;
	XLogFlush(unflushed.commit_end);
	write_head_file(unflushed.block, unflushed.last_seq, unflushed.hash);
	unflushed.pending = false;
}

/*
 * Whether a seal interval has passed since the last flush.  The sealer waits
 * at most that long between rounds, so a block is flushed at most about two
 * intervals after its commit, however busy or idle the ring.
 */
static bool
flush_due(void)
{
	return TimestampDifferenceExceeds(last_flush_at, GetCurrentTimestamp(),
									  hg_audit_seal_interval);
}

#define HG_QUEUE_VACUUM_ROWS	20000
#define HG_QUEUE_VACUUM_STATEMENT	"VACUUM (SKIP_LOCKED, TRUNCATE false) hipaa_guard.audit_queue"

static void
vacuum_queue_if_due(void)
{
	if (queue_rows_since_vacuum < HG_QUEUE_VACUUM_ROWS)
		return;
	queue_rows_since_vacuum = 0;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	pgstat_report_activity(STATE_RUNNING, HG_QUEUE_VACUUM_STATEMENT);
	hg_execute_top_level_statement(HG_QUEUE_VACUUM_STATEMENT);
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
}

/* Seal blocks until less than a block's worth was queued. */
static void
seal_all(HgAuditSlot *slot, MemoryContext loop_context)
{
	bool		more;

	do
	{
		MemoryContext old_context = MemoryContextSwitchTo(loop_context);

		more = seal_next_block(slot);
		MemoryContextSwitchTo(old_context);
		MemoryContextReset(loop_context);
		vacuum_queue_if_due();
	} while (more);
}

/*
 * Seal what the ring contains and what backends still push while they exit,
 * for at most HG_DRAIN_TIMEOUT_MS, then exit with code 1 (see the header).
 */
static void
drain_and_exit(HgAuditSlot *slot, MemoryContext loop_context)
{
	TimestampTz start = GetCurrentTimestamp();

	for (;;)
	{
		seal_all(slot, loop_context);
		if (!hg_audit_ring_busy(slot) ||
			TimestampDifferenceExceeds(start, GetCurrentTimestamp(), HG_DRAIN_TIMEOUT_MS))
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 50, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
	flush_sealed_blocks();
	if (hg_audit_ring_busy(slot))
		ereport(WARNING,
				(errmsg("hipaa_guard sealer: audit events still queued in memory at exit"),
				 errdetail("Backends were still recording events %d ms after the sealer was asked to stop.",
						   HG_DRAIN_TIMEOUT_MS)));
	proc_exit(1);
}

/* Claim the database's slot, or exit when there is nothing to do here. */
static HgAuditSlot *
attach_or_exit(Oid database_oid)
{
	HgAuditSlot *slot = NULL;
	bool		installed;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	installed = OidIsValid(hg_audit_table_oid("audit_log"));
	if (installed)
		slot = hg_audit_sealer_attach(database_oid);
	CommitTransactionCommand();

	if (!installed)
		hg_audit_sealer_gave_up(database_oid);
	if (slot == NULL)
		proc_exit(0);
	return slot;
}

/*
 * Wait a seal interval before the next round, so that one round seals the
 * records of many commits.  Each commit that queued records wakes the
 * sealer, and a round per commit would scan the queue thousands of times a
 * second.  A ring half full, a stop or a drop of the database ends the wait.
 */
static void
wait_for_next_round(HgAuditSlot *slot, Oid database_oid)
{
	TimestampTz end = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), hg_audit_seal_interval);

	for (;;)
	{
		long		remaining = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), end);

		if (remaining <= 0 || ShutdownRequestPending || ConfigReloadPending ||
			hg_audit_drop_requested(database_oid) || hg_audit_ring_half_full(slot))
			return;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 remaining, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * Main function of a sealer.  bgw_main_arg is the OID of its database.  It
 * runs as the bootstrap superuser (no role OID), which the trail's privileges
 * let insert; the guard trigger lets only this process delete queue rows.
 */
void
hg_sealer_main(Datum main_arg)
{
	Oid			database_oid = DatumGetObjectId(main_arg);
	HgAuditSlot *slot;
	MemoryContext loop_context;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();
	if (hg_audit_drop_requested(database_oid))
		proc_exit(0);
	BackgroundWorkerInitializeConnectionByOid(database_oid, InvalidOid, 0);

	slot = attach_or_exit(database_oid);
	hg_sealer_active = true;
	SetConfigOption("application_name", HG_SEALER_TYPE, PGC_USERSET, PGC_S_SESSION);
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION);
	/* See "Flushing" in the header. */
	SetConfigOption("synchronous_commit", "off", PGC_USERSET, PGC_S_SESSION);
	pgstat_report_activity(STATE_IDLE, NULL);

	loop_context = AllocSetContextCreate(TopMemoryContext, "hipaa_guard sealer",
										 ALLOCSET_DEFAULT_MINSIZE,
										 ALLOCSET_DEFAULT_INITSIZE,
										 HG_SMALL_BLOCKS_MAXSIZE);
	for (;;)
	{
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		if (ShutdownRequestPending)
			drain_and_exit(slot, loop_context);
		if (hg_audit_drop_requested(database_oid))
			proc_exit(0);

		seal_all(slot, loop_context);
		if (flush_due())
			flush_sealed_blocks();
		wait_for_next_round(slot, database_oid);
	}
}

/* ----------------------------------------------------------------
 *		The trail's guard trigger
 * ---------------------------------------------------------------- */

/*
 * BEFORE UPDATE OR DELETE (per row) and BEFORE TRUNCATE (per statement) on
 * the trail's tables.  No role may change or remove sealed records or
 * blocks, superusers included.  On audit_queue (trigger argument 'queue')
 * only the sealer may delete, and only the rows it has just sealed.  INSERT is left to
 * privileges, so that pg_restore can copy the trail back.  A superuser can
 * still disable the trigger, which the hash chain and the high-water file
 * then reveal.
 */
PG_FUNCTION_INFO_V1(hg_audit_trail_guard);
Datum
hg_audit_trail_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	bool		is_queue;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("audit_trail_guard() must be called as a BEFORE trigger")));

	is_queue = trigdata->tg_trigger->tgnargs == 1 &&
		strcmp(trigdata->tg_trigger->tgargs[0], "queue") == 0;
	if (is_queue && hg_sealer_active && TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		return PointerGetDatum(trigdata->tg_trigtuple);
	/* purge_audit() removing blocks past their retention, with a receipt. */
	if (!is_queue && hg_audit_purging && TRIGGER_FIRED_BY_DELETE(trigdata->tg_event) &&
		TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		return PointerGetDatum(trigdata->tg_trigtuple);

	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("the audit trail is append-only"),
			 errdetail(is_queue ?
					   "Rows of table \"%s\" are removed only by the sealing worker, which moves them into the trail." :
					   "Rows of table \"%s\" cannot be updated, deleted or truncated, by any role.",
					   RelationGetRelationName(trigdata->tg_relation))));
	PG_RETURN_NULL();			/* keep the compiler quiet */
}
