/*
 * crypto.c
 *		The only file that calls OpenSSL: AES-256-GCM, HMAC-SHA-256, HKDF,
 *		random bytes, constant-time comparison and wiping.
 *
 * One cipher context per direction is kept for the life of the process and
 * rekeyed only when the caller passes a different key, because expanding the
 * AES key schedule and allocating a context cost more than encrypting a short
 * value.  Nonces come from a per-process buffer of RAND_bytes output.  The
 * buffer records which process filled it, and a forked child discards an
 * inherited buffer, because handing out the same nonces twice would break GCM.
 */
#include "postgres.h"

#include <limits.h>

#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include "miscadmin.h"

#include "crypto.h"

#define NONCE_POOL_NONCES	512

typedef struct CipherState
{
	EVP_CIPHER_CTX *ctx;
	bool		keyed;
	uint8_t		key[HG_KEY_LEN];	/* copy of the key the context holds */
} CipherState;

static CipherState enc_state;
static CipherState dec_state;

/* The HMAC context, kept like the cipher contexts for blind indexes. */
typedef struct MacState
{
	EVP_MAC_CTX *ctx;
	bool		keyed;
	uint8_t		key[HG_KEY_LEN];
} MacState;

static MacState mac_state;

static uint8_t nonce_pool[NONCE_POOL_NONCES * HG_NONCE_LEN];
static int	nonce_pool_next = NONCE_POOL_NONCES;
static pid_t nonce_pool_pid = 0;

static EVP_CIPHER *aes_gcm = NULL;
static EVP_MAC *hmac = NULL;

static bool
fetch_algorithms(void)
{
	if (aes_gcm == NULL)
		aes_gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	if (hmac == NULL)
		hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	return aes_gcm != NULL && hmac != NULL;
}

/*
 * Prepare a context for one operation under key and nonce, reusing the key
 * schedule when the key is the one the context already holds.
 */
static bool
cipher_begin(CipherState *state, bool encrypt, const uint8_t *key,
			 const uint8_t *nonce)
{
	const uint8_t *new_key = NULL;

	if (!fetch_algorithms())
		return false;
	if (state->ctx == NULL)
	{
		state->ctx = EVP_CIPHER_CTX_new();
		if (state->ctx == NULL ||
			EVP_CipherInit_ex(state->ctx, aes_gcm, NULL, NULL, NULL, encrypt ? 1 : 0) != 1)
			return false;
		state->keyed = false;
	}
	if (!state->keyed || CRYPTO_memcmp(state->key, key, HG_KEY_LEN) != 0)
		new_key = key;
	if (EVP_CipherInit_ex(state->ctx, NULL, NULL, new_key, nonce,
						  encrypt ? 1 : 0) != 1)
	{
		state->keyed = false;
		return false;
	}
	if (new_key != NULL)
	{
		memcpy(state->key, key, HG_KEY_LEN);
		state->keyed = true;
	}
	return true;
}

/*
 * Get or set the GCM tag through the provider's parameters: the older
 * EVP_CIPHER_CTX_ctrl() path translates each call into parameters by name,
 * which cost more than the encryption of a short value.
 */
static bool
tag_param(EVP_CIPHER_CTX *ctx, uint8_t *tag, bool get)
{
	OSSL_PARAM	params[2];

	params[0] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG,
												  tag, HG_TAG_LEN);
	params[1] = OSSL_PARAM_construct_end();
	if (get)
		return EVP_CIPHER_CTX_get_params(ctx, params) == 1;
	return EVP_CIPHER_CTX_set_params(ctx, params) == 1;
}

/*
 * Encrypt plain_len bytes into cipher (same length) and write the 16-byte tag.
 */
HgCryptoStatus
hg_aead_encrypt(const uint8_t *key, const uint8_t *nonce,
				const uint8_t *aad, size_t aad_len,
				const uint8_t *plain, size_t plain_len,
				uint8_t *cipher, uint8_t *tag)
{
	EVP_CIPHER_CTX *ctx;
	int			outl;

	if (plain_len > INT_MAX || aad_len > INT_MAX)
		return HG_CRYPTO_LIB_FAILED;
	if (!cipher_begin(&enc_state, true, key, nonce))
		return HG_CRYPTO_LIB_FAILED;
	ctx = enc_state.ctx;
	if (aad_len > 0 && EVP_EncryptUpdate(ctx, NULL, &outl, aad, (int) aad_len) != 1)
		return HG_CRYPTO_LIB_FAILED;
	if (plain_len > 0 &&
		EVP_EncryptUpdate(ctx, cipher, &outl, plain, (int) plain_len) != 1)
		return HG_CRYPTO_LIB_FAILED;
	if (EVP_EncryptFinal_ex(ctx, cipher + plain_len, &outl) != 1)
		return HG_CRYPTO_LIB_FAILED;
	return tag_param(ctx, tag, true) ? HG_CRYPTO_OK : HG_CRYPTO_LIB_FAILED;
}

/*
 * Decrypt and authenticate.  On HG_CRYPTO_AUTH_FAILED the caller must discard
 * whatever was written to plain.
 */
HgCryptoStatus
hg_aead_decrypt(const uint8_t *key, const uint8_t *nonce,
				const uint8_t *aad, size_t aad_len,
				const uint8_t *cipher, size_t cipher_len,
				const uint8_t *tag, uint8_t *plain)
{
	EVP_CIPHER_CTX *ctx;
	int			outl;

	if (cipher_len > INT_MAX || aad_len > INT_MAX)
		return HG_CRYPTO_LIB_FAILED;
	if (!cipher_begin(&dec_state, false, key, nonce))
		return HG_CRYPTO_LIB_FAILED;
	ctx = dec_state.ctx;
	if (aad_len > 0 && EVP_DecryptUpdate(ctx, NULL, &outl, aad, (int) aad_len) != 1)
		return HG_CRYPTO_LIB_FAILED;
	if (cipher_len > 0 &&
		EVP_DecryptUpdate(ctx, plain, &outl, cipher, (int) cipher_len) != 1)
		return HG_CRYPTO_LIB_FAILED;
	if (!tag_param(ctx, (uint8_t *) tag, false))
		return HG_CRYPTO_LIB_FAILED;
	if (EVP_DecryptFinal_ex(ctx, plain + cipher_len, &outl) != 1)
		return HG_CRYPTO_AUTH_FAILED;
	return HG_CRYPTO_OK;
}

