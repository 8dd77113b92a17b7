/*
 * keyring.c
 *		Data keys: the catalog tables that hold them wrapped, the per-process
 *		cache of unwrapped keys, nonce budget leases, rotation, destruction and
 *		rewrapping under a new master key.
 *
 * Storage.  hipaa_guard.data_keys has one row per key: name, state, current
 * version.  hipaa_guard.data_key_versions has one row per key version, with
 * the count of encryptions made under it and the key wrapped: AES-256-GCM
 * under a key derived from the master key, bound to key id and version.
 *
 * Version rows are never changed by UPDATE.  Their count, their wrapped bytes
 * (rewrap) and their erasure (destroy) are written in place, so that exactly
 * one physical copy of each wrapped key exists in the table, and a destroyed
 * key leaves no dead tuple behind.  In-place writes are WAL-logged, so they
 * survive a crash and reach standbys.  The LWLock of the "hipaa_guard_keyring"
 * tranche serializes them, because each one rewrites a whole tuple.
 *
 * Nonce budget.  Random 96-bit nonces allow 2^32 encryptions per key (NIST
 * SP 800-38D, 8.3).  A backend takes a lease of hipaa_guard.nonce_lease_size
 * encryptions by raising the stored count before it uses any of them, and
 * flushes that WAL record, so after a crash the count is an upper bound of the
 * encryptions made.  A lease that would pass hipaa_guard.rotate_after_encryptions
 * rotates the key first.
 *
 * Cache.  Each process keeps unwrapped keys in a hash table in its own memory.
 * Every change to the keyring sends a relcache invalidation for data_keys at
 * commit; the callback only marks the cache stale, and the next keyring call
 * flushes it, because the callback can fire while a caller still has a
 * pointer into the cache.  Flushing wipes every key.
 *
 * Writes go through SPI as the owner of the keyring tables with search_path
 * pinned, since ordinary roles have no privileges on those tables.
 */
#include "postgres.h"

#include <limits.h>

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lwlock.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "crypto.h"
#include "hipaa_guard.h"
#include "keyring.h"
#include "masterkey.h"

#define WRAPPED_LEN		(HG_NONCE_LEN + HG_KEY_LEN + HG_TAG_LEN)

/* Attribute numbers of hipaa_guard.data_keys and data_key_versions. */
#define Anum_keys_key_id			1
#define Anum_keys_name				2
#define Anum_keys_kind				3
#define Anum_keys_state				4
#define Anum_keys_current_version	5
#define Anum_versions_key_id		1
#define Anum_versions_version		2
#define Anum_versions_encryptions	3
#define Anum_versions_wrapped		5
#define Anum_versions_fingerprint	6

int			hg_rotate_after_encryptions = INT_MAX;
int			hg_nonce_lease_size = 65536;
int			hg_key_cache_size = 262144;

typedef struct KeyringRels
{
	Oid			keys;
	Oid			keys_pkey;
	Oid			keys_name_key;
	Oid			versions;
	Oid			versions_pkey;
	Oid			owner;
} KeyringRels;

typedef struct KeyInfo
{
	uint32		key_id;			/* hash key */
	uint32		current_version;
	bool		destroyed;
	HgKeyKind	kind;
	char		name[HG_MAX_KEY_NAME_LEN + 1];
} KeyInfo;

typedef struct NameEntry
{
	char		name[HG_MAX_KEY_NAME_LEN + 1];	/* hash key */
	uint32		key_id;
} NameEntry;

typedef struct VersionTag
{
	uint32		key_id;
	uint32		version;
} VersionTag;

typedef struct VersionEntry
{
	VersionTag	tag;			/* hash key */
	bool		destroyed;
	int64		lease_left;
	uint8_t		key[HG_KEY_LEN];
} VersionEntry;

static KeyringRels rels;
static bool rels_valid = false;
static bool cache_stale = true;
static MemoryContext keyring_context = NULL;
static HTAB *key_infos = NULL;
static HTAB *key_names = NULL;
static HTAB *key_versions = NULL;
static LWLock *keyring_lock = NULL;

/*
 * The entries used by the last encryption and the last decryption, so that a
 * run of values under one key skips the hash lookups.  Valid until the next
 * flush, which resets them.
 */
static VersionEntry *last_encrypt_entry = NULL;
static VersionEntry *last_decrypt_entry = NULL;

static void flush_cache(void);

/* ----------------------------------------------------------------
 *		Setup and invalidation
 * ---------------------------------------------------------------- */

void
hg_keyring_shmem_request(void)
{
	RequestNamedLWLockTranche("hipaa_guard_keyring", 1);
}

static void
keyring_relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || !rels_valid ||
		relid == rels.keys || relid == rels.versions)
	{
		cache_stale = true;
		rels_valid = false;
	}
}

static void
keyring_xact_callback(XactEvent event, void *arg)
{
	/* An aborted transaction may have cached keys it created or rotated. */
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		cache_stale = true;
}

void
hg_keyring_init(void)
{
	CacheRegisterRelcacheCallback(keyring_relcache_callback, (Datum) 0);
	RegisterXactCallback(keyring_xact_callback, NULL);
}

static LWLock *
get_keyring_lock(void)
{
	if (keyring_lock == NULL)
		keyring_lock = &(GetNamedLWLockTranche("hipaa_guard_keyring"))->lock;
	return keyring_lock;
}

