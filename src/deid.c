/*
 * deid.c
 *		Keyed pseudonyms for de-identification (45 CFR 164.514(c)): a code
 *		derived from an identifier with HMAC-SHA-256 under a key of the
 *		keyring, so that it cannot be reversed, or recomputed from a list of
 *		likely identifiers, without that key.
 *
 * The pseudonym key is derived with HKDF from the data key's MAC key
 * (version 0), under its own label, so that a pseudonym never equals the
 * blind index of the same value.  A de-identified export thus cannot be
 * joined to the blind index column of the identified table.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"

#include "crypto.h"
#include "keyring.h"

/* Hex digits of the pseudonym: 128 of the 256 HMAC bits. */
#define PSEUDONYM_BYTES		16

PG_FUNCTION_INFO_V1(hg_pseudonym);
Datum
hg_pseudonym(PG_FUNCTION_ARGS)
{
	text	   *value;
	char	   *key_name;
	uint8_t		pseudonym_key[HG_KEY_LEN];
	uint8_t		mac[HG_MAC_LEN];
	char		hex[PSEUDONYM_BYTES * 2 + 1];
	bool		ok;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("key name must not be null")));
	key_name = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	value = PG_GETARG_TEXT_PP(0);

	ok = hg_hkdf_sha256(hg_key_for_mac(hg_key_id_by_name(key_name, false)), HG_KEY_LEN,
						"hipaa_guard pseudonym v1",
						pseudonym_key, HG_KEY_LEN) == HG_CRYPTO_OK &&
		hg_hmac_sha256(pseudonym_key, HG_KEY_LEN,
					   (const uint8_t *) VARDATA_ANY(value), VARSIZE_ANY_EXHDR(value),
					   mac) == HG_CRYPTO_OK;
	hg_wipe(pseudonym_key, sizeof(pseudonym_key));
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not compute pseudonym")));
	for (int i = 0; i < PSEUDONYM_BYTES; i++)
		snprintf(hex + 2 * i, 3, "%02x", mac[i]);
	PG_RETURN_TEXT_P(cstring_to_text(hex));
}
