/*
 * careteam.c
 *		The per-session cache of the current actor's patients, which the
 *		care-team row level security policies read once per statement, the
 *		planner support of those policies (the index condition derived from
 *		cares_for() and the choice of a plain index scan to read it), the
 *		patient column's statistics as roles under the policy see them, and
 *		the refusal of EXPLAIN ANALYZE on protected tables.
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

#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_am.h"
#include "catalog/pg_statistic.h"
#include "catalog/pg_type.h"
#include "catalog/namespace.h"
#include "commands/extension.h"
#include "commands/defrem.h"
#include "commands/explain.h"
#include "commands/prepare.h"
#include "commands/trigger.h"
#include "rewrite/rewriteHandler.h"
#include "rewrite/rowsecurity.h"
#include "tcop/utility.h"
#include "utils/rel.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "nodes/pathnodes.h"
#include "nodes/supportnodes.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/paths.h"
#include "access/stratnum.h"
#include "parser/parse_func.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/selfuncs.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "careteam.h"

typedef struct PatientCache
{
	bool		valid;
	char	   *actor;			/* in TopMemoryContext */
	bool		mfa_ok;
	TimestampTz valid_until;	/* the list is right before this moment */
	ArrayType  *patients;		/* in TopMemoryContext */
} PatientCache;

static PatientCache cache;

/*
 * The cached list sorted for cares_for(), built on first use.  A replaced
 * set is kept until the next replacement, because a statement that is still
 * running may use it.
 */
typedef struct PatientSet PatientSet;
static PatientSet *session_set = NULL;
static PatientSet *retired_set = NULL;
static void retire_session_set(void);
static Oid	care_table = InvalidOid;
static bool callback_registered = false;

static void
forget_patients(void)
{
	cache.valid = false;
	retire_session_set();
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
static Oid	fn_my_patients = InvalidOid;

/* Looked up once, because my_patients() calls both at every statement. */
static FmgrInfo actor_info;
static FmgrInfo mfa_ok_info;

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
	fn_my_patients = extension_function(schema, "my_patients");
	fmgr_info_cxt(fn_actor, &actor_info, TopMemoryContext);
	fmgr_info_cxt(fn_mfa_ok, &mfa_ok_info, TopMemoryContext);
	cache.valid = false;
}

static Datum
call_function_info(FmgrInfo *flinfo, bool *isnull)
{
	LOCAL_FCINFO(fcinfo, 0);
	Datum		result;

	InitFunctionCallInfoData(*fcinfo, flinfo, 0, InvalidOid, NULL, NULL);
	result = FunctionCallInvoke(fcinfo);
	*isnull = fcinfo->isnull;
	return result;
}