static Oid
relid_in_schema(const char *relname, Oid nsp)
{
	Oid			relid = get_relname_relid(relname, nsp);

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("hipaa_guard keyring table \"%s\" is missing", relname),
				 errhint("Reinstall the extension with ALTER EXTENSION hipaa_guard UPDATE or restore the keyring from a backup.")));
	return relid;
}

static void
load_rels(void)
{
	Oid			nsp;
	Relation	rel;

	if (rels_valid)
		return;
	nsp = get_namespace_oid("hipaa_guard", true);
	if (!OidIsValid(nsp))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"hipaa_guard\" is not installed in this database"),
				 errhint("Run CREATE EXTENSION hipaa_guard.")));
	rels.keys = relid_in_schema("data_keys", nsp);
	rels.keys_pkey = relid_in_schema("data_keys_pkey", nsp);
	rels.keys_name_key = relid_in_schema("data_keys_name_key", nsp);
	rels.versions = relid_in_schema("data_key_versions", nsp);
	rels.versions_pkey = relid_in_schema("data_key_versions_pkey", nsp);
	rel = table_open(rels.keys, AccessShareLock);
	rels.owner = rel->rd_rel->relowner;
	table_close(rel, AccessShareLock);
	rels_valid = true;
}

static void
create_cache(void)
{
	HASHCTL		ctl;

	if (keyring_context == NULL)
		keyring_context = AllocSetContextCreate(TopMemoryContext,
												"hipaa_guard keyring cache",
												ALLOCSET_DEFAULT_SIZES);
	memset(&ctl, 0, sizeof(ctl));
	ctl.hcxt = keyring_context;
	ctl.keysize = sizeof(uint32);
	ctl.entrysize = sizeof(KeyInfo);
	key_infos = hash_create("hipaa_guard keys", 256, &ctl,
							HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	ctl.keysize = HG_MAX_KEY_NAME_LEN + 1;
	ctl.entrysize = sizeof(NameEntry);
	key_names = hash_create("hipaa_guard key names", 256, &ctl,
							HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	ctl.keysize = sizeof(VersionTag);
	ctl.entrysize = sizeof(VersionEntry);
	key_versions = hash_create("hipaa_guard key versions", 256, &ctl,
							   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

/* Wipe every cached key, then drop the tables; callers hold no entry. */
static void
flush_cache(void)
{
	if (key_versions != NULL)
	{
		HASH_SEQ_STATUS status;
		VersionEntry *entry;

		hash_seq_init(&status, key_versions);
		while ((entry = hash_seq_search(&status)) != NULL)
			hg_wipe(entry->key, HG_KEY_LEN);
	}
	key_infos = key_names = key_versions = NULL;
	last_encrypt_entry = last_decrypt_entry = NULL;
	if (keyring_context != NULL)
		MemoryContextReset(keyring_context);
	hg_crypto_forget_key();
	create_cache();
	cache_stale = false;
}

/* Every entry point calls this first: it is where a stale cache is dropped. */
static void
keyring_begin(void)
{
	hg_require_preloaded();
	if (cache_stale || key_infos == NULL)
		flush_cache();
	load_rels();
}

/* ----------------------------------------------------------------
 *		Reading the catalog tables
 * ---------------------------------------------------------------- */

static bool
read_key_row(Oid index, ScanKeyData *skey, KeyInfo *info)
{
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tuple;
	bool		found = false;

	rel = table_open(rels.keys, AccessShareLock);
	scan = systable_beginscan(rel, index, true, NULL, 1, skey);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
	{
		TupleDesc	desc = RelationGetDescr(rel);
		bool		isnull;
		char	   *name;
		char	   *state;
		char	   *kind;

		info->key_id = DatumGetInt32(heap_getattr(tuple, Anum_keys_key_id, desc, &isnull));
		name = TextDatumGetCString(heap_getattr(tuple, Anum_keys_name, desc, &isnull));
		strlcpy(info->name, name, sizeof(info->name));
		state = TextDatumGetCString(heap_getattr(tuple, Anum_keys_state, desc, &isnull));
		info->destroyed = strcmp(state, "active") != 0;
		info->current_version = DatumGetInt32(heap_getattr(tuple, Anum_keys_current_version, desc, &isnull));
		kind = TextDatumGetCString(heap_getattr(tuple, Anum_keys_kind, desc, &isnull));
		if (strcmp(kind, "signing") == 0)
			info->kind = HG_KEY_KIND_SIGNING;
		else if (strcmp(kind, "patient") == 0)
			info->kind = HG_KEY_KIND_PATIENT;
		else
			info->kind = HG_KEY_KIND_DATA;
		found = true;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

static KeyInfo *
get_key_info(uint32 key_id, bool missing_ok)
{
	KeyInfo    *info;
	KeyInfo		row;
	ScanKeyData skey;
	bool		found;

	info = hash_search(key_infos, &key_id, HASH_FIND, NULL);
	if (info != NULL)
		return info;
	ScanKeyInit(&skey, Anum_keys_key_id, BTEqualStrategyNumber, F_INT4EQ,
				Int32GetDatum((int32) key_id));
	if (!read_key_row(rels.keys_pkey, &skey, &row))
	{
		if (missing_ok)
			return NULL;
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("data key with id %u does not exist", key_id),
				 errhint("The value was encrypted under a key that is not in this database's keyring; restore the keyring rows of hipaa_guard.data_keys and hipaa_guard.data_key_versions.")));
	}
	info = hash_search(key_infos, &key_id, HASH_ENTER, &found);
	memcpy(info, &row, sizeof(KeyInfo));
	return info;
}

/*
 * Return the id of the key called name, or 0 when missing_ok and there is
 * none.
 */
uint32
hg_key_id_by_name(const char *name, bool missing_ok)
{
	NameEntry  *entry;
	KeyInfo		row;
	ScanKeyData skey;
	bool		found;

	keyring_begin();
	if (strlen(name) > HG_MAX_KEY_NAME_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("data key name is too long"),
				 errdetail("Key names have at most %d bytes.", HG_MAX_KEY_NAME_LEN)));
	entry = hash_search(key_names, name, HASH_FIND, NULL);
	if (entry != NULL)
		return entry->key_id;
	ScanKeyInit(&skey, Anum_keys_name, BTEqualStrategyNumber, F_TEXTEQ,
				CStringGetTextDatum(name));
	if (!read_key_row(rels.keys_name_key, &skey, &row))
	{
		if (missing_ok)
			return 0;
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("data key \"%s\" does not exist", name),
				 errhint("Create it with hipaa_guard.create_key().")));
	}
	entry = hash_search(key_names, name, HASH_ENTER, &found);
	entry->key_id = row.key_id;
	return row.key_id;
}

/* Return the key's name, or NULL when there is no such key. */
char *
hg_key_name(uint32 key_id)
{
	KeyInfo    *info;

	keyring_begin();
	info = get_key_info(key_id, true);
	return info != NULL ? pstrdup(info->name) : NULL;
}

/* Whether key_id was destroyed; such values can only be left as they are. */
bool
hg_key_is_destroyed(uint32 key_id)
{
	KeyInfo    *info;

	keyring_begin();
	info = get_key_info(key_id, true);
	return info == NULL || info->destroyed;
}

HgKeyKind
hg_key_kind(uint32 key_id)
{
	keyring_begin();
	return get_key_info(key_id, false)->kind;
}

uint32
hg_key_current_version(uint32 key_id)
{
	keyring_begin();
	return get_key_info(key_id, false)->current_version;
}

/*
 * Name a key in a message.  A per-patient key's name contains the patient's
 * identifier, which must not reach messages and logs, so it is named by id.
 */
static char *
key_label(KeyInfo *info)
{
	if (strncmp(info->name, HG_PATIENT_KEY_PREFIX, strlen(HG_PATIENT_KEY_PREFIX)) == 0)
		return psprintf("per-patient data key %u", info->key_id);
	return psprintf("data key \"%s\"", info->name);
}

/*
 * A signing key's secret must not be reachable through any other function,
 * so encryption, blind indexes and pseudonyms reject signing keys.
 */
static void
report_signing_key(KeyInfo *info)
{
	ereport(ERROR,
			(errcode(ERRCODE_WRONG_OBJECT_TYPE),
			 errmsg("\"%s\" is a signing key, not a data key", info->name),
			 errdetail("Signing keys only sign actor tokens; they cannot encrypt values or compute blind indexes or pseudonyms.")));
}

static void
report_destroyed(KeyInfo *info)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("%s has been destroyed", key_label(info)),
			 errdetail("Values encrypted under a destroyed key can never be decrypted again.")));
}

