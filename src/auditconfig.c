/*
 * auditconfig.c
 *		Which tables are audited, cached per session, and the guard that
 *		keeps an audited table from being read unaudited.
 *
 * The capture hooks look up every relation of every statement, so the
 * lookup uses a per-session hash table built from
 * hipaa_guard.audited_tables.  A statement trigger on that table sends a
 * relcache invalidation of it, which empties the cache of every session
 * when the writer commits, the way care_assignments does in careteam.c.
 *
 * The guard is a restrictive row level security policy that enable_audit()
 * puts on the table, calling audit_guard().  When the library was preloaded,
 * the planner support function of audit_guard() folds the call to true, so
 * the policy costs nothing and leaves plans as they were.  When it was not,
 * no capture hook runs, the call stays, and it raises an error: the read is
 * refused instead of going unrecorded.
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/parallel.h"
#include "access/xact.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/supportnodes.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "audit.h"
#include "auditcapture.h"
#include "hipaa_guard.h"

typedef struct AuditedEntry
{
	Oid			relid;			/* hash key */
	HgAuditedRel rel;
} AuditedEntry;

static HTAB *audited = NULL;
static bool audited_valid = false;
static Oid	config_table = InvalidOid;
static bool callback_registered = false;

/* The trail's own tables: DDL on them is recorded, reads are not. */
static const char *const trail_tables[] = {
	"audited_tables", "audit_queue", "audit_log", "audit_block"
};

static void
audit_config_inval(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == config_table)
		audited_valid = false;
}

static AuditedEntry *
add_entry(Oid relid)
{
	AuditedEntry *entry;
	bool		found;
	char	   *relname = get_rel_name(relid);

	if (relname == NULL)
		return NULL;			/* dropped since it was configured */
	entry = hash_search(audited, &relid, HASH_ENTER, &found);
	if (!found)
	{
		memset(&entry->rel, 0, sizeof(HgAuditedRel));
		entry->rel.name = MemoryContextStrdup(TopMemoryContext,
											  quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
																		 relname));
	}
	return entry;
}

static void
reset_cache(void)
{
	HASHCTL		ctl;

	if (audited != NULL)
		hash_destroy(audited);	/* the names leak: rare, and small */
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(AuditedEntry);
	audited = hash_create("hipaa_guard audited tables", 64, &ctl, HASH_ELEM | HASH_BLOBS);
}

static void
load_configured_tables(void)
{
	Relation	rel = table_open(config_table, AccessShareLock);

	/*
	 * A catalog snapshot, not the transaction's: taking that one here, at
	 * the first statement of a transaction, would make a following SET
	 * TRANSACTION ISOLATION LEVEL fail.
	 */
	Snapshot	snapshot = RegisterSnapshot(GetCatalogSnapshot(config_table));
	TableScanDesc scan = table_beginscan(rel, snapshot, 0, NULL);
	HeapTuple	tuple;

	while ((tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		TupleDesc	desc = RelationGetDescr(rel);
		bool		isnull;
		AuditedEntry *entry;

		/* Columns tbl, reads and writes, none of them nullable. */
		entry = add_entry(DatumGetObjectId(heap_getattr(tuple, 1, desc, &isnull)));
		if (entry == NULL)
			continue;
		entry->rel.reads = DatumGetBool(heap_getattr(tuple, 2, desc, &isnull));
		entry->rel.writes = DatumGetBool(heap_getattr(tuple, 3, desc, &isnull));
	}
	table_endscan(scan);
	UnregisterSnapshot(snapshot);
	table_close(rel, AccessShareLock);
}

/*
 * Build the cache if it is not valid.  Returns false, leaving it invalid,
 * when the extension is not installed in this database.  That costs one
 * syscache lookup per call, because the syscache keeps the negative result.
 */
static bool
ensure_cache(void)
{
	Oid			schema;

	if (audited_valid)
		return true;
	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(audit_config_inval, (Datum) 0);
		callback_registered = true;
	}
	/* Parallel workers cannot read the table; their leader records. */
	if (!IsTransactionState() || IsParallelWorker())
		return false;
	schema = get_namespace_oid("hipaa_guard", true);
	if (!OidIsValid(schema))
		return false;
	config_table = get_relname_relid("audited_tables", schema);
	if (!OidIsValid(config_table))
		return false;
	reset_cache();
	for (size_t i = 0; i < lengthof(trail_tables); i++)
	{
		AuditedEntry *entry = add_entry(get_relname_relid(trail_tables[i], schema));

		if (entry != NULL)
			entry->rel.trail = true;
	}
	load_configured_tables();
	audited_valid = true;
	return true;
}

