/*
 * actor.c
 *		The actor: the end user that an application sharing one database
 *		login acts for, verified from a signed token, and the second-factor
 *		rule that decrypt() and row security policies apply.
 *
 * Tokens.  hipaa_guard.set_actor(token) accepts an HS256 JSON Web Token,
 * parsed and checked by jwt.c.  Its secret is derived with HKDF from the MAC
 * key (version 0) of a keyring key of kind 'signing', under a label of its
 * own, so the secret is stored nowhere and equals no blind index or
 * pseudonym key.  signing_secret() hands it to a superuser for the token
 * issuer.
 *
 * State.  The actor lives in static variables of this backend, not in a
 * setting, so SET and set_config() cannot reach it.  set_actor() clears it
 * before it looks at a token, so a rejected token leaves no actor.  It is
 * cleared at the end of the transaction, and when the subtransaction that
 * set it rolls back.
 *
 * Direct logins.  Without a token the login role is the actor.  It has a
 * second factor only when it authenticated with a client certificate:
 * authentication method cert, or clientcert=verify-ca or verify-full on its
 * pg_hba.conf line.  The ClientAuthentication hook records that, because the
 * backend frees the parsed pg_hba.conf lines after start-up.
 *
 * Parallel workers.  They have none of this state, so the read functions
 * are PARALLEL RESTRICTED.  decrypt() is PARALLEL SAFE, and a worker must
 * still apply the leader's second-factor state: each backend publishes it in
 * a shared memory slot indexed by its PGPROC number, and a worker reads the
 * slot of its lock group leader.  The leader cannot change its actor while
 * its workers run, because set_actor() and reset_actor() are PARALLEL UNSAFE.
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "libpq/auth.h"
#include "libpq/hba.h"
#include "libpq/libpq-be.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "actor.h"
#include "audit.h"
#include "hipaa_guard.h"
#include "crypto.h"
#include "jwt.h"
#include "keyring.h"

/* HKDF label of the token secret; changing it changes every secret. */
#define SIGNING_SECRET_INFO	"hipaa_guard actor token HS256 v1"

char	   *hg_token_issuer = NULL;
char	   *hg_token_audience = NULL;
char	   *hg_token_signing_key = NULL;
int			hg_token_leeway = 30;
bool		hg_require_mfa = false;

typedef struct Actor
{
	bool		is_set;
	char	   *id;				/* the token's "sub" */
	char	  **roles;
	int			nroles;
	char	   *purpose;		/* NULL when the token has none */
	bool		mfa;			/* the token's "amr" shows a second factor */
	SubTransactionId subid;		/* the subtransaction that set it */
} Actor;

static Actor actor;
static MemoryContext actor_context = NULL;

/* Whether this backend's login authenticated with a client certificate. */
static bool login_mfa = false;

/* A backend's second-factor state, for its parallel workers. */
typedef struct ActorSlot
{
	pid_t		pid;			/* backend that wrote the slot, 0 for none */
	bool		mfa;
} ActorSlot;

static ActorSlot *actor_slots = NULL;
static bool slot_exit_registered = false;
static ClientAuthentication_hook_type prev_client_auth_hook = NULL;

static void reject_token(const char *reason, const char *detail) pg_attribute_noreturn();
static void reject_jwt(const HgJwtError *error) pg_attribute_noreturn();

/* ----------------------------------------------------------------
 *		Shared memory slots
 * ---------------------------------------------------------------- */

/* One slot per PGPROC. */
static int
slot_count(void)
{
	return hg_proc_count();
}

Size
hg_actor_shmem_size(void)
{
	return mul_size(slot_count(), sizeof(ActorSlot));
}

void
hg_actor_shmem_startup(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	actor_slots = ShmemInitStruct("hipaa_guard actor slots", hg_actor_shmem_size(), &found);
	if (!found)
		memset(actor_slots, 0, hg_actor_shmem_size());
	LWLockRelease(AddinShmemInitLock);
}