/* ----------------------------------------------------------------
 *		Wrapping and unwrapping
 * ---------------------------------------------------------------- */

static void
wrap_aad(uint32 key_id, uint32 version, uint8_t *aad)
{
	static const char label[16] = "hipaa_guard dk1";

	memcpy(aad, label, 16);
	for (int i = 0; i < 4; i++)
	{
		aad[16 + i] = (uint8_t) (key_id >> (24 - 8 * i));
		aad[20 + i] = (uint8_t) (version >> (24 - 8 * i));
	}
}

static void
wrap_key(const HgKek *kek, uint32 key_id, uint32 version,
		 const uint8_t *key, uint8_t *wrapped)
{
	uint8_t		aad[24];

	wrap_aad(key_id, version, aad);
	if (!hg_random_bytes(wrapped, HG_NONCE_LEN) ||
		hg_aead_encrypt(kek->wrap_key, wrapped, aad, sizeof(aad), key, HG_KEY_LEN,
						wrapped + HG_NONCE_LEN,
						wrapped + HG_NONCE_LEN + HG_KEY_LEN) != HG_CRYPTO_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not wrap a data key")));
}

static bool
all_zero(const uint8_t *p, size_t len)
{
	uint8_t		acc = 0;

	for (size_t i = 0; i < len; i++)
		acc |= p[i];
	return acc == 0;
}

/*
 * Unwrap one stored key version into key.  Returns false when the version
 * was destroyed (its wrapped bytes are zero).
 */
static bool
unwrap_key(uint32 key_id, uint32 version, const uint8_t *wrapped, size_t wrapped_len,
		   const uint8_t *fingerprint, uint8_t *key)
{
	const HgKek *kek;
	uint8_t		aad[24];

	if (wrapped_len != WRAPPED_LEN || all_zero(wrapped, wrapped_len))
		return false;
	hg_masterkey_current();		/* raises "not loaded" first */
	kek = hg_masterkey_by_fingerprint(fingerprint);
	if (kek == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("master key does not match the keyring"),
				 errdetail("Data key %u version %u is wrapped under the master key with fingerprint %s; the loaded master key has fingerprint %s.",
						   key_id, version,
						   hg_fingerprint_hex(fingerprint),
						   hg_fingerprint_hex(hg_masterkey_current()->fingerprint)),
				 errhint("Configure the master key this keyring was created with, or supply it as hipaa_guard.previous_master_key_command or hipaa_guard.previous_master_key_file and run hipaa_guard.rewrap_keys().")));
	wrap_aad(key_id, version, aad);
	if (hg_aead_decrypt(kek->wrap_key, wrapped, aad, sizeof(aad),
						wrapped + HG_NONCE_LEN, HG_KEY_LEN,
						wrapped + HG_NONCE_LEN + HG_KEY_LEN, key) != HG_CRYPTO_OK)
	{
		hg_wipe(key, HG_KEY_LEN);
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("could not unwrap data key %u version %u", key_id, version),
				 errdetail("The wrapped key in hipaa_guard.data_key_versions was altered.")));
	}
	return true;
}

