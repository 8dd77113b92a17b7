/*
 * hipaa_guard.c
 *		Module load: settings, the shared memory request and the master key
 *		loading that must happen in the postmaster.
 *
 * The library must be in shared_preload_libraries: that is where the master
 * key is read, before any client can connect, and where the keyring's lock is
 * allocated.  Loaded any other way, CREATE EXTENSION still works, but every
 * operation on keys fails with an error that calls for preloading.
 */
#include "postgres.h"

#include <limits.h>

#include "access/twophase.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/guc.h"
#include "utils/queryjumble.h"

#include "actor.h"
#include "audit.h"
#include "auditcapture.h"
#include "auditqueue.h"
#include "careteam.h"
#include "hipaa_guard.h"
#include "keyring.h"
#include "masterkey.h"
#include "session.h"
#include "worker.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

static bool loaded_at_preload = false;
static int	hg_break_glass_max_duration = 240;
static int	hg_purge_batch_delay = 0;
static char *hg_audit_retention = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
hg_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	hg_keyring_shmem_request();
	RequestAddinShmemSpace(hg_actor_shmem_size());
	hg_audit_shmem_request();
	RequestAddinShmemSpace(hg_audit_capture_shmem_size());
}

static void
hg_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	hg_actor_shmem_startup();
	hg_audit_shmem_startup();
	hg_audit_capture_shmem_startup();
}

/*
 * Return the number of PGPROC entries: backends, auxiliary processes and
 * prepared transactions.  Shared arrays indexed by pgprocno need this many.
 */
int
hg_proc_count(void)
{
	return MaxBackends + NUM_AUXILIARY_PROCS + max_prepared_xacts;
}

bool
hg_is_preloaded(void)
{
	return loaded_at_preload;
}

void
hg_require_preloaded(void)
{
	if (!loaded_at_preload)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("hipaa_guard must be loaded via \"shared_preload_libraries\""),
				 errhint("Add hipaa_guard to shared_preload_libraries in postgresql.conf and restart the server.")));
}

/*
 * Define the master key settings.  They are read once, by the postmaster, and
 * PostgreSQL refuses to define postmaster-only settings after start-up, so a
 * library loaded later (by CREATE EXTENSION) leaves them out.
 */
static void
define_master_key_settings(void)
{
	DefineCustomStringVariable("hipaa_guard.master_key_command",
							   "Shell command that prints the master key as 64 hexadecimal characters.",
							   "Run once by the postmaster at server start. Set this or hipaa_guard.master_key_file, not both.",
							   &hg_master_key_command, "",
							   PGC_POSTMASTER, GUC_SUPERUSER_ONLY, NULL, NULL, NULL);
	DefineCustomStringVariable("hipaa_guard.master_key_file",
							   "File that holds the master key as 64 hexadecimal characters.",
							   "Must be owned by the server's operating system user with mode 0600 or 0400.",
							   &hg_master_key_file, "",
							   PGC_POSTMASTER, GUC_SUPERUSER_ONLY, NULL, NULL, NULL);
	DefineCustomStringVariable("hipaa_guard.previous_master_key_command",
							   "Shell command that prints the previous master key, while rewrapping data keys.",
							   "Set it together with a new master key, run hipaa_guard.rewrap_keys(), then remove it.",
							   &hg_previous_master_key_command, "",
							   PGC_POSTMASTER, GUC_SUPERUSER_ONLY, NULL, NULL, NULL);
	DefineCustomStringVariable("hipaa_guard.previous_master_key_file",
							   "File that holds the previous master key, while rewrapping data keys.",
							   NULL,
							   &hg_previous_master_key_file, "",
							   PGC_POSTMASTER, GUC_SUPERUSER_ONLY, NULL, NULL, NULL);
}