/*
 * A partition is audited as its nearest audited ancestor is, because a
 * query may name the partition instead of the table that was configured.
 * The result is cached, a negative one as an entry with both flags off.
 */
static AuditedEntry *
cache_partition(Oid relid)
{
	AuditedEntry *entry;
	List	   *ancestors = NIL;
	ListCell   *lc;

	if (get_rel_relispartition(relid))
		ancestors = get_partition_ancestors(relid);
	entry = add_entry(relid);
	if (entry == NULL)
		return NULL;
	foreach(lc, ancestors)
	{
		AuditedEntry *ancestor = hash_search(audited, &lfirst_oid(lc), HASH_FIND, NULL);

		if (ancestor != NULL && (ancestor->rel.reads || ancestor->rel.writes))
		{
			entry->rel.reads = ancestor->rel.reads;
			entry->rel.writes = ancestor->rel.writes;
			break;
		}
	}
	return entry;
}

/* How relid is audited, or NULL if it is not. */
const HgAuditedRel *
hg_audited_rel(Oid relid)
{
	AuditedEntry *entry;

	if (!ensure_cache())
		return NULL;
	entry = hash_search(audited, &relid, HASH_FIND, NULL);
	if (entry == NULL)
		entry = cache_partition(relid);
	if (entry == NULL || !(entry->rel.reads || entry->rel.writes || entry->rel.trail))
		return NULL;
	return &entry->rel;
}

bool
hg_audit_relation_audited(Oid relid)
{
	const HgAuditedRel *rel = hg_audited_rel(relid);

	return rel != NULL && (rel->reads || rel->writes);
}

/* Whether this database has the extension, so any table could be audited. */
bool
hg_audit_any_configured(void)
{
	return ensure_cache();
}

/*
 * Statement trigger on audited_tables: make every session rebuild its
 * cache once this transaction commits.
 */
PG_FUNCTION_INFO_V1(hg_audit_config_changed);
Datum
hg_audit_config_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "audit_config_changed: not called as a trigger");
	CacheInvalidateRelcacheByRelid(RelationGetRelid(trigdata->tg_relation));
	return PointerGetDatum(NULL);
}

/*
 * hipaa_guard.audit_guard(): true when reads of audited tables are recorded
 * in this session, an error otherwise.
 */
PG_FUNCTION_INFO_V1(hg_audit_guard);
Datum
hg_audit_guard(PG_FUNCTION_ARGS)
{
	if (!hg_is_preloaded())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("reads of audited tables are refused because hipaa_guard is not preloaded"),
				 errdetail("Without the library in shared_preload_libraries, reads would not be recorded."),
				 errhint("Add hipaa_guard to shared_preload_libraries in postgresql.conf and restart the server.")));
	PG_RETURN_BOOL(true);
}

/* Planner support of audit_guard(): fold it to true when it would be. */
PG_FUNCTION_INFO_V1(hg_audit_guard_support);
Datum
hg_audit_guard_support(PG_FUNCTION_ARGS)
{
	Node	   *request = (Node *) PG_GETARG_POINTER(0);

	if (IsA(request, SupportRequestSimplify) && hg_is_preloaded())
		PG_RETURN_POINTER(makeBoolConst(true, false));
	PG_RETURN_POINTER(NULL);
}
