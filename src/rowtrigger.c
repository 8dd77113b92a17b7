/*
 * rowtrigger.c
 *		The row trigger behind hipaa_guard.bind_columns() and
 *		hipaa_guard.add_blind_index(): binds each encrypted value to its row,
 *		moves it under the patient's own key when asked, and keeps blind index
 *		columns in step.
 *
 * Casts and COPY encrypt a value before the row exists, so they cannot bind
 * it.  This BEFORE INSERT OR UPDATE trigger therefore decrypts and encrypts
 * again each encrypted value of the new row that is not yet bound to the
 * row's key, or not yet under the patient's key.  The row key is the
 * text form of the row key column, an identifier that survives dump, restore
 * and renames, unlike an OID or an attribute number.
 *
 * A value bound to another row is rejected, except on an UPDATE that changes
 * the row key and leaves the value itself unchanged.  Such a value is bound
 * again to the new key, so that changing a patient id never leaves values
 * that no longer decrypt.
 *
 * Trigger arguments, written by the SQL helpers: row key column ('' for
 * none), per-patient keys ('t' or 'f'), then triples of encrypted column,
 * blind index column and blind index key name.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "commands/trigger.h"
#include "parser/parse_relation.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "enctypes.h"
#include "keyring.h"

/* Per-statement facts about the table, kept in fn_extra. */
typedef struct TriggerPlan
{
	Oid			relid;
	int			row_key_attnum;	/* 0 when values are not bound */
	bool		per_patient;
	int			nencrypted;
	int		   *encrypted_attnums;
	int			nindexes;
	int		   *index_source;
	int		   *index_target;
	char	  **index_key;
	Oid			row_key_output;
	bool		row_key_varlena;
} TriggerPlan;

static const char *const encrypted_type_names[] = {
	"encrypted_text", "encrypted_bytea", "encrypted_date", "encrypted_jsonb"
};

static bool
is_encrypted_type(Oid typid, const Oid *type_oids)
{
	for (int i = 0; i < (int) lengthof(encrypted_type_names); i++)
		if (typid == type_oids[i])
			return true;
	return false;
}

static int
column_attnum(Relation rel, const char *name)
{
	int			attnum = attnameAttNum(rel, name, false);

	if (attnum == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of table \"%s\" named by the hipaa_guard row trigger does not exist",
						name, RelationGetRelationName(rel)),
				 errhint("A column was renamed or dropped; run hipaa_guard.bind_columns() again to rebuild the trigger.")));
	return attnum;
}

static TriggerPlan *
build_plan(FunctionCallInfo fcinfo, TriggerData *trigdata)
{
	Relation	rel = trigdata->tg_relation;
	TupleDesc	desc = RelationGetDescr(rel);
	Trigger    *trigger = trigdata->tg_trigger;
	MemoryContext old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
	TriggerPlan *plan = palloc0(sizeof(TriggerPlan));
	Oid			nsp = get_namespace_oid("hipaa_guard", false);
	Oid			type_oids[lengthof(encrypted_type_names)];

	if (trigger->tgnargs < 2 || (trigger->tgnargs - 2) % 3 != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("hipaa_guard row trigger on \"%s\" has invalid arguments",
						RelationGetRelationName(rel)),
				 errhint("Recreate it with hipaa_guard.bind_columns().")));
	for (int i = 0; i < (int) lengthof(encrypted_type_names); i++)
		type_oids[i] = GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid,
									   CStringGetDatum(encrypted_type_names[i]),
									   ObjectIdGetDatum(nsp));

	plan->relid = RelationGetRelid(rel);
	if (trigger->tgargs[0][0] != '\0')
	{
		Oid			typoutput;

		plan->row_key_attnum = column_attnum(rel, trigger->tgargs[0]);
		getTypeOutputInfo(TupleDescAttr(desc, plan->row_key_attnum - 1)->atttypid,
						  &typoutput, &plan->row_key_varlena);
		plan->row_key_output = typoutput;
	}
	plan->per_patient = trigger->tgargs[1][0] == 't';

	plan->encrypted_attnums = palloc(sizeof(int) * desc->natts);
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && is_encrypted_type(att->atttypid, type_oids))
			plan->encrypted_attnums[plan->nencrypted++] = i + 1;
	}

	plan->nindexes = (trigger->tgnargs - 2) / 3;
	plan->index_source = palloc(sizeof(int) * (plan->nindexes + 1));
	plan->index_target = palloc(sizeof(int) * (plan->nindexes + 1));
	plan->index_key = palloc(sizeof(char *) * (plan->nindexes + 1));
	for (int i = 0; i < plan->nindexes; i++)
	{
		plan->index_source[i] = column_attnum(rel, trigger->tgargs[2 + 3 * i]);
		plan->index_target[i] = column_attnum(rel, trigger->tgargs[3 + 3 * i]);
		plan->index_key[i] = pstrdup(trigger->tgargs[4 + 3 * i]);
	}
	MemoryContextSwitchTo(old);
	return plan;
}

