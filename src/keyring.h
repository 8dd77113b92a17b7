/*
 * keyring.h
 *		Data keys: lookup by name and id, the per-process key cache, nonce
 *		budget leases, rotation, destruction and rewrapping.
 */
#ifndef HG_KEYRING_H
#define HG_KEYRING_H

#include "postgres.h"

#include "crypto.h"

#define HG_MAX_KEY_NAME_LEN		120
#define HG_MAC_KEY_VERSION		0	/* version 0 holds the blind index key */
#define HG_PATIENT_KEY_PREFIX	"patient:"

/* hipaa_guard.data_keys.kind */
typedef enum HgKeyKind
{
	HG_KEY_KIND_DATA,
	HG_KEY_KIND_PATIENT,
	HG_KEY_KIND_SIGNING			/* signs actor tokens, encrypts nothing */
} HgKeyKind;


extern int	hg_rotate_after_encryptions;
extern int	hg_nonce_lease_size;
extern int	hg_key_cache_size;

extern void hg_keyring_init(void);
extern void hg_keyring_shmem_request(void);
extern uint32 hg_key_id_by_name(const char *name, bool missing_ok);
extern uint32 hg_patient_key_id(const char *patient, bool create);
extern char *hg_key_name(uint32 key_id);
extern const uint8_t *hg_key_for_encrypt(uint32 key_id, uint32 *version);
extern const uint8_t *hg_key_for_decrypt(uint32 key_id, uint32 version);
extern const uint8_t *hg_key_for_mac(uint32 key_id);
extern uint32 hg_key_current_version(uint32 key_id);
extern bool hg_key_is_destroyed(uint32 key_id);
extern HgKeyKind hg_key_kind(uint32 key_id);
extern const uint8_t *hg_key_for_signing(uint32 key_id);



extern uint32 hg_keyring_create(const char *name);
extern uint32 hg_keyring_create_signing(const char *name);
extern uint32 hg_keyring_rotate(const char *name);
extern void hg_keyring_destroy(const char *name);
extern void hg_keyring_retire(const char *name, uint32 version);
extern int64 hg_keyring_rewrap(void);
#endif							/* HG_KEYRING_H */
