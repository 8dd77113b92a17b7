/*
 * auditcapture.c
 *		Executor hooks that record reads and exports of audited tables,
 *		refused statements, and the decrypt() calls of each statement.
 *
 * A statement that touches an audited table gets an entry when the executor
 * starts it.  Each run of the executor adds the rows it processed, so a
 * cursor fetched in pieces or a portal run with a fetch size ends up with
 * the total.  The entry becomes one read record per audited table read when
 * the executor ends it, or, for a statement cut short by an error, when its
 * (sub)transaction aborts.  Records go the durable way, so a read is
 * recorded even when its transaction rolls back.
 *
 * The entry is also where the row trigger of audittrigger.c finds the
 * statement text of a change, and where decrypt() calls are counted: the
 * innermost statement being run is the one a trigger or a call belongs to.
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "parser/parsetree.h"
#include "tcop/cmdtag.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "common/hashfn.h"
#include "utils/hsearch.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/memutils.h"

#include "audit.h"
#include "auditcapture.h"
#include "hipaa_guard.h"
#include "keyring.h"

/* A statement is listed with at most this many patients; then "many". */
#define MAX_PATIENTS_LISTED	1000

typedef struct StmtEntry
{
	QueryDesc  *qd;				/* NULL for a utility statement */
	MemoryContext cxt;			/* holds the entry and all it points to */
	SubTransactionId subid;		/* subtransaction that started it */
	const char *source;
	int			location;
	int			len;
	uint64		query_id;
	char	   *statement;		/* literal-free, made on first use */
	const char *command;
	List	   *read_rels;		/* names of the audited tables it reads */
	bool		export;
	int			depth;			/* utility: statements running when it started */
	int64		rows;
	int64		decrypts;
	List	   *patients;		/* char *, at most MAX_PATIENTS_LISTED */
	HTAB	   *patient_set;	/* the same, to find one fast */
	bool		many_patients;
	bool		parallel;		/* its plan may run parallel workers */
	bool		worker_patients_missing;	/* see collect_worker_decrypts() */
	uint32		last_key_id;	/* saves a lookup per decrypt() call */
	char	   *last_patient;
} StmtEntry;

/* Open entries, newest first. */
static List *entries = NIL;

/* Statements being run or finished right now, innermost first. */
static List *running = NIL;

/* Utility statements being processed, innermost first (entries). */
static List *utilities = NIL;

/* Set while COPY ... TO runs its query. */
static bool in_export = false;

/* Export records made by the executor, so that COPY does not repeat them. */
static uint64 executor_exports = 0;

static ExecutorStart_hook_type prev_start = NULL;
static ExecutorRun_hook_type prev_run = NULL;
static ExecutorFinish_hook_type prev_finish = NULL;
static ExecutorEnd_hook_type prev_end = NULL;

static void collect_worker_decrypts(StmtEntry *entry, bool aborting);

static char *
pstrdup_or_null(const char *s)
{
	return s ? pstrdup(s) : NULL;
}

static StmtEntry *
new_entry(QueryDesc *qd, const char *source, int location, int len,
		  uint64 query_id, const char *command)
{
	MemoryContext cxt = AllocSetContextCreate(TopMemoryContext, "hipaa_guard audit statement",
											  ALLOCSET_SMALL_SIZES);
	StmtEntry  *entry = MemoryContextAllocZero(cxt, sizeof(StmtEntry));

	entry->cxt = cxt;
	entry->qd = qd;
	entry->subid = GetCurrentSubTransactionId();
	entry->source = source ? MemoryContextStrdup(cxt, source) : NULL;
	entry->location = location;
	entry->len = len;
	entry->query_id = query_id;
	entry->command = command;
	entry->export = in_export;
	entry->decrypts = 0;
	return entry;
}

static void
free_entry(StmtEntry *entry)
{
	MemoryContextDelete(entry->cxt);
}

static StmtEntry *
find_entry(QueryDesc *qd)
{
	ListCell   *lc;

	foreach(lc, entries)
	{
		StmtEntry  *entry = lfirst(lc);

		if (entry->qd == qd)
			return entry;
	}
	return NULL;
}

/*
 * Literal-free statements by source text, so that a prepared statement or
 * a statement run again is scanned once per session.  The key is a hash of
 * the text; the text itself is compared on a hit.  Emptied when it reaches
 * STATEMENT_CACHE_SIZE.
 */
#define STATEMENT_CACHE_SIZE	1024

