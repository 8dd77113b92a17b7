/*
 * auditqueue.c
 *		How an audit event reaches the trail: completing it with the session's
 *		fields, the per-database rings in shared memory that carry durable
 *		events to the sealing worker, and the direct insert into
 *		hipaa_guard.audit_queue for row changes.
 *
 * Durable events.  hg_audit_record_durable() serializes the event into a
 * buffer of this backend.  The buffer is pushed into its database's ring at
 * the end of the top-level transaction, with the matching status: commit,
 * abort, prepare, or the abort that a backend exiting inside a transaction
 * runs.  So an event survives the rollback of the transaction that recorded
 * it.  A buffer that grows past HG_OPEN_PUSH_EVENTS events or
 * HG_OPEN_PUSH_BYTES bytes is pushed at once with status 'open', which keeps
 * a long transaction from holding unbounded memory.
 *
 * Pushing never drops an event: when the ring is full the pusher sleeps on
 * the slot's condition variable until the sealer frees space.  Pushing runs
 * in transaction callbacks, also during abort, where an error would escalate
 * to PANIC, so it holds interrupts, allocates nothing and raises nothing.
 * Everything that can fail (serializing, finding the database's slot) happens
 * when the event is recorded, where an error is an ordinary one.
 *
 * Slots.  hipaa_guard.audit_databases slots, each bound on first use to one
 * database and holding that database's ring of hipaa_guard.audit_queue_size
 * kB.  Binding takes the exclusive assignment lock; once bound, a slot keeps
 * its database until that database is dropped and another database needs
 * the slot.  Each ring has its own spinlock for its positions and bytes, and
 * another spinlock protects the fields about its sealer.
 *
 * Ring positions count bytes since server start and only grow: write_pos -
 * read_pos bytes are queued.  The sealer copies entries out without moving
 * read_pos and releases them only after the transaction that sealed them has
 * committed, so a sealer that fails leaves its events for the next one.  The
 * ring is in shared memory: an immediate stop or a crash loses what it holds.
 * A clean stop does not, because the sealer drains the ring before it exits.
 *
 * Row changes.  hg_audit_record_in_xact() inserts into audit_queue through
 * the heap in the changing transaction, so the record commits or rolls back
 * with the change; the sealer sets its status to 'committed' because only
 * committed rows are visible to it.  The backend also keeps a serialized
 * copy of each such record until its transaction ends.  If the transaction,
 * or the subtransaction that made the change, rolls back, the copies are
 * pushed into the ring with status 'aborted'.  At commit they are dropped.
 * Past HG_WRITE_COPY_BYTES of copies a transaction's further changes are
 * only counted, and one summary record stands for those that roll back
 * together (with the transaction or with one subtransaction).
 */
#include "postgres.h"

#include <sys/socket.h>
#include <netdb.h>

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/parallel.h"
#include "access/table.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_database.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "common/ip.h"
#include "libpq/libpq-be.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "storage/condition_variable.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"

#include "actor.h"
#include "audit.h"
#include "auditqueue.h"
#include "hipaa_guard.h"

int			hg_audit_databases = 8;
int			hg_audit_queue_size = 8192; /* kB */
int			hg_audit_seal_interval = 200;	/* ms */

/* A transaction's buffer is pushed early, with status 'open', past these. */
#define HG_OPEN_PUSH_EVENTS		256
#define HG_OPEN_PUSH_BYTES		(256 * 1024)

/* Bytes of row-change copies a transaction keeps; see the header comment. */
#define HG_WRITE_COPY_BYTES		(1024 * 1024)

/* Seconds after which a sealer registration that never started is retried. */
#define HG_SEALER_START_TIMEOUT	10

/* Milliseconds a pusher sleeps at most before it checks the sealer again. */
#define HG_PUSH_RECHECK_MS		1000

#define HG_AUDIT_TRANCHE		"hipaa_guard audit"

/* Entry header: total length (uint32), then the status byte. */
#define ENTRY_HEADER_LEN		5
#define ENTRY_STATUS_OFFSET		4

#define STATUS_NONE				'-'
#define STATUS_COMMITTED		'c'
#define STATUS_ABORTED			'a'
#define STATUS_PREPARED			'p'
#define STATUS_OPEN				'o'

struct HgAuditSlot
{
	int			index;
	Oid			database_oid;	/* InvalidOid while free */

	slock_t		mutex;			/* protects the five sealer fields */
	pid_t		sealer_pid;		/* 0 when no sealer owns the slot */
	Latch	   *sealer_latch;
	bool		starting;		/* a sealer was registered, not yet running */
	TimestampTz starting_since;
	bool		drop_requested; /* DROP DATABASE: the sealer must leave */

	/* Written by the sealer only, read unlocked for monitoring. */
	TimestampTz last_sealed_at;

	/* Backends with unpushed events; a stopping sealer waits for them. */
	pg_atomic_uint32 pending_backends;

	ConditionVariable space_cv; /* broadcast when the sealer frees space */

	/* Pushes that found the ring full and waited, since the slot was bound. */
	pg_atomic_uint64 full_waits;

	/*
	 * Protected by ring_mutex.  It is a spinlock because every holder only
	 * reads or moves the positions or copies one push's bytes.  With an
	 * LWLock, the commits of two backends put each other to sleep.
	 */
	slock_t		ring_mutex;
	uint64		write_pos;
	uint64		read_pos;
	int64		queued_events;
};

static HgAuditSlot *audit_slots = NULL;
static object_access_hook_type prev_object_access_hook = NULL;
static LWLockPadded *audit_locks = NULL;	/* assigns slots */

/* This backend's buffer of serialized events, in TopMemoryContext. */
static StringInfoData pending;
static int	pending_events = 0;
static bool pending_counted = false;	/* counted in pending_backends */
static HgAuditSlot *my_slot = NULL;
static bool wake_sealer_at_commit = false;
static bool callbacks_registered = false;

/*
 * Copies of this transaction's row-change records, in TopMemoryContext, in
 * the order they were made, each with the subtransaction that made it.
 * Subtransaction ids grow in the order subtransactions start, so the copies
 * made by an aborting subtransaction and its children are the ones with ids
 * from its own on: a tail of the list.  The same holds for the counts of
 * changes made past the byte limit, one count per subtransaction.
 */
typedef struct WriteCopy
{
	SubTransactionId subxid;
	int			offset;			/* in write_copies.data */
} WriteCopy;

typedef struct UncopiedWrites
{
	SubTransactionId subxid;
	int64		count;
} UncopiedWrites;

static StringInfoData write_copies;
static int	copies_end = 0;			/* end of the last complete copy */
static WriteCopy *copy_list = NULL;
static int	ncopies = 0;
static int	max_copies = 0;
static UncopiedWrites *uncopied = NULL;
static int	nuncopied = 0;
static int	max_uncopied = 0;
/* The summary record of the changes that were counted but not copied. */
static StringInfoData summary_entry;
static int	summary_rows_offset = -1;	/* where its rows value is */
static bool copies_counted = false;		/* counted in pending_backends */

