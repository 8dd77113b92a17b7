/*
 * retention.c
 *		The lock that lets one retention purge run at a time in a database,
 *		and the role switch under which a purge touches the purged tables.
 *
 * hipaa_guard.purge() commits after each batch, so a transaction lock would
 * be gone after the first batch, and PL/pgSQL cannot release a session lock
 * when the procedure fails or is cancelled: its exception blocks cannot
 * surround a COMMIT.  This file takes a session-level advisory lock and drops
 * it again when the transaction running the purge aborts, so a cancelled
 * purge never leaves the lock behind in an idle session.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "hipaa_guard.h"

static bool purge_lock_held = false;
static bool callback_registered = false;

static void
purge_lock_tag(LOCKTAG *tag)
{
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, HG_ADVISORY_LOCK_CLASS,
						 HG_PURGE_LOCK_ID, 2);
}

static void
release_purge_lock(void)
{
	LOCKTAG		tag;

	if (!purge_lock_held)
		return;
	purge_lock_tag(&tag);
	LockRelease(&tag, ExclusiveLock, true);
	purge_lock_held = false;
}

static void
purge_lock_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT)
		release_purge_lock();
}

/* Take the purge lock without waiting; false when another session has it. */
PG_FUNCTION_INFO_V1(hg_purge_lock);
Datum
hg_purge_lock(PG_FUNCTION_ARGS)
{
	LOCKTAG		tag;

	if (purge_lock_held)
		PG_RETURN_BOOL(true);
	if (!callback_registered)
	{
		RegisterXactCallback(purge_lock_xact_callback, NULL);
		callback_registered = true;
	}
	purge_lock_tag(&tag);
	if (LockAcquire(&tag, ExclusiveLock, true, true) == LOCKACQUIRE_NOT_AVAIL)
		PG_RETURN_BOOL(false);
	purge_lock_held = true;
	PG_RETURN_BOOL(true);
}

PG_FUNCTION_INFO_V1(hg_purge_unlock);
Datum
hg_purge_unlock(PG_FUNCTION_ARGS)
{
	release_purge_lock();
	PG_RETURN_VOID();
}

/*
 * Run one statement of a purge as the role hipaa_purger, with parameters $1
 * and $2 (tid), $3 (text[]), $4 (integer) and $5 (text), and return its
 * single row of (bigint, bigint, bytea, text[], bigint[]).
 *
 * The purge functions are SECURITY DEFINER, so they run as the extension
 * owner, a superuser.  A statement on the purged table runs its triggers and
 * the functions of its column types, which the table's owner wrote: as a
 * superuser they would let that owner run code with a superuser's rights.
 * hipaa_purger has only the table privileges that set_retention() grants,
 * and the restricted-operation flag keeps that code from changing roles or
 * settings that outlive the statement, as VACUUM and ANALYZE do.
 */
PG_FUNCTION_INFO_V1(hg_run_as_purger);
Datum
hg_run_as_purger(PG_FUNCTION_ARGS)
{
	char	   *query = text_to_cstring(PG_GETARG_TEXT_PP(0));
	Oid			argtypes[5] = {TIDOID, TIDOID, TEXTARRAYOID, INT4OID, TEXTOID};
	Datum		values[5];
	char		nulls[5];
	Oid			purger = get_role_oid(HG_PURGER_ROLE, false);
	Oid			save_userid;
	int			save_sec_context;
	int			save_nestlevel;
	TupleDesc	result_desc;
	HeapTuple	result;

	if (get_call_result_type(fcinfo, NULL, &result_desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	for (int i = 0; i < 5; i++)
	{
		values[i] = PG_GETARG_DATUM(i + 1);
		nulls[i] = PG_ARGISNULL(i + 1) ? 'n' : ' ';
	}

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(purger, save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	save_nestlevel = NewGUCNestLevel();
	/*
	 * The callers pin search_path to pg_catalog; triggers written for the
	 * table expect PostgreSQL's default instead.  pg_catalog is still
	 * searched first, so no operator of the generated statements can be
	 * replaced.
	 */
	(void) set_config_option("search_path", "\"$user\", public", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args(query, 5, argtypes, values, nulls, false, 0) < 0 ||
		SPI_processed != 1 || SPI_tuptable->tupdesc->natts != result_desc->natts)
		elog(ERROR, "purge statement must return exactly one row of %d columns",
			 result_desc->natts);
	result = SPI_copytuple(SPI_tuptable->vals[0]);
	SPI_finish();

	AtEOXact_GUC(false, save_nestlevel);
	SetUserIdAndSecContext(save_userid, save_sec_context);

	PG_RETURN_DATUM(heap_copy_tuple_as_datum(result, result_desc));
}