static Datum
call_function(Oid fn, bool *isnull)
{
	FmgrInfo	flinfo;

	fmgr_info(fn, &flinfo);
	return call_function_info(&flinfo, isnull);
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
static ArrayType *
current_patients(void)
{
	bool		isnull;
	char	   *actor;
	bool		mfa_ok;
	TimestampTz at = GetCurrentTransactionStartTimestamp();

	resolve_objects();
	actor = TextDatumGetCString(call_function_info(&actor_info, &isnull));
	mfa_ok = DatumGetBool(call_function_info(&mfa_ok_info, &isnull)) && !isnull;

	if (!(cache.valid && cache.mfa_ok == mfa_ok && strcmp(cache.actor, actor) == 0 &&
		  at < cache.valid_until))
		compute_patients(actor, mfa_ok);
	pfree(actor);
	return cache.patients;
}

PG_FUNCTION_INFO_V1(hg_my_patients);
Datum
hg_my_patients(PG_FUNCTION_ARGS)
{
	PG_RETURN_ARRAYTYPE_P(DatumGetArrayTypePCopy(PointerGetDatum(current_patients())));
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

/*
 * hipaa_guard.cares_for(patient, patients): whether patient is one of
 * patients, compared byte by byte.  A query that passes a list, such as
 * (SELECT my_patients()), passes the same one for every row of a statement.
 * So the list is sorted once into a set, and each row costs a binary search.
 * cares_for(patient), the policy's test, uses the same sets.
 */
struct PatientSet
{
	MemoryContext context;		/* holds the set; deleting it frees all */
	Size		source_size;
	char	   *source;			/* copy of the array the set was built from */
	int			count;
	char	  **ids;			/* sorted bytewise */
	int		   *lengths;
};

/*
 * Counts replacements of session_set, so that a holder can tell its set is
 * gone.  It starts at 1, so that a zeroed holder never matches.
 */
static uint64 session_set_generation = 1;

static void
retire_session_set(void)
{
	if (retired_set)
		MemoryContextDelete(retired_set->context);
	retired_set = session_set;
	session_set = NULL;
	session_set_generation++;
}

static int
compare_ids(const char *a, int alen, const char *b, int blen)
{
	int			cmp = memcmp(a, b, Min(alen, blen));

	return cmp != 0 ? cmp : (alen > blen) - (alen < blen);
}

static int
compare_entries(const void *a, const void *b, void *arg)
{
	PatientSet *set = (PatientSet *) arg;
	int			i = *(const int *) a;
	int			j = *(const int *) b;

	return compare_ids(set->ids[i], set->lengths[i], set->ids[j], set->lengths[j]);
}

static PatientSet *
build_patient_set(MemoryContext parent, ArrayType *patients)
{
	MemoryContext context = AllocSetContextCreate(parent, "hipaa_guard patient set",
												  ALLOCSET_SMALL_SIZES);
	MemoryContext old = MemoryContextSwitchTo(context);
	PatientSet *set = palloc0(sizeof(PatientSet));
	Datum	   *elements;
	bool	   *nulls;
	int			count;
	int		   *order;
	char	  **ids;
	int		   *lengths;

	set->context = context;
	set->source_size = VARSIZE(patients);
	set->source = palloc(set->source_size);
	memcpy(set->source, patients, set->source_size);
	/* From the copy, which lives as long as the set. */
	deconstruct_array((ArrayType *) set->source, TEXTOID, -1, false, TYPALIGN_INT,
					  &elements, &nulls, &count);
	set->ids = palloc(sizeof(char *) * Max(count, 1));
	set->lengths = palloc(sizeof(int) * Max(count, 1));
	for (int i = 0; i < count; i++)
	{
		if (nulls[i])
			continue;
		set->ids[set->count] = VARDATA_ANY(DatumGetPointer(elements[i]));
		set->lengths[set->count] = VARSIZE_ANY_EXHDR(DatumGetPointer(elements[i]));
		set->count++;
	}
	order = palloc(sizeof(int) * Max(set->count, 1));
	for (int i = 0; i < set->count; i++)
		order[i] = i;
	qsort_arg(order, set->count, sizeof(int), compare_entries, set);
	ids = palloc(sizeof(char *) * Max(set->count, 1));
	lengths = palloc(sizeof(int) * Max(set->count, 1));
	for (int i = 0; i < set->count; i++)
	{
		ids[i] = set->ids[order[i]];
		lengths[i] = set->lengths[order[i]];
	}
	set->ids = ids;
	set->lengths = lengths;
	MemoryContextSwitchTo(old);
	return set;
}

/*
 * The set a cares_for(patient, patients) call site uses: the session's set
 * when its list is the cached one, so that a statement does not sort the
 * list again, or a set of its own.
 */
typedef struct CaresForState
{
	PatientSet *set;
	Pointer		argument;		/* the list the set was last checked against */
	uint64		generation;		/* session_set_generation when set was taken */
	int			last;			/* set's entry that the last row matched, or -1 */
} CaresForState;

static bool
set_matches(PatientSet *set, ArrayType *patients)
{
	return set->source_size == VARSIZE(patients) &&
		memcmp(set->source, patients, set->source_size) == 0;
}

static PatientSet *
find_patient_set(FmgrInfo *flinfo, ArrayType *patients)
{
	if (cache.valid && cache.patients && VARSIZE(cache.patients) == VARSIZE(patients) &&
		memcmp(cache.patients, patients, VARSIZE(patients)) == 0)
	{
		if (session_set == NULL)
			session_set = build_patient_set(TopMemoryContext, cache.patients);
		return session_set;
	}
	return build_patient_set(flinfo->fn_mcxt, patients);
}

static bool
set_contains(PatientSet *set, text *patient, int *last)
{
	const char *id = VARDATA_ANY(patient);
	int			len = VARSIZE_ANY_EXHDR(patient);
	int			low = 0;

	/* An index scan of the patient column returns each patient's rows together. */
	if (*last >= 0 && *last < set->count &&
		compare_ids(id, len, set->ids[*last], set->lengths[*last]) == 0)
		return true;
	for (int high = set->count - 1; low <= high;)
	{
		int			mid = low + (high - low) / 2;
		int			cmp = compare_ids(id, len, set->ids[mid], set->lengths[mid]);

		if (cmp == 0)
		{
			*last = mid;
			return true;
		}
		if (cmp < 0)
			high = mid - 1;
		else
			low = mid + 1;
	}
	return false;
}

PG_FUNCTION_INFO_V1(hg_cares_for);
Datum
hg_cares_for(PG_FUNCTION_ARGS)
{
	text	   *patient = PG_GETARG_TEXT_PP(0);
	ArrayType  *patients = PG_GETARG_ARRAYTYPE_P(1);
	CaresForState *state = (CaresForState *) fcinfo->flinfo->fn_extra;

	if (state == NULL)
	{
		state = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(CaresForState));
		fcinfo->flinfo->fn_extra = state;
	}
	/* The session's set may be freed after two replacements: look again. */
	if (state->generation != session_set_generation)
	{
		state->set = NULL;
		state->generation = session_set_generation;
	}
	/*
	 * A query passes the same list, at the same address, for every row of a
	 * statement; any other list is compared in full.
	 */
	if (state->set == NULL || state->argument != (Pointer) patients ||
		state->set->source_size != VARSIZE(patients))
	{
		if (state->set == NULL || !set_matches(state->set, patients))
		{
			state->set = find_patient_set(fcinfo->flinfo, patients);
			state->last = -1;
		}
		state->argument = (Pointer) patients;
	}
	PG_RETURN_BOOL(set_contains(state->set, patient, &state->last));
}

/*
 * hipaa_guard.cares_for(patient): whether the current actor may see the
 * patient now.  It is the care-team policy on a text patient column.  The actor's
 * set is looked up at the first row of each execution of the policy's
 * expression (the executor builds a new FmgrInfo each time), and each row
 * costs a binary search.  Passing the list from an InitPlan instead costs
 * a plan node, a copy of the list and its comparison with the cached one at
 * every statement, which made a clinician's point lookup about a tenth
 * slower.
 */
typedef struct ActorSetState
{
	PatientSet *set;
	uint64		generation;		/* session_set_generation when set was taken */
	int			last;			/* set's entry that the last row matched, or -1 */
} ActorSetState;

PG_FUNCTION_INFO_V1(hg_cares_for_actor);
Datum
hg_cares_for_actor(PG_FUNCTION_ARGS)
{
	text	   *patient = PG_GETARG_TEXT_PP(0);
	ActorSetState *state = (ActorSetState *) fcinfo->flinfo->fn_extra;

	/* A replaced set may be freed at the next replacement, so take the current one. */
	if (state == NULL || state->generation != session_set_generation)
	{
		ArrayType  *patients = current_patients();

		if (session_set == NULL)
			session_set = build_patient_set(TopMemoryContext, patients);
		if (state == NULL)
		{
			state = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(ActorSetState));
			fcinfo->flinfo->fn_extra = state;
		}
		state->set = session_set;
		state->generation = session_set_generation;
		state->last = -1;
	}
	PG_RETURN_BOOL(set_contains(state->set, patient, &state->last));
}

