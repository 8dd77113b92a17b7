/*
 * worker.c
 *		Scheduled purges: the launcher background worker and the purge worker
 *		it starts in each database.  At its start the launcher also starts
 *		the audit sealers (sealer.c), one database after another.
 *
 * The launcher is a static background worker, registered only when the
 * library is preloaded, so a server has exactly one.  It connects to no
 * database, which lets it read the shared catalog pg_database and nothing
 * else.  A round is due hipaa_guard.purge_naptime after the previous round
 * started.  The first one is due a minute after the launcher starts, or a
 * naptime if that is shorter.  Not at once, so that a purge that crashes the
 * server does not run again the moment it restarts, and yet soon enough that
 * a server restarted more often than the naptime still purges.  In a
 * round the launcher starts one purge worker for each database that accepts
 * connections, one after another, and waits for each to exit.  A round
 * therefore uses one worker slot, and only one scheduled purge at a time
 * loads the server.
 *
 * A purge worker connects to one database as the bootstrap superuser.  If the
 * extension is installed there, it runs CALL hipaa_guard.purge() as a
 * top-level statement, the way a client's simple query runs, because the
 * procedure commits between batches and PostgreSQL allows that only when
 * CALL is not nested in a function, in SPI or in a transaction block.  It
 * then logs one line with the counts that the run recorded in
 * hipaa_guard.purge_receipts.  An error in the purge is logged by PostgreSQL
 * and ends the worker with exit code 1, which the postmaster does not treat
 * as a crash.  The launcher then goes on with the next database.
 */
#include "postgres.h"

#include <limits.h>

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "parser/analyze.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/pquery.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/portal.h"
#include "utils/ps_status.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "auditqueue.h"
#include "worker.h"

#define HG_LIBRARY_NAME			"hipaa_guard"
#define HG_LAUNCHER_TYPE		"hipaa_guard launcher"
#define HG_PURGE_WORKER_TYPE	"hipaa_guard purge"

/* Seconds the postmaster waits before it restarts a launcher that failed. */
#define HG_LAUNCHER_RESTART_SECONDS	5

#define HG_PURGE_STATEMENT		"CALL hipaa_guard.purge()"

/*
 * Counts of the receipts that one run wrote, one receipt per policy.  The
 * procedure commits between batches, so its receipts are visible once CALL
 * returns.  A policy that failed has a receipt with status 'failed'.
 */
#define HG_RECEIPTS_QUERY \
	"SELECT coalesce(sum(rows_purged), 0)::int8, coalesce(sum(rows_held), 0)::int8," \
	"       count(*)::int4, (count(*) FILTER (WHERE status = 'failed'))::int4" \
	"  FROM hipaa_guard.purge_receipts" \
	" WHERE runner_pid = $1 AND started_at >= $2"

/* Seconds between purge rounds, or 0 to disable scheduled purges. */
int			hg_purge_naptime = 3600;

/* Delay of the first round after the launcher starts, at most a naptime. */
#define FIRST_ROUND_DELAY_MS	60000

/*
 * Whether the launcher has warned that no worker slot was free.  It warns
 * again only after a purge worker has started, so that a server short of
 * slots does not log the warning every round.
 */
static bool slot_warning_logged = false;

/*
 * Register the launcher.  Must be called from _PG_init while
 * shared_preload_libraries is being processed.
 */
void
hg_worker_register(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = HG_LAUNCHER_RESTART_SECONDS;
	strlcpy(worker.bgw_library_name, HG_LIBRARY_NAME, BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "hg_launcher_main", BGW_MAXLEN);
	strlcpy(worker.bgw_name, HG_LAUNCHER_TYPE, BGW_MAXLEN);
	strlcpy(worker.bgw_type, HG_LAUNCHER_TYPE, BGW_MAXLEN);
	RegisterBackgroundWorker(&worker);
}

/*
 * Return the OIDs of the databases a round visits: those that accept
 * connections and are neither templates nor left invalid by an interrupted
 * DROP DATABASE.  The list is allocated in the caller's memory context.
 */
