/*
 * auditddl.c
 *		The utility hook of the audit: exports by COPY ... TO, DDL and
 *		GRANT on audited tables and on the trail, changes to hipaa_guard
 *		settings, refused utility statements, and the refusal of DDL that
 *		would switch an audit off behind disable_audit()'s back.
 *
 * A statement is recorded after it succeeds, the durable way, so that its
 * record shows whether its transaction committed.  TRUNCATE is left to the
 * statement trigger of audittrigger.c, which also fires for the tables that
 * CASCADE adds.
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "commands/copy.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "tcop/cmdtag.h"
#include "tcop/utility.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"

#include "audit.h"
#include "auditcapture.h"
#include "auditqueue.h"

/* Objects that enable_audit() creates; see src/sql/audit_capture.sql. */
#define WRITE_TRIGGER		"hipaa_guard_audit_write"
#define TRUNCATE_TRIGGER	"hipaa_guard_audit_truncate"
#define GUARD_POLICY		"hipaa_guard_audit_guard"
#define OPEN_POLICY			"hipaa_guard_audit_open"
#define PATIENT_POLICY		"hipaa_guard_audit_patient"

static ProcessUtility_hook_type prev_utility = NULL;

/*
 * Set by the extension's own functions while they run the DDL of
 * enable_audit() and disable_audit(), whose config record stands for it.
 * Only a superuser can set it, as those functions' owner does.
 */
bool		hg_audit_internal_ddl = false;

/* The audited table or trail table that rv names, or NULL. */
static const HgAuditedRel *
audited_rangevar(RangeVar *rv)
{
	Oid			relid;

	if (rv == NULL)
		return NULL;
	relid = RangeVarGetRelid(rv, NoLock, true);
	if (!OidIsValid(relid))
		return NULL;
	return hg_audited_rel(relid);
}

/* For DROP TRIGGER and DROP POLICY: the table is the name minus its last part. */
static RangeVar *
owning_table(List *names)
{
	return makeRangeVarFromNameList(list_truncate(list_copy(names), list_length(names) - 1));
}

static void
add_target(List **targets, const HgAuditedRel *rel)
{
	if (rel != NULL && !list_member_ptr(*targets, rel))
		*targets = lappend(*targets, (void *) rel);
}

static void
drop_targets(DropStmt *stmt, List **targets)
{
	ListCell   *lc;

	foreach(lc, stmt->objects)
	{
		if (stmt->removeType == OBJECT_TABLE)
			add_target(targets, audited_rangevar(makeRangeVarFromNameList(lfirst(lc))));
		else if (stmt->removeType == OBJECT_TRIGGER || stmt->removeType == OBJECT_POLICY ||
				 stmt->removeType == OBJECT_RULE)
			add_target(targets, audited_rangevar(owning_table(lfirst(lc))));
	}
}

/*
 * Add the audited relations of a schema to targets, for GRANT ... ON ALL
 * TABLES IN SCHEMA.  PostgreSQL expands that clause to these relation kinds.
 */