/* Whether clause restricts the column expression column to given values. */
static bool
restricts_column(Node *clause, Node *column)
{
	List	   *args;
	Oid			opno;

	if (IsA(clause, OpExpr))
	{
		args = ((OpExpr *) clause)->args;
		opno = ((OpExpr *) clause)->opno;
	}
	else if (IsA(clause, ScalarArrayOpExpr) && ((ScalarArrayOpExpr *) clause)->useOr)
	{
		args = ((ScalarArrayOpExpr *) clause)->args;
		opno = ((ScalarArrayOpExpr *) clause)->opno;
	}
	else
		return false;
	if (list_length(args) != 2 || get_oprrest(opno) != F_EQSEL)
		return false;
	for (int side = 0; side < 2; side++)
	{
		Node	   *mine = strip_implicit_coercions(list_nth(args, side));
		Node	   *other = list_nth(args, 1 - side);

		if (equal(mine, column) && !contain_var_clause(other) &&
			!contain_volatile_functions(other))
			return true;
	}
	return false;
}

/* The OIDs of cares_for(patient, patients) and cares_for(patient), as their support function last saw them */
static Oid	cares_for_fn = InvalidOid;
static Oid	cares_for_actor_fn = InvalidOid;

/*
 * Planner support of cares_for(): turn it into "patient = ANY (patients)",
 * or "patient = ANY (my_patients())" for cares_for(patient), an index
 * condition on the patient column, so that a query for all of the actor's
 * patients scans the patient index.  The executor computes the list of such
 * a condition once per scan.  It declines when the query
 * itself restricts the patient column to given values, because the index
 * then finds those rows.  As a second index condition, the list would cost
 * one btree descent per patient in PostgreSQL 15; as a filter it costs one
 * binary search per row.
 */