typedef struct CachedStatement
{
	uint64		key;			/* hash key: text hash and length */
	char	   *source;			/* the statement's source text */
	char	   *statement;		/* its literal-free form */
} CachedStatement;

static HTAB *statement_cache = NULL;
static MemoryContext statement_cache_cxt = NULL;

static void
reset_statement_cache(void)
{
	HASHCTL		ctl;

	if (statement_cache_cxt == NULL)
		statement_cache_cxt = AllocSetContextCreate(TopMemoryContext, "hipaa_guard audit statements",
													ALLOCSET_DEFAULT_SIZES);
	else
		MemoryContextReset(statement_cache_cxt);
	ctl.keysize = sizeof(uint64);
	ctl.entrysize = sizeof(CachedStatement);
	ctl.hcxt = statement_cache_cxt;
	/* The texts are allocated in statement_cache_cxt too, and freed with the table. */
	statement_cache = hash_create("hipaa_guard audit statements", 256, &ctl,
								  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

static char *
redacted_statement(const char *source, int location, int len)
{
	CachedStatement *cached;
	bool		found;
	char	   *text;
	const char *start;
	size_t		length;
	uint64		key;

	if (source == NULL)
		return NULL;
	/* The same cut of the source text as hg_redact_statement() makes. */
	start = location >= 0 && (size_t) location <= strlen(source) ? source + location : source;
	length = len > 0 ? strnlen(start, len) : strlen(start);
	key = ((uint64) hash_bytes((const unsigned char *) start, (int) length) << 32) | (uint32) length;

	if (statement_cache == NULL || hash_get_num_entries(statement_cache) >= STATEMENT_CACHE_SIZE)
		reset_statement_cache();
	cached = hash_search(statement_cache, &key, HASH_FIND, NULL);
	if (cached != NULL && strlen(cached->source) == length && memcmp(cached->source, start, length) == 0)
		return cached->statement;
	text = hg_redact_statement(source, location, len);
	cached = hash_search(statement_cache, &key, HASH_ENTER, &found);
	cached->source = MemoryContextStrdup(statement_cache_cxt, pnstrdup(start, length));
	cached->statement = text ? MemoryContextStrdup(statement_cache_cxt, text) : NULL;
	return cached->statement;
}

static const char *
entry_statement(StmtEntry *entry)
{
	if (entry->statement == NULL && entry->source != NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(entry->cxt);

		entry->statement = pstrdup_or_null(redacted_statement(entry->source, entry->location,
															  entry->len));
		MemoryContextSwitchTo(old);
	}
	return entry->statement;
}

/*
 * Whether the statement returns or copies out the rows of the table at
 * rtindex: a result relation is only read when the statement has RETURNING.
 */
static bool
reads_relation(PlannedStmt *pstmt, RangeTblEntry *rte, Index rtindex)
{
	if ((rte->requiredPerms & ACL_SELECT) == 0)
		return false;
	if (list_member_int(pstmt->resultRelations, (int) rtindex))
		return pstmt->hasReturning;
	return true;
}

/*
 * Find the audited tables of a plan.  Returns whether it touches any, and
 * sets *read_rels to the names of those it reads.
 */
static bool
classify_plan(PlannedStmt *pstmt, List **read_rels)
{
	bool		touches = false;
	Index		rtindex = 0;
	ListCell   *lc;

	*read_rels = NIL;
	foreach(lc, pstmt->rtable)
	{
		RangeTblEntry *rte = lfirst(lc);
		const HgAuditedRel *rel;

		rtindex++;
		if (rte->rtekind != RTE_RELATION)
			continue;
		rel = hg_audited_rel(rte->relid);
		if (rel == NULL || !(rel->reads || rel->writes))
			continue;
		touches = true;
		if (rel->reads && reads_relation(pstmt, rte, rtindex) &&
			!list_member_ptr(*read_rels, rel->name))
			*read_rels = lappend(*read_rels, (void *) rel->name);
	}
	return touches;
}

/*
 * Whether a statement is a foreign key check of ri_triggers.c, which locks
 * the referenced row and returns nothing of it: those are not reads.  They
 * are recognized by the text PostgreSQL builds for them and their row lock.
 */
static bool
is_foreign_key_check(QueryDesc *qd)
{
	PlannedStmt *pstmt = qd->plannedstmt;
	ListCell   *lc;

	if (pstmt->commandType != CMD_SELECT || pstmt->rowMarks == NIL || qd->sourceText == NULL ||
		strncmp(qd->sourceText, "SELECT 1 FROM ", strlen("SELECT 1 FROM ")) != 0)
		return false;
	foreach(lc, pstmt->rowMarks)
	{
		PlanRowMark *mark = lfirst(lc);

		if (mark->strength != LCS_FORKEYSHARE && mark->strength != LCS_FORSHARE)
			return false;
	}
	return true;
}

static const char *
plan_command(PlannedStmt *pstmt)
{
	return GetCommandTagName(CreateCommandTag((Node *) pstmt));
}

/* Maximum length of a patient id in the set; longer ones are cut to it. */
#define PATIENT_KEY_SIZE	128

/*
 * Patients a statement lists before add_patient() builds a hash set of
 * them.  Most statements read a few patients, and creating a hash table for
 * each cost more than searching a short list.
 */
#define PATIENT_SET_MIN		16

static void
patient_set_add(StmtEntry *entry, const char *patient, bool *found)
{
	char		key[PATIENT_KEY_SIZE];

	strlcpy(key, patient, sizeof(key));
	hash_search(entry->patient_set, key, HASH_ENTER, found);
}

/* Whether the statement lists the patient already. */
static bool
has_patient(StmtEntry *entry, const char *patient)
{
	ListCell   *lc;
	bool		found;

	if (entry->patient_set != NULL)
	{
		patient_set_add(entry, patient, &found);
		return found;
	}
	foreach(lc, entry->patients)
	{
		if (strcmp(lfirst(lc), patient) == 0)
			return true;
	}
	if (list_length(entry->patients) < PATIENT_SET_MIN)
		return false;

	/* The list is long enough: index it, the new patient included. */
	{
		HASHCTL		ctl;

		ctl.keysize = PATIENT_KEY_SIZE;
		ctl.entrysize = PATIENT_KEY_SIZE;
		ctl.hcxt = entry->cxt;
		entry->patient_set = hash_create("hipaa_guard audit patients", 64, &ctl,
										 HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	}
	foreach(lc, entry->patients)
		patient_set_add(entry, lfirst(lc), &found);
	patient_set_add(entry, patient, &found);
	return false;
}

static void
add_patient(StmtEntry *entry, const char *patient)
{
	MemoryContext old;

	if (entry->many_patients)
		return;
	if (entry->patients != NIL && strcmp(llast(entry->patients), patient) == 0)
		return;					/* rows of one patient often come together */
	if (has_patient(entry, patient))
		return;
	if (list_length(entry->patients) >= MAX_PATIENTS_LISTED)
	{
		entry->many_patients = true;
		return;
	}
	old = MemoryContextSwitchTo(entry->cxt);
	entry->patients = lappend(entry->patients, pstrdup(patient));
	MemoryContextSwitchTo(old);
}

/* Whether the patient is the last one the statement listed, without copying it. */
static bool
is_last_patient(StmtEntry *entry, text *patient)
{
	const char *last;
	size_t		len = VARSIZE_ANY_EXHDR(patient);

	if (entry->patients == NIL)
		return false;
	last = llast(entry->patients);
	return strncmp(last, VARDATA_ANY(patient), len) == 0 && last[len] == '\0';
}

static void
fill_event(StmtEntry *entry, HgAuditEvent *ev, const char *kind, const char *relation)
{
	hg_audit_event_init(ev, kind, entry->export ? "COPY" : entry->command);
	ev->relation = relation;
	ev->rows = entry->rows;
	ev->query_id = entry->query_id;
	ev->statement = entry_statement(entry);
	ev->patients = entry->many_patients ? NIL : entry->patients;
	if (entry->many_patients)
		ev->detail = psprintf("more than %d patients", MAX_PATIENTS_LISTED);
	else if (entry->worker_patients_missing)
		ev->detail = "patients of decrypt() calls in parallel workers may be missing";
}

bool		hg_audit_durable_reads = false;

/*
 * Record a read.  Under hipaa_guard.audit_durable_reads the record is
 * inserted in the reading transaction, as a change's record is, so that it
 * survives a crash once the transaction commits.  A failed statement, which
 * is recorded while its transaction aborts, and a statement run inside a
 * parallel query, whose leader cannot write, use the shared memory queue.
 */
static void
record_read_event(const HgAuditEvent *ev, bool failed)
{
	if (hg_audit_durable_reads && !failed && !IsInParallelMode() && !RecoveryInProgress())
		hg_audit_record_in_xact(ev);
	else
		hg_audit_record_durable(ev);
}

/*
 * Record the reads of a finished or failed statement: one record per
 * audited table it read, with the statement's decrypt() count on the first,
 * or one record without a table for decrypt() calls alone.
 */
static void
record_reads(StmtEntry *entry, bool failed)
{
	HgAuditEvent ev;
	ListCell   *lc;
	bool		first = true;
	MemoryContext old = MemoryContextSwitchTo(entry->cxt);

	foreach(lc, entry->read_rels)
	{
		fill_event(entry, &ev, entry->export ? HG_AUDIT_EXPORT : HG_AUDIT_READ, lfirst(lc));
		if (entry->export)
			executor_exports++;
		if (first && entry->decrypts > 0)
			ev.decrypts = entry->decrypts;
		if (failed)
			ev.detail = ev.detail ? psprintf("statement failed; %s", ev.detail) : "statement failed";
		record_read_event(&ev, failed);
		first = false;
	}
	if (entry->read_rels == NIL && entry->decrypts > 0)
	{
		fill_event(entry, &ev, HG_AUDIT_READ, NULL);
		ev.decrypts = entry->decrypts;
		if (failed)
			ev.detail = ev.detail ? psprintf("statement failed; %s", ev.detail) : "statement failed";
		record_read_event(&ev, failed);
	}
	MemoryContextSwitchTo(old);
}

static void
close_entry(StmtEntry *entry, bool failed)
{
	entries = list_delete_ptr(entries, entry);
	record_reads(entry, failed);
	free_entry(entry);
}

/* ----------------------------------------------------------------
 *		Refusals
 * ---------------------------------------------------------------- */

/*
 * Record a refused statement, one record per audited table it names, or
 * one without a table.  Called while an error is being thrown, before it is
 * re-thrown, so it allocates in a context of its own.
 */
void
hg_audit_record_denied(const char *command, List *relations)
{
	MemoryContext cxt = AllocSetContextCreate(TopMemoryContext, "hipaa_guard audit refusal",
											  ALLOCSET_SMALL_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	HgAuditEvent ev;
	const char *statement = NULL;
	uint64		query_id = 0;
	ListCell   *lc;

	hg_audit_current_statement(&statement, &query_id);
	hg_audit_event_init(&ev, HG_AUDIT_DENIED, command);
	ev.statement = statement;
	ev.query_id = query_id;
	if (relations == NIL)
		hg_audit_record_durable(&ev);
	foreach(lc, relations)
	{
		ev.relation = lfirst(lc);
		hg_audit_record_durable(&ev);
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
}

static bool
is_refusal(void)
{
	return geterrcode() == ERRCODE_INSUFFICIENT_PRIVILEGE;
}

/* The audited tables of a plan, for a refusal record. */
static List *
audited_names(PlannedStmt *pstmt)
{
	List	   *names = NIL;
	ListCell   *lc;

	foreach(lc, pstmt->rtable)
	{
		RangeTblEntry *rte = lfirst(lc);
		const HgAuditedRel *rel;

		if (rte->rtekind != RTE_RELATION)
			continue;
		rel = hg_audited_rel(rte->relid);
		if (rel != NULL && !list_member_ptr(names, rel->name))
			names = lappend(names, (void *) rel->name);
	}
	return names;
}

/* ----------------------------------------------------------------
 *		Executor hooks
 * ---------------------------------------------------------------- */

/* The executor steps that the hooks wrap, and the arguments of each. */
typedef enum ExecutorStep
{
	STEP_START,
	STEP_RUN,
	STEP_FINISH
} ExecutorStep;

typedef struct StepArgs
{
	int			eflags;
	ScanDirection direction;
	uint64		count;
	bool		execute_once;
} StepArgs;

static void
call_step(ExecutorStep step, QueryDesc *qd, const StepArgs *args)
{
	switch (step)
	{
		case STEP_START:
			if (prev_start)
				prev_start(qd, args->eflags);
			else
				standard_ExecutorStart(qd, args->eflags);
			break;
		case STEP_RUN:
			if (prev_run)
				prev_run(qd, args->direction, args->count, args->execute_once);
			else
				standard_ExecutorRun(qd, args->direction, args->count, args->execute_once);
			break;
		case STEP_FINISH:
			if (prev_finish)
				prev_finish(qd);
			else
				standard_ExecutorFinish(qd);
			break;
	}
}

static void
add_rows(QueryDesc *qd)
{
	StmtEntry  *entry = find_entry(qd);

	if (entry != NULL && qd->estate != NULL)
		entry->rows += (int64) qd->estate->es_processed;
}

/*
 * Run one step with qd as the innermost running statement, which triggers
 * and decrypt() calls are accounted to, and record the statement if the
 * step raises a permission error.  A failed run still counts the rows it
 * returned before the error.
 */
static void
run_step(ExecutorStep step, QueryDesc *qd, const StepArgs *args)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

	running = lcons(qd, running);
	MemoryContextSwitchTo(old);
	PG_TRY();
	{
		call_step(step, qd, args);
	}
	PG_CATCH();
	{
		if (step == STEP_RUN)
			add_rows(qd);
		if (is_refusal())
			hg_audit_record_denied(plan_command(qd->plannedstmt), audited_names(qd->plannedstmt));
		running = list_delete_first(running);
		PG_RE_THROW();
	}
	PG_END_TRY();
	running = list_delete_first(running);
}

int			hg_standby_reads = HG_STANDBY_READS_REFUSE;

/*
 * On a hot standby, which cannot write the trail, refuse a statement that
 * would be recorded (a read of an audited table, named by relation, or a
 * decrypt() call when relation is NULL), unless hipaa_guard.standby_reads
 * lets it run unrecorded.
 */
void
hg_audit_check_standby(const char *relation)
{
	if (!RecoveryInProgress() || hg_standby_reads == HG_STANDBY_READS_UNRECORDED)
		return;
	if (relation != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot read audited table %s on a standby", relation),
				 errdetail("A standby cannot write the audit trail, so the read would go unrecorded."),
				 errhint("Run the query on the primary, or set \"hipaa_guard.standby_reads\" to \"unrecorded\" in the standby's configuration.")));
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("cannot decrypt on a standby"),
			 errdetail("A standby cannot write the audit trail, so the decrypt() call would go unrecorded."),
			 errhint("Run the query on the primary, or set \"hipaa_guard.standby_reads\" to \"unrecorded\" in the standby's configuration.")));
}

/*
 * Whether the hooks leave a statement alone: EXPLAIN without ANALYZE, the
 * extension's own install script, and parallel workers, whose refusals
 * reach their leader and are recorded there.
 */
static bool
leave_alone(int eflags)
{
	return (eflags & EXEC_FLAG_EXPLAIN_ONLY) || creating_extension || IsParallelWorker() ||
		!hg_audit_any_configured();
}

static void
hg_executor_start(QueryDesc *qd, int eflags)
{
	PlannedStmt *pstmt = qd->plannedstmt;
	StepArgs	args = {.eflags = eflags};
	List	   *read_rels;
	StmtEntry  *entry;
	MemoryContext old;

	if (leave_alone(eflags))
	{
		call_step(STEP_START, qd, &args);
		return;
	}
	run_step(STEP_START, qd, &args);
	if (!classify_plan(pstmt, &read_rels) || is_foreign_key_check(qd))
	{
		/*
		 * A parallel plan gets an entry anyway, to collect the decrypt()
		 * calls of its workers (see collect_worker_decrypts()).
		 */
		if (!pstmt->parallelModeNeeded)
			return;
		read_rels = NIL;
	}
	if (read_rels != NIL)
		hg_audit_check_standby(linitial(read_rels));
	/* Parallel plans do not nest, so calls left in the slot are stale. */
	if (pstmt->parallelModeNeeded)
		collect_worker_decrypts(NULL, true);
	entry = new_entry(qd, qd->sourceText, pstmt->stmt_location, pstmt->stmt_len,
					  pstmt->queryId, plan_command(pstmt));
	entry->parallel = pstmt->parallelModeNeeded;
	old = MemoryContextSwitchTo(entry->cxt);
	entry->read_rels = list_copy(read_rels);
	MemoryContextSwitchTo(TopMemoryContext);
	entries = lcons(entry, entries);
	MemoryContextSwitchTo(old);
}

static void
hg_executor_run(QueryDesc *qd, ScanDirection direction, uint64 count, bool execute_once)
{
	StepArgs	args = {.direction = direction, .count = count, .execute_once = execute_once};

	if (IsParallelWorker())
	{
		call_step(STEP_RUN, qd, &args);
		return;
	}
	run_step(STEP_RUN, qd, &args);
	add_rows(qd);
}

/* AFTER triggers fire here, and they must find their statement. */
static void
hg_executor_finish(QueryDesc *qd)
{
	StepArgs	args = {0};

	if (IsParallelWorker())
	{
		call_step(STEP_FINISH, qd, &args);
		return;
	}
	run_step(STEP_FINISH, qd, &args);
}

static void
hg_executor_end(QueryDesc *qd)
{
	StmtEntry  *entry = find_entry(qd);

	/*
	 * Only the statement whose plan ran the workers takes their calls, once
	 * they have finished: a statement nested in it, run by the leader while
	 * they still run, does not.
	 */
	if (entry != NULL && entry->parallel)
		collect_worker_decrypts(entry, false);

	/*
	 * Under audit_durable_reads, a parallel plan's reads are recorded after
	 * the executor has left parallel mode, in which nothing can be inserted.
	 */
	if (entry != NULL && !(hg_audit_durable_reads && entry->parallel))
	{
		close_entry(entry, false);
		entry = NULL;
	}
	if (prev_end)
		prev_end(qd);
	else
		standard_ExecutorEnd(qd);
	if (entry != NULL)
		close_entry(entry, false);
}

/* ----------------------------------------------------------------
 *		Statements cut short
 * ---------------------------------------------------------------- */

static void
close_entries_since(SubTransactionId subid)
{
	ListCell   *lc;
	bool		collected = false;

	foreach(lc, entries)
	{
		StmtEntry  *entry = lfirst(lc);

		if (entry->subid < subid)
			continue;
		/* Workers' calls count against the failed statement that ran them. */
		if (entry->parallel && !collected)
		{
			collect_worker_decrypts(entry, true);
			collected = true;
		}
		entries = foreach_delete_current(entries, lc);
		record_reads(entry, true);
		free_entry(entry);
	}
	/* Calls with no parallel statement to close belong to none: drop them. */
	if (!collected)
		collect_worker_decrypts(NULL, true);
}

static void
capture_xact_callback(XactEvent event, void *arg)
{
	if (event != XACT_EVENT_ABORT && event != XACT_EVENT_PARALLEL_ABORT)
		return;
	close_entries_since(InvalidSubTransactionId);
	list_free(running);
	running = NIL;
	while (utilities != NIL)
		hg_audit_pop_utility();
	in_export = false;
}

static void
capture_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						 SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		close_entries_since(mySubid);
}