HgCryptoStatus
hg_hmac_sha256(const uint8_t *key, size_t key_len,
			   const uint8_t *data, size_t data_len, uint8_t *mac)
{
	OSSL_PARAM	params[2];
	size_t		mac_len = 0;
	bool		same_key;

	if (!fetch_algorithms())
		return HG_CRYPTO_LIB_FAILED;
	if (mac_state.ctx == NULL)
	{
		mac_state.ctx = EVP_MAC_CTX_new(hmac);
		if (mac_state.ctx == NULL)
			return HG_CRYPTO_LIB_FAILED;
		mac_state.keyed = false;
	}

	/* Restarting under the context's current key skips the key setup. */
	same_key = mac_state.keyed && key_len == HG_KEY_LEN &&
		CRYPTO_memcmp(mac_state.key, key, HG_KEY_LEN) == 0;
	if (same_key)
	{
		if (EVP_MAC_init(mac_state.ctx, NULL, 0, NULL) != 1)
			return HG_CRYPTO_LIB_FAILED;
	}
	else
	{
		params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
													 (char *) "SHA256", 0);
		params[1] = OSSL_PARAM_construct_end();
		mac_state.keyed = false;
		if (EVP_MAC_init(mac_state.ctx, key, key_len, params) != 1)
			return HG_CRYPTO_LIB_FAILED;
		if (key_len == HG_KEY_LEN)
		{
			memcpy(mac_state.key, key, HG_KEY_LEN);
			mac_state.keyed = true;
		}
	}
	if (EVP_MAC_update(mac_state.ctx, data, data_len) != 1 ||
		EVP_MAC_final(mac_state.ctx, mac, &mac_len, HG_MAC_LEN) != 1 ||
		mac_len != HG_MAC_LEN)
		return HG_CRYPTO_LIB_FAILED;
	return HG_CRYPTO_OK;
}

/*
 * Derive out_len bytes from ikm with HKDF-SHA-256 (RFC 5869), no salt, so
 * that one master or data key yields separate keys for separate purposes.
 */
HgCryptoStatus
hg_hkdf_sha256(const uint8_t *ikm, size_t ikm_len, const char *info,
			   uint8_t *out, size_t out_len)
{
	EVP_KDF    *kdf;
	EVP_KDF_CTX *ctx;
	OSSL_PARAM	params[4];
	bool		ok;

	kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	if (kdf == NULL)
		return HG_CRYPTO_LIB_FAILED;
	ctx = EVP_KDF_CTX_new(kdf);
	EVP_KDF_free(kdf);
	if (ctx == NULL)
		return HG_CRYPTO_LIB_FAILED;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
												 (char *) "SHA256", 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
												  (void *) ikm, ikm_len);
	params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
												  (void *) info, strlen(info));
	params[3] = OSSL_PARAM_construct_end();
	ok = EVP_KDF_derive(ctx, out, out_len, params) == 1;
	EVP_KDF_CTX_free(ctx);
	return ok ? HG_CRYPTO_OK : HG_CRYPTO_LIB_FAILED;
}

bool
hg_random_bytes(uint8_t *buf, size_t len)
{
	if (len > INT_MAX)
		return false;
	return RAND_bytes(buf, (int) len) == 1;
}

/*
 * Hand out the next 96-bit random nonce.  The pool is refilled by this
 * process only: a pool inherited through fork() is never used, because the
 * parent and every sibling would hand out the same nonces from it.
 */
bool
hg_random_nonce(uint8_t *nonce)
{
	/* MyProcPid is set in every process the postmaster forks. */
	pid_t		self = MyProcPid;

	if (nonce_pool_pid != self || nonce_pool_next >= NONCE_POOL_NONCES)
	{
		if (!hg_random_bytes(nonce_pool, sizeof(nonce_pool)))
			return false;
		nonce_pool_pid = self;
		nonce_pool_next = 0;
	}
	memcpy(nonce, nonce_pool + nonce_pool_next * HG_NONCE_LEN, HG_NONCE_LEN);
	nonce_pool_next++;
	return true;
}

bool
hg_equal_ct(const void *a, const void *b, size_t len)
{
	return CRYPTO_memcmp(a, b, len) == 0;
}

void
hg_wipe(void *buf, size_t len)
{
	OPENSSL_cleanse(buf, len);
}

/*
 * Drop the key copies and key schedules the cipher contexts hold, for when
 * the key cache is flushed or a key is destroyed.
 */
void
hg_crypto_forget_key(void)
{
	CipherState *states[2] = {&enc_state, &dec_state};

	for (int i = 0; i < 2; i++)
	{
		if (states[i]->ctx != NULL)
			EVP_CIPHER_CTX_free(states[i]->ctx);	/* cleanses the schedule */
		states[i]->ctx = NULL;
		states[i]->keyed = false;
		hg_wipe(states[i]->key, HG_KEY_LEN);
	}
	if (mac_state.ctx != NULL)
		EVP_MAC_CTX_free(mac_state.ctx);
	mac_state.ctx = NULL;
	mac_state.keyed = false;
	hg_wipe(mac_state.key, HG_KEY_LEN);
}
