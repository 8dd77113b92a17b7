/*
 * enctypes.h
 *		Encrypting and decrypting envelopes, shared by the encrypted types
 *		and the row trigger.
 */
#ifndef HG_ENCTYPES_H
#define HG_ENCTYPES_H

#include "postgres.h"

#include "envelope.h"

extern bytea *hg_encrypt_bytes(HgTypeCode type_code, uint32 key_id,
							   const char *row_key, const uint8_t *plain,
							   size_t plain_len);
extern uint8_t *hg_decrypt_envelope(const HgEnvelope *env, size_t *plain_len);
extern void hg_parse_stored(bytea *value, HgEnvelope *env);
extern void hg_strip_copy_values(ErrorData *edata);

#endif							/* HG_ENCTYPES_H */