/* ----------------------------------------------------------------
 *		What triggers, decrypt() and the utility hook use
 * ---------------------------------------------------------------- */

/*
 * The entry of the innermost statement being run, or of the outermost, or
 * NULL when that statement has none.  Executor and utility statements nest
 * in one another, so each utility entry stores how many executor statements
 * were running when it started.
 */
static StmtEntry *
statement_entry(bool outermost, QueryDesc **qd)
{
	*qd = NULL;
	if (outermost)
	{
		if (utilities != NIL && ((StmtEntry *) llast(utilities))->depth == 0)
			return llast(utilities);
		if (running != NIL)
			*qd = llast(running);
	}
	else
	{
		if (utilities != NIL && ((StmtEntry *) linitial(utilities))->depth >= list_length(running))
			return linitial(utilities);
		if (running != NIL)
			*qd = linitial(running);
	}
	return *qd ? find_entry(*qd) : NULL;
}

/* The entry of the innermost statement, made if it has none yet. */
static StmtEntry *
current_entry(void)
{
	QueryDesc  *qd;
	StmtEntry  *entry = statement_entry(false, &qd);
	MemoryContext old;

	if (entry != NULL || qd == NULL)
		return entry;
	entry = new_entry(qd, qd->sourceText, qd->plannedstmt->stmt_location,
					  qd->plannedstmt->stmt_len, qd->plannedstmt->queryId,
					  plan_command(qd->plannedstmt));
	old = MemoryContextSwitchTo(TopMemoryContext);
	entries = lcons(entry, entries);
	MemoryContextSwitchTo(old);
	return entry;
}