PG_FUNCTION_INFO_V1(hg_cares_for_support);
Datum
hg_cares_for_support(PG_FUNCTION_ARGS)
{
	Node	   *rawreq = (Node *) PG_GETARG_POINTER(0);
	SupportRequestIndexCondition *req;
	FuncExpr   *call;
	Node	   *column;
	Oid			eqop;
	ListCell   *lc;
	ScalarArrayOpExpr *any;
	Node	   *list;

	if (!IsA(rawreq, SupportRequestIndexCondition))
		PG_RETURN_POINTER(NULL);
	req = (SupportRequestIndexCondition *) rawreq;
	call = (FuncExpr *) req->node;
	if (!IsA(call, FuncExpr) || list_length(call->args) > 2 || req->indexarg != 0 ||
		req->index->relam != BTREE_AM_OID ||
		!OidIsValid(req->indexcollation) || !get_collation_isdeterministic(req->indexcollation))
		PG_RETURN_POINTER(NULL);
	eqop = get_opfamily_member(req->opfamily, TEXTOID, TEXTOID, BTEqualStrategyNumber);
	if (!OidIsValid(eqop))
		PG_RETURN_POINTER(NULL);

	if (list_length(call->args) == 2)
	{
		cares_for_fn = call->funcid;
		list = copyObject(lsecond(call->args));
	}
	else
	{
		resolve_objects();
		cares_for_actor_fn = call->funcid;
		list = (Node *) makeFuncExpr(fn_my_patients, TEXTARRAYOID, NIL, InvalidOid,
									 InvalidOid, COERCE_EXPLICIT_CALL);
	}
	column = strip_implicit_coercions(linitial(call->args));
	foreach(lc, req->index->rel->baserestrictinfo)
	{
		RestrictInfo *rinfo = lfirst_node(RestrictInfo, lc);

		if (restricts_column((Node *) rinfo->clause, column))
			PG_RETURN_POINTER(NULL);
	}

	any = makeNode(ScalarArrayOpExpr);
	any->opno = eqop;
	any->opfuncid = get_opcode(eqop);
	any->useOr = true;
	any->inputcollid = req->indexcollation;
	any->args = list_make2(copyObject(linitial(call->args)), list);
	any->location = -1;
	req->lossy = false;
	PG_RETURN_POINTER(list_make1(any));
}

/*
 * The choice between a plain index scan and a bitmap heap scan of the
 * derived "patient = ANY (list)".  The planner estimates 10 elements for a
 * list it cannot see (estimate_array_length() in PostgreSQL 15), and with
 * the default random_page_cost of 4 its cost model then prefers a bitmap
 * heap scan.  It still does when given the true length, because the model
 * counts every heap page as a read from disk, which a bitmap heap scan
 * orders.  The patients of one actor are read again and again, so their
 * pages are usually in memory.  There the bitmap heap scan costs more,
 * because of a buffer lookup per page to prefetch it, the sort of the
 * pages, and a visibility pass per page.  On the 2,000 rows of 200 patients that
 * test/bench/access reads (in memory, 2 cores), it ran at 0.52 to 0.64 of
 * the plain index scan's rate.  So, unless hipaa_guard.enable_care_bitmapscan
 * is on, a bitmap heap scan over the list's index condition alone gives way
 * to the plain index scan it was built from.  Both return the same rows,
 * and neither depends on the actor, so a generic plan stays right for every
 * actor.
 *
 * NOTE: for a list of thousands of patients whose rows are mostly on disk,
 * the bitmap heap scan may be faster (not measured); the setting is for
 * that case.
 * Bitmap heap scans that combine the list with another index condition
 * (BitmapAnd, BitmapOr) stay as the cost model chose them.
 */