static void
define_keyring_settings(void)
{
	DefineCustomIntVariable("hipaa_guard.rotate_after_encryptions",
							"Encryptions under one data key version after which the key rotates itself.",
							"Random 96-bit nonces allow at most 2^32 encryptions per key; the default stops at half of that.",
							&hg_rotate_after_encryptions, INT_MAX, 1, INT_MAX,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("hipaa_guard.nonce_lease_size",
							"Encryptions a session reserves from a key version's budget at a time.",
							"Each reservation is one WAL-logged write; a crash forfeits the unused part.",
							&hg_nonce_lease_size, 65536, 1, 1048576,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("hipaa_guard.key_cache_size",
							"Unwrapped data key versions each session keeps in memory.",
							"About 100 bytes each; when the cache is full it is emptied and refilled as keys are used.",
							&hg_key_cache_size, 262144, 16, 10000000,
							PGC_SUSET, 0, NULL, NULL, NULL);
}

/*
 * Define the actor token settings.  All are PGC_SUSET: the application role
 * that presents tokens must not choose how they are checked.
 */
static void
define_actor_settings(void)
{
	DefineCustomStringVariable("hipaa_guard.token_issuer",
							   "Issuer that actor tokens must name in their \"iss\" claim.",
							   "While it is empty, hipaa_guard.set_actor() rejects every token.",
							   &hg_token_issuer, "",
							   PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("hipaa_guard.token_audience",
							   "Audience that actor tokens must include in their \"aud\" claim.",
							   "While it is empty, hipaa_guard.set_actor() rejects every token.",
							   &hg_token_audience, "",
							   PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("hipaa_guard.token_signing_key",
							   "Signing key that verifies actor tokens whose header has no \"kid\".",
							   "The name of a key made by hipaa_guard.create_signing_key(). A token with a \"kid\" is verified with the key of that name.",
							   &hg_token_signing_key, "",
							   PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("hipaa_guard.token_leeway",
							"Clock difference allowed when checking the \"exp\" and \"nbf\" claims of actor tokens.",
							NULL,
							&hg_token_leeway, 30, 0, 3600,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomBoolVariable("hipaa_guard.require_mfa",
							 "Allows decryption only to actors with a second authentication factor.",
							 "A token's actor has one when the token's \"amr\" claim shows one, a direct login when it authenticated with a client certificate.",
							 &hg_require_mfa, false,
							 PGC_SUSET, 0, NULL, NULL, NULL);
}

/*
 * Define the purge schedule.  It is defined even when the library is not
 * preloaded, so that SHOW works, although only a preloaded library runs the
 * launcher that reads it.
 */
static void
define_worker_settings(void)
{
	DefineCustomIntVariable("hipaa_guard.purge_batch_delay",
							"Pause after each committed batch of a retention purge.",
							"Gives concurrent work the CPU and WAL bandwidth a purge would otherwise take, as vacuum_cost_delay does for VACUUM.",
							&hg_purge_batch_delay, 0, 0, 10000,
							PGC_SUSET, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomStringVariable("hipaa_guard.audit_retention",
							   "How long sealed audit records are kept before a purge removes their blocks.",
							   "An interval of at least 6 years (45 CFR 164.316(b)(2)); hipaa_guard.purge_audit() checks it.",
							   &hg_audit_retention, "6 years",
							   PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("hipaa_guard.purge_naptime",
							"Time between scheduled purge rounds.",
							"Each round calls hipaa_guard.purge() in every database where the extension is installed. 0 disables scheduled purges.",
							&hg_purge_naptime, 3600, 0, 31 * 24 * 3600,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
}

/*
 * Define the audit queue's sizes.  Both size shared memory, so they are
 * postmaster-only and, like the master key settings, defined only when the
 * library is preloaded.
 *
 * The sealer starts a round early when a queue is half full.  A read record
 * takes about 250 bytes in the queue, so half of 8 MB fits the records of
 * 200 ms (one seal interval) at 80,000 statements a second.  With 1 MB,
 * pgbench's select-only load woke the sealer 30 times a second, and on two
 * busy CPUs each wake-up left a CPU idle for a while.
 */
static void
define_audit_queue_settings(void)
{
	DefineCustomIntVariable("hipaa_guard.audit_databases",
							"Databases whose audit events can be queued in shared memory.",
							"Each database with the extension takes one audit queue on its first audit event. Recording fails in a database that finds none free.",
							&hg_audit_databases, 8, 1, 1024,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("hipaa_guard.audit_queue_size",
							"Shared memory for each database's queue of audit events waiting to be sealed.",
							"When a queue is full, the backends that record events wait for the sealing worker.",
							&hg_audit_queue_size, 8192, 64, 1024 * 1024,
							PGC_POSTMASTER, GUC_UNIT_KB, NULL, NULL, NULL);
}

/*
 * Define the sealer's poll interval.  A commit wakes the sealer anyway; the
 * interval bounds the delay for records whose wake-up was missed, such as
 * those of COMMIT PREPARED.
 */
static const struct config_enum_entry standby_reads_options[] = {
	{"refuse", HG_STANDBY_READS_REFUSE, false},
	{"unrecorded", HG_STANDBY_READS_UNRECORDED, false},
	{NULL, 0, false}
};

static void
define_audit_settings(void)
{
	DefineCustomIntVariable("hipaa_guard.audit_seal_interval",
							"Longest time the sealing worker sleeps between looks at its queues.",
							NULL,
							&hg_audit_seal_interval, 200, 10, 60000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	/* Set in the server's configuration only, so no session can lift it. */
	DefineCustomEnumVariable("hipaa_guard.standby_reads",
							 "What a hot standby does with statements the audit would record: refuse them, or run them unrecorded.",
							 "A standby cannot write the audit trail. \"refuse\" raises an error for reads of audited tables and for decrypt() calls.",
							 &hg_standby_reads, HG_STANDBY_READS_REFUSE, standby_reads_options,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);
	/* Superuser-only, so that no session can turn it off for its own reads. */
	DefineCustomBoolVariable("hipaa_guard.audit_durable_reads",
							 "Inserts the records of reads in the reading transaction, so that they survive a crash once it commits.",
							 "Each audited read then makes its transaction write and flush WAL at commit, as a change does. Off, records of reads wait in shared memory until the sealing worker has sealed and flushed them.",
							 &hg_audit_durable_reads, false,
							 PGC_SUSET, 0, NULL, NULL, NULL);
}

/*
 * Define the access settings.  Only a superuser may change the longest
 * break-glass access, so that a clinician cannot open access for longer in
 * their own session.
 */
static void
define_access_settings(void)
{
	DefineCustomBoolVariable("hipaa_guard.audit_internal_ddl",
							 "Leaves the extension's own DDL for enable_audit() and disable_audit() out of the audit trail.",
							 "Set only by the extension's functions, whose config record stands for that DDL.",
							 &hg_audit_internal_ddl, false,
							 PGC_SUSET, GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE, NULL, NULL, NULL);
	DefineCustomIntVariable("hipaa_guard.break_glass_max_duration",
							"Longest emergency access that hipaa_guard.break_glass() grants.",
							NULL,
							&hg_break_glass_max_duration, 240, 1, 7 * 24 * 60,
							PGC_SUSET, GUC_UNIT_MIN, NULL, NULL, NULL);
	/*
	 * Any user may set it, because like enable_bitmapscan it changes plans,
	 * not results.
	 */
	DefineCustomBoolVariable("hipaa_guard.enable_care_bitmapscan",
							 "Allows bitmap heap scans of the care-team policy's list of the actor's patients.",
							 "When off, a query for all of the actor's patients reads their rows with a plain index scan, which is faster when the rows are in memory. Turn it on when the lists are long and the rows mostly on disk.",
							 &hg_enable_care_bitmapscan, false,
							 PGC_USERSET, 0, NULL, NULL, NULL);
}

void
_PG_init(void)
{
	define_keyring_settings();
	define_actor_settings();
	define_worker_settings();
	define_access_settings();
	define_audit_settings();
	hg_session_define_settings();
	hg_keyring_init();
	hg_careteam_install_hooks();
	hg_actor_init();
	if (!process_shared_preload_libraries_in_progress)
	{
		hg_session_warn_not_enforced();
		return;
	}
	define_master_key_settings();
	define_audit_queue_settings();
	/*
	 * Reserved only when preloaded: a library loaded later has no master key
	 * settings, and every session would warn about them in postgresql.conf.
	 */
	MarkGUCPrefixReserved("hipaa_guard");
	loaded_at_preload = true;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = hg_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = hg_shmem_startup;
	hg_actor_preload_init();
	hg_audit_preload_init();
	hg_masterkey_load_all();
	hg_worker_register();
	hg_session_install_hooks();
	/*
	 * The queue's transaction callback must be registered first: callbacks
	 * run newest first, and at abort the capture's callback records the
	 * reads of failed statements, which the queue's then sends on.
	 */
	hg_audit_init();
	/* Audit records carry the query id; compute_query_id = auto computes it. */
	EnableQueryId();
	hg_audit_capture_install_hooks();
	hg_audit_ddl_install_hooks();
}