static void
statement_text(bool outermost, const char **statement, uint64 *query_id)
{
	QueryDesc  *qd;
	StmtEntry  *entry = statement_entry(outermost, &qd);

	*statement = NULL;
	*query_id = 0;
	if (entry != NULL)
	{
		*statement = entry_statement(entry);
		*query_id = entry->query_id;
	}
	else if (qd != NULL)
	{
		*statement = hg_redact_statement(qd->sourceText, qd->plannedstmt->stmt_location,
										 qd->plannedstmt->stmt_len);
		*query_id = qd->plannedstmt->queryId;
	}
}

/* The statement a trigger or a refusal belongs to: the innermost. */
void
hg_audit_current_statement(const char **statement, uint64 *query_id)
{
	statement_text(false, statement, query_id);
}

/* ----------------------------------------------------------------
 *		decrypt() calls
 * ---------------------------------------------------------------- */

/*
 * decrypt() calls of parallel workers, one slot per leader (by PGPROC
 * number).  A worker adds its calls and the per-patient keys they used to
 * its leader's slot.  The leader moves them into the statement's entry when
 * the statement ends, after its workers have finished.
 */
#define WORKER_PATIENT_KEYS		128

typedef struct WorkerDecrypts
{
	slock_t		mutex;
	int64		decrypts;
	int			nkeys;
	bool		keys_overflowed;	/* more keys than fit in keys[] */
	uint32		keys[WORKER_PATIENT_KEYS];
} WorkerDecrypts;