static bool
effective_mfa(void)
{
	return actor.is_set ? actor.mfa : login_mfa;
}

static void
clear_slot(int code, Datum arg)
{
	ActorSlot  *slot = &actor_slots[MyProc->pgprocno];

	if (slot->pid == MyProcPid)
		slot->pid = 0;
}

/* Publish this backend's second-factor state for its parallel workers. */
static void
publish_mfa(void)
{
	ActorSlot  *slot;

	if (actor_slots == NULL || MyProc == NULL || IsParallelWorker() ||
		MyProc->pgprocno >= slot_count())
		return;
	if (!slot_exit_registered)
	{
		before_shmem_exit(clear_slot, (Datum) 0);
		slot_exit_registered = true;
	}
	slot = &actor_slots[MyProc->pgprocno];
	slot->mfa = effective_mfa();
	pg_write_barrier();
	slot->pid = MyProcPid;
}

/*
 * Read the second-factor state of this parallel worker's leader.  A slot
 * that the leader never wrote reads as no second factor.
 */
static bool
leader_mfa(void)
{
	PGPROC	   *leader = MyProc != NULL ? MyProc->lockGroupLeader : NULL;
	volatile ActorSlot *slot;
	pid_t		pid;

	if (actor_slots == NULL || leader == NULL || leader == MyProc ||
		leader->pgprocno >= slot_count())
		return false;
	slot = &actor_slots[leader->pgprocno];
	pid = slot->pid;
	pg_read_barrier();
	return pid == leader->pid && slot->mfa;
}

static bool
current_mfa(void)
{
	return IsParallelWorker() ? leader_mfa() : effective_mfa();
}

/* ----------------------------------------------------------------
 *		Lifetime
 * ---------------------------------------------------------------- */

static void
clear_actor(void)
{
	bool		was_set = actor.is_set;

	if (actor_context != NULL)
		MemoryContextReset(actor_context);
	memset(&actor, 0, sizeof(actor));
	if (was_set)
		publish_mfa();
}

static void
actor_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			if (actor.is_set)
				clear_actor();
			break;
		default:
			break;
	}
}

/*
 * Hand the actor to the parent of a committed subtransaction, and clear it
 * when the subtransaction that set it rolls back.  A rollback to a savepoint
 * thus never keeps an actor that was set after the savepoint.
 */
static void
actor_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	if (!actor.is_set || actor.subid != mySubid)
		return;
	if (event == SUBXACT_EVENT_COMMIT_SUB)
		actor.subid = parentSubid;
	else if (event == SUBXACT_EVENT_ABORT_SUB)
		clear_actor();
}

/* Record the login's client certificate while the pg_hba.conf line exists. */
static void
record_login_factors(Port *port, int status)
{
	if (prev_client_auth_hook)
		prev_client_auth_hook(port, status);
	if (status != STATUS_OK || port->hba == NULL)
		return;
	login_mfa = port->peer_cert_valid &&
		(port->hba->auth_method == uaCert || port->hba->clientcert != clientCertOff);
	publish_mfa();
}

void
hg_actor_init(void)
{
	RegisterXactCallback(actor_xact_callback, NULL);
	RegisterSubXactCallback(actor_subxact_callback, NULL);
}

void
hg_actor_preload_init(void)
{
	prev_client_auth_hook = ClientAuthentication_hook;
	ClientAuthentication_hook = record_login_factors;
}

/* ----------------------------------------------------------------
 *		Verifying a token
 * ---------------------------------------------------------------- */

static char *
login_role_name(void)
{
	return GetUserNameFromId(GetSessionUserId(), false);
}

/*
 * Record a rejected token in the server log and raise the error.  Neither
 * message quotes the token, and both leave out the statement and context,
 * which may contain it.
 */