/*
 * Bytes the sealer copies out of the ring at a time (hg_audit_ring_read):
 * a full block's worth of entries of 512 bytes.
 */
#define HG_RING_READ_BYTES		(2 * 1024 * 1024)

/* The sealer's copy of the entries of the block it seals. */
static char *batch_buffer = NULL;
static Size batch_capacity = 0;

/* Per-session caches of values that do not change while connected. */
static Oid	queue_relid = InvalidOid;
static char *cached_database = NULL;
static char *cached_client_addr = NULL;
static bool client_addr_known = false;
static Oid	cached_login_oid = InvalidOid;
static char *cached_login_name = NULL;

/* Columns stored as 8 bytes by value; the others are varlena. */
static const bool queue_att_byval8[HG_QUEUE_NATTS] = {
	true, false, false, false, false, false, true, false, true, false,
	false, false, false, false, false, true, false, true, false, false, false
};

/* ----------------------------------------------------------------
 *		Shared memory
 * ---------------------------------------------------------------- */

static Size
ring_capacity(void)
{
	return (Size) hg_audit_queue_size * 1024;
}

static Size
slot_stride(void)
{
	return add_size(MAXALIGN(sizeof(HgAuditSlot)), ring_capacity());
}

static HgAuditSlot *
slot_at(int index)
{
	return (HgAuditSlot *) ((char *) audit_slots + (Size) index * slot_stride());
}

static char *
slot_ring(HgAuditSlot *slot)
{
	return (char *) slot + MAXALIGN(sizeof(HgAuditSlot));
}

static LWLock *
assign_lock(void)
{
	return &audit_locks[0].lock;
}

Size
hg_audit_shmem_size(void)
{
	return mul_size(hg_audit_databases, slot_stride());
}

void
hg_audit_shmem_request(void)
{
	RequestAddinShmemSpace(hg_audit_shmem_size());
	RequestNamedLWLockTranche(HG_AUDIT_TRANCHE, 1);
}

void
hg_audit_shmem_startup(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	audit_slots = ShmemInitStruct("hipaa_guard audit queues", hg_audit_shmem_size(), &found);
	audit_locks = GetNamedLWLockTranche(HG_AUDIT_TRANCHE);
	if (!found)
	{
		for (int i = 0; i < hg_audit_databases; i++)
		{
			HgAuditSlot *slot = slot_at(i);

			memset(slot, 0, sizeof(HgAuditSlot));
			slot->index = i;
			slot->database_oid = InvalidOid;
			SpinLockInit(&slot->mutex);
			SpinLockInit(&slot->ring_mutex);
			pg_atomic_init_u32(&slot->pending_backends, 0);
			ConditionVariableInit(&slot->space_cv);
			pg_atomic_init_u64(&slot->full_waits, 0);
		}
	}
	LWLockRelease(AddinShmemInitLock);
}

static HgAuditSlot *
find_slot(Oid database_oid)
{
	for (int i = 0; i < hg_audit_databases; i++)
	{
		if (slot_at(i)->database_oid == database_oid)
			return slot_at(i);
	}
	return NULL;
}

/*
 * Whether a bound slot may be given to another database: its database is
 * gone and no sealer runs there.  Events left in its ring belong to the
 * dropped database and are discarded.  Needs a transaction for the syscache.
 */
static bool
slot_reclaimable(HgAuditSlot *slot)
{
	bool		no_sealer;

	if (!IsTransactionState())
		return false;
	SpinLockAcquire(&slot->mutex);
	no_sealer = slot->sealer_pid == 0;
	SpinLockRelease(&slot->mutex);
	return no_sealer && !SearchSysCacheExists1(DATABASEOID, ObjectIdGetDatum(slot->database_oid));
}

/* Bind a free slot to the database; the caller holds the assignment lock. */
static HgAuditSlot *
bind_free_slot(Oid database_oid)
{
	HgAuditSlot *slot = find_slot(InvalidOid);

	for (int i = 0; slot == NULL && i < hg_audit_databases; i++)
	{
		if (slot_reclaimable(slot_at(i)))
			slot = slot_at(i);
	}
	if (slot == NULL)
		return NULL;

	SpinLockAcquire(&slot->ring_mutex);
	slot->read_pos = slot->write_pos = 0;
	slot->queued_events = 0;
	SpinLockRelease(&slot->ring_mutex);
	pg_atomic_write_u64(&slot->full_waits, 0);
	SpinLockAcquire(&slot->mutex);
	slot->starting = false;
	slot->drop_requested = false;
	slot->last_sealed_at = 0;
	SpinLockRelease(&slot->mutex);
	slot->database_oid = database_oid;
	return slot;
}

/*
 * Return the slot of a database, binding one if it has none.  When every
 * slot is taken, raises an error, because an event without a slot would be
 * lost, or with missing_ok returns NULL.
 */
static HgAuditSlot *
slot_for_database(Oid database_oid, bool missing_ok)
{
	HgAuditSlot *slot;

	LWLockAcquire(assign_lock(), LW_SHARED);
	slot = find_slot(database_oid);
	LWLockRelease(assign_lock());
	if (slot != NULL)
		return slot;

	LWLockAcquire(assign_lock(), LW_EXCLUSIVE);
	slot = find_slot(database_oid);
	if (slot == NULL)
		slot = bind_free_slot(database_oid);
	LWLockRelease(assign_lock());
	if (slot == NULL && !missing_ok)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("no audit queue is free for database \"%s\"",
						get_database_name(database_oid)),
				 errdetail("All %d audit queues are bound to other databases, so this database's audit events cannot be recorded.",
						   hg_audit_databases),
				 errhint("Raise \"hipaa_guard.audit_databases\" and restart the server.")));
	return slot;
}

/* ----------------------------------------------------------------
 *		The sealer's side of a slot
 * ---------------------------------------------------------------- */

static void
sealer_detach(int code, Datum arg)
{
	HgAuditSlot *slot = (HgAuditSlot *) DatumGetPointer(arg);

	SpinLockAcquire(&slot->mutex);
	if (slot->sealer_pid == MyProcPid)
	{
		slot->sealer_pid = 0;
		slot->sealer_latch = NULL;
	}
	SpinLockRelease(&slot->mutex);
	ConditionVariableBroadcast(&slot->space_cv);
}

/*
 * Make this process the sealer of the database's slot, binding one if
 * needed.  Returns NULL when another sealer owns it.  Call in a transaction.
 */
HgAuditSlot *
hg_audit_sealer_attach(Oid database_oid)
{
	HgAuditSlot *slot = slot_for_database(database_oid, false);
	bool		owned;

	SpinLockAcquire(&slot->mutex);
	owned = slot->sealer_pid != 0;
	if (!owned)
	{
		slot->sealer_pid = MyProcPid;
		slot->sealer_latch = MyLatch;
		slot->starting = false;
	}
	SpinLockRelease(&slot->mutex);
	if (owned)
		return NULL;

	on_shmem_exit(sealer_detach, PointerGetDatum(slot));
	return slot;
}