static WorkerDecrypts *worker_decrypts = NULL;

Size
hg_audit_capture_shmem_size(void)
{
	return mul_size(hg_proc_count(), sizeof(WorkerDecrypts));
}

void
hg_audit_capture_shmem_startup(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	worker_decrypts = ShmemInitStruct("hipaa_guard worker decrypts",
									  hg_audit_capture_shmem_size(), &found);
	if (!found)
	{
		memset(worker_decrypts, 0, hg_audit_capture_shmem_size());
		for (int i = 0; i < hg_proc_count(); i++)
			SpinLockInit(&worker_decrypts[i].mutex);
	}
	LWLockRelease(AddinShmemInitLock);
}

static void
note_patient_key(StmtEntry *entry, uint32 key_id)
{
	if (key_id != entry->last_key_id || entry->last_patient == NULL)
	{
		entry->last_key_id = key_id;
		entry->last_patient = NULL;
		if (hg_key_kind(key_id) == HG_KEY_KIND_PATIENT)
		{
			char	   *name = hg_key_name(key_id);

			entry->last_patient = MemoryContextStrdup(entry->cxt,
													  name + strlen(HG_PATIENT_KEY_PREFIX));
		}
	}
	if (entry->last_patient != NULL)
		add_patient(entry, entry->last_patient);
}