/* Fetch and unwrap one key version into the cache. */
static VersionEntry *
get_version(uint32 key_id, uint32 version)
{
	VersionTag	tag = {key_id, version};
	VersionEntry *entry;
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tuple;
	ScanKeyData skey[2];
	uint8_t		key[HG_KEY_LEN];
	bool		exists = false;
	bool		live = false;
	bool		found;

	entry = hash_search(key_versions, &tag, HASH_FIND, NULL);
	if (entry != NULL)
		return entry;

	ScanKeyInit(&skey[0], Anum_versions_key_id, BTEqualStrategyNumber, F_INT4EQ, Int32GetDatum((int32) key_id));
	ScanKeyInit(&skey[1], Anum_versions_version, BTEqualStrategyNumber, F_INT4EQ, Int32GetDatum((int32) version));
	rel = table_open(rels.versions, AccessShareLock);
	scan = systable_beginscan(rel, rels.versions_pkey, true, NULL, 2, skey);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
	{
		TupleDesc	desc = RelationGetDescr(rel);
		bool		isnull;
		bytea	   *wrapped;
		bytea	   *fingerprint;

		wrapped = DatumGetByteaPP(heap_getattr(tuple, Anum_versions_wrapped, desc, &isnull));
		fingerprint = DatumGetByteaPP(heap_getattr(tuple, Anum_versions_fingerprint, desc, &isnull));
		exists = true;
		if (VARSIZE_ANY_EXHDR(fingerprint) == HG_FINGERPRINT_LEN)
			live = unwrap_key(key_id, version,
							  (uint8_t *) VARDATA_ANY(wrapped), VARSIZE_ANY_EXHDR(wrapped),
							  (uint8_t *) VARDATA_ANY(fingerprint), key);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);

	if (!exists)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("version %u of %s does not exist", version,
						key_label(get_key_info(key_id, false)))));

	if (hash_get_num_entries(key_versions) >= hg_key_cache_size)
	{
		/* Dropping everything is simpler than LRU and rare at sane sizes. */
		flush_cache();
		load_rels();
	}
	entry = hash_search(key_versions, &tag, HASH_ENTER, &found);
	entry->destroyed = !live;
	entry->lease_left = 0;
	memcpy(entry->key, key, HG_KEY_LEN);
	hg_wipe(key, HG_KEY_LEN);
	return entry;
}

/* ----------------------------------------------------------------
 *		In-place writes to data_key_versions
 * ---------------------------------------------------------------- */

typedef enum InplaceAction
{
	INPLACE_LEASE,				/* raise encryptions */
	INPLACE_ERASE,				/* zero the wrapped key */
	INPLACE_REWRAP				/* replace wrapped key and fingerprint */
} InplaceAction;

/*
 * Overwrite the bytes of a varlena column inside tuple, keeping its length;
 * NULL bytes mean zeros.  Working on the tuple's own bytes keeps whatever
 * header format the stored tuple has.
 */
static void
overwrite_bytes(HeapTuple tuple, TupleDesc desc, int attnum,
				const uint8_t *bytes, size_t len)
{
	bool		isnull;
	Pointer		field = DatumGetPointer(heap_getattr(tuple, attnum, desc, &isnull));

	if (isnull || (VARATT_IS_EXTENDED(field) && !VARATT_IS_SHORT(field)) ||
		VARSIZE_ANY_EXHDR(field) != len)
		elog(ERROR, "hipaa_guard: key version column %d has an unexpected format", attnum);
	if (bytes != NULL)
		memcpy(VARDATA_ANY(field), bytes, len);
	else
		memset(VARDATA_ANY(field), 0, len);
}

/*
 * Raise the encryption count inside tuple by up to *amount, within
 * hipaa_guard.rotate_after_encryptions; *amount receives what was granted.
 * The count is the first 8-byte column, after two int4 columns and without
 * nulls before it, so its offset is fixed.
 */
static void
lease_in_tuple(HeapTuple tuple, TupleDesc desc, int64 *amount)
{
	Form_pg_attribute att = TupleDescAttr(desc, Anum_versions_encryptions - 1);
	bool		isnull;
	int64		used = DatumGetInt64(heap_getattr(tuple, Anum_versions_encryptions, desc, &isnull));
	/* The setting's maximum, INT_MAX, stays below the 2^32 limit. */
	int64		limit = (int64) hg_rotate_after_encryptions;
	int64		grant = Max(Min(*amount, limit - used), 0);
	int64		updated = used + grant;

	if (isnull || att->attcacheoff < 0 || HeapTupleHasNulls(tuple))
		elog(ERROR, "hipaa_guard: key version row has an unexpected layout");
	memcpy((char *) tuple->t_data + tuple->t_data->t_hoff + att->attcacheoff,
		   &updated, sizeof(int64));
	*amount = grant;
}

