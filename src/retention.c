/*
 * retention.c
 *		The lock that lets one retention purge run at a time in a database.
 *
 * hipaa_guard.purge() commits after each batch, so a transaction lock would
 * be gone after the first batch, and PL/pgSQL cannot release a session lock
 * when the procedure fails or is cancelled: its exception blocks cannot
 * surround a COMMIT.  This file takes a session-level advisory lock and drops
 * it again when the transaction running the purge aborts, so a cancelled
 * purge never leaves the lock behind in an idle session.
 */
#include "postgres.h"

#include "access/xact.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/lock.h"

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
