/* TEMPORARY development stub, replaced by the audit-sealer branch. */
#include "postgres.h"
#include "audit.h"
#include "utils/builtins.h"
#include "lib/stringinfo.h"
static char *lst(List *l){StringInfoData b; ListCell *lc; if(!l) return "-"; initStringInfo(&b); foreach(lc,l) appendStringInfo(&b,"%s ", (char*)lfirst(lc)); return b.data;}
static void show(const char *how, const HgAuditEvent *ev){
 elog(NOTICE, "AUDIT %s kind=%s cmd=%s rel=%s key=%s cols=%s rows=%lld pats=%s dec=%lld stmt=%s detail=%s", how, ev->kind, ev->command, ev->relation?ev->relation:"-", ev->row_key?ev->row_key:"-", lst(ev->columns), (long long)ev->rows, lst(ev->patients), (long long)ev->decrypts, ev->statement?ev->statement:"-", ev->detail?ev->detail:"-");}
void hg_audit_record_durable(const HgAuditEvent *ev){show("durable",ev);}
void hg_audit_record_in_xact(const HgAuditEvent *ev){show("xact",ev);}
char *hg_redact_statement(const char *q, int loc, int len){ if(!q) return NULL; if(loc<0) loc=0; if(len<=0) return pstrdup(q+loc); return pnstrdup(q+loc,len);}