static HgAuditSlot *
find_slot_locked(Oid database_oid)
{
	HgAuditSlot *slot;

	if (audit_slots == NULL)
		return NULL;
	LWLockAcquire(assign_lock(), LW_SHARED);
	slot = find_slot(database_oid);
	LWLockRelease(assign_lock());
	return slot;
}

/*
 * Whether DROP DATABASE asked the database's sealer to leave.  A sealer
 * checks it before it connects, because connecting to a dropped database
 * fails with FATAL, exit code 1, and the postmaster would restart it forever.
 */
bool
hg_audit_drop_requested(Oid database_oid)
{
	HgAuditSlot *slot = find_slot_locked(database_oid);
	bool		requested = false;

	if (slot == NULL)
		return false;
	SpinLockAcquire(&slot->mutex);
	requested = slot->drop_requested;
	SpinLockRelease(&slot->mutex);
	return requested;
}

/*
 * Ask the sealer of a database that is being dropped to exit, because
 * DROP DATABASE fails while any other session is connected to it, and
 * waits a few seconds for sessions to leave.  If the drop fails after all,
 * the next event recorded there starts a sealer again.
 */
static void
request_sealer_exit(Oid database_oid)
{
	HgAuditSlot *slot = find_slot_locked(database_oid);

	if (slot == NULL)
		return;
	SpinLockAcquire(&slot->mutex);
	slot->drop_requested = true;
	if (slot->sealer_pid != 0)
		SetLatch(slot->sealer_latch);
	SpinLockRelease(&slot->mutex);
}

static void
audit_object_access(ObjectAccessType access, Oid class_id, Oid object_id,
					int sub_id, void *arg)
{
	if (prev_object_access_hook)
		prev_object_access_hook(access, class_id, object_id, sub_id, arg);
	if (access == OAT_DROP && class_id == DatabaseRelationId)
		request_sealer_exit(object_id);
}

void
hg_audit_preload_init(void)
{
	prev_object_access_hook = object_access_hook;
	object_access_hook = audit_object_access;
}

/* Let the next push register a sealer again at once. */
void
hg_audit_sealer_gave_up(Oid database_oid)
{
	HgAuditSlot *slot = find_slot_locked(database_oid);

	if (slot == NULL)
		return;
	SpinLockAcquire(&slot->mutex);
	slot->starting = false;
	SpinLockRelease(&slot->mutex);
}

static void
ring_copy_out(HgAuditSlot *slot, uint64 pos, char *dest, Size len)
{
	Size		capacity = ring_capacity();
	Size		offset = pos % capacity;
	Size		first = Min(len, capacity - offset);

	memcpy(dest, slot_ring(slot) + offset, first);
	if (first < len)
		memcpy(dest + first, slot_ring(slot), len - first);
}

static void
ring_copy_in(HgAuditSlot *slot, uint64 pos, const char *src, Size len)
{
	Size		capacity = ring_capacity();
	Size		offset = pos % capacity;
	Size		first = Min(len, capacity - offset);

	memcpy(slot_ring(slot) + offset, src, first);
	if (first < len)
		memcpy(slot_ring(slot), src + first, len - first);
}

/* Grow the batch buffer to at least len bytes. */
static void
reserve_batch_buffer(Size len)
{
	if (batch_buffer != NULL && batch_capacity >= len)
		return;
	if (batch_buffer != NULL)
		pfree(batch_buffer);
	batch_capacity = Max(len, 64 * 1024);
	batch_buffer = MemoryContextAlloc(TopMemoryContext, batch_capacity);
}

/*
 * Copy up to max_events entries out of the ring into a buffer that the next
 * call reuses.  Their space stays taken until hg_audit_ring_release().  The
 * buffer outlives the sealer's per-block memory: a megabyte allocated and
 * freed per block would come from the kernel, page fault by page fault,
 * every time.
 *
 * The bytes are copied first, up to HG_RING_READ_BYTES, and the entries
 * counted in the copy.  Counting them in the ring, which the backends have
 * just written from other CPUs, missed the cache at every entry.
 */
void
hg_audit_ring_read(HgAuditSlot *slot, int max_events, HgAuditBatch *batch)
{
	uint64		start;
	uint64		end;
	Size		copied;
	Size		pos = 0;
	int			nevents = 0;

	SpinLockAcquire(&slot->ring_mutex);
	start = slot->read_pos;
	end = slot->write_pos;
	SpinLockRelease(&slot->ring_mutex);

	/*
	 * Only the sealer moves read_pos, and pushers never touch the bytes
	 * between read_pos and write_pos once written, so the copy needs no lock.
	 */
	copied = Min(end - start, HG_RING_READ_BYTES);
	if (copied > 0)
	{
		uint32		first_len;

		/* An entry larger than the copy is copied whole. */
		ring_copy_out(slot, start, (char *) &first_len, sizeof(first_len));
		copied = Max(copied, first_len);
	}
	reserve_batch_buffer(copied);
	ring_copy_out(slot, start, batch_buffer, copied);

	while (pos + sizeof(uint32) <= copied && nevents < max_events)
	{
		uint32		entry_len;

		memcpy(&entry_len, batch_buffer + pos, sizeof(entry_len));
		if (pos + entry_len > copied)
			break;
		pos += entry_len;
		nevents++;
	}

	batch->data = batch_buffer;
	batch->len = pos;
	batch->nevents = nevents;
	batch->end_pos = start + pos;
	batch->more = batch->end_pos < end;
}

/* Free the space of a sealed batch and wake the pushers that wait for it. */
void
hg_audit_ring_release(HgAuditSlot *slot, const HgAuditBatch *batch)
{
	if (batch->nevents == 0)
		return;
	SpinLockAcquire(&slot->ring_mutex);
	Assert(batch->end_pos <= slot->write_pos);
	slot->read_pos = batch->end_pos;
	slot->queued_events -= batch->nevents;
	SpinLockRelease(&slot->ring_mutex);
	ConditionVariableBroadcast(&slot->space_cv);
}

/* Whether the ring contains events or a backend is about to push some. */
bool
hg_audit_ring_busy(HgAuditSlot *slot)
{
	bool		queued;

	SpinLockAcquire(&slot->ring_mutex);
	queued = slot->write_pos != slot->read_pos;
	SpinLockRelease(&slot->ring_mutex);
	return queued || pg_atomic_read_u32(&slot->pending_backends) > 0;
}

/*
 * Whether the ring is at least half full.  The sealer then starts its next
 * round at once, so that backends rarely have to wait for space.
 */
bool
hg_audit_ring_half_full(HgAuditSlot *slot)
{
	uint64		used;

	SpinLockAcquire(&slot->ring_mutex);
	used = slot->write_pos - slot->read_pos;
	SpinLockRelease(&slot->ring_mutex);
	return used >= ring_capacity() / 2;
}

void
hg_audit_note_sealed(HgAuditSlot *slot)
{
	slot->last_sealed_at = GetCurrentTimestamp();
}

/*
 * Report the state of a database's queue in shared memory: all zero and
 * false when the database has no slot.
 */