bool		hg_enable_care_bitmapscan = false;
static set_rel_pathlist_hook_type prev_set_rel_pathlist_hook = NULL;

/*
 * Check whether ipath scans the index with the condition derived from a
 * cares_for() clause of rel's own restrictions.  Then, as a plain index scan,
 * it returns the rows that the bitmap heap scan over it returns.
 */
static bool
scans_care_list(RelOptInfo *rel, IndexPath *ipath)
{
	ListCell   *lc;

	if (!ipath->indexinfo->amhasgettuple || ipath->path.param_info != NULL)
		return false;
	foreach(lc, ipath->indexclauses)
	{
		IndexClause *iclause = lfirst_node(IndexClause, lc);
		Node	   *clause = (Node *) iclause->rinfo->clause;

		if (!iclause->lossy && IsA(clause, FuncExpr) &&
			(((FuncExpr *) clause)->funcid == cares_for_fn ||
			 ((FuncExpr *) clause)->funcid == cares_for_actor_fn) &&
			list_member_ptr(rel->baserestrictinfo, iclause->rinfo))
			return true;
	}
	return false;
}

/* Return the index path under path when path is a bitmap heap scan of the list. */
static IndexPath *
care_list_bitmap_source(RelOptInfo *rel, Path *path)
{
	Path	   *bitmapqual;

	if (!IsA(path, BitmapHeapPath) || path->param_info != NULL)
		return NULL;
	bitmapqual = ((BitmapHeapPath *) path)->bitmapqual;
	if (!IsA(bitmapqual, IndexPath) || !scans_care_list(rel, (IndexPath *) bitmapqual))
		return NULL;
	return (IndexPath *) bitmapqual;
}

static void
hg_set_rel_pathlist(PlannerInfo *root, RelOptInfo *rel, Index rti, RangeTblEntry *rte)
{
	List	   *remaining_paths = NIL;
	List	   *replacements = NIL;
	ListCell   *lc;

	if (prev_set_rel_pathlist_hook)
		prev_set_rel_pathlist_hook(root, rel, rti, rte);
	if (hg_enable_care_bitmapscan || rte->rtekind != RTE_RELATION ||
		(!OidIsValid(cares_for_fn) && !OidIsValid(cares_for_actor_fn)))
		return;

	foreach(lc, rel->pathlist)
	{
		Path	   *path = (Path *) lfirst(lc);
		IndexPath  *source = care_list_bitmap_source(rel, path);

		if (source)
			replacements = lappend(replacements, source);
		else
			remaining_paths = lappend(remaining_paths, path);
	}
	if (replacements != NIL)
	{
		rel->pathlist = remaining_paths;

		/*
		 * add_path() never frees a rejected IndexPath, because bitmap paths
		 * point to it, so the plain index scans can compete again.
		 */
		foreach(lc, replacements)
			add_path(rel, (Path *) lfirst(lc));
	}

	/* Parallel bitmap heap scans of the list go too, with no replacement. */
	remaining_paths = NIL;
	foreach(lc, rel->partial_pathlist)
	{
		Path	   *path = (Path *) lfirst(lc);

		if (care_list_bitmap_source(rel, path) == NULL)
			remaining_paths = lappend(remaining_paths, path);
	}
	rel->partial_pathlist = remaining_paths;
}

/*
 * EXPLAIN ANALYZE of a query that reads a protected table under its
 * care-team policy is refused: its row counts ("Rows Removed by Filter",
 * heap blocks) would tell how many rows the policy hid.  Plain EXPLAIN shows
 * only estimates, which pg_class already shows to everyone.
 */
static ProcessUtility_hook_type prev_process_utility_hook = NULL;

static bool
has_care_policy(Oid relid)
{
	Relation	rel = table_open(relid, AccessShareLock);
	bool		found = false;
	ListCell   *lc;

	if (rel->rd_rsdesc)
		foreach(lc, rel->rd_rsdesc->policies)
		{
			RowSecurityPolicy *policy = (RowSecurityPolicy *) lfirst(lc);

			if (strcmp(policy->policy_name, "hipaa_guard_care") == 0)
				found = true;
		}
	table_close(rel, AccessShareLock);
	return found;
}

