/*
 * audittrigger.c
 *		The triggers that record changes to audited tables: one record per
 *		changed row, and one per TRUNCATE.
 *
 * enable_audit() creates them as ENABLE ALWAYS triggers, so that
 * session_replication_role = replica does not silence them, and
 * auditddl.c refuses DDL that would disable them.  The records are inserted
 * in the changing transaction: a change and its record commit, or vanish,
 * together.  They hold the row's key and the names of the changed columns,
 * never a column's value.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "nodes/bitmapset.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/relcache.h"

#include "audit.h"
#include "auditcapture.h"

static char *
attribute_text(HeapTuple tuple, TupleDesc desc, AttrNumber attnum)
{
	bool		isnull;
	Datum		value = heap_getattr(tuple, attnum, desc, &isnull);
	Oid			output;
	bool		varlena;

	if (isnull)
		return NULL;
	getTypeOutputInfo(TupleDescAttr(desc, attnum - 1)->atttypid, &output, &varlena);
	return OidOutputFunctionCall(output, value);
}

/*
 * The row's primary key in text: the value of a one-column key, or the
 * values in parentheses.  NULL for a table without a primary key.
 */
static char *
row_key(Relation rel, HeapTuple tuple)
{
	Bitmapset  *key = RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_PRIMARY_KEY);
	TupleDesc	desc = RelationGetDescr(rel);
	StringInfoData buf;
	int			member = -1;
	int			count = bms_num_members(key);
	bool		first = true;

	if (count == 0)
		return NULL;
	initStringInfo(&buf);
	if (count > 1)
		appendStringInfoChar(&buf, '(');
	while ((member = bms_next_member(key, member)) >= 0)
	{
		AttrNumber	attnum = member + FirstLowInvalidHeapAttributeNumber;
		char	   *value = attribute_text(tuple, desc, attnum);

		if (!first)
			appendStringInfoChar(&buf, ',');
		appendStringInfoString(&buf, value ? value : "");
		first = false;
	}
	if (count > 1)
		appendStringInfoChar(&buf, ')');
	return buf.data;
}

static bool
attribute_changed(TupleDesc desc, AttrNumber attnum, HeapTuple old_tuple, HeapTuple new_tuple)
{
	Form_pg_attribute att = TupleDescAttr(desc, attnum - 1);
	bool		old_null;
	bool		new_null;
	Datum		old_value = heap_getattr(old_tuple, attnum, desc, &old_null);
	Datum		new_value = heap_getattr(new_tuple, attnum, desc, &new_null);

	if (old_null || new_null)
		return old_null != new_null;
	return !datumIsEqual(old_value, new_value, att->attbyval, att->attlen);
}

/*
 * Names of the columns an INSERT gave a value, or an UPDATE changed; NIL
 * for a DELETE.
 */
static List *
changed_columns(Relation rel, HeapTuple old_tuple, HeapTuple new_tuple)
{
	TupleDesc	desc = RelationGetDescr(rel);
	List	   *names = NIL;

	if (new_tuple == NULL)
		return NIL;
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		AttrNumber	attnum = i + 1;

		if (att->attisdropped)
			continue;
		if (old_tuple == NULL ? heap_attisnull(new_tuple, attnum, desc)
			: !attribute_changed(desc, attnum, old_tuple, new_tuple))
			continue;
		names = lappend(names, NameStr(att->attname));
	}
	return names;
}

static const char *
relation_name(Relation rel)
{
	const HgAuditedRel *audited = hg_audited_rel(RelationGetRelid(rel));

	if (audited != NULL)
		return audited->name;
	return quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
									  RelationGetRelationName(rel));
}

/*
 * Return the row key column of the table's per-patient key binding
 * (bind_columns() with per_patient_keys), which names the patient, or NULL.
 * The encryption trigger's arguments are that column, then 't' for
 * per-patient keys.
 */
static const char *
binding_patient_column(Relation rel)
{
	TriggerDesc *triggers = rel->trigdesc;

	if (triggers == NULL)
		return NULL;
	for (int i = 0; i < triggers->numtriggers; i++)
	{
		Trigger    *t = &triggers->triggers[i];

		if (strcmp(t->tgname, "zz_hipaa_guard_encrypt") == 0 && t->tgnargs >= 2 &&
			strcmp(t->tgargs[1], "t") == 0 && t->tgargs[0][0] != '\0')
			return t->tgargs[0];
	}
	return NULL;
}

/*
 * Return the patient of the row: from the column the trigger names (the
 * table's patient column), or else from the per-patient key binding.
 */
static List *
row_patient(TriggerData *trigdata, HeapTuple tuple)
{
	Trigger    *trigger = trigdata->tg_trigger;
	TupleDesc	desc = RelationGetDescr(trigdata->tg_relation);
	const char *column;
	int			attnum;
	char	   *patient;

	column = trigger->tgnargs >= 1 ? trigger->tgargs[0] : binding_patient_column(trigdata->tg_relation);
	if (column == NULL)
		return NIL;
	attnum = SPI_fnumber(desc, column);
	if (attnum <= 0)
		return NIL;
	patient = attribute_text(tuple, desc, attnum);
	return patient ? list_make1(patient) : NIL;
}

/*
 * hipaa_guard.audit_write(): AFTER INSERT OR UPDATE OR DELETE FOR EACH ROW,
 * with the name of the table's patient column as optional argument.
 */
PG_FUNCTION_INFO_V1(hg_audit_write);
Datum
hg_audit_write(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TriggerEvent event;
	HeapTuple	old_tuple = NULL;
	HeapTuple	new_tuple = NULL;
	HgAuditEvent ev;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_AFTER(trigdata->tg_event))
		elog(ERROR, "audit_write: must be fired AFTER, FOR EACH ROW");
	event = trigdata->tg_event;
	if (TRIGGER_FIRED_BY_INSERT(event))
		new_tuple = trigdata->tg_trigtuple;
	else if (TRIGGER_FIRED_BY_UPDATE(event))
	{
		old_tuple = trigdata->tg_trigtuple;
		new_tuple = trigdata->tg_newtuple;
	}
	else
		old_tuple = trigdata->tg_trigtuple;

	hg_audit_event_init(&ev, HG_AUDIT_WRITE,
						TRIGGER_FIRED_BY_INSERT(event) ? "INSERT" :
						TRIGGER_FIRED_BY_UPDATE(event) ? "UPDATE" : "DELETE");
	ev.relation = relation_name(trigdata->tg_relation);
	ev.row_key = row_key(trigdata->tg_relation, new_tuple ? new_tuple : old_tuple);
	ev.columns = changed_columns(trigdata->tg_relation, old_tuple, new_tuple);
	ev.rows = 1;
	ev.patients = row_patient(trigdata, new_tuple ? new_tuple : old_tuple);
	hg_audit_current_statement(&ev.statement, &ev.query_id);
	hg_audit_record_in_xact(&ev);
	return PointerGetDatum(NULL);
}

/* hipaa_guard.audit_truncate(): AFTER TRUNCATE FOR EACH STATEMENT. */
PG_FUNCTION_INFO_V1(hg_audit_truncate);
Datum
hg_audit_truncate(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	HgAuditEvent ev;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
		elog(ERROR, "audit_truncate: must be fired by TRUNCATE");
	hg_audit_event_init(&ev, HG_AUDIT_WRITE, "TRUNCATE");
	ev.relation = relation_name(trigdata->tg_relation);
	hg_audit_current_statement(&ev.statement, &ev.query_id);
	hg_audit_record_in_xact(&ev);
	return PointerGetDatum(NULL);
}