static List *
list_purge_databases(void)
{
	MemoryContext result_context = CurrentMemoryContext;
	List	   *databases = NIL;
	Relation	relation;
	TableScanDesc scan;
	HeapTuple	tuple;

	StartTransactionCommand();

	/*
	 * Like the autovacuum launcher, take a snapshot so that this process
	 * advertises an xmin while it reads pg_database.
	 */
	(void) GetTransactionSnapshot();

	relation = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(relation, 0, NULL);
	while (HeapTupleIsValid(tuple = heap_getnext(scan, ForwardScanDirection)))
	{
		Form_pg_database database = (Form_pg_database) GETSTRUCT(tuple);
		MemoryContext old_context;

		if (!database->datallowconn || database->datistemplate ||
			database_is_invalid_form(database))
			continue;

		old_context = MemoryContextSwitchTo(result_context);
		databases = lappend_oid(databases, database->oid);
		MemoryContextSwitchTo(old_context);
	}
	table_endscan(scan);
	table_close(relation, AccessShareLock);

	CommitTransactionCommand();
	MemoryContextSwitchTo(result_context);

	return databases;
}

/*
 * Start a purge worker for one database and wait until it exits, whether it
 * succeeded or failed.  Return false when no worker slot is free.
 */
static bool
run_purge_worker(Oid database_oid)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	strlcpy(worker.bgw_library_name, HG_LIBRARY_NAME, BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "hg_purge_worker_main", BGW_MAXLEN);
	snprintf(worker.bgw_name, BGW_MAXLEN, "%s for database %u",
			 HG_PURGE_WORKER_TYPE, database_oid);
	strlcpy(worker.bgw_type, HG_PURGE_WORKER_TYPE, BGW_MAXLEN);
	worker.bgw_main_arg = ObjectIdGetDatum(database_oid);
	worker.bgw_notify_pid = MyProcPid;

	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
	{
		if (!slot_warning_logged)
			ereport(WARNING,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("out of background worker slots for hipaa_guard purges"),
					 errdetail("The databases left in this round are skipped, and each later round tries again. "
							   "This warning is repeated only after a purge worker has started."),
					 errhint("You might need to increase \"max_worker_processes\".")));
		slot_warning_logged = true;
		return false;
	}
	slot_warning_logged = false;

	/*
	 * The worker's own errors are in the server log already, and the next
	 * database must be purged regardless, so its exit status is not needed.
	 */
	if (WaitForBackgroundWorkerShutdown(handle) == BGWH_POSTMASTER_DIED)
		proc_exit(1);
	pfree(handle);

	return true;
}

/*
 * Exit when SIGTERM has arrived.  The exit code is 1 so that, after
 * pg_terminate_backend(), the postmaster starts the launcher again, as it
 * does for the logical replication launcher.  At server shutdown it does not.
 */
static void
exit_if_shutdown_requested(void)
{
	if (ShutdownRequestPending)
		proc_exit(1);
}

/* Run one purge worker after another, one for each database. */
static void
run_purge_round(void)
{
	List	   *databases = list_purge_databases();
	ListCell   *cell;

	foreach(cell, databases)
	{
		CHECK_FOR_INTERRUPTS();
		exit_if_shutdown_requested();
		if (!run_purge_worker(lfirst_oid(cell)))
			break;
	}
}

/*
 * Return the milliseconds until the next round is due (0 when it is due now),
 * or -1 when scheduled purges are disabled.  The naptime is read on every
 * call, so a reload that shortens it takes effect at once.
 */
static long
ms_until_next_round(TimestampTz last_round_start)
{
	TimestampTz due;
	long		delay_ms;

	if (hg_purge_naptime == 0)
		return -1;
	due = TimestampTzPlusMilliseconds(last_round_start,
									  (int64) hg_purge_naptime * 1000);
	delay_ms = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), due);

	/*
	 * A latch wait takes at most INT_MAX ms (about 24.8 days), which is less
	 * than the longest naptime.  The loop then computes the rest and waits
	 * again.
	 */
	return Min(delay_ms, (long) INT_MAX);
}

/*
 * Return the start time of an imagined previous round that makes the first
 * round due FIRST_ROUND_DELAY_MS from now, or a naptime from now if shorter.
 */