static bool
reads_protected_table(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, RangeTblEntry))
	{
		RangeTblEntry *rte = (RangeTblEntry *) node;

		return rte->rtekind == RTE_RELATION && rte->securityQuals != NIL &&
			has_care_policy(rte->relid);
	}
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, reads_protected_table, context,
								 QTW_EXAMINE_RTES_BEFORE);
	return expression_tree_walker(node, reads_protected_table, context);
}

/* Row level security is applied by the rewriter, so look at what it makes. */
static bool
explained_query_reads_protected_table(Query *query)
{
	ListCell   *lc;
	List	   *rewritten;

	if (query->commandType == CMD_UTILITY && IsA(query->utilityStmt, ExecuteStmt))
	{
		PreparedStatement *prepared =
			FetchPreparedStatement(((ExecuteStmt *) query->utilityStmt)->name, false);

		rewritten = prepared ? prepared->plansource->query_list : NIL;
	}
	else if (query->commandType == CMD_UTILITY)
		return false;
	else
		rewritten = QueryRewrite(copyObject(query));
	foreach(lc, rewritten)
		if (reads_protected_table(lfirst(lc), NULL))
			return true;
	return false;
}

static bool
explain_analyzes(ExplainStmt *stmt)
{
	ListCell   *lc;
	bool		analyze = false;

	foreach(lc, stmt->options)
	{
		DefElem    *opt = (DefElem *) lfirst(lc);

		if (strcmp(opt->defname, "analyze") == 0)
			analyze = defGetBoolean(opt);
	}
	return analyze;
}

static void
hg_process_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
				   ProcessUtilityContext context, ParamListInfo params,
				   QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;

	if (IsA(parsetree, ExplainStmt) && explain_analyzes((ExplainStmt *) parsetree) &&
		explained_query_reads_protected_table((Query *) ((ExplainStmt *) parsetree)->query))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("EXPLAIN ANALYZE is not allowed on tables protected by hipaa_guard"),
				 errdetail("Its row counts would show how many rows the care-team policy hides."),
				 errhint("Use EXPLAIN without ANALYZE.")));
	if (prev_process_utility_hook)
		prev_process_utility_hook(pstmt, queryString, readOnlyTree, context, params,
								  queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
								queryEnv, dest, qc);
}

/*
 * The statistics of a protected table's patient column, as the planner reads
 * them for a role under the care-team policy.  PostgreSQL uses the column's
 * most common values and histogram for a leakproof operator such as text
 * equality even under row level security, so EXPLAIN's estimate for
 * "patient = 'P-B'" would give P-B's row count to a clinician who cannot
 * see P-B.  Such a role gets only the figures of the column as a whole:
 * null fraction, width, number of distinct values and correlation, so every
 * patient gets the same estimate.  Superusers and roles with BYPASSRLS,
 * which the policy does not apply to, plan with the full statistics.
 *
 * The same goes for the partitions of a protected table and for an index
 * expression over the patient column.
 *
 * NOTE: extended statistics (CREATE STATISTICS) that include the patient
 * column are not hidden, since PostgreSQL 15 has no hook for them.
 */
static get_relation_stats_hook_type prev_get_relation_stats_hook = NULL;
static get_index_stats_hook_type prev_get_index_stats_hook = NULL;

/* Collect the attribute numbers of the Vars in node, outside sublinks. */
static bool
collect_attnos(Node *node, List **attnos)
{
	if (node == NULL || IsA(node, SubLink))
		return false;
	if (IsA(node, Var))
	{
		if (((Var *) node)->varlevelsup == 0)
			*attnos = lappend_int(*attnos, ((Var *) node)->varattno);
		return false;
	}
	return expression_tree_walker(node, collect_attnos, attnos);
}