/*
 * Apply one in-place change to the version row (key_id, version) and flush
 * its WAL.  For INPLACE_LEASE, *amount is the number of encryptions wanted
 * and on return the number granted (0 when the budget is spent).  The
 * tuple is read and rewritten under the keyring lock, so that two writers
 * cannot lose each other's change.
 */
static bool
inplace_version_update(uint32 key_id, uint32 version, InplaceAction action,
					   int64 *amount, const uint8_t *new_wrapped,
					   const uint8_t *new_fingerprint)
{
	Relation	rel;
	Relation	index;
	SysScanDesc scan;
	HeapTuple	tuple;
	ScanKeyData skey[2];
	bool		done = false;

	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot change the hipaa_guard keyring during recovery"),
				 errdetail("Encrypting takes from a key's nonce budget, which only the primary can record."),
				 errhint("Encrypt on the primary server.")));

	ScanKeyInit(&skey[0], Anum_versions_key_id, BTEqualStrategyNumber, F_INT4EQ, Int32GetDatum((int32) key_id));
	ScanKeyInit(&skey[1], Anum_versions_version, BTEqualStrategyNumber, F_INT4EQ, Int32GetDatum((int32) version));
	rel = table_open(rels.versions, RowExclusiveLock);
	index = index_open(rels.versions_pkey, AccessShareLock);

	LWLockAcquire(get_keyring_lock(), LW_EXCLUSIVE);
	scan = systable_beginscan(rel, rels.versions_pkey, true, NULL, 2, skey);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
	{
		HeapTuple	copy = heap_copytuple(tuple);

		if (action == INPLACE_LEASE)
			lease_in_tuple(copy, RelationGetDescr(rel), amount);
		else
		{
			overwrite_bytes(copy, RelationGetDescr(rel), Anum_versions_wrapped,
							new_wrapped, WRAPPED_LEN);
			overwrite_bytes(copy, RelationGetDescr(rel), Anum_versions_fingerprint,
							new_fingerprint, HG_FINGERPRINT_LEN);
		}
		heap_inplace_update(rel, copy);
		done = true;
	}
	systable_endscan(scan);
	LWLockRelease(get_keyring_lock());

	index_close(index, AccessShareLock);
	table_close(rel, RowExclusiveLock);
	if (done)
		XLogFlush(XactLastRecEnd);
	return done;
}

/* ----------------------------------------------------------------
 *		Writes through SPI as the keyring's owner
 * ---------------------------------------------------------------- */

typedef struct OwnerScope
{
	Oid			saved_user;
	int			saved_sec_context;
	int			guc_nest_level;
} OwnerScope;

/*
 * Switch to the keyring tables' owner with a pinned search_path and connect
 * to SPI, the way a SECURITY DEFINER function would run.  An error unwinds
 * all of it with the (sub)transaction.
 */
static void
owner_scope_begin(OwnerScope *scope)
{
	GetUserIdAndSecContext(&scope->saved_user, &scope->saved_sec_context);
	SetUserIdAndSecContext(rels.owner,
						   scope->saved_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	scope->guc_nest_level = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "hipaa_guard: SPI_connect failed");
}

static void
owner_scope_end(OwnerScope *scope)
{
	SPI_finish();
	AtEOXact_GUC(false, scope->guc_nest_level);
	SetUserIdAndSecContext(scope->saved_user, scope->saved_sec_context);
}

static int
spi_exec(const char *sql, int nargs, Oid *types, Datum *values, int expected)
{
	int			rc = SPI_execute_with_args(sql, nargs, types, values, NULL, false, 0);

	if (rc != expected)
		elog(ERROR, "hipaa_guard: keyring query failed: %s", SPI_result_code_string(rc));
	return rc;
}

static Datum
spi_value(int row, int col, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, isnull);
}

static bytea *
bytes_to_bytea(const uint8_t *bytes, size_t len)
{
	bytea	   *result = palloc(VARHDRSZ + len);

	SET_VARSIZE(result, VARHDRSZ + len);
	memcpy(VARDATA(result), bytes, len);
	return result;
}

/*
 * Make sure the loaded master key is the one the keyring was created with,
 * recording it when the keyring is new, so that no key is ever wrapped under
 * a second, wrong master key.  Runs inside an owner scope.
 */
static void
check_master_key_in_scope(void)
{
	const HgKek *kek = hg_masterkey_current();
	bool		isnull;
	bytea	   *stored;

	spi_exec("SELECT fingerprint FROM hipaa_guard.keyring_check", 0, NULL, NULL, SPI_OK_SELECT);
	if (SPI_processed == 0)
	{
		Oid			types[1] = {BYTEAOID};
		Datum		values[1];

		values[0] = PointerGetDatum(bytes_to_bytea(kek->fingerprint, HG_FINGERPRINT_LEN));
		spi_exec("INSERT INTO hipaa_guard.keyring_check (fingerprint) VALUES ($1)",
				 1, types, values, SPI_OK_INSERT);
		return;
	}
	stored = DatumGetByteaPP(spi_value(0, 1, &isnull));
	/* Between a master key change and rewrap_keys(), both keys are valid. */
	if (VARSIZE_ANY_EXHDR(stored) != HG_FINGERPRINT_LEN ||
		hg_masterkey_by_fingerprint((uint8_t *) VARDATA_ANY(stored)) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("master key does not match the keyring"),
				 errdetail("The keyring was created under the master key with fingerprint %s; the loaded master key has fingerprint %s.",
						   VARSIZE_ANY_EXHDR(stored) == HG_FINGERPRINT_LEN ?
						   hg_fingerprint_hex((uint8_t *) VARDATA_ANY(stored)) : "(invalid)",
						   hg_fingerprint_hex(kek->fingerprint)),
				 errhint("Configure the right master key, or supply the old one as hipaa_guard.previous_master_key_command or hipaa_guard.previous_master_key_file and run hipaa_guard.rewrap_keys().")));
}