bool
hg_audit_memory_status(Oid database_oid, HgAuditMemoryStatus *status)
{
	HgAuditSlot *slot;

	memset(status, 0, sizeof(*status));
	if (audit_slots == NULL)
		return false;
	LWLockAcquire(assign_lock(), LW_SHARED);
	slot = find_slot(database_oid);
	LWLockRelease(assign_lock());
	if (slot == NULL)
		return false;
	SpinLockAcquire(&slot->mutex);
	status->sealer_pid = slot->sealer_pid;
	SpinLockRelease(&slot->mutex);
	SpinLockAcquire(&slot->ring_mutex);
	status->queued = slot->queued_events;
	SpinLockRelease(&slot->ring_mutex);
	status->full_waits = (int64) pg_atomic_read_u64(&slot->full_waits);
	return true;
}

/* Whether the database's slot is owned by the sealer with this pid. */
bool
hg_audit_database_has_live_sealer(Oid database_oid, int pid)
{
	HgAuditMemoryStatus status;

	return hg_audit_memory_status(database_oid, &status) && status.sealer_pid == pid;
}

/* ----------------------------------------------------------------
 *		Waking and starting the sealer
 * ---------------------------------------------------------------- */

/*
 * Register a sealer when the slot has none and no registration is under
 * way, or, when urgent, set the sealer's latch.  Otherwise the sealer finds
 * the events at its next round: a wake-up per commit would cost a signal per
 * transaction.  Raises no error, because pushers call it in transaction
 * callbacks.
 */
static void
wake_or_start_sealer(HgAuditSlot *slot, bool urgent)
{
	TimestampTz now;
	bool		register_one = false;

	/*
	 * The common case, read without the lock: a sealer runs and nothing is
	 * urgent.  A stale read only delays the work to the next push.
	 */
	if (!urgent && slot->sealer_pid != 0 && !slot->drop_requested)
		return;

	now = GetCurrentTimestamp();
	SpinLockAcquire(&slot->mutex);
	/* A backend of the database pushes, so a DROP DATABASE failed. */
	slot->drop_requested = false;
	if (slot->sealer_pid != 0)
	{
		if (urgent)
			SetLatch(slot->sealer_latch);
	}
	else if (!slot->starting ||
			 TimestampDifferenceExceeds(slot->starting_since, now,
										HG_SEALER_START_TIMEOUT * 1000))
	{
		slot->starting = true;
		slot->starting_since = now;
		register_one = true;
	}
	SpinLockRelease(&slot->mutex);

	/*
	 * When no worker slot is free, the flag stays set, and the next push
	 * after HG_SEALER_START_TIMEOUT tries again.
	 */
	if (register_one)
		(void) hg_sealer_register(slot->database_oid, 0);
}

/* ----------------------------------------------------------------
 *		Pushing
 * ---------------------------------------------------------------- */

/*
 * Copy the entries at data[0..len) into the ring, as many at a time as fit,
 * and sleep until the sealer frees space whenever none fits.  Every entry
 * is at most a quarter of the ring (checked when it is recorded), so each
 * eventually fits.  The caller must hold interrupts (HOLD_INTERRUPTS).
 */
static void
ring_push(HgAuditSlot *slot, const char *data, Size len, int nevents)
{
	Size		done = 0;
	int			events_done PG_USED_FOR_ASSERTS_ONLY = 0;
	bool		prepared = false;
	bool		half_full = false;

	while (done < len)
	{
		Size		copied = 0;
		int			copied_events = 0;

		SpinLockAcquire(&slot->ring_mutex);
		for (;;)
		{
			Size		free_space = ring_capacity() - (slot->write_pos - slot->read_pos);
			uint32		entry_len;

			if (done + copied >= len)
				break;
			memcpy(&entry_len, data + done + copied, sizeof(entry_len));
			if (entry_len > free_space)
				break;
			ring_copy_in(slot, slot->write_pos, data + done + copied, entry_len);
			slot->write_pos += entry_len;
			slot->queued_events++;
			copied += entry_len;
			copied_events++;
		}
		half_full = slot->write_pos - slot->read_pos >= ring_capacity() / 2;
		SpinLockRelease(&slot->ring_mutex);

		done += copied;
		events_done += copied_events;
		if (copied > 0)
			continue;

		wake_or_start_sealer(slot, true);
		if (!prepared)
		{
			pg_atomic_fetch_add_u64(&slot->full_waits, 1);
			ConditionVariablePrepareToSleep(&slot->space_cv);
			prepared = true;
		}
		(void) ConditionVariableTimedSleep(&slot->space_cv, HG_PUSH_RECHECK_MS,
										   PG_WAIT_EXTENSION);
	}
	if (prepared)
		ConditionVariableCancelSleep();
	Assert(events_done == nevents);
	wake_or_start_sealer(slot, half_full);
}

/* Write the status into every entry of the buffer and push the buffer. */
static void
push_pending(char status)
{
	Size		offset = 0;

	if (pending_events == 0)
		return;

	HOLD_INTERRUPTS();
	while (offset < (Size) pending.len)
	{
		uint32		entry_len;

		memcpy(&entry_len, pending.data + offset, sizeof(entry_len));
		pending.data[offset + ENTRY_STATUS_OFFSET] = status;
		offset += entry_len;
	}
	ring_push(my_slot, pending.data, pending.len, pending_events);
	resetStringInfo(&pending);
	pending_events = 0;
	if (pending_counted)
	{
		pg_atomic_fetch_sub_u32(&my_slot->pending_backends, 1);
		pending_counted = false;
	}
	RESUME_INTERRUPTS();
}

/* Forget the row-change copies: the transaction committed or prepared. */
static void
drop_write_copies(void)
{
	/* A transaction that filled the buffer does not keep it for the session. */
	if (write_copies.data != NULL && write_copies.maxlen > 64 * 1024)
	{
		pfree(write_copies.data);
		write_copies.data = NULL;
	}
	else if (write_copies.data != NULL)
		resetStringInfo(&write_copies);
	copies_end = 0;
	ncopies = 0;
	nuncopied = 0;
	if (max_uncopied > 64)
	{
		pfree(uncopied);
		uncopied = NULL;
		max_uncopied = 0;
	}
	if (copies_counted)
	{
		pg_atomic_fetch_sub_u32(&my_slot->pending_backends, 1);
		copies_counted = false;
	}
}

/*
 * Push, with status 'aborted', the row-change copies made by subtransaction
 * subxid and its children (all of them for TopSubTransactionId), and the
 * summary of the changes past the byte limit among them.  Runs during
 * abort: it allocates nothing and raises nothing.
 */
