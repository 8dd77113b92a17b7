/*
 * crypto.h
 *		Thin wrappers over OpenSSL EVP: AES-256-GCM, HMAC-SHA-256, HKDF,
 *		random bytes and wiping.  Nothing here depends on SQL.
 */
#ifndef HG_CRYPTO_H
#define HG_CRYPTO_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define HG_KEY_LEN		32		/* AES-256 and HMAC-SHA-256 keys */
#define HG_NONCE_LEN	12		/* 96-bit GCM nonce */
#define HG_TAG_LEN		16		/* 128-bit GCM tag */
#define HG_MAC_LEN		32		/* HMAC-SHA-256 output */

/* Results of the crypto layer; callers turn them into ereports. */
typedef enum HgCryptoStatus
{
	HG_CRYPTO_OK = 0,
	HG_CRYPTO_AUTH_FAILED,		/* tag mismatch: wrong key or altered bytes */
	HG_CRYPTO_LIB_FAILED		/* OpenSSL itself reported an error */
} HgCryptoStatus;

extern HgCryptoStatus hg_aead_encrypt(const uint8_t *key,
									  const uint8_t *nonce,
									  const uint8_t *aad, size_t aad_len,
									  const uint8_t *plain, size_t plain_len,
									  uint8_t *cipher, uint8_t *tag);
extern HgCryptoStatus hg_aead_decrypt(const uint8_t *key,
									  const uint8_t *nonce,
									  const uint8_t *aad, size_t aad_len,
									  const uint8_t *cipher, size_t cipher_len,
									  const uint8_t *tag, uint8_t *plain);
extern HgCryptoStatus hg_hmac_sha256(const uint8_t *key, size_t key_len,
									 const uint8_t *data, size_t data_len,
									 uint8_t *mac);
extern HgCryptoStatus hg_hkdf_sha256(const uint8_t *ikm, size_t ikm_len,
									 const char *info,
									 uint8_t *out, size_t out_len);
extern bool hg_random_bytes(uint8_t *buf, size_t len);
extern bool hg_random_nonce(uint8_t *nonce);
extern bool hg_equal_ct(const void *a, const void *b, size_t len);
extern void hg_wipe(void *buf, size_t len);
extern void hg_crypto_forget_key(void);

#endif							/* HG_CRYPTO_H */
