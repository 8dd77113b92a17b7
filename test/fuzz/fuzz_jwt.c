/*
 * fuzz_jwt.c
 *		libFuzzer target for the actor token parser in src/jwt.c: splitting,
 *		base64url, the header, the signature part and the claims, and the
 *		time, issuer and audience checks.  The HMAC itself is OpenSSL's and
 *		is not fuzzed here.
 *
 * The first input byte selects the mode.  Bit 0 set: the database is not
 * UTF8, so only ASCII is accepted.  Bit 1 set: the rest is a token as sent.
 * Bit 1 clear: the rest is the header JSON, a NUL byte and the claims JSON.
 * This target encodes them into a token with a signature part of 32 zero
 * bytes, so the fuzzer reaches the JSON parser without learning base64url.
 *
 * Besides crashes and sanitizer reports, it checks properties: the three
 * parts rebuild the token, every part that decodes encodes back to the same
 * characters, an error names only member names of jwt.c, accepted claims
 * have a non-empty "sub" without control characters and a finite "exp", a
 * token accepted with ASCII only is also accepted without that limit, and
 * the time check agrees with "exp".
 */
#include "postgres_fe.h"

#include <math.h>

#include "jwt.h"
#include "fuzz_check.h"

static const char *const known_members[] = {
	"alg", "typ", "crit", "kid", "sub", "exp", "nbf", "iss", "aud",
	"roles", "purpose", "amr"
};

static void
check_error(const HgJwtError *error)
{
	char	   *reason = hg_jwt_reason(error);
	char	   *detail = hg_jwt_detail(error);
	bool		known = error->member == NULL;

	for (size_t i = 0; i < lengthof(known_members); i++)
		known |= error->member != NULL && strcmp(error->member, known_members[i]) == 0;
	FUZZ_CHECK(known);
	FUZZ_CHECK(error->status != HG_JWT_OK);
	FUZZ_CHECK(error->part >= 0 && error->part <= 3);
	FUZZ_CHECK(reason[0] != '\0' && detail[0] != '\0');
	pfree(reason);
	pfree(detail);
}

/* A part that decodes must be the one encoding of its bytes. */
static void
check_canonical(const char *text, size_t len)
{
	uint8_t    *bytes = malloc(len * 3 / 4 + 1);
	size_t		bytes_len = 0;

	if (hg_base64url_decode(text, len, bytes, &bytes_len))
	{
		char	   *again = malloc(hg_base64url_encoded_len(bytes_len) + 1);

		hg_base64url_encode(bytes, bytes_len, again);
		FUZZ_CHECK(strlen(again) == len && memcmp(again, text, len) == 0);
		free(again);
	}
	free(bytes);
}

static void
check_claims(const HgJwtClaims *claims)
{
	HgJwtError	error;

	FUZZ_CHECK(claims->sub != NULL && claims->sub[0] != '\0');
	for (const char *p = claims->sub; *p != '\0'; p++)
		FUZZ_CHECK((unsigned char) *p >= 0x20 && *p != 0x7f);
	FUZZ_CHECK(isfinite(claims->exp));
	for (int i = 0; i < claims->nroles; i++)
		FUZZ_CHECK(claims->roles[i] != NULL);
	(void) hg_jwt_amr_shows_mfa(claims->amr, claims->namr);

	/* Exactly at "exp" the token has expired; a second before it has not. */
	if (fabs(claims->exp) < 1e15)
	{
		if (!hg_jwt_check_claims(claims, claims->exp, 0, "i", "a", &error))
			check_error(&error);
		FUZZ_CHECK(error.status == HG_JWT_EXPIRED);
		if (!hg_jwt_check_claims(claims, claims->exp - 1, 0, "i", "a", &error))
		{
			check_error(&error);
			FUZZ_CHECK(error.status != HG_JWT_EXPIRED);
		}
	}
}

/* Run every stage on one token; returns whether the claims were accepted. */
static bool
parse_token(const char *token, size_t len, bool ascii_only)
{
	HgJwtParts	parts;
	HgJwtHeader header;
	HgJwtClaims claims;
	HgJwtError	error;
	uint8_t		signature[HG_JWT_SIGNATURE_LEN];

	if (!hg_jwt_split(token, len, &parts, &error))
	{
		check_error(&error);
		return false;
	}
	FUZZ_CHECK(parts.len[0] + parts.len[1] + parts.len[2] + 2 == len);
	FUZZ_CHECK(parts.text[0] == token);
	FUZZ_CHECK(parts.signing_input_len == parts.len[0] + 1 + parts.len[1]);
	for (int i = 0; i < 3; i++)
	{
		FUZZ_CHECK(memchr(parts.text[i], '.', parts.len[i]) == NULL);
		check_canonical(parts.text[i], parts.len[i]);
	}

	if (!hg_jwt_decode_signature(&parts, signature, &error))
		check_error(&error);
	if (!hg_jwt_decode_header(&parts, ascii_only, &header, &error))
	{
		check_error(&error);
		return false;
	}
	hg_jwt_free_header(&header);
	if (!hg_jwt_decode_claims(&parts, ascii_only, &claims, &error))
	{
		check_error(&error);
		return false;
	}
	check_claims(&claims);
	hg_jwt_free_claims(&claims);
	return true;
}

static char *
build_token(const uint8_t *data, size_t size, size_t *len)
{
	const uint8_t *separator = memchr(data, '\0', size);
	size_t		header_len = separator != NULL ? (size_t) (separator - data) : size;
	const uint8_t *payload = separator != NULL ? separator + 1 : data + size;
	size_t		payload_len = size - (size_t) (payload - data);
	uint8_t		zeros[HG_JWT_SIGNATURE_LEN] = {0};
	char	   *token = malloc(hg_base64url_encoded_len(header_len) +
							   hg_base64url_encoded_len(payload_len) +
							   hg_base64url_encoded_len(sizeof(zeros)) + 3);
	char	   *p = token;

	hg_base64url_encode(data, header_len, p);
	p += strlen(p);
	*p++ = '.';
	hg_base64url_encode(payload, payload_len, p);
	p += strlen(p);
	*p++ = '.';
	hg_base64url_encode(zeros, sizeof(zeros), p);
	*len = strlen(token);
	return token;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	bool		ascii_only;
	char	   *token;
	size_t		len;

	if (size == 0)
		return 0;
	ascii_only = (data[0] & 1) != 0;
	if ((data[0] & 2) != 0)
	{
		/* An exact-size copy, so that AddressSanitizer flags reads past the end. */
		len = size - 1;
		token = malloc(len > 0 ? len : 1);
		memcpy(token, data + 1, len);
	}
	else
		token = build_token(data + 1, size - 1, &len);

	if (parse_token(token, len, ascii_only) && ascii_only)
		FUZZ_CHECK(parse_token(token, len, false));
	free(token);
	return 0;
}