static void
push_aborted_writes(SubTransactionId subxid)
{
	int			first = ncopies;
	int64		summarized = 0;

	while (first > 0 && copy_list[first - 1].subxid >= subxid)
		first--;
	while (nuncopied > 0 && uncopied[nuncopied - 1].subxid >= subxid)
		summarized += uncopied[--nuncopied].count;
	if (first == ncopies && summarized == 0)
		return;

	HOLD_INTERRUPTS();
	if (first < ncopies)
	{
		int			start = copy_list[first].offset;

		for (int i = first; i < ncopies; i++)
			write_copies.data[copy_list[i].offset + ENTRY_STATUS_OFFSET] = STATUS_ABORTED;
		ring_push(my_slot, write_copies.data + start, copies_end - start, ncopies - first);
		write_copies.len = start;
		copies_end = start;
		ncopies = first;
	}
	if (summarized > 0)
	{
		memcpy(summary_entry.data + summary_rows_offset, &summarized, sizeof(summarized));
		summary_entry.data[ENTRY_STATUS_OFFSET] = STATUS_ABORTED;
		ring_push(my_slot, summary_entry.data, summary_entry.len, 1);
	}
	RESUME_INTERRUPTS();
}

static void
wake_sealer_after_commit(void)
{
	if (!wake_sealer_at_commit)
		return;
	wake_sealer_at_commit = false;
	HOLD_INTERRUPTS();
	wake_or_start_sealer(my_slot, false);
	RESUME_INTERRUPTS();
}

static void
audit_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
			push_pending(STATUS_COMMITTED);
			drop_write_copies();
			wake_sealer_after_commit();
			break;
		case XACT_EVENT_ABORT:
			push_pending(STATUS_ABORTED);
			push_aborted_writes(TopSubTransactionId);
			drop_write_copies();
			wake_sealer_at_commit = false;
			break;
		case XACT_EVENT_PREPARE:
			/* Its audit_queue rows become visible at COMMIT PREPARED. */
			push_pending(STATUS_PREPARED);
			drop_write_copies();
			wake_sealer_at_commit = false;
			break;
		default:
			break;
	}
}

/*
 * A committed subtransaction's counts of changes past the byte limit become
 * its parent's, so that a loop of subtransactions keeps one count, not one
 * per iteration.  The ids stay in order: those before the tail are at most
 * the parent's.
 */
static void
merge_uncopied(SubTransactionId mySubid, SubTransactionId parentSubid)
{
	int64		count = 0;

	while (nuncopied > 0 && uncopied[nuncopied - 1].subxid >= mySubid)
		count += uncopied[--nuncopied].count;
	if (count == 0)
		return;
	if (nuncopied > 0 && uncopied[nuncopied - 1].subxid == parentSubid)
		uncopied[nuncopied - 1].count += count;
	else
	{
		/* The loop above removed at least one entry, so one more fits. */
		uncopied[nuncopied].subxid = parentSubid;
		uncopied[nuncopied].count = count;
		nuncopied++;
	}
}

static void
audit_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		push_aborted_writes(mySubid);
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
		merge_uncopied(mySubid, parentSubid);
}

/* Forget the cached audit_queue OID when its relation may have changed. */
static void
audit_relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == queue_relid)
		queue_relid = InvalidOid;
}

void
hg_audit_init(void)
{
	if (callbacks_registered)
		return;
	RegisterXactCallback(audit_xact_callback, NULL);
	RegisterSubXactCallback(audit_subxact_callback, NULL);
	CacheRegisterRelcacheCallback(audit_relcache_callback, (Datum) 0);
	callbacks_registered = true;
}

/* ----------------------------------------------------------------
 *		Session fields
 * ---------------------------------------------------------------- */

static char *
session_strdup(const char *s)
{
	return s == NULL ? NULL : MemoryContextStrdup(TopMemoryContext, s);
}

static const char *
database_name(void)
{
	if (cached_database == NULL)
		cached_database = session_strdup(get_database_name(MyDatabaseId));
	return cached_database;
}

static const char *
login_role_name(void)
{
	Oid			role = GetSessionUserId();

	if (role != cached_login_oid || cached_login_name == NULL)
	{
		char	   *name = GetUserNameFromId(role, false);

		if (cached_login_name != NULL)
			pfree(cached_login_name);
		cached_login_name = session_strdup(name);
		cached_login_oid = role;
	}
	return cached_login_name;
}