/* Collect the columns that the cares_for() calls of a policy condition test. */
static bool
collect_care_columns(Node *node, List **attnos)
{
	if (node == NULL || IsA(node, SubLink))
		return false;
	if (IsA(node, FuncExpr) && ((FuncExpr *) node)->args != NIL)
	{
		FuncExpr   *call = (FuncExpr *) node;
		char	   *name = get_func_name(call->funcid);
		Oid			namespace = get_func_namespace(call->funcid);
		char	   *namespace_name = get_namespace_name(namespace);

		if (name != NULL && namespace_name != NULL && strcmp(name, "cares_for") == 0 &&
			strcmp(namespace_name, "hipaa_guard") == 0)
		{
			collect_attnos(linitial(call->args), attnos);
			return false;
		}
	}
	return expression_tree_walker(node, collect_care_columns, attnos);
}

static void
free_summary_stats(HeapTuple tuple)
{
	heap_freetuple(tuple);
}

/*
 * Return a copy of the column's pg_statistic row with every slot but the
 * correlation emptied, or NULL when the column has no statistics.
 */
static HeapTuple
summary_stats(Oid relid, AttrNumber attnum, bool inherited)
{
	HeapTuple	stats = SearchSysCache3(STATRELATTINH, ObjectIdGetDatum(relid),
										Int16GetDatum(attnum), BoolGetDatum(inherited));
	Form_pg_statistic form;
	Datum		values[Natts_pg_statistic] = {0};
	bool		nulls[Natts_pg_statistic] = {0};
	bool		replace[Natts_pg_statistic] = {0};
	Relation	statistic_rel;
	HeapTuple	summary;

	if (!HeapTupleIsValid(stats))
		return NULL;
	form = (Form_pg_statistic) GETSTRUCT(stats);
	for (int slot = 0; slot < STATISTIC_NUM_SLOTS; slot++)
	{
		int16		kind = (&form->stakind1)[slot];

		if (kind == 0 || kind == STATISTIC_KIND_CORRELATION)
			continue;
		values[Anum_pg_statistic_stakind1 - 1 + slot] = Int16GetDatum(0);
		values[Anum_pg_statistic_staop1 - 1 + slot] = ObjectIdGetDatum(InvalidOid);
		values[Anum_pg_statistic_stacoll1 - 1 + slot] = ObjectIdGetDatum(InvalidOid);
		nulls[Anum_pg_statistic_stanumbers1 - 1 + slot] = true;
		nulls[Anum_pg_statistic_stavalues1 - 1 + slot] = true;
		replace[Anum_pg_statistic_stakind1 - 1 + slot] = true;
		replace[Anum_pg_statistic_staop1 - 1 + slot] = true;
		replace[Anum_pg_statistic_stacoll1 - 1 + slot] = true;
		replace[Anum_pg_statistic_stanumbers1 - 1 + slot] = true;
		replace[Anum_pg_statistic_stavalues1 - 1 + slot] = true;
	}
	statistic_rel = table_open(StatisticRelationId, AccessShareLock);
	summary = heap_modify_tuple(stats, RelationGetDescr(statistic_rel), values, nulls, replace);
	table_close(statistic_rel, AccessShareLock);
	ReleaseSysCache(stats);
	return summary;
}

/* Return the range table index of rte in root, or 0. */
static Index
range_table_index(PlannerInfo *root, RangeTblEntry *rte)
{
	for (int i = 1; i < root->simple_rel_array_size; i++)
	{
		if (root->simple_rte_array[i] == rte)
			return i;
	}
	return 0;
}

/*
 * Check whether a care-team policy tests column attnum of the table rte,
 * whose range table index is rti (0 when unknown).  A partition's entry has
 * no policy conditions of its own, so the column is followed up to the
 * ancestor that has them.
 */
static bool
is_care_column(PlannerInfo *root, Index rti, RangeTblEntry *rte, AttrNumber attnum)
{
	for (;;)
	{
		AppendRelInfo *appinfo;

		if (rte->securityQuals != NIL)
		{
			List	   *care_columns = NIL;

			collect_care_columns((Node *) rte->securityQuals, &care_columns);
			return list_member_int(care_columns, attnum);
		}
		if (rti == 0 || root->append_rel_array == NULL || root->append_rel_array[rti] == NULL)
			return false;
		appinfo = root->append_rel_array[rti];
		if (attnum <= 0 || attnum > appinfo->num_child_cols ||
			appinfo->parent_colnos[attnum - 1] == 0)
			return false;
		attnum = appinfo->parent_colnos[attnum - 1];
		rti = appinfo->parent_relid;
		rte = root->simple_rte_array[rti];
	}
}

