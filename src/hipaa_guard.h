/*
 * hipaa_guard.h
 *		Module-wide state: whether the library was preloaded, and the
 *		advisory locks the extension takes.
 */
#ifndef HG_HIPAA_GUARD_H
#define HG_HIPAA_GUARD_H

/*
 * Advisory locks, in the two-integer form, so that they show in pg_locks
 * as (classid, objid) = (HG_ADVISORY_LOCK_CLASS, id).  The SQL scripts name
 * the same numbers.
 */
#define HG_ADVISORY_LOCK_CLASS	1751580672	/* 0x68670000, "hg" */
#define HG_PURGE_LOCK_ID		1	/* one retention purge per database */
#define HG_HOLD_LOCK_ID			2	/* legal holds against purge batches */
#define HG_ROLE_GRANT_LOCK_ID	3	/* grant_group() against itself */

/* The role under which purges read and change the purged tables. */
#define HG_PURGER_ROLE "hipaa_purger"

extern void hg_require_preloaded(void);
extern int	hg_proc_count(void);
extern bool hg_is_preloaded(void);

#endif							/* HG_HIPAA_GUARD_H */
