/*
 * careteam.c
 *		The per-session cache of the current actor's patients, which the
 *		care-team row level security policies read once per statement.
 *
 * Computing the list reads the actor's care assignments and break-glass
 * events (hipaa_guard.compute_my_patients()), which costs far more than the
 * index lookup of a clinician's typical query.  The list changes only when
 * those tables change or when one of the actor's assignments or events
 * starts or ends.  So each session keeps the last list with the moment it
 * stops being right.  Every write to either table, through the functions or
 * directly, sends a relcache invalidation of care_assignments, and that marks
 * the cache of every session stale when the writer commits.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "parser/parse_func.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

typedef struct PatientCache
{
	bool		valid;
	char	   *actor;			/* in TopMemoryContext */
	bool		mfa_ok;
	TimestampTz valid_until;	/* the list is right before this moment */
	ArrayType  *patients;		/* in TopMemoryContext */
} PatientCache;

static PatientCache cache;
static Oid	care_table = InvalidOid;
static bool callback_registered = false;

static void
forget_patients(void)
{
	cache.valid = false;
	if (cache.actor)
		pfree(cache.actor);
	if (cache.patients)
		pfree(cache.patients);
	cache.actor = NULL;
	cache.patients = NULL;
}

static void
care_inval_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == care_table)
		cache.valid = false;
}

/* Functions and table of the extension, looked up again if it was recreated. */
static Oid	fn_actor = InvalidOid;
static Oid	fn_mfa_ok = InvalidOid;
static Oid	fn_compute = InvalidOid;

static Oid
extension_function(Oid schema, const char *name)
{
	List	   *qualified = list_make2(makeString(get_namespace_name(schema)),
									   makeString(pstrdup(name)));

	return LookupFuncName(qualified, 0, NULL, false);
}

static void
resolve_objects(void)
{
	Oid			schema;

	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(care_inval_callback, (Datum) 0);
		callback_registered = true;
	}
	if (OidIsValid(fn_compute) && SearchSysCacheExists1(PROCOID, ObjectIdGetDatum(fn_compute)))
		return;
	/* The control file fixes the schema: the extension is not relocatable. */
	schema = get_namespace_oid("hipaa_guard", false);
	care_table = get_relname_relid("care_assignments", schema);
	fn_actor = extension_function(schema, "actor");
	fn_mfa_ok = extension_function(schema, "actor_mfa_ok");
	fn_compute = extension_function(schema, "compute_my_patients");
	cache.valid = false;
}

static Datum
call_function(Oid fn, bool *isnull)
{
	LOCAL_FCINFO(fcinfo, 0);
	FmgrInfo	flinfo;
	Datum		result;

	fmgr_info(fn, &flinfo);
	InitFunctionCallInfoData(*fcinfo, &flinfo, 0, InvalidOid, NULL, NULL);
	result = FunctionCallInvoke(fcinfo);
	*isnull = fcinfo->isnull;
	return result;
}

static void
compute_patients(const char *actor, bool mfa_ok)
{
	bool		isnull;
	HeapTupleHeader row = DatumGetHeapTupleHeader(call_function(fn_compute, &isnull));
	Datum		patients;
	Datum		valid_until;
	bool		patients_null;
	bool		until_null;
	MemoryContext old;

	patients = GetAttributeByNum(row, 1, &patients_null);
	valid_until = GetAttributeByNum(row, 2, &until_null);

	forget_patients();
	old = MemoryContextSwitchTo(TopMemoryContext);
	cache.actor = pstrdup(actor);
	cache.patients = patients_null ? construct_empty_array(TEXTOID) : DatumGetArrayTypePCopy(patients);
	MemoryContextSwitchTo(old);
	cache.mfa_ok = mfa_ok;
	cache.valid_until = until_null ? DT_NOEND : DatumGetTimestampTz(valid_until);
	cache.valid = true;
}

/*
 * hipaa_guard.my_patients(): the patients the current actor may see now.
 * "Now" is the start of the transaction, as for now() in the SQL it caches.
 */
PG_FUNCTION_INFO_V1(hg_my_patients);
Datum
hg_my_patients(PG_FUNCTION_ARGS)
{
	bool		isnull;
	char	   *actor;
	bool		mfa_ok;
	TimestampTz at = GetCurrentTransactionStartTimestamp();

	resolve_objects();
	actor = TextDatumGetCString(call_function(fn_actor, &isnull));
	mfa_ok = DatumGetBool(call_function(fn_mfa_ok, &isnull)) && !isnull;

	if (!(cache.valid && cache.mfa_ok == mfa_ok && strcmp(cache.actor, actor) == 0 &&
		  at < cache.valid_until))
		compute_patients(actor, mfa_ok);
	PG_RETURN_ARRAYTYPE_P(DatumGetArrayTypePCopy(PointerGetDatum(cache.patients)));
}

/*
 * Statement trigger on care_assignments and break_glass_events: every
 * session drops its cached lists when the writing transaction commits, and
 * this session at its next command.
 */
PG_FUNCTION_INFO_V1(hg_care_changed);
Datum
hg_care_changed(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("hipaa_guard.care_changed() must be called as a trigger")));
	resolve_objects();
	CacheInvalidateRelcacheByRelid(care_table);
	return PointerGetDatum(NULL);
}