/* Give a role under the policy the summary statistics of the patient column. */
static bool
hg_get_relation_stats(PlannerInfo *root, RangeTblEntry *rte, AttrNumber attnum,
					  VariableStatData *vardata)
{
	if (prev_get_relation_stats_hook &&
		prev_get_relation_stats_hook(root, rte, attnum, vardata))
		return true;
	if (rte->rtekind != RTE_RELATION ||
		!is_care_column(root, range_table_index(root, rte), rte, attnum))
		return false;
	vardata->statsTuple = summary_stats(rte->relid, attnum, rte->inh);
	vardata->freefunc = free_summary_stats;
	vardata->acl_ok = false;
	return true;
}

/*
 * Return the planner's entry of index indexoid and set *rti to the range
 * table index of its table, or return NULL when the query scans no such table.
 */
static IndexOptInfo *
find_index(PlannerInfo *root, Oid indexoid, Index *rti)
{
	for (int i = 1; i < root->simple_rel_array_size; i++)
	{
		RelOptInfo *rel = root->simple_rel_array[i];
		ListCell   *lc;

		if (rel == NULL)
			continue;
		foreach(lc, rel->indexlist)
		{
			IndexOptInfo *index = lfirst_node(IndexOptInfo, lc);

			if (index->indexoid == indexoid)
			{
				*rti = i;
				return index;
			}
		}
	}
	return NULL;
}

/* Return the expression of an index column, or NULL for a plain column. */
static Node *
index_column_expression(IndexOptInfo *index, AttrNumber indexattnum)
{
	ListCell   *expression = list_head(index->indexprs);

	for (int column = 0; column < indexattnum - 1; column++)
	{
		if (index->indexkeys[column] == 0 && expression != NULL)
			expression = lnext(index->indexprs, expression);
	}
	if (index->indexkeys[indexattnum - 1] != 0 || expression == NULL)
		return NULL;
	return (Node *) lfirst(expression);
}

/*
 * Give a role under the policy the summary statistics of an index
 * expression over the patient column.
 */
static bool
hg_get_index_stats(PlannerInfo *root, Oid indexoid, AttrNumber indexattnum,
				   VariableStatData *vardata)
{
	Index		rti = 0;
	IndexOptInfo *index;
	Node	   *expression;
	List	   *used_columns = NIL;
	ListCell   *lc;

	if (prev_get_index_stats_hook &&
		prev_get_index_stats_hook(root, indexoid, indexattnum, vardata))
		return true;
	index = find_index(root, indexoid, &rti);
	if (index == NULL || root->simple_rte_array[rti]->rtekind != RTE_RELATION)
		return false;
	expression = index_column_expression(index, indexattnum);
	if (expression == NULL)
		return false;
	collect_attnos(expression, &used_columns);
	foreach(lc, used_columns)
	{
		if (is_care_column(root, rti, root->simple_rte_array[rti], lfirst_int(lc)))
		{
			vardata->statsTuple = summary_stats(indexoid, indexattnum, false);
			vardata->freefunc = free_summary_stats;
			vardata->acl_ok = false;
			return true;
		}
	}
	return false;
}

void
hg_careteam_install_hooks(void)
{
	prev_get_relation_stats_hook = get_relation_stats_hook;
	get_relation_stats_hook = hg_get_relation_stats;
	prev_get_index_stats_hook = get_index_stats_hook;
	get_index_stats_hook = hg_get_index_stats;
	prev_process_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = hg_process_utility;
	prev_set_rel_pathlist_hook = set_rel_pathlist_hook;
	set_rel_pathlist_hook = hg_set_rel_pathlist;
}

/*
 * hipaa_guard.log_event(message): write one server log line without the
 * statement or its context.  RAISE LOG in PL/pgSQL would also log the
 * calling statement, and a break_glass() call contains a patient id.
 */
PG_FUNCTION_INFO_V1(hg_log_event);
Datum
hg_log_event(PG_FUNCTION_ARGS)
{
	ereport(LOG,
			(errmsg_internal("%s", text_to_cstring(PG_GETARG_TEXT_PP(0))),
			 errhidestmt(true),
			 errhidecontext(true)));
	PG_RETURN_VOID();
}