static void
reject_token(const char *reason, const char *detail)
{
	if (hg_is_preloaded())
	{
		HgAuditEvent ev;

		hg_audit_event_init(&ev, HG_AUDIT_DENIED, "SET ACTOR");
		ev.detail = reason;
		hg_audit_current_statement(&ev.statement, &ev.query_id);
		hg_audit_record_durable(&ev);
	}
	ereport(LOG_SERVER_ONLY,
			(errmsg("hipaa_guard: rejected actor token for role \"%s\": %s",
					login_role_name(), reason),
			 errhidestmt(true),
			 errhidecontext(true)));
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
			 errmsg("invalid actor token"),
			 errdetail("%s", detail),
			 errhidestmt(true),
			 errhidecontext(true)));
	pg_unreachable();
}

static void
reject_jwt(const HgJwtError *error)
{
	reject_token(hg_jwt_reason(error), hg_jwt_detail(error));
}

/* Fail closed: without an issuer and an audience no token can be checked. */
static void
require_token_settings(void)
{
	const char *missing = NULL;

	if (hg_token_issuer == NULL || hg_token_issuer[0] == '\0')
		missing = "hipaa_guard.token_issuer";
	else if (hg_token_audience == NULL || hg_token_audience[0] == '\0')
		missing = "hipaa_guard.token_audience";
	if (missing == NULL)
		return;
	ereport(LOG_SERVER_ONLY,
			(errmsg("hipaa_guard: rejected actor token for role \"%s\": %s is not set",
					login_role_name(), missing),
			 errhidestmt(true),
			 errhidecontext(true)));
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("cannot verify actor tokens"),
			 errdetail("%s is not set.", missing),
			 errhint("A superuser must set hipaa_guard.token_issuer and hipaa_guard.token_audience, for example in postgresql.conf."),
			 errhidestmt(true),
			 errhidecontext(true)));
}

/*
 * Return the id of the signing key that verifies the token: the key named
 * by the header's "kid", or without one hipaa_guard.token_signing_key.
 */
static uint32
signing_key_for_token(const char *kid)
{
	const char *name = kid != NULL ? kid : hg_token_signing_key;
	const char *source = kid != NULL ? "the token's \"kid\"" : "hipaa_guard.token_signing_key";
	uint32		key_id = 0;

	if (kid == NULL && (name == NULL || name[0] == '\0'))
		reject_token("no signing key",
					 "The token has no \"kid\", and hipaa_guard.token_signing_key is not set.");
	if (strlen(name) <= HG_MAX_KEY_NAME_LEN)
		key_id = hg_key_id_by_name(name, true);
	if (key_id == 0)
		reject_token("unknown signing key",
					 psprintf("The signing key named by %s does not exist.", source));
	if (hg_key_kind(key_id) != HG_KEY_KIND_SIGNING)
		reject_token("not a signing key",
					 psprintf("The key named by %s is not a signing key.", source));
	if (hg_key_is_destroyed(key_id))
		reject_token("signing key destroyed",
					 psprintf("The signing key named by %s has been destroyed.", source));
	return key_id;
}

static void
derive_signing_secret(uint32 key_id, uint8_t *secret)
{
	if (hg_hkdf_sha256(hg_key_for_signing(key_id), HG_KEY_LEN, SIGNING_SECRET_INFO,
					   secret, HG_KEY_LEN) != HG_CRYPTO_OK)
	{
		hg_wipe(secret, HG_KEY_LEN);
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not derive a token signing secret")));
	}
}