static char *
row_key_text(TriggerPlan *plan, HeapTuple tuple, TupleDesc desc)
{
	bool		isnull;
	Datum		value = heap_getattr(tuple, plan->row_key_attnum, desc, &isnull);

	if (isnull)
		return NULL;
	return OidOutputFunctionCall(plan->row_key_output, value);
}

static bool
same_bytes(bytea *a, bytea *b)
{
	return VARSIZE_ANY_EXHDR(a) == VARSIZE_ANY_EXHDR(b) &&
		memcmp(VARDATA_ANY(a), VARDATA_ANY(b), VARSIZE_ANY_EXHDR(a)) == 0;
}

static bool
bound_to(const HgEnvelope *env, const char *row_key)
{
	return env->row_key != NULL && env->row_key_len == strlen(row_key) &&
		memcmp(env->row_key, row_key, env->row_key_len) == 0;
}

/*
 * Return the value of one encrypted column as it must be stored in the new
 * row, or NULL when it can stay as it is.
 */
static bytea *
bind_value(TriggerPlan *plan, Relation rel, int attnum, bytea *value,
		   bytea *old_value, const char *row_key)
{
	HgEnvelope	env;
	uint32		target_key;
	uint8_t    *plain;
	size_t		len;
	bytea	   *result;

	hg_parse_stored(value, &env);
	/* A shredded value cannot be bound again; it may stay where it is. */
	if (old_value != NULL && same_bytes(value, old_value) &&
		hg_key_is_destroyed(env.key_id))
		return NULL;
	target_key = plan->per_patient ? hg_patient_key_id(row_key, true) : env.key_id;
	if (bound_to(&env, row_key) && env.key_id == target_key)
		return NULL;
	if (env.row_key != NULL && !bound_to(&env, row_key) &&
		(old_value == NULL || !same_bytes(value, old_value)))
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("encrypted value for column \"%s\" of table \"%s\" is bound to another row",
						NameStr(TupleDescAttr(RelationGetDescr(rel), attnum - 1)->attname),
						RelationGetRelationName(rel)),
				 errdetail("A value encrypted for one row cannot be copied into another."),
				 errhint("Write the plaintext instead, so that it is encrypted for this row.")));
	plain = hg_decrypt_envelope(&env, &len);
	result = hg_encrypt_bytes((HgTypeCode) env.type_code, target_key, row_key, plain, len);
	hg_wipe(plain, len);
	pfree(plain);
	return result;
}