/* Generate, wrap and insert one key version.  Runs inside an owner scope. */
static void
insert_version_in_scope(uint32 key_id, uint32 version)
{
	const HgKek *kek = hg_masterkey_current();
	uint8_t		key[HG_KEY_LEN];
	uint8_t		wrapped[WRAPPED_LEN];
	Oid			types[4] = {INT4OID, INT4OID, BYTEAOID, BYTEAOID};
	Datum		values[4];

	if (!hg_random_bytes(key, HG_KEY_LEN))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random data key")));
	wrap_key(kek, key_id, version, key, wrapped);
	hg_wipe(key, HG_KEY_LEN);
	values[0] = Int32GetDatum((int32) key_id);
	values[1] = Int32GetDatum((int32) version);
	values[2] = PointerGetDatum(bytes_to_bytea(wrapped, WRAPPED_LEN));
	values[3] = PointerGetDatum(bytes_to_bytea(kek->fingerprint, HG_FINGERPRINT_LEN));
	spi_exec("INSERT INTO hipaa_guard.data_key_versions (key_id, version, wrapped, kek_fingerprint) "
			 "VALUES ($1, $2, $3, $4)", 4, types, values, SPI_OK_INSERT);
}

/*
 * Create a key with a MAC key (version 0) and a first data key version.
 * With if_absent, a key of that name created concurrently or before is
 * returned instead of raising an error.  Returns the key id.
 */
static uint32
create_key_internal(const char *name, const char *kind, bool if_absent)
{
	OwnerScope	scope;
	Oid			types[3] = {TEXTOID, TEXTOID, BOOLOID};
	Datum		values[3];
	bool		isnull;
	uint32		key_id = 0;

	keyring_begin();
	owner_scope_begin(&scope);
	check_master_key_in_scope();
	values[0] = CStringGetTextDatum(name);
	values[1] = CStringGetTextDatum(kind);
	spi_exec("INSERT INTO hipaa_guard.data_keys (name, kind) VALUES ($1, $2) "
			 "ON CONFLICT (name) DO NOTHING RETURNING key_id",
			 2, types, values, SPI_OK_INSERT_RETURNING);
	if (SPI_processed == 1)
	{
		key_id = (uint32) DatumGetInt32(spi_value(0, 1, &isnull));
		insert_version_in_scope(key_id, HG_MAC_KEY_VERSION);
		insert_version_in_scope(key_id, 1);
	}
	else if (if_absent)
	{
		spi_exec("SELECT key_id FROM hipaa_guard.data_keys WHERE name = $1",
				 1, types, values, SPI_OK_SELECT);
		if (SPI_processed == 1)
			key_id = (uint32) DatumGetInt32(spi_value(0, 1, &isnull));
	}
	owner_scope_end(&scope);

	if (key_id == 0)
	{
		uint32		existing = hg_key_id_by_name(name, true);
		bool		destroyed = existing != 0 && get_key_info(existing, false)->destroyed;

		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("data key \"%s\" already exists", name),
				 destroyed ?
				 errdetail("The key was destroyed, and names of destroyed keys are never reused, so that old values cannot decrypt under a new key.") : 0));
	}
	/*
	 * No invalidation: no session caches the absence of a key, and a key
	 * created by a transaction that aborts leaves this session's cache by the
	 * abort callback.  Creating per-patient keys on demand thus never flushes
	 * the other sessions' caches.
	 */
	return key_id;
}

/*
 * Add a new current version to key_id.  When expected_version is not 0 and
 * the key has moved past it (another session rotated it first), return the
 * newer version without rotating again.
 */
static uint32
rotate_internal(uint32 key_id, uint32 expected_version)
{
	OwnerScope	scope;
	Oid			types[2] = {INT4OID, INT4OID};
	Datum		values[2];
	bool		isnull;
	uint32		current;
	char	   *state;

	keyring_begin();
	owner_scope_begin(&scope);
	check_master_key_in_scope();
	values[0] = Int32GetDatum((int32) key_id);
	spi_exec("SELECT current_version, state FROM hipaa_guard.data_keys WHERE key_id = $1 FOR UPDATE",
			 1, types, values, SPI_OK_SELECT);
	if (SPI_processed != 1)
		elog(ERROR, "hipaa_guard: data key %u vanished during rotation", key_id);
	current = (uint32) DatumGetInt32(spi_value(0, 1, &isnull));
	state = TextDatumGetCString(spi_value(0, 2, &isnull));
	if (strcmp(state, "active") != 0)
	{
		owner_scope_end(&scope);
		report_destroyed(get_key_info(key_id, false));
	}
	if (expected_version != 0 && current != expected_version)
	{
		owner_scope_end(&scope);
		return current;
	}
	insert_version_in_scope(key_id, current + 1);
	values[1] = Int32GetDatum((int32) (current + 1));
	spi_exec("UPDATE hipaa_guard.data_keys SET current_version = $2, rotated_at = pg_catalog.now() "
			 "WHERE key_id = $1", 2, types, values, SPI_OK_UPDATE);
	owner_scope_end(&scope);
	CacheInvalidateRelcacheByRelid(rels.keys);
	return current + 1;
}