static void
schema_targets(const char *schema, List **targets)
{
	Oid			namespace = get_namespace_oid(schema, true);
	Relation	pg_class;
	ScanKeyData key;
	TableScanDesc scan;
	HeapTuple	tuple;

	if (!OidIsValid(namespace))
		return;
	ScanKeyInit(&key, Anum_pg_class_relnamespace, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(namespace));
	pg_class = table_open(RelationRelationId, AccessShareLock);
	scan = table_beginscan_catalog(pg_class, 1, &key);
	while ((tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_class form = (Form_pg_class) GETSTRUCT(tuple);

		if (form->relkind == RELKIND_RELATION || form->relkind == RELKIND_PARTITIONED_TABLE ||
			form->relkind == RELKIND_VIEW || form->relkind == RELKIND_MATVIEW ||
			form->relkind == RELKIND_FOREIGN_TABLE)
			add_target(targets, hg_audited_rel(form->oid));
	}
	table_endscan(scan);
	table_close(pg_class, AccessShareLock);
}

static void
grant_targets(GrantStmt *stmt, List **targets)
{
	ListCell   *lc;

	if (stmt->objtype != OBJECT_TABLE)
		return;
	foreach(lc, stmt->objects)
	{
		if (stmt->targtype == ACL_TARGET_OBJECT)
			add_target(targets, audited_rangevar(lfirst(lc)));
		else if (stmt->targtype == ACL_TARGET_ALL_IN_SCHEMA)
			schema_targets(strVal(lfirst(lc)), targets);
	}
}

/*
 * The audited tables (and trail tables) a utility statement acts on, for
 * the admin record or a refusal.
 */
static List *
utility_targets(Node *parsetree)
{
	List	   *targets = NIL;

	switch (nodeTag(parsetree))
	{
		case T_AlterTableStmt:
			add_target(&targets, audited_rangevar(((AlterTableStmt *) parsetree)->relation));
			break;
		case T_RenameStmt:
			add_target(&targets, audited_rangevar(((RenameStmt *) parsetree)->relation));
			break;
		case T_DropStmt:
			drop_targets((DropStmt *) parsetree, &targets);
			break;
		case T_CreatePolicyStmt:
			add_target(&targets, audited_rangevar(((CreatePolicyStmt *) parsetree)->table));
			break;
		case T_AlterPolicyStmt:
			add_target(&targets, audited_rangevar(((AlterPolicyStmt *) parsetree)->table));
			break;
		case T_CreateTrigStmt:
			add_target(&targets, audited_rangevar(((CreateTrigStmt *) parsetree)->relation));
			break;
		case T_IndexStmt:
			add_target(&targets, audited_rangevar(((IndexStmt *) parsetree)->relation));
			break;
		case T_GrantStmt:
			grant_targets((GrantStmt *) parsetree, &targets);
			break;
		case T_TruncateStmt:
			{
				ListCell   *lc;

				foreach(lc, ((TruncateStmt *) parsetree)->relations)
					add_target(&targets, audited_rangevar(lfirst(lc)));
			}
			break;
		case T_CopyStmt:
			add_target(&targets, audited_rangevar(((CopyStmt *) parsetree)->relation));
			break;
		default:
			break;
	}
	return targets;
}

/* ----------------------------------------------------------------
 *		Switching an audit off the wrong way
 * ---------------------------------------------------------------- */

static bool
is_audit_trigger(const char *name)
{
	return name != NULL &&
		(strcmp(name, WRITE_TRIGGER) == 0 || strcmp(name, TRUNCATE_TRIGGER) == 0);
}

static bool
is_audit_policy(const char *name)
{
	return name != NULL &&
		(strcmp(name, GUARD_POLICY) == 0 || strcmp(name, OPEN_POLICY) == 0 ||
		 strcmp(name, PATIENT_POLICY) == 0);
}

/* Whether an ALTER TABLE subcommand would stop or weaken the audit. */
static bool
subcommand_bypasses(AlterTableCmd *cmd)
{
	switch (cmd->subtype)
	{
		case AT_EnableTrig:
		case AT_EnableReplicaTrig:
		case AT_DisableTrig:
			return is_audit_trigger(cmd->name);
		case AT_EnableTrigAll:
		case AT_DisableTrigAll:
		case AT_EnableTrigUser:
		case AT_DisableTrigUser:
		case AT_DisableRowSecurity:
			return true;
		default:
			return false;
	}
}

static bool
statement_bypasses(Node *parsetree)
{
	ListCell   *lc;

	switch (nodeTag(parsetree))
	{
		case T_AlterTableStmt:
			foreach(lc, ((AlterTableStmt *) parsetree)->cmds)
			{
				if (subcommand_bypasses(lfirst(lc)))
					return true;
			}
			return false;
		case T_DropStmt:
			{
				DropStmt   *stmt = (DropStmt *) parsetree;

				if (stmt->removeType != OBJECT_TRIGGER && stmt->removeType != OBJECT_POLICY)
					return false;
				foreach(lc, stmt->objects)
				{
					const char *name = strVal(llast((List *) lfirst(lc)));

					if (is_audit_trigger(name) || is_audit_policy(name))
						return true;
				}
				return false;
			}
		case T_RenameStmt:
			{
				RenameStmt *stmt = (RenameStmt *) parsetree;

				return (stmt->renameType == OBJECT_TRIGGER || stmt->renameType == OBJECT_POLICY) &&
					(is_audit_trigger(stmt->subname) || is_audit_policy(stmt->subname));
			}
		case T_AlterPolicyStmt:
			return is_audit_policy(((AlterPolicyStmt *) parsetree)->policy_name);
		default:
			return false;
	}
}

/*
 * Refuse DDL that would switch the audit of a table off, unless a superuser
 * runs it (disable_audit() runs as one).  Superusers' DDL is recorded.
 */
static void
refuse_bypass(Node *parsetree, List *targets)
{
	const HgAuditedRel *rel;
	List	   *names = NIL;
	ListCell   *lc;

	if (targets == NIL || superuser() || !statement_bypasses(parsetree))
		return;
	rel = linitial(targets);
	foreach(lc, targets)
		names = lappend(names, (void *) ((const HgAuditedRel *) lfirst(lc))->name);
	hg_audit_record_denied(GetCommandTagName(CreateCommandTag(parsetree)), names);
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied to switch off the audit of table %s", rel->name),
			 errdetail("The audit's triggers and policies change only through hipaa_guard.enable_audit() and hipaa_guard.disable_audit()."),
			 errhint("Ask a member of hipaa_admin to call hipaa_guard.disable_audit().")));
}