/* The client's address as inet_client_addr() shows it, NULL for a socket file. */
static const char *
client_address(void)
{
	char		host[NI_MAXHOST];
	Port	   *port = MyProcPort;

	if (client_addr_known)
		return cached_client_addr;
	client_addr_known = true;
	if (port == NULL)
		return NULL;
	if (port->raddr.addr.ss_family != AF_INET && port->raddr.addr.ss_family != AF_INET6)
		return NULL;
	if (pg_getnameinfo_all(&port->raddr.addr, port->raddr.salen, host, sizeof(host),
						   NULL, 0, NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		return NULL;
	clean_ipv6_addr(port->raddr.addr.ss_family, host);
	cached_client_addr = session_strdup(host);
	return cached_client_addr;
}

static Datum
text_array(List *strings)
{
	Datum	   *elements = palloc(sizeof(Datum) * list_length(strings));
	int			n = 0;
	ListCell   *cell;

	foreach(cell, strings)
		elements[n++] = CStringGetTextDatum((const char *) lfirst(cell));
	return PointerGetDatum(construct_array(elements, n, TEXTOID, -1, false, TYPALIGN_INT));
}

static void
set_text(Datum *values, bool *nulls, int att, const char *s)
{
	nulls[att] = (s == NULL);
	values[att] = s == NULL ? (Datum) 0 : CStringGetTextDatum(s);
}

static void
set_count(Datum *values, bool *nulls, int att, int64 count)
{
	nulls[att] = (count < 0);
	values[att] = Int64GetDatum(count);
}

/*
 * Fill an audit_queue row from the event and the session: the caller's
 * fields, then actor, login role, database, client, application,
 * transaction, query id and purpose.  status is left NULL.
 */
static void
build_queue_values(const HgAuditEvent *ev, Datum *values, bool *nulls)
{
	const char *actor = hg_actor_id();
	FullTransactionId xid = GetTopFullTransactionIdIfAny();
	uint64		query_id = ev->query_id != 0 ? ev->query_id : pgstat_get_my_query_id();

	if (ev->kind == NULL)
		elog(ERROR, "audit event without a kind");

	values[HG_QUEUE_LOGGED_AT] = TimestampTzGetDatum(GetCurrentTimestamp());
	nulls[HG_QUEUE_LOGGED_AT] = false;
	set_text(values, nulls, HG_QUEUE_KIND, ev->kind);
	set_text(values, nulls, 2, ev->command);
	set_text(values, nulls, 3, ev->relation);
	set_text(values, nulls, 4, ev->row_key);
	nulls[HG_QUEUE_COLUMNS] = (ev->columns == NIL);
	values[HG_QUEUE_COLUMNS] = ev->columns == NIL ? (Datum) 0 : text_array(ev->columns);
	set_count(values, nulls, HG_QUEUE_ROWS, ev->rows);
	nulls[HG_QUEUE_PATIENTS] = (ev->patients == NIL);
	values[HG_QUEUE_PATIENTS] = ev->patients == NIL ? (Datum) 0 : text_array(ev->patients);
	set_count(values, nulls, HG_QUEUE_DECRYPTS, ev->decrypts);
	set_text(values, nulls, 9, actor != NULL ? actor : login_role_name());
	set_text(values, nulls, 10, login_role_name());
	set_text(values, nulls, 11, database_name());
	set_text(values, nulls, 12, MyProcPort != NULL ? MyProcPort->authn_id : NULL);
	set_text(values, nulls, 13, client_address());
	set_text(values, nulls, 14, application_name);
	nulls[HG_QUEUE_XID] = !FullTransactionIdIsValid(xid);
	values[HG_QUEUE_XID] = FullTransactionIdGetDatum(xid);
	nulls[HG_QUEUE_STATUS] = true;
	values[HG_QUEUE_STATUS] = (Datum) 0;
	nulls[HG_QUEUE_QUERY_ID] = (query_id == 0);
	values[HG_QUEUE_QUERY_ID] = Int64GetDatum((int64) query_id);
	set_text(values, nulls, 18, ev->statement);
	set_text(values, nulls, 19, hg_actor_purpose_text());
	set_text(values, nulls, 20, ev->detail);
}

/* ----------------------------------------------------------------
 *		Serializing an event without building a row
 * ---------------------------------------------------------------- */

static void
put_null(StringInfo buf)
{
	int32		len = -1;

	memcpy(hg_audit_reserve(buf, sizeof(len)), &len, sizeof(len));
}

static void
put_int64(StringInfo buf, int64 value)
{
	int32		len = sizeof(int64);
	char	   *dest = hg_audit_reserve(buf, sizeof(len) + sizeof(value));

	memcpy(dest, &len, sizeof(len));
	memcpy(dest + sizeof(len), &value, sizeof(value));
}

static void
put_count(StringInfo buf, int64 count)
{
	if (count < 0)
		put_null(buf);
	else
		put_int64(buf, count);
}

/* A string as the text varlena that append_entry() would write for it. */
static void
put_cstring(StringInfo buf, const char *s)
{
	size_t		n;
	int32		len;
	char	   *dest;
	union
	{
		varattrib_4b header;
		char		bytes[sizeof(varattrib_4b)];
	}			varlena;

	if (s == NULL)
	{
		put_null(buf);
		return;
	}
	n = strlen(s);
	len = (int32) (VARHDRSZ + n);
	SET_VARSIZE(&varlena, len);
	dest = hg_audit_reserve(buf, sizeof(len) + len);
	memcpy(dest, &len, sizeof(len));
	memcpy(dest + sizeof(len), varlena.bytes, VARHDRSZ);
	memcpy(dest + sizeof(len) + VARHDRSZ, s, n);
}

static void
put_list(StringInfo buf, List *strings)
{
	Datum		array;
	int32		len;

	if (strings == NIL)
	{
		put_null(buf);
		return;
	}
	array = text_array(strings);
	len = (int32) VARSIZE(DatumGetPointer(array));
	appendBinaryStringInfo(buf, (const char *) &len, sizeof(len));
	appendBinaryStringInfo(buf, DatumGetPointer(array), len);
}

/*
 * Append the entry that append_entry() writes for build_queue_values()'s
 * row, without making the row.  A read is recorded per statement, so
 * copying a dozen strings into text values first cost measurable time.
 * rows_offset, when not NULL, receives the position of the rows value.
 */
static void
append_event_at(StringInfo buf, const HgAuditEvent *ev, int *rows_offset)
{
	const char *actor = hg_actor_id();
	FullTransactionId xid = GetTopFullTransactionIdIfAny();
	uint64		query_id = ev->query_id != 0 ? ev->query_id : pgstat_get_my_query_id();
	int			start = buf->len;
	uint32		entry_len = 0;
	char		status = STATUS_NONE;

	appendBinaryStringInfo(buf, (const char *) &entry_len, sizeof(entry_len));
	appendBinaryStringInfo(buf, &status, 1);
	put_int64(buf, GetCurrentTimestamp());
	put_cstring(buf, ev->kind);
	put_cstring(buf, ev->command);
	put_cstring(buf, ev->relation);
	put_cstring(buf, ev->row_key);
	put_list(buf, ev->columns);
	if (rows_offset != NULL)
		*rows_offset = buf->len + sizeof(int32);
	put_count(buf, ev->rows);
	put_list(buf, ev->patients);
	put_count(buf, ev->decrypts);
	put_cstring(buf, actor != NULL ? actor : login_role_name());
	put_cstring(buf, login_role_name());
	put_cstring(buf, database_name());
	put_cstring(buf, MyProcPort != NULL ? MyProcPort->authn_id : NULL);
	put_cstring(buf, client_address());
	put_cstring(buf, application_name);
	if (FullTransactionIdIsValid(xid))
		put_int64(buf, (int64) U64FromFullTransactionId(xid));
	else
		put_null(buf);
	put_null(buf);				/* status, set when pushed */
	if (query_id != 0)
		put_int64(buf, (int64) query_id);
	else
		put_null(buf);
	put_cstring(buf, ev->statement);
	put_cstring(buf, hg_actor_purpose_text());
	put_cstring(buf, ev->detail);
	entry_len = buf->len - start;
	memcpy(buf->data + start, &entry_len, sizeof(entry_len));
}

static void
append_event(StringInfo buf, const HgAuditEvent *ev)
{
	append_event_at(buf, ev, NULL);
}

/* Common checks of both recording functions. */
static void
check_can_record(void)
{
	hg_require_preloaded();
	if (IsParallelWorker())
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_STATE),
				 errmsg("audit events cannot be recorded in a parallel worker")));
	hg_audit_init();
	if (my_slot == NULL)
		my_slot = slot_for_database(MyDatabaseId, false);
}

/* ----------------------------------------------------------------
 *		Serialization
 * ---------------------------------------------------------------- */

/*
 * Append one entry: length, status placeholder, then per column a 4-byte
 * length (-1 for NULL) and the bytes: 8 for the by-value columns, the whole
 * varlena for the others.  The encoding never leaves this server, so it
 * uses native byte order.
 */
static void
append_entry(StringInfo buf, const Datum *values, const bool *nulls)
{
	int			start = buf->len;
	uint32		entry_len = 0;
	char		status = STATUS_NONE;

	appendBinaryStringInfo(buf, (const char *) &entry_len, sizeof(entry_len));
	appendBinaryStringInfo(buf, &status, 1);
	for (int att = 0; att < HG_QUEUE_NATTS; att++)
	{
		int32		len = -1;

		if (!nulls[att])
			len = queue_att_byval8[att] ? (int32) sizeof(int64) :
				(int32) VARSIZE_ANY(DatumGetPointer(values[att]));
		appendBinaryStringInfo(buf, (const char *) &len, sizeof(len));
		if (nulls[att])
			continue;
		if (queue_att_byval8[att])
		{
			int64		v = DatumGetInt64(values[att]);

			appendBinaryStringInfo(buf, (const char *) &v, sizeof(v));
		}
		else
			appendBinaryStringInfo(buf, DatumGetPointer(values[att]), len);
	}
	entry_len = buf->len - start;
	memcpy(buf->data + start, &entry_len, sizeof(entry_len));
}