static TimestampTz
first_round_base(void)
{
	int64		naptime_ms = (int64) hg_purge_naptime * 1000;

	return TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
									   -(naptime_ms - Min(naptime_ms, FIRST_ROUND_DELAY_MS)));
}

/* Start a sealer in each database that a purge round would visit. */
static void
start_sealers(MemoryContext context)
{
	MemoryContext old_context = MemoryContextSwitchTo(context);

	hg_sealers_start_all(list_purge_databases());
	MemoryContextSwitchTo(old_context);
	MemoryContextReset(context);
}

/*
 * Main function of the launcher.  A SIGTERM that arrives while a purge worker
 * runs takes effect when that worker exits.  At server shutdown the postmaster
 * stops the purge worker too.  To stop scheduled purges without a restart,
 * set hipaa_guard.purge_naptime to 0.
 */
void
hg_launcher_main(Datum main_arg)
{
	MemoryContext round_context;
	TimestampTz last_round_start;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	round_context = AllocSetContextCreate(TopMemoryContext,
										  "hipaa_guard launcher round",
										  ALLOCSET_DEFAULT_SIZES);

	/*
	 * Sealers run in every database with the extension from server start, so
	 * that records queued before a crash are sealed without waiting for new
	 * ones.  A sealer that finds no extension exits at once.
	 */
	start_sealers(round_context);

	last_round_start = first_round_base();

	for (;;)
	{
		long		delay_ms;
		int			wait_events = WL_LATCH_SET | WL_EXIT_ON_PM_DEATH;

		CHECK_FOR_INTERRUPTS();
		exit_if_shutdown_requested();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		delay_ms = ms_until_next_round(last_round_start);
		if (delay_ms == 0)
		{
			MemoryContext old_context;

			last_round_start = GetCurrentTimestamp();
			MemoryContextReset(round_context);
			old_context = MemoryContextSwitchTo(round_context);
			run_purge_round();
			MemoryContextSwitchTo(old_context);
			continue;
		}

		if (delay_ms > 0)
			wait_events |= WL_TIMEOUT;
		(void) WaitLatch(MyLatch, wait_events, delay_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/* Return whether the extension is installed in the current database. */
static bool
extension_installed(void)
{
	bool		installed;

	StartTransactionCommand();
	installed = OidIsValid(get_extension_oid(HG_LIBRARY_NAME, true));
	CommitTransactionCommand();

	return installed;
}

/*
 * Parse, plan and run one statement the way a client's simple query runs, in
 * the current transaction and the unnamed portal.  isTopLevel is true, so a
 * procedure that the statement calls may commit.  The caller starts and
 * commits the transaction.
 */
void
hg_execute_top_level_statement(const char *sql)
{
	MemoryContext statement_context;
	MemoryContext transaction_context;
	RawStmt    *raw_statement;
	CommandTag	command_tag;
	List	   *queries;
	List	   *plans;
	bool		snapshot_set = false;
	Portal		portal;
	DestReceiver *receiver;
	QueryCompletion completion;

	/*
	 * The parse and plan trees must outlive the transaction, because the
	 * procedure's COMMIT ends the transaction that the statement began in.
	 */
	statement_context = AllocSetContextCreate(TopMemoryContext,
											  "hipaa_guard purge statement",
											  ALLOCSET_DEFAULT_SIZES);
	transaction_context = MemoryContextSwitchTo(statement_context);

	raw_statement = linitial_node(RawStmt, pg_parse_query(sql));
	command_tag = CreateCommandTag(raw_statement->stmt);
	set_ps_display(GetCommandTagName(command_tag));

	if (analyze_requires_snapshot(raw_statement))
	{
		PushActiveSnapshot(GetTransactionSnapshot());
		snapshot_set = true;
	}
	queries = pg_analyze_and_rewrite_fixedparams(raw_statement, sql, NULL, 0, NULL);
	plans = pg_plan_queries(queries, sql, CURSOR_OPT_PARALLEL_OK, NULL);
	if (snapshot_set)
		PopActiveSnapshot();

	CHECK_FOR_INTERRUPTS();

	portal = CreatePortal("", true, true);
	portal->visible = false;
	PortalDefineQuery(portal, NULL, sql, command_tag, plans, NULL);
	PortalStart(portal, NULL, 0, InvalidSnapshot);
	receiver = CreateDestReceiver(DestNone);

	/*
	 * PortalRun is entered in the transaction's context, because it then
	 * returns in the context of whatever transaction is current at its end.
	 */
	MemoryContextSwitchTo(transaction_context);
	(void) PortalRun(portal, FETCH_ALL, true, true, receiver, receiver, &completion);

	receiver->rDestroy(receiver);
	PortalDrop(portal, false);
	MemoryContextDelete(statement_context);
}

/* Run the purge procedure in its own transactions. */
static void
call_purge(void)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	debug_query_string = HG_PURGE_STATEMENT;
	pgstat_report_activity(STATE_RUNNING, HG_PURGE_STATEMENT);

	hg_execute_top_level_statement(HG_PURGE_STATEMENT);

	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
	debug_query_string = NULL;
}

/*
 * Log the one line of a run: the counts of the receipts that this process
 * wrote since run_start.  Only counts are logged, never row contents.
 */
static void
log_purge_run(TimestampTz run_start, TimestampTz run_end)
{
	Oid			argument_types[2] = {INT4OID, TIMESTAMPTZOID};
	Datum		arguments[2];
	int64		rows_purged;
	int64		rows_held;
	int32		policies;
	int32		failed;
	HeapTuple	row;
	TupleDesc	row_type;
	bool		isnull;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	arguments[0] = Int32GetDatum(MyProcPid);
	arguments[1] = TimestampTzGetDatum(run_start);
	if (SPI_execute_with_args(HG_RECEIPTS_QUERY, 2, argument_types, arguments,
							  NULL, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not read hipaa_guard.purge_receipts");

	/* The sums are coalesced and counts are never null. */
	row = SPI_tuptable->vals[0];
	row_type = SPI_tuptable->tupdesc;
	rows_purged = DatumGetInt64(SPI_getbinval(row, row_type, 1, &isnull));
	rows_held = DatumGetInt64(SPI_getbinval(row, row_type, 2, &isnull));
	policies = DatumGetInt32(SPI_getbinval(row, row_type, 3, &isnull));
	failed = DatumGetInt32(SPI_getbinval(row, row_type, 4, &isnull));

	ereport(LOG,
			(errmsg_plural("hipaa_guard: purge in database \"%s\": %lld rows purged, %lld rows held, %d policy, %d failed, in %ld ms",
						   "hipaa_guard: purge in database \"%s\": %lld rows purged, %lld rows held, %d policies, %d failed, in %ld ms",
						   policies,
						   get_database_name(MyDatabaseId),
						   (long long) rows_purged, (long long) rows_held,
						   policies, failed,
						   TimestampDifferenceMilliseconds(run_start, run_end))));

	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
}

/*
 * Main function of a purge worker.  bgw_main_arg is the OID of its database.
 * A database without the extension is left silently.
 */
void
hg_purge_worker_main(Datum main_arg)
{
	Oid			database_oid = DatumGetObjectId(main_arg);
	TimestampTz run_start;
	TimestampTz run_end;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	/*
	 * No role OID means the bootstrap superuser.  Naming it by OID instead
	 * would fail on a server where that role may not log in.  NOTE: the
	 * purge's DELETE and UPDATE fire the triggers of the purged tables, so
	 * their owners' trigger functions run with superuser rights here.
	 */
	BackgroundWorkerInitializeConnectionByOid(database_oid, InvalidOid, 0);

	if (!extension_installed())
		proc_exit(0);

	SetConfigOption("application_name", HG_PURGE_WORKER_TYPE,
					PGC_USERSET, PGC_S_SESSION);

	/*
	 * A database owner may set search_path for the database, and this worker
	 * runs as a superuser, so it resolves names in pg_catalog only.  Functions
	 * that set their own search_path still do.
	 */
	SetConfigOption("search_path", "pg_catalog, pg_temp",
					PGC_USERSET, PGC_S_SESSION);

	run_start = GetCurrentTimestamp();
	call_purge();
	run_end = GetCurrentTimestamp();
	log_purge_run(run_start, run_end);

	proc_exit(0);
}
