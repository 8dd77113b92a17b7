/*
 * keyfuncs.c
 *		SQL-callable key management: create_key, create_signing_key,
 *		rotate_key, destroy_key, erasing retired versions, rewrap_keys and
 *		master_key_status.  Argument checks live here; the work is done by
 *		keyring.c.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"

#include "audit.h"
#include "hipaa_guard.h"
#include "keyring.h"
#include "masterkey.h"

static char *
key_name_argument(FunctionCallInfo fcinfo)
{
	char	   *name;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("key name must not be null")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (name[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("key name must not be empty")));
	hg_require_preloaded();
	return name;
}

/* Key names appear in type modifiers, so they are kept to a quote-free set. */
static void
check_key_name_chars(const char *name)
{
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			  (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' || *p == '.'))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid data key name \"%s\"", name),
					 errdetail("Key names may contain only letters, digits, \"_\", \"-\" and \".\".")));
}

/*
 * Record a key operation in the audit trail, the durable way: a key
 * created or destroyed in a transaction that then fails is still worth
 * knowing about.  Key names are not secret; key bytes never come near.
 */
static void
record_key_event(const char *command, const char *name, const char *detail)
{
	HgAuditEvent ev;

	if (!hg_is_preloaded())
		return;
	hg_audit_event_init(&ev, HG_AUDIT_KEY, command);
	ev.detail = detail ? psprintf("key %s, %s", name, detail) : psprintf("key %s", name);
	hg_audit_current_statement(&ev.statement, &ev.query_id);
	hg_audit_record_durable(&ev);
}

PG_FUNCTION_INFO_V1(hg_create_key);
Datum
hg_create_key(PG_FUNCTION_ARGS)
{
	char	   *name = key_name_argument(fcinfo);
	uint32		key_id;

	if (strlen(name) > HG_MAX_KEY_NAME_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("data key name is too long"),
				 errdetail("Key names have at most %d bytes.", HG_MAX_KEY_NAME_LEN)));
	if (strncmp(name, HG_PATIENT_KEY_PREFIX, strlen(HG_PATIENT_KEY_PREFIX)) != 0)
		check_key_name_chars(name);
	key_id = hg_keyring_create(name);
	record_key_event("CREATE KEY", name, NULL);
	PG_RETURN_INT32((int32) key_id);
}

/*
 * Create a signing key for actor tokens.  Its name is what tokens carry as
 * "kid", so it gets the same character set as data key names.
 */
PG_FUNCTION_INFO_V1(hg_create_signing_key);
Datum
hg_create_signing_key(PG_FUNCTION_ARGS)
{
	char	   *name = key_name_argument(fcinfo);
	uint32		key_id;

	if (strlen(name) > HG_MAX_KEY_NAME_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("data key name is too long"),
				 errdetail("Key names have at most %d bytes.", HG_MAX_KEY_NAME_LEN)));
	check_key_name_chars(name);
	key_id = hg_keyring_create_signing(name);
	record_key_event("CREATE SIGNING KEY", name, NULL);
	PG_RETURN_INT32((int32) key_id);
}

PG_FUNCTION_INFO_V1(hg_rotate_key);
Datum
hg_rotate_key(PG_FUNCTION_ARGS)
{
	char	   *name = key_name_argument(fcinfo);
	uint32		version = hg_keyring_rotate(name);

	record_key_event("ROTATE KEY", name, psprintf("new version %u", version));
	PG_RETURN_INT32((int32) version);
}

PG_FUNCTION_INFO_V1(hg_destroy_key);
Datum
hg_destroy_key(PG_FUNCTION_ARGS)
{
	char	   *name = key_name_argument(fcinfo);

	hg_keyring_destroy(name);
	record_key_event("DESTROY KEY", name, NULL);
	PG_RETURN_VOID();
}

/* Erase an old key version; retire_key_version() in SQL checks it is unused. */
PG_FUNCTION_INFO_V1(hg_erase_key_version);
Datum
hg_erase_key_version(PG_FUNCTION_ARGS)
{
	char	   *name = key_name_argument(fcinfo);
	int32		version;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("key version must not be null")));
	version = PG_GETARG_INT32(1);
	if (version < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("key version must not be negative")));
	hg_keyring_retire(name, (uint32) version);
	record_key_event("RETIRE KEY VERSION", name, psprintf("version %d", version));
	PG_RETURN_VOID();
}

/*
 * Raise an error inside a transaction block, for procedures that commit as
 * they go: PostgreSQL's own error names only the COMMIT that failed.
 */
PG_FUNCTION_INFO_V1(hg_require_own_transaction);
Datum
hg_require_own_transaction(PG_FUNCTION_ARGS)
{
	char	   *procedure = text_to_cstring(PG_GETARG_TEXT_PP(0));

	if (IsTransactionBlock())
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("%s cannot run inside a transaction block", procedure),
				 errhint("It commits after each batch; CALL it on its own, outside BEGIN and COMMIT.")));
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(hg_rewrap_keys);
Datum
hg_rewrap_keys(PG_FUNCTION_ARGS)
{
	int64		rewrapped;

	hg_require_preloaded();
	rewrapped = hg_keyring_rewrap();
	record_key_event("REWRAP KEYS", "all", psprintf("%lld key versions rewrapped", (long long) rewrapped));
	PG_RETURN_INT64(rewrapped);
}

/*
 * Report whether a master key is loaded, where from, and its fingerprint
 * (derived one-way from the key, safe to show).
 */
PG_FUNCTION_INFO_V1(hg_master_key_status);
Datum
hg_master_key_status(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};
	bool		loaded = hg_masterkey_is_loaded();

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "hipaa_guard: master_key_status must return a record");
	values[0] = BoolGetDatum(loaded);
	values[1] = CStringGetTextDatum(hg_masterkey_source());
	if (loaded)
		values[2] = CStringGetTextDatum(hg_fingerprint_hex(hg_masterkey_current()->fingerprint));
	else
		nulls[2] = true;
	if (hg_masterkey_previous() != NULL)
		values[3] = CStringGetTextDatum(hg_fingerprint_hex(hg_masterkey_previous()->fingerprint));
	else
		nulls[3] = true;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}