/* Check the HS256 signature over the header and payload in constant time. */
static void
verify_signature(const HgJwtParts *parts, uint32 key_id)
{
	uint8_t		signature[HG_JWT_SIGNATURE_LEN];
	uint8_t		secret[HG_KEY_LEN];
	uint8_t		expected[HG_MAC_LEN];
	HgJwtError	error;
	HgCryptoStatus status;
	bool		match;

	if (!hg_jwt_decode_signature(parts, signature, &error))
		reject_jwt(&error);
	derive_signing_secret(key_id, secret);
	status = hg_hmac_sha256(secret, HG_KEY_LEN, (const uint8_t *) parts->text[0],
							parts->signing_input_len, expected);
	hg_wipe(secret, sizeof(secret));
	if (status != HG_CRYPTO_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not compute a token signature")));
	match = hg_equal_ct(expected, signature, HG_MAC_LEN);
	hg_wipe(expected, sizeof(expected));
	if (!match)
		reject_token("signature does not match",
					 "The token's signature does not match its signing key.");
}

/* Seconds since 1970-01-01 UTC, the unit of "exp" and "nbf". */
static double
unix_now(void)
{
	return (double) GetCurrentTimestamp() / USECS_PER_SEC +
		(double) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY;
}

static void
install_actor(const HgJwtClaims *claims)
{
	MemoryContext old_context;

	if (actor_context == NULL)
		actor_context = AllocSetContextCreate(TopMemoryContext, "hipaa_guard actor",
											  ALLOCSET_SMALL_SIZES);
	old_context = MemoryContextSwitchTo(actor_context);
	actor.id = pstrdup(claims->sub);
	actor.roles = palloc(sizeof(char *) * Max(claims->nroles, 1));
	for (int i = 0; i < claims->nroles; i++)
		actor.roles[i] = pstrdup(claims->roles[i]);
	actor.nroles = claims->nroles;
	actor.purpose = claims->purpose != NULL ? pstrdup(claims->purpose) : NULL;
	MemoryContextSwitchTo(old_context);

	actor.mfa = hg_jwt_amr_shows_mfa(claims->amr, claims->namr);
	actor.subid = GetCurrentSubTransactionId();
	actor.is_set = true;
	publish_mfa();
}

/* ----------------------------------------------------------------
 *		SQL functions
 * ---------------------------------------------------------------- */

/*
 * Verify a token and make its subject the actor until the end of the
 * transaction.  Returns the actor id.
 */
PG_FUNCTION_INFO_V1(hg_set_actor);
Datum
hg_set_actor(PG_FUNCTION_ARGS)
{
	bool		ascii_only = GetDatabaseEncoding() != PG_UTF8;
	text	   *token;
	HgJwtParts	parts;
	HgJwtHeader header;
	HgJwtClaims claims;
	HgJwtError	error;
	uint32		key_id;

	clear_actor();
	require_token_settings();
	if (PG_ARGISNULL(0))
		reject_token("null token", "The token is null.");
	token = PG_GETARG_TEXT_PP(0);

	if (!hg_jwt_split(VARDATA_ANY(token), VARSIZE_ANY_EXHDR(token), &parts, &error) ||
		!hg_jwt_decode_header(&parts, ascii_only, &header, &error))
		reject_jwt(&error);
	key_id = signing_key_for_token(header.kid);
	verify_signature(&parts, key_id);
	if (!hg_jwt_decode_claims(&parts, ascii_only, &claims, &error) ||
		!hg_jwt_check_claims(&claims, unix_now(), hg_token_leeway,
							 hg_token_issuer, hg_token_audience, &error))
		reject_jwt(&error);

	install_actor(&claims);
	if (!IsTransactionBlock())
		ereport(WARNING,
				(errmsg("the actor is cleared at the end of this statement"),
				 errdetail("hipaa_guard.set_actor() was called outside a transaction block, and an actor holds until the end of its transaction."),
				 errhint("Call it after BEGIN, in the transaction that acts for the user.")));
	PG_RETURN_TEXT_P(cstring_to_text(actor.id));
}

PG_FUNCTION_INFO_V1(hg_reset_actor);
Datum
hg_reset_actor(PG_FUNCTION_ARGS)
{
	clear_actor();
	PG_RETURN_VOID();
}

/*
 * Return the verified actor's id, or NULL when no token set one.  The string
 * lives until the actor is cleared at the end of the transaction.
 */
const char *
hg_actor_id(void)
{
	return actor.is_set ? actor.id : NULL;
}

/* Return the purpose of use that the actor's token names, or NULL. */
const char *
hg_actor_purpose_text(void)
{
	return actor.is_set ? actor.purpose : NULL;
}

/* A worker would read the absence of an actor, so raise an error instead. */
static void
check_not_parallel_worker(void)
{
	if (IsParallelWorker())
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_STATE),
				 errmsg("the actor cannot be read in a parallel worker"),
				 errhint("Keep the hipaa_guard actor functions PARALLEL RESTRICTED.")));
}