/* In a parallel worker: add one call to the leader's slot. */
static void
note_worker_decrypt(uint32 key_id)
{
	static uint32 last_key_id = 0;
	static bool last_is_patient = false;
	PGPROC	   *leader = MyProc->lockGroupLeader;
	WorkerDecrypts *slot;

	if (worker_decrypts == NULL || leader == NULL || leader == MyProc)
		return;
	if (key_id != last_key_id)
	{
		last_is_patient = hg_key_kind(key_id) == HG_KEY_KIND_PATIENT;
		last_key_id = key_id;
	}
	slot = &worker_decrypts[leader->pgprocno];
	SpinLockAcquire(&slot->mutex);
	slot->decrypts++;
	if (last_is_patient && !slot->keys_overflowed)
	{
		int			i;

		for (i = 0; i < slot->nkeys && slot->keys[i] != key_id; i++)
			;
		if (i == slot->nkeys && i < WORKER_PATIENT_KEYS)
			slot->keys[slot->nkeys++] = key_id;
		else if (i == slot->nkeys)
			slot->keys_overflowed = true;
	}
	SpinLockRelease(&slot->mutex);
}

/*
 * In the leader, at the end of a statement: move its workers' calls into
 * entry, or drop them when the statement has no entry.  When the slot ran
 * out of room for keys, the record's detail notes that patients may be
 * missing: the leader may have noted them from its own calls.  During an abort, which must not read the catalog, the calls are
 * counted and their patients are not noted.
 */