static const char *
status_text(char status)
{
	switch (status)
	{
		case STATUS_COMMITTED:
			return "committed";
		case STATUS_ABORTED:
			return "aborted";
		case STATUS_PREPARED:
			return "prepared";
		case STATUS_OPEN:
			return "open";
		default:
			elog(ERROR, "audit queue entry without a status");
	}
	return NULL;				/* keep the compiler quiet */
}

/* A varlena field of an entry, copied out so that it is aligned. */
static Datum
aligned_varlena(const char *p, int32 len)
{
	char	   *copy = palloc(len);

	memcpy(copy, p, len);
	return PointerGetDatum(copy);
}

/*
 * Append the hashed bytes of one ring entry, numbered seq, to buf, and
 * return the entry's length.  The bytes are those that
 * hg_audit_encode_record() makes of the entry's row, written without
 * building the row, which the sealer would do for every read record.
 */
Size
hg_audit_encode_entry(StringInfo buf, int64 seq, const char *entry, TimestampTz sealed_at,
					  HgAuditEntryInfo *info)
{
	uint32		entry_len;
	const char *p = entry + ENTRY_HEADER_LEN;

	memcpy(&entry_len, entry, sizeof(entry_len));
	info->patients_null = true;
	info->patients = (Datum) 0;
	hg_audit_append_int64(buf, seq);
	for (int att = 0; att < HG_QUEUE_NATTS; att++)
	{
		int32		len;
		int64		v = 0;

		memcpy(&len, p, sizeof(len));
		p += sizeof(len);
		if (att == HG_QUEUE_STATUS)
		{
			const char *status = status_text(entry[ENTRY_STATUS_OFFSET]);

			hg_audit_append_field(buf, status, strlen(status));
			p += Max(len, 0);
			continue;
		}
		if (len < 0)
		{
			hg_audit_append_null(buf);
			continue;
		}
		if (queue_att_byval8[att])
			memcpy(&v, p, sizeof(v));
		switch (att)
		{
			case HG_QUEUE_LOGGED_AT:
				info->logged_at = TIMESTAMP_NOT_FINITE(v) ? sealed_at : v;
				hg_audit_append_int64(buf, info->logged_at + HG_UNIX_EPOCH_OFFSET_USECS);
				break;
			case HG_QUEUE_XID:
				hg_audit_append_uint64(buf, (uint64) v);
				break;
			case HG_QUEUE_COLUMNS:
				hg_audit_append_array(buf, aligned_varlena(p, len));
				break;
			case HG_QUEUE_PATIENTS:
				info->patients = aligned_varlena(p, len);
				info->patients_null = false;
				hg_audit_append_array(buf, info->patients);
				break;
			default:
				if (queue_att_byval8[att])
					hg_audit_append_int64(buf, v);
				else
					hg_audit_append_text(buf, p + VARHDRSZ, len - VARHDRSZ);
				break;
		}
		p += len;
	}
	if (p != entry + entry_len)
		elog(ERROR, "audit queue entry of %u bytes encodes %d bytes",
			 entry_len, (int) (p - entry));
	return entry_len;
}

/*
 * Cut the statement text so that the entry fits in a quarter of the ring,
 * marked with a trailing "...".  Raises an error when even no statement
 * leaves it too large.
 */
static void
shorten_statement(Datum *values, bool *nulls, Size entry_len, Size max_len)
{
	Size		excess = entry_len - max_len;
	text	   *statement;
	int			len;
	int			keep;
	char	   *shortened;

	statement = nulls[18] ? NULL : DatumGetTextPP(values[18]);
	len = statement == NULL ? 0 : VARSIZE_ANY_EXHDR(statement);
	if ((Size) len < excess + 3)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("audit event of %zu bytes is too large for the audit queue", entry_len),
				 errdetail("An event may take at most a quarter of the queue, %zu bytes.", max_len),
				 errhint("Raise \"hipaa_guard.audit_queue_size\" and restart the server.")));
	keep = pg_mbcliplen(VARDATA_ANY(statement), len, len - (int) excess - 3);
	shortened = palloc(keep + 4);
	memcpy(shortened, VARDATA_ANY(statement), keep);
	strcpy(shortened + keep, "...");
	values[18] = CStringGetTextDatum(shortened);
}

/* ----------------------------------------------------------------
 *		Recording
 * ---------------------------------------------------------------- */

void
hg_audit_record_durable(const HgAuditEvent *ev)
{
	Datum		values[HG_QUEUE_NATTS];
	bool		nulls[HG_QUEUE_NATTS];
	Size		max_len = ring_capacity() / 4;
	int			start;
	MemoryContext old_context;

	/*
	 * A standby has no sealer to empty the ring, which would fill and make
	 * every recorder wait.  So nothing is recorded there.  Reads and
	 * decrypt() calls run only when hipaa_guard.standby_reads allows it (see
	 * hg_audit_check_standby()), and other events, such as refusals, are lost.
	 */
	if (RecoveryInProgress())
		return;
	check_can_record();
	if (ev->kind == NULL)
		elog(ERROR, "audit event without a kind");

	if (pending.data == NULL)
	{
		old_context = MemoryContextSwitchTo(TopMemoryContext);
		initStringInfo(&pending);
		MemoryContextSwitchTo(old_context);
	}
	/* Serialized straight into the buffer; redone shorter if too long. */
	start = pending.len;
	append_event(&pending, ev);
	if ((Size) (pending.len - start) > max_len)
	{
		Size		entry_len = pending.len - start;

		pending.len = start;
		pending.data[start] = '\0';
		build_queue_values(ev, values, nulls);
		shorten_statement(values, nulls, entry_len, max_len);
		pending.len = start;
		pending.data[start] = '\0';
		append_entry(&pending, values, nulls);
	}
	pending_events++;
	if (!pending_counted)
	{
		pg_atomic_fetch_add_u32(&my_slot->pending_backends, 1);
		pending_counted = true;
	}

	/* Outside a transaction there is no callback to push the event. */
	if (!IsTransactionState())
		push_pending(STATUS_COMMITTED);
	else if (pending_events >= HG_OPEN_PUSH_EVENTS || pending.len >= HG_OPEN_PUSH_BYTES)
		push_pending(STATUS_OPEN);
}

/*
 * Return the OID of a table of the extension's schema, or InvalidOid when
 * the extension is not installed.
 */
Oid
hg_audit_table_oid(const char *name)
{
	Oid			extension = get_extension_oid("hipaa_guard", true);
	Oid			schema = InvalidOid;
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;

	if (!OidIsValid(extension))
		return InvalidOid;

	/* PostgreSQL 15 does not export get_extension_schema(). */
	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(extension));
	scan = systable_beginscan(rel, ExtensionOidIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
		schema = ((Form_pg_extension) GETSTRUCT(tuple))->extnamespace;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);

	return OidIsValid(schema) ? get_relname_relid(name, schema) : InvalidOid;
}

static Oid
audit_queue_oid(void)
{
	if (!OidIsValid(queue_relid))
	{
		queue_relid = hg_audit_table_oid("audit_queue");
		if (!OidIsValid(queue_relid))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("table \"hipaa_guard.audit_queue\" does not exist"),
					 errhint("Install the extension with CREATE EXTENSION hipaa_guard.")));
	}
	return queue_relid;
}