/* The token's subject, or without a token the login role. */
PG_FUNCTION_INFO_V1(hg_actor);
Datum
hg_actor(PG_FUNCTION_ARGS)
{
	check_not_parallel_worker();
	if (actor.is_set)
		PG_RETURN_TEXT_P(cstring_to_text(actor.id));
	PG_RETURN_TEXT_P(cstring_to_text(login_role_name()));
}

/* The token's "roles", empty without a token or without the claim. */
PG_FUNCTION_INFO_V1(hg_actor_roles);
Datum
hg_actor_roles(PG_FUNCTION_ARGS)
{
	Datum	   *elements;

	check_not_parallel_worker();
	elements = palloc(sizeof(Datum) * Max(actor.nroles, 1));
	for (int i = 0; i < actor.nroles; i++)
		elements[i] = CStringGetTextDatum(actor.roles[i]);
	PG_RETURN_ARRAYTYPE_P(construct_array(elements, actor.nroles, TEXTOID,
										  -1, false, TYPALIGN_INT));
}

PG_FUNCTION_INFO_V1(hg_actor_purpose);
Datum
hg_actor_purpose(PG_FUNCTION_ARGS)
{
	check_not_parallel_worker();
	if (actor.purpose == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(actor.purpose));
}

PG_FUNCTION_INFO_V1(hg_actor_mfa);
Datum
hg_actor_mfa(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(current_mfa());
}

PG_FUNCTION_INFO_V1(hg_actor_mfa_ok);
Datum
hg_actor_mfa_ok(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(!hg_require_mfa || current_mfa());
}

void
hg_check_second_factor(void)
{
	if (!current_mfa())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("decryption requires a second authentication factor"),
				 errdetail("hipaa_guard.require_mfa is on, and the current actor did not authenticate with a second factor."),
				 errhint("Set an actor whose token's \"amr\" claim shows a second factor, or log in with a client certificate.")));
}

/*
 * Return the HS256 secret of a signing key in base64url, for the token
 * issuer.  Superusers only, checked here as well as by the missing EXECUTE
 * grant, and every call is logged (without the secret).
 */
PG_FUNCTION_INFO_V1(hg_signing_secret);
Datum
hg_signing_secret(PG_FUNCTION_ARGS)
{
	char	   *name;
	uint32		key_id;
	uint8_t		secret[HG_KEY_LEN];
	char		encoded[HG_KEY_LEN * 4 / 3 + 4];
	text	   *result;

	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to read a signing secret"),
				 errdetail("Only roles with the SUPERUSER attribute may read signing secrets.")));
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("key name must not be null")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	key_id = hg_key_id_by_name(name, false);
	if (hg_key_kind(key_id) != HG_KEY_KIND_SIGNING)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("key \"%s\" is not a signing key", name),
				 errhint("Create one with hipaa_guard.create_signing_key().")));

	derive_signing_secret(key_id, secret);
	hg_base64url_encode(secret, HG_KEY_LEN, encoded);
	hg_wipe(secret, sizeof(secret));
	result = cstring_to_text(encoded);
	hg_wipe(encoded, sizeof(encoded));
	ereport(LOG_SERVER_ONLY,
			(errmsg("hipaa_guard: signing secret of key \"%s\" read by role \"%s\"",
					name, GetUserNameFromId(GetUserId(), false)),
			 errhidestmt(true)));
	PG_RETURN_TEXT_P(result);
}