/* ----------------------------------------------------------------
 *		Keys for the encrypted types
 * ---------------------------------------------------------------- */

/*
 * Return the current key of key_id for one encryption, after taking one
 * unit of the nonce budget; *version receives the version used.
 */
const uint8_t *
hg_key_for_encrypt(uint32 key_id, uint32 *version)
{
	KeyInfo    *info;
	VersionEntry *entry = last_encrypt_entry;

	if (entry != NULL && !cache_stale && entry->tag.key_id == key_id &&
		entry->lease_left > 0)
	{
		entry->lease_left--;
		*version = entry->tag.version;
		return entry->key;
	}

	keyring_begin();
	info = get_key_info(key_id, false);
	if (info->kind == HG_KEY_KIND_SIGNING)
		report_signing_key(info);
	if (info->destroyed)
		report_destroyed(info);
	entry = get_version(key_id, info->current_version);
	if (entry->destroyed)
		report_destroyed(info);
	while (entry->lease_left <= 0)
	{
		int64		amount = Max(hg_nonce_lease_size, 1);
		uint32		current = entry->tag.version;

		if (!inplace_version_update(key_id, current, INPLACE_LEASE, &amount, NULL, NULL))
			elog(ERROR, "hipaa_guard: data key %u version %u vanished", key_id, current);
		if (amount > 0)
		{
			entry->lease_left = amount;
			break;
		}
		/* The budget of this version is spent: move to a new version. */
		current = rotate_internal(key_id, current);
		keyring_begin();
		info = get_key_info(key_id, false);
		info->current_version = current;
		entry = get_version(key_id, current);
	}
	entry->lease_left--;
	*version = entry->tag.version;
	last_encrypt_entry = entry;
	return entry->key;
}

static void
report_retired(KeyInfo *info, uint32 version)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("version %u of %s has been retired", version, key_label(info)),
			 errdetail("The version was erased after every value under it had been re-encrypted; this value was not among them."),
			 errhint("Restore the value from a source that holds it under a current key version.")));
}

/* Return the key that decrypts values of key_id at version. */
const uint8_t *
hg_key_for_decrypt(uint32 key_id, uint32 version)
{
	VersionEntry *entry = last_decrypt_entry;
	KeyInfo    *info;

	if (entry != NULL && !cache_stale && entry->tag.key_id == key_id &&
		entry->tag.version == version)
		return entry->key;

	keyring_begin();
	if (version == HG_MAC_KEY_VERSION)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("could not decrypt value: authentication failed"),
				 errdetail("The value names a key version that is never used for encryption.")));
	entry = get_version(key_id, version);
	if (entry->destroyed)
	{
		/*
		 * Retiring erases one version and never version 0; destroying erases
		 * them all, and stays in force even if its transaction rolled back.
		 */
		info = get_key_info(key_id, false);
		if (info->destroyed || get_version(key_id, HG_MAC_KEY_VERSION)->destroyed)
			report_destroyed(info);
		report_retired(info, version);
	}
	last_decrypt_entry = entry;
	return entry->key;
}

/* Return the blind index and pseudonym key of key_id. */
const uint8_t *
hg_key_for_mac(uint32 key_id)
{
	KeyInfo    *info;
	VersionEntry *entry;

	keyring_begin();
	info = get_key_info(key_id, false);
	if (info->kind == HG_KEY_KIND_SIGNING)
		report_signing_key(info);
	entry = get_version(key_id, HG_MAC_KEY_VERSION);
	if (info->destroyed || entry->destroyed)
		report_destroyed(info);
	return entry->key;
}

/*
 * Return the MAC key (version 0) of a signing key, from which the token
 * secret is derived.  The caller has checked the kind.
 */
const uint8_t *
hg_key_for_signing(uint32 key_id)
{
	KeyInfo    *info;
	VersionEntry *entry;

	keyring_begin();
	info = get_key_info(key_id, false);
	if (info->kind != HG_KEY_KIND_SIGNING)
		elog(ERROR, "hipaa_guard: key %u is not a signing key", key_id);
	entry = get_version(key_id, HG_MAC_KEY_VERSION);
	if (info->destroyed || entry->destroyed)
		report_destroyed(info);
	return entry->key;
}

/*
 * Return the id of the per-patient key of patient, creating the key when
 * create is set and it does not exist yet; 0 when it does not and !create.
 */
uint32
hg_patient_key_id(const char *patient, bool create)
{
	char		name[HG_MAX_KEY_NAME_LEN + 1];
	uint32		key_id;

	if (strlen(patient) + strlen(HG_PATIENT_KEY_PREFIX) > HG_MAX_KEY_NAME_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("patient identifier is too long for a per-patient key name"),
				 errdetail("Per-patient key names have at most %d bytes.", HG_MAX_KEY_NAME_LEN)));
	snprintf(name, sizeof(name), "%s%s", HG_PATIENT_KEY_PREFIX, patient);
	key_id = hg_key_id_by_name(name, true);
	if (key_id == 0 && create)
		key_id = create_key_internal(name, "patient", true);
	return key_id;
}

/* ----------------------------------------------------------------
 *		Key management called by the SQL functions in keyfuncs.c
 * ---------------------------------------------------------------- */

uint32
hg_keyring_create(const char *name)
{
	if (strncmp(name, HG_PATIENT_KEY_PREFIX, strlen(HG_PATIENT_KEY_PREFIX)) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("data key names starting with \"%s\" are reserved for per-patient keys",
						HG_PATIENT_KEY_PREFIX),
				 errhint("Per-patient keys are created on demand by columns declared with per_patient_keys.")));
	return create_key_internal(name, "data", false);
}

