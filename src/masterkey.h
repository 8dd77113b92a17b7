/*
 * masterkey.h
 *		The master key (key-encryption key): loading, locked storage and the
 *		keys derived from it.
 */
#ifndef HG_MASTERKEY_H
#define HG_MASTERKEY_H

#include "crypto.h"

#define HG_FINGERPRINT_LEN	8

extern char *hg_master_key_command;
extern char *hg_master_key_file;
extern char *hg_previous_master_key_command;
extern char *hg_previous_master_key_file;

/* A loaded master key, as the keyring uses it. */
typedef struct HgKek
{
	uint8_t		wrap_key[HG_KEY_LEN];	/* derived: wraps data keys */
	uint8_t		fingerprint[HG_FINGERPRINT_LEN];	/* derived: names the key */
} HgKek;

extern void hg_masterkey_load_all(void);
extern const HgKek *hg_masterkey_current(void);
extern const HgKek *hg_masterkey_previous(void);
extern const HgKek *hg_masterkey_by_fingerprint(const uint8_t *fingerprint);
extern const char *hg_masterkey_source(void);
extern char *hg_fingerprint_hex(const uint8_t *fingerprint);
extern bool hg_masterkey_is_loaded(void);

#endif							/* HG_MASTERKEY_H */