static void
collect_worker_decrypts(StmtEntry *entry, bool aborting)
{
	WorkerDecrypts *slot;
	int64		decrypts;
	int			nkeys;
	bool		overflowed;
	uint32		keys[WORKER_PATIENT_KEYS];

	if (worker_decrypts == NULL || MyProc == NULL)
		return;
	slot = &worker_decrypts[MyProc->pgprocno];
	/* Read unlocked first: almost every statement finds nothing here. */
	if (slot->decrypts == 0)
		return;
	SpinLockAcquire(&slot->mutex);
	decrypts = slot->decrypts;
	nkeys = slot->nkeys;
	overflowed = slot->keys_overflowed;
	memcpy(keys, slot->keys, sizeof(uint32) * nkeys);
	slot->decrypts = 0;
	slot->nkeys = 0;
	slot->keys_overflowed = false;
	SpinLockRelease(&slot->mutex);

	if (entry == NULL)
		return;
	entry->decrypts += decrypts;
	if (aborting)
	{
		entry->worker_patients_missing |= nkeys > 0;
		return;
	}
	for (int i = 0; i < nkeys; i++)
		note_patient_key(entry, keys[i]);
	entry->worker_patients_missing |= overflowed;
}

/*
 * Count a decrypt() call against its statement, and note the patient when
 * the value was encrypted under a per-patient key.
 */