static bytea *
blind_index_of(bytea *value, const char *key_name)
{
	HgEnvelope	env;
	uint8_t    *plain;
	size_t		len;
	uint8_t		mac[HG_MAC_LEN];
	const uint8_t *key = hg_key_for_mac(hg_key_id_by_name(key_name, false));
	bytea	   *result;

	hg_parse_stored(value, &env);
	plain = hg_decrypt_envelope(&env, &len);
	if (hg_hmac_sha256(key, HG_KEY_LEN, plain, len, mac) != HG_CRYPTO_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not compute blind index")));
	hg_wipe(plain, len);
	pfree(plain);
	result = palloc(VARHDRSZ + HG_MAC_LEN);
	SET_VARSIZE(result, VARHDRSZ + HG_MAC_LEN);
	memcpy(VARDATA(result), mac, HG_MAC_LEN);
	return result;
}

/* Whether an attribute has the same bytes (or is NULL) in both tuples. */
static bool
same_attribute(HeapTuple a, HeapTuple b, int attnum, TupleDesc desc)
{
	bool		a_null;
	bool		b_null;
	Datum		a_value = heap_getattr(a, attnum, desc, &a_null);
	Datum		b_value = heap_getattr(b, attnum, desc, &b_null);

	if (a_null || b_null)
		return a_null && b_null;
	return same_bytes(DatumGetByteaPP(a_value), DatumGetByteaPP(b_value));
}

/*
 * Whether an UPDATE left blind index i as it was computed: the encrypted
 * value and a filled index column both unchanged.  Recomputing it would
 * decrypt the value and compute the HMAC again for the same result.
 */
static bool
index_still_valid(TriggerPlan *plan, int i, HeapTuple oldtuple,
				  HeapTuple newtuple, TupleDesc desc)
{
	bool		isnull;

	(void) heap_getattr(oldtuple, plan->index_target[i], desc, &isnull);
	return !isnull &&
		same_attribute(oldtuple, newtuple, plan->index_source[i], desc) &&
		same_attribute(oldtuple, newtuple, plan->index_target[i], desc);
}

/*
 * Apply the declaration to one new row.  COPY's error context prints the
 * whole input line, plaintext included, so an error raised while doing so
 * is raised again with that context cut before the line.
 */
static HeapTuple process_row(FunctionCallInfo fcinfo);

PG_FUNCTION_INFO_V1(hg_encrypted_row_trigger);
Datum
hg_encrypted_row_trigger(PG_FUNCTION_ARGS)
{
	MemoryContext caller_context = CurrentMemoryContext;
	volatile HeapTuple result = NULL;

	PG_TRY();
	{
		result = process_row(fcinfo);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(caller_context);
		edata = CopyErrorData();
		FlushErrorState();
		hg_strip_copy_values(edata);
		ReThrowError(edata);
	}
	PG_END_TRY();
	return PointerGetDatum(result);
}

static HeapTuple
process_row(FunctionCallInfo fcinfo)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TriggerPlan *plan;
	Relation	rel;
	TupleDesc	desc;
	HeapTuple	newtuple;
	HeapTuple	oldtuple = NULL;
	char	   *row_key = NULL;
	int		   *cols;
	Datum	   *values;
	bool	   *nulls;
	int			nchanged = 0;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("hipaa_guard row trigger must run BEFORE INSERT OR UPDATE FOR EACH ROW")));

	rel = trigdata->tg_relation;
	desc = RelationGetDescr(rel);
	plan = (TriggerPlan *) fcinfo->flinfo->fn_extra;
	if (plan == NULL || plan->relid != RelationGetRelid(rel))
		fcinfo->flinfo->fn_extra = plan = build_plan(fcinfo, trigdata);

	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		newtuple = trigdata->tg_newtuple;
		oldtuple = trigdata->tg_trigtuple;
	}
	else
		newtuple = trigdata->tg_trigtuple;

	cols = palloc(sizeof(int) * (plan->nencrypted + plan->nindexes + 1));
	values = palloc(sizeof(Datum) * (plan->nencrypted + plan->nindexes + 1));
	nulls = palloc0(sizeof(bool) * (plan->nencrypted + plan->nindexes + 1));

	if (plan->row_key_attnum != 0)
		row_key = row_key_text(plan, newtuple, desc);

	for (int i = 0; plan->row_key_attnum != 0 && i < plan->nencrypted; i++)
	{
		int			attnum = plan->encrypted_attnums[i];
		bool		isnull;
		Datum		value = heap_getattr(newtuple, attnum, desc, &isnull);
		bytea	   *old_value = NULL;
		bytea	   *bound;

		if (isnull)
			continue;
		if (row_key == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_NOT_NULL_VIOLATION),
					 errmsg("row key column \"%s\" of table \"%s\" must not be null when the row holds encrypted values",
							NameStr(TupleDescAttr(desc, plan->row_key_attnum - 1)->attname),
							RelationGetRelationName(rel))));
		if (oldtuple != NULL)
		{
			bool		oldnull;
			Datum		old = heap_getattr(oldtuple, attnum, desc, &oldnull);

			if (!oldnull)
				old_value = DatumGetByteaPP(old);
		}
		bound = bind_value(plan, rel, attnum, DatumGetByteaPP(value), old_value, row_key);
		if (bound != NULL)
		{
			cols[nchanged] = attnum;
			values[nchanged++] = PointerGetDatum(bound);
		}
	}
	if (nchanged > 0)
	{
		newtuple = heap_modify_tuple_by_cols(newtuple, desc, nchanged, cols, values, nulls);
		nchanged = 0;
	}

	for (int i = 0; i < plan->nindexes; i++)
	{
		bool		isnull;
		Datum		value = heap_getattr(newtuple, plan->index_source[i], desc, &isnull);

		if (oldtuple != NULL && index_still_valid(plan, i, oldtuple, newtuple, desc))
			continue;
		cols[nchanged] = plan->index_target[i];
		nulls[nchanged] = isnull;
		values[nchanged++] = isnull ? (Datum) 0 :
			PointerGetDatum(blind_index_of(DatumGetByteaPP(value), plan->index_key[i]));
	}
	if (nchanged > 0)
		newtuple = heap_modify_tuple_by_cols(newtuple, desc, nchanged, cols, values, nulls);

	return newtuple;
}