/* ----------------------------------------------------------------
 *		Recording
 * ---------------------------------------------------------------- */

static void
record_admin(Node *parsetree, List *targets)
{
	HgAuditEvent ev;
	const char *statement;
	uint64		query_id;
	ListCell   *lc;

	hg_audit_current_statement(&statement, &query_id);
	hg_audit_event_init(&ev, HG_AUDIT_ADMIN, GetCommandTagName(CreateCommandTag(parsetree)));
	ev.statement = statement;
	ev.query_id = query_id;
	foreach(lc, targets)
	{
		ev.relation = ((const HgAuditedRel *) lfirst(lc))->name;
		hg_audit_record_durable(&ev);
	}
}

static void
record_copy_to(const HgAuditedRel *rel, QueryCompletion *qc)
{
	HgAuditEvent ev;
	const char *statement;
	uint64		query_id;

	hg_audit_current_statement(&statement, &query_id);
	hg_audit_event_init(&ev, HG_AUDIT_EXPORT, "COPY");
	ev.relation = rel->name;
	ev.rows = qc ? (int64) qc->nprocessed : -1;
	ev.statement = statement;
	ev.query_id = query_id;
	hg_audit_record_durable(&ev);
}

/* A change of a hipaa_guard setting by ALTER SYSTEM. */
static void
record_setting(AlterSystemStmt *stmt)
{
	HgAuditEvent ev;
	const char *name = stmt->setstmt->name;

	if (name != NULL && strncmp(name, "hipaa_guard.", strlen("hipaa_guard.")) != 0)
		return;
	hg_audit_event_init(&ev, HG_AUDIT_CONFIG, "ALTER SYSTEM");
	ev.detail = name ? psprintf("setting %s", name) : "all settings reset";
	hg_audit_current_statement(&ev.statement, &ev.query_id);
	hg_audit_record_durable(&ev);
}

static void
record_success(Node *parsetree, List *targets, QueryCompletion *qc)
{
	if (IsA(parsetree, CopyStmt))
	{
		CopyStmt   *copy = (CopyStmt *) parsetree;

		if (!copy->is_from && copy->relation != NULL && targets != NIL &&
			((const HgAuditedRel *) linitial(targets))->reads)
			record_copy_to(linitial(targets), qc);
		return;
	}
	if (IsA(parsetree, AlterSystemStmt))
	{
		record_setting((AlterSystemStmt *) parsetree);
		return;
	}
	if (IsA(parsetree, TruncateStmt) || hg_audit_internal_ddl)
		return;
	record_admin(parsetree, targets);
}