void
hg_audit_note_decrypt(uint32 key_id)
{
	StmtEntry  *entry;

	if (IsParallelWorker())
	{
		note_worker_decrypt(key_id);
		return;
	}
	if (!hg_audit_any_configured())
		return;
	entry = current_entry();
	if (entry == NULL)
		return;
	entry->decrypts++;
	note_patient_key(entry, key_id);
}

/* A utility statement starts: triggers it fires (COPY FROM) need its text. */
void
hg_audit_push_utility(PlannedStmt *pstmt, const char *query_string)
{
	StmtEntry  *entry = new_entry(NULL, query_string, pstmt->stmt_location, pstmt->stmt_len,
								  pstmt->queryId,
								  GetCommandTagName(CreateCommandTag(pstmt->utilityStmt)));
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

	entry->depth = list_length(running);
	utilities = lcons(entry, utilities);
	MemoryContextSwitchTo(old);
}

void
hg_audit_pop_utility(void)
{
	StmtEntry  *entry;

	if (utilities == NIL)
		return;
	entry = linitial(utilities);
	utilities = list_delete_first(utilities);
	free_entry(entry);
}

void
hg_audit_set_export(bool on)
{
	in_export = on;
}

uint64
hg_audit_executor_exports(void)
{
	return executor_exports;
}

void
hg_audit_capture_install_hooks(void)
{
	prev_start = ExecutorStart_hook;
	ExecutorStart_hook = hg_executor_start;
	prev_run = ExecutorRun_hook;
	ExecutorRun_hook = hg_executor_run;
	prev_finish = ExecutorFinish_hook;
	ExecutorFinish_hook = hg_executor_finish;
	prev_end = ExecutorEnd_hook;
	ExecutorEnd_hook = hg_executor_end;
	RegisterXactCallback(capture_xact_callback, NULL);
	RegisterSubXactCallback(capture_subxact_callback, NULL);
}

/*
 * hipaa_guard.audit_event(kind, command, relation, detail, patients): record
 * an event of the extension's own SQL functions (care teams, break-glass,
 * audit and retention settings) the durable way.
 */
PG_FUNCTION_INFO_V1(hg_audit_event);
Datum
hg_audit_event(PG_FUNCTION_ARGS)
{
	HgAuditEvent ev;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("audit event kind and command must not be null")));
	hg_audit_event_init(&ev, text_to_cstring(PG_GETARG_TEXT_PP(0)),
						text_to_cstring(PG_GETARG_TEXT_PP(1)));
	if (!PG_ARGISNULL(2))
		ev.relation = text_to_cstring(PG_GETARG_TEXT_PP(2));
	if (!PG_ARGISNULL(3))
		ev.detail = text_to_cstring(PG_GETARG_TEXT_PP(3));
	if (!PG_ARGISNULL(4))
	{
		ArrayType  *array = PG_GETARG_ARRAYTYPE_P(4);
		Datum	   *elements;
		bool	   *nulls;
		int			count;

		deconstruct_array(array, TEXTOID, -1, false, TYPALIGN_INT, &elements, &nulls, &count);
		for (int i = 0; i < count; i++)
		{
			if (!nulls[i])
				ev.patients = lappend(ev.patients, TextDatumGetCString(elements[i]));
		}
	}
	/* The user's statement, not the extension's call of this function. */
	statement_text(true, &ev.statement, &ev.query_id);
	hg_audit_record_durable(&ev);
	PG_RETURN_VOID();
}

/*
 * hipaa_guard.audit_patient(patient): note the patient of a row that a
 * statement reads, and let the row through.  A restrictive policy of
 * audited tables with a patient column calls it, so each read record lists
 * the patients whose rows the statement read.  It is costed high, so the
 * planner applies the query's own leakproof conditions first.  Rows that a
 * condition which is not leakproof rejects later are still listed.
 */
PG_FUNCTION_INFO_V1(hg_audit_patient);
Datum
hg_audit_patient(PG_FUNCTION_ARGS)
{
	StmtEntry  *entry;
	QueryDesc  *qd;

	if (PG_ARGISNULL(0) || IsParallelWorker())
		PG_RETURN_BOOL(true);
	entry = statement_entry(false, &qd);
	if (entry != NULL && !entry->many_patients && !is_last_patient(entry, PG_GETARG_TEXT_PP(0)))
	{
		char	   *patient = text_to_cstring(PG_GETARG_TEXT_PP(0));

		add_patient(entry, patient);
		pfree(patient);
	}
	PG_RETURN_BOOL(true);
}
