/*
 * worker.h
 *		Scheduled purges: the launcher background worker and the purge worker
 *		it starts in each database.
 */
#ifndef HG_WORKER_H
#define HG_WORKER_H

#include "postgres.h"

extern int	hg_purge_naptime;

extern void hg_worker_register(void);
extern void hg_execute_top_level_statement(const char *sql);

/* Entry points that the postmaster looks up by name in this library. */
extern PGDLLEXPORT void hg_launcher_main(Datum main_arg);
extern PGDLLEXPORT void hg_purge_worker_main(Datum main_arg);

#endif							/* HG_WORKER_H */
