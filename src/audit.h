/*
 * audit.h
 *		Audit events: what the capture paths hand to the trail, and the two
 *		ways an event reaches it.
 *
 * An event recorded with hg_audit_record_durable() survives the rollback of
 * the transaction that recorded it: it goes through a shared memory queue
 * that the sealing worker of the database drains (auditqueue.c).  Reads,
 * exports, refusals and admin actions take this path.  Row changes take
 * hg_audit_record_in_xact(): the record is inserted in the changing
 * transaction, so it is durable exactly when the change is.
 *
 * The caller fills only the event's own fields, and the session fields
 * (actor, login role, database, client, transaction, time) are added by the
 * recording function.
 */
#ifndef HG_AUDIT_H
#define HG_AUDIT_H

#include "postgres.h"

#include "nodes/pg_list.h"

/* Kinds of event, the values of audit_log.kind. */
#define HG_AUDIT_READ		"read"
#define HG_AUDIT_EXPORT		"export"
#define HG_AUDIT_WRITE		"write"
#define HG_AUDIT_DENIED		"denied"
#define HG_AUDIT_ADMIN		"admin"
#define HG_AUDIT_KEY		"key"
#define HG_AUDIT_CONFIG		"config"
#define HG_AUDIT_ACCESS		"access"

typedef struct HgAuditEvent
{
	const char *kind;			/* one of HG_AUDIT_* */
	const char *command;		/* command tag or function, e.g. "SELECT" */
	const char *relation;		/* schema-qualified name, or NULL */
	const char *row_key;		/* writes: the row's key in text, or NULL */
	List	   *columns;		/* writes: names of changed columns (char *) */
	int64		rows;			/* rows returned or changed, -1 for none */
	List	   *patients;		/* patient ids (char *) the event touched */
	int64		decrypts;		/* decrypt calls of the statement, -1 for none */
	uint64		query_id;		/* 0 when unknown */
	const char *statement;		/* literal-free statement text, or NULL */
	const char *detail;			/* free text for admin events, never a value */
} HgAuditEvent;

/* Zero an event: no counts, no lists, no text. */
static inline void
hg_audit_event_init(HgAuditEvent *ev, const char *kind, const char *command)
{
	memset(ev, 0, sizeof(HgAuditEvent));
	ev->kind = kind;
	ev->command = command;
	ev->rows = -1;
	ev->decrypts = -1;
}

/* Record an event that must outlive the current transaction. */
extern void hg_audit_record_durable(const HgAuditEvent *ev);

/* Record an event in the current transaction (row changes). */
extern void hg_audit_record_in_xact(const HgAuditEvent *ev);

/* hipaa_guard.audit_durable_reads, defined in auditcapture.c. */
extern bool hg_audit_durable_reads;

/*
 * The literal-free text and query id of the innermost statement being
 * executed, for events recorded outside the capture hooks.
 */
extern void hg_audit_current_statement(const char **statement, uint64 *query_id);

/* Whether a relation is audited, from a per-session cache. */
extern bool hg_audit_relation_audited(Oid relid);

/*
 * The statement being executed, without literals or comments, for the
 * trail.  Returns NULL when there is no statement text.
 */
extern char *hg_redact_statement(const char *query, int location, int len);

#endif							/* HG_AUDIT_H */
