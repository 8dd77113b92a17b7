/*
 * auditcapture.h
 *		What the capture files share: the audited-table cache of
 *		auditconfig.c and the statement tracking of auditcapture.c.
 */
#ifndef HG_AUDITCAPTURE_H
#define HG_AUDITCAPTURE_H

#include "postgres.h"

#include "nodes/plannodes.h"

/* How a table is audited; both false for a table that is not. */
typedef struct HgAuditedRel
{
	bool		reads;
	bool		writes;
	bool		trail;			/* one of the trail's own tables */
	const char *name;			/* schema-qualified, quoted as needed */
} HgAuditedRel;

/* auditconfig.c */
extern const HgAuditedRel *hg_audited_rel(Oid relid);
extern bool hg_audit_any_configured(void);

/* What a hot standby does with statements the audit would record. */
typedef enum HgStandbyReads
{
	HG_STANDBY_READS_REFUSE,
	HG_STANDBY_READS_UNRECORDED
} HgStandbyReads;

/* auditcapture.c */
extern int	hg_standby_reads;
extern void hg_audit_check_standby(const char *relation);
extern void hg_audit_capture_install_hooks(void);
extern Size hg_audit_capture_shmem_size(void);
extern void hg_audit_capture_shmem_startup(void);
extern void hg_audit_note_decrypt(uint32 key_id);
extern void hg_audit_push_utility(PlannedStmt *pstmt, const char *query_string);
extern void hg_audit_pop_utility(void);
extern void hg_audit_set_export(bool on);
extern uint64 hg_audit_executor_exports(void);
extern void hg_audit_record_denied(const char *command, List *relations);

/* auditddl.c */
extern bool hg_audit_internal_ddl;
extern void hg_audit_ddl_install_hooks(void);

#endif							/* HG_AUDITCAPTURE_H */