/*
 * Raise an error unless the relation has the columns of the trail table it
 * is opened as, in their order and types, so that a table altered by hand
 * is never written with shifted columns.
 */
void
hg_audit_check_layout(Relation rel, int natts)
{
	TupleDesc	desc = RelationGetDescr(rel);
	int			live = 0;

	for (int i = 0; i < desc->natts; i++)
	{
		if (!TupleDescAttr(desc, i)->attisdropped)
			live++;
	}
	if (desc->natts != natts || live != natts)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("table \"%s\" does not have the columns of the audit trail",
						RelationGetRelationName(rel)),
				 errdetail("It has %d columns, and the extension expects %d.", live, natts),
				 errhint("Reinstall the extension; do not alter the audit trail's tables.")));
}

/*
 * Return array, a TopMemoryContext array of count elements of size width,
 * grown if needed so that one more fits; *max is its capacity.
 */
static void *
room_for_one(void *array, int count, int *max, int initial, Size width)
{
	if (count < *max)
		return array;
	*max = Max(initial, *max * 2);
	if (array == NULL)
		return MemoryContextAlloc(TopMemoryContext, *max * width);
	return repalloc(array, *max * width);
}

/* Count a change past the byte limit of copies, for the summary record. */
static void
count_uncopied(SubTransactionId subxid)
{
	HgAuditEvent summary;

	if (summary_rows_offset < 0 || nuncopied == 0)
	{
		/* Serialized now, because an aborting transaction cannot. */
		hg_audit_event_init(&summary, HG_AUDIT_WRITE, "ROLLBACK");
		summary.rows = 0;
		summary.detail = "row changes that were rolled back, counted in rows and not listed one by one";
		hg_audit_current_statement(&summary.statement, &summary.query_id);
		resetStringInfo(&summary_entry);
		append_event_at(&summary_entry, &summary, &summary_rows_offset);
		/* It must fit in a quarter of the ring, which it does without the statement. */
		if ((Size) summary_entry.len > ring_capacity() / 4)
		{
			summary.statement = NULL;
			resetStringInfo(&summary_entry);
			append_event_at(&summary_entry, &summary, &summary_rows_offset);
		}
	}
	if (nuncopied > 0 && uncopied[nuncopied - 1].subxid == subxid)
	{
		uncopied[nuncopied - 1].count++;
		return;
	}
	uncopied = room_for_one(uncopied, nuncopied, &max_uncopied, 16, sizeof(UncopiedWrites));
	uncopied[nuncopied].subxid = subxid;
	uncopied[nuncopied].count = 1;
	nuncopied++;
}

/*
 * Keep a serialized copy of a row change's record until the transaction
 * ends (see the header comment).  Everything that can fail happens here,
 * where an error is an ordinary one.
 */
static void
keep_write_copy(const HgAuditEvent *ev)
{
	SubTransactionId subxid = GetCurrentSubTransactionId();
	int			start;

	if (write_copies.data == NULL || summary_entry.data == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		if (write_copies.data == NULL)
			initStringInfo(&write_copies);
		if (summary_entry.data == NULL)
			initStringInfo(&summary_entry);
		MemoryContextSwitchTo(old);
	}
	if (!copies_counted)
	{
		pg_atomic_fetch_add_u32(&my_slot->pending_backends, 1);
		copies_counted = true;
	}
	if (copies_end >= HG_WRITE_COPY_BYTES)
	{
		count_uncopied(subxid);
		return;
	}
	/* An error in an earlier call may have left part of an entry. */
	write_copies.len = copies_end;
	start = write_copies.len;
	append_event(&write_copies, ev);
	/* An entry must fit in a quarter of the ring to be pushed. */
	if ((Size) (write_copies.len - start) > ring_capacity() / 4)
	{
		write_copies.len = start;
		write_copies.data[start] = '\0';
		count_uncopied(subxid);
		return;
	}
	copy_list = room_for_one(copy_list, ncopies, &max_copies, 64, sizeof(WriteCopy));
	copy_list[ncopies].subxid = subxid;
	copy_list[ncopies].offset = start;
	ncopies++;
	copies_end = write_copies.len;
}

void
hg_audit_record_in_xact(const HgAuditEvent *ev)
{
	Datum		values[HG_QUEUE_NATTS];
	bool		nulls[HG_QUEUE_NATTS];
	Relation	rel;
	HeapTuple	tuple;

	check_can_record();
	build_queue_values(ev, values, nulls);

	rel = table_open(audit_queue_oid(), RowExclusiveLock);
	hg_audit_check_layout(rel, HG_QUEUE_NATTS);

	/* The heap insert below would leave any index without the new row. */
	if (rel->rd_rel->relhasindex && RelationGetIndexList(rel) != NIL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"hipaa_guard.audit_queue\" must not have indexes"),
				 errdetail("Row changes are queued by a direct heap insert, which does not maintain indexes."),
				 errhint("Drop the indexes of hipaa_guard.audit_queue.")));

	/* Kept first: if the insert fails, the change rolls back with a record. */
	keep_write_copy(ev);
	tuple = heap_form_tuple(RelationGetDescr(rel), values, nulls);
	simple_heap_insert(rel, tuple);
	table_close(rel, NoLock);
	heap_freetuple(tuple);

	wake_sealer_at_commit = true;
}

/*
 * hipaa_guard.audit_note(detail): record a note of an administrator in the
 * trail, as a 'config' event with command NOTE, durably, so that it stays
 * even when the caller's transaction rolls back.  EXECUTE is granted to
 * hipaa_admin only.
 */
PG_FUNCTION_INFO_V1(hg_audit_note);
Datum
hg_audit_note(PG_FUNCTION_ARGS)
{
	HgAuditEvent ev;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the note must not be null")));
	hg_audit_event_init(&ev, HG_AUDIT_CONFIG, "NOTE");
	ev.detail = text_to_cstring(PG_GETARG_TEXT_PP(0));
	hg_audit_record_durable(&ev);
	PG_RETURN_VOID();
}

/*
 * AFTER INSERT statement trigger of audit_queue: wake the sealer when the
 * transaction commits.  Rows inserted with SQL, by pg_restore or by a
 * superuser queueing records by hand, are then sealed as promptly as those
 * of hg_audit_record_in_xact(), whose heap inserts fire no trigger.  Without a
 * preloaded library or a free slot it does nothing: the rows wait for the
 * next sealer, which is better than failing a restore.
 */
PG_FUNCTION_INFO_V1(hg_audit_queue_inserted);
Datum
hg_audit_queue_inserted(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("audit_queue_inserted() must be called as a trigger")));
	if (audit_slots == NULL || IsParallelWorker())
		return PointerGetDatum(NULL);

	hg_audit_init();
	if (my_slot == NULL)
		my_slot = slot_for_database(MyDatabaseId, true);
	if (my_slot != NULL)
		wake_sealer_at_commit = true;
	return PointerGetDatum(NULL);
}