/* Create a signing key; the caller has checked the name's characters. */
uint32
hg_keyring_create_signing(const char *name)
{
	return create_key_internal(name, "signing", false);
}

uint32
hg_keyring_rotate(const char *name)
{
	uint32		key_id = hg_key_id_by_name(name, false);

	if (get_key_info(key_id, false)->kind == HG_KEY_KIND_SIGNING)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("signing key \"%s\" cannot be rotated", name),
				 errdetail("The token secret is derived from the key's first version, so a new version would not change it."),
				 errhint("Create a new signing key with hipaa_guard.create_signing_key(), have the token issuer sign with it and name it as \"kid\", then destroy the old key.")));
	return rotate_internal(key_id, 0);
}

/*
 * Destroy a key: mark it destroyed, then overwrite every version's wrapped
 * bytes in place.  The erasure is not transactional: once this returns, the
 * key material is gone even if the transaction later rolls back.  Erased
 * version rows read as destroyed whatever state data_keys records.
 */
void
hg_keyring_destroy(const char *name)
{
	uint32		key_id = hg_key_id_by_name(name, false);
	OwnerScope	scope;
	Oid			types[1] = {INT4OID};
	Datum		values[1];
	uint32		nversions;
	bool		isnull;

	owner_scope_begin(&scope);
	values[0] = Int32GetDatum((int32) key_id);
	spi_exec("UPDATE hipaa_guard.data_keys SET state = 'destroyed', destroyed_at = pg_catalog.now() "
			 "WHERE key_id = $1 RETURNING current_version", 1, types, values,
			 SPI_OK_UPDATE_RETURNING);
	nversions = (uint32) DatumGetInt32(spi_value(0, 1, &isnull));
	owner_scope_end(&scope);

	for (uint32 version = 0; version <= nversions; version++)
		(void) inplace_version_update(key_id, version, INPLACE_ERASE, NULL, NULL, NULL);
	CacheInvalidateRelcacheByRelid(rels.keys);
	cache_stale = true;
}

/*
 * Erase one old version of a key.  The caller has checked that no value in
 * the database is still encrypted under it.
 */
void
hg_keyring_retire(const char *name, uint32 version)
{
	uint32		key_id = hg_key_id_by_name(name, false);
	KeyInfo    *info = get_key_info(key_id, false);

	if (info->destroyed)
		report_destroyed(info);
	if (version == HG_MAC_KEY_VERSION || version >= info->current_version)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot retire version %u of data key \"%s\"", version, name),
				 errdetail("Only versions older than the current version %u can be retired.",
						   info->current_version)));
	if (!inplace_version_update(key_id, version, INPLACE_ERASE, NULL, NULL, NULL))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("data key version %u of key \"%s\" does not exist", version, name)));
	CacheInvalidateRelcacheByRelid(rels.keys);
	cache_stale = true;
}

/*
 * Rewrap every key version that is not under the current master key, using
 * the previous master key to unwrap it.  Each version is rewritten in place,
 * so an interrupted run leaves every version readable under one of the two
 * keys and can simply be run again.  Returns the number rewrapped.
 */
int64
hg_keyring_rewrap(void)
{
	const HgKek *current = hg_masterkey_current();
	OwnerScope	scope;
	Oid			types[1] = {BYTEAOID};
	Datum		values[1];
	int64		count = 0;
	uint64		nrows;
	uint32	   *ids;
	uint32	   *versions;

	keyring_begin();
	owner_scope_begin(&scope);
	values[0] = PointerGetDatum(bytes_to_bytea(current->fingerprint, HG_FINGERPRINT_LEN));
	spi_exec("SELECT key_id, version FROM hipaa_guard.data_key_versions "
			 "WHERE kek_fingerprint OPERATOR(pg_catalog.<>) $1 "
			 "ORDER BY key_id, version", 1, types, values, SPI_OK_SELECT);
	nrows = SPI_processed;
	ids = palloc(sizeof(uint32) * (nrows + 1));
	versions = palloc(sizeof(uint32) * (nrows + 1));
	for (uint64 i = 0; i < nrows; i++)
	{
		bool		isnull;

		ids[i] = (uint32) DatumGetInt32(spi_value(i, 1, &isnull));
		versions[i] = (uint32) DatumGetInt32(spi_value(i, 2, &isnull));
	}
	owner_scope_end(&scope);

	for (uint64 i = 0; i < nrows; i++)
	{
		VersionEntry *entry = get_version(ids[i], versions[i]);
		uint8_t		wrapped[WRAPPED_LEN];

		if (entry->destroyed)
			continue;
		wrap_key(current, ids[i], versions[i], entry->key, wrapped);
		if (inplace_version_update(ids[i], versions[i], INPLACE_REWRAP, NULL,
								   wrapped, current->fingerprint))
			count++;
	}

	owner_scope_begin(&scope);
	values[0] = PointerGetDatum(bytes_to_bytea(current->fingerprint, HG_FINGERPRINT_LEN));
	spi_exec("DELETE FROM hipaa_guard.keyring_check", 0, NULL, NULL, SPI_OK_DELETE);
	spi_exec("INSERT INTO hipaa_guard.keyring_check (fingerprint) VALUES ($1)",
			 1, types, values, SPI_OK_INSERT);
	owner_scope_end(&scope);
	CacheInvalidateRelcacheByRelid(rels.keys);
	return count;
}