static void
call_utility(PlannedStmt *pstmt, const char *query_string, bool read_only_tree,
			 ProcessUtilityContext context, ParamListInfo params,
			 QueryEnvironment *query_env, DestReceiver *dest, QueryCompletion *qc)
{
	if (prev_utility)
		prev_utility(pstmt, query_string, read_only_tree, context, params, query_env, dest, qc);
	else
		standard_ProcessUtility(pstmt, query_string, read_only_tree, context, params,
								query_env, dest, qc);
}

static List *
target_names(List *targets)
{
	List	   *names = NIL;
	ListCell   *lc;

	foreach(lc, targets)
		names = lappend(names, (void *) ((const HgAuditedRel *) lfirst(lc))->name);
	return names;
}

/* Whether a statement drops this extension. */
static bool
drops_extension(Node *parsetree)
{
	ListCell   *lc;

	if (!IsA(parsetree, DropStmt) || ((DropStmt *) parsetree)->removeType != OBJECT_EXTENSION)
		return false;
	foreach(lc, ((DropStmt *) parsetree)->objects)
	{
		if (strcmp(strVal(lfirst(lc)), "hipaa_guard") == 0)
			return true;
	}
	return false;
}

/*
 * DROP EXTENSION drops the trail with it, and a later CREATE EXTENSION
 * starts a new chain at block 1, so the high-water mark of the old chain
 * must go too: kept, it would fail every verification of the new one.
 */
static void
forget_high_water_mark(void)
{
	char		path[MAXPGPATH];

	hg_audit_head_path(MyDatabaseId, path, sizeof(path));
	if (unlink(path) != 0 && errno != ENOENT)
		ereport(WARNING,
				(errcode_for_file_access(),
				 errmsg("could not remove file \"%s\": %m", path)));
}

static void
hg_audit_utility(PlannedStmt *pstmt, const char *query_string, bool read_only_tree,
				 ProcessUtilityContext context, ParamListInfo params,
				 QueryEnvironment *query_env, DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;
	List	   *targets;
	bool		copy_to;
	uint64		exports_before;

	if (drops_extension(parsetree))
	{
		call_utility(pstmt, query_string, read_only_tree, context, params, query_env, dest, qc);
		forget_high_water_mark();
		return;
	}
	/* BEGIN, COMMIT and the like name no table. */
	if (IsA(parsetree, TransactionStmt) || creating_extension || !hg_audit_any_configured())
	{
		call_utility(pstmt, query_string, read_only_tree, context, params, query_env, dest, qc);
		return;
	}
	targets = utility_targets(parsetree);
	/*
	 * COPY ... TO runs its query through the executor, and so does COPY of
	 * a table under row level security; the executor then records it.
	 */
	copy_to = IsA(parsetree, CopyStmt) && !((CopyStmt *) parsetree)->is_from;
	exports_before = hg_audit_executor_exports();
	/* A COPY that reads the heap directly runs no executor hook to refuse it. */
	if (copy_to && targets != NIL && ((const HgAuditedRel *) linitial(targets))->reads)
		hg_audit_check_standby(((const HgAuditedRel *) linitial(targets))->name);
	hg_audit_push_utility(pstmt, query_string);
	refuse_bypass(parsetree, targets);
	if (copy_to)
		hg_audit_set_export(true);
	PG_TRY();
	{
		call_utility(pstmt, query_string, read_only_tree, context, params, query_env, dest, qc);
	}
	PG_CATCH();
	{
		hg_audit_set_export(false);
		if (geterrcode() == ERRCODE_INSUFFICIENT_PRIVILEGE && targets != NIL)
			hg_audit_record_denied(GetCommandTagName(CreateCommandTag(parsetree)),
								   target_names(targets));
		hg_audit_pop_utility();
		PG_RE_THROW();
	}
	PG_END_TRY();
	hg_audit_set_export(false);
	if (copy_to && hg_audit_executor_exports() != exports_before)
		targets = NIL;			/* already recorded */
	if (targets != NIL || IsA(parsetree, AlterSystemStmt))
		record_success(parsetree, targets, qc);
	hg_audit_pop_utility();
}

void
hg_audit_ddl_install_hooks(void)
{
	prev_utility = ProcessUtility_hook;
	ProcessUtility_hook = hg_audit_utility;
}
