/*
 * auditretention.c
 *		Removal of old sealed blocks by the audit's retention policy, and
 *		the purge receipt that verification starts from afterwards.
 *
 * Nothing else may delete from the trail: the guard trigger lets a DELETE
 * through only while hipaa_guard.purge_audit_blocks() runs, in the process
 * that called it.  purge_audit() in src/sql/audit_retention.sql decides what
 * is due, writes the receipt into audit_purges, and records it as an event,
 * so that the receipt is itself sealed into the chain that goes on.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"

#include "auditqueue.h"

/* Set only while purge_audit_blocks() deletes; read by the guard trigger. */
bool		hg_audit_purging = false;

static uint64
run_delete(const char *sql, int64 bound)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(bound)};

	if (SPI_execute_with_args(sql, 1, argtypes, values, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not delete purged audit records");
	return SPI_processed;
}

/* Delete the packed rows of records up to through_seq; returns the records. */
static uint64
delete_records(int64 through_seq)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(through_seq)};
	uint64		records = 0;

	if (SPI_execute_with_args("DELETE FROM hipaa_guard.audit_log WHERE first_seq OPERATOR(pg_catalog.<=) $1"
							  " RETURNING last_seq OPERATOR(pg_catalog.-) first_seq OPERATOR(pg_catalog.+) 1",
							  1, argtypes, values, NULL, false, 0) != SPI_OK_DELETE_RETURNING)
		elog(ERROR, "could not delete purged audit records");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Datum		count = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			records += DatumGetInt64(count);
	}
	return records;
}

/*
 * hipaa_guard.purge_audit_blocks(through_block, through_seq): delete the
 * sealed blocks up to through_block and their records.  Returns the number
 * of records deleted.  For purge_audit() only, which is granted to no one.
 */
PG_FUNCTION_INFO_V1(hg_purge_audit_blocks);
Datum
hg_purge_audit_blocks(PG_FUNCTION_ARGS)
{
	int64		through_block = PG_GETARG_INT64(0);
	int64		through_seq = PG_GETARG_INT64(1);
	uint64		records = 0;

	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to purge audit blocks"),
				 errhint("Call hipaa_guard.purge_audit().")));
	SPI_connect();
	hg_audit_purging = true;
	PG_TRY();
	{
		records = delete_records(through_seq);
		(void) run_delete("DELETE FROM hipaa_guard.audit_block WHERE block OPERATOR(pg_catalog.<=) $1",
						  through_block);
	}
	PG_FINALLY();
	{
		hg_audit_purging = false;
	}
	PG_END_TRY();
	SPI_finish();
	PG_RETURN_INT64((int64) records);
}
