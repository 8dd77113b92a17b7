/*
 * jwt.h
 *		Parsing and checking of the JSON Web Tokens (RFC 7519, compact form)
 *		that carry the actor.  No catalog, keyring or OpenSSL access here, so
 *		that the fuzz target can link this file alone.  The caller verifies
 *		the signature and turns an HgJwtError into an ereport.
 */
#ifndef HG_JWT_H
#define HG_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HG_JWT_MAX_LEN			8192	/* bytes of the whole token */
#define HG_JWT_SIGNATURE_LEN	32		/* HMAC-SHA-256 */
#define HG_JWT_MAX_DEPTH		16		/* JSON nesting within a part */

/* Why a token was rejected.  The comment names the HgJwtError fields used. */
typedef enum HgJwtStatus
{
	HG_JWT_OK = 0,
	HG_JWT_TOO_LONG,
	HG_JWT_NOT_THREE_PARTS,
	HG_JWT_BAD_BASE64,			/* part */
	HG_JWT_BAD_UTF8,			/* part */
	HG_JWT_NON_ASCII,			/* part */
	HG_JWT_BAD_JSON,			/* part */
	HG_JWT_TOO_DEEP,			/* part */
	HG_JWT_NOT_OBJECT,			/* part */
	HG_JWT_DUPLICATE_MEMBER,	/* part */
	HG_JWT_WRONG_TYPE,			/* part, member */
	HG_JWT_CONTROL_CHARACTER,	/* part, member */
	HG_JWT_BAD_SIGNATURE_LENGTH,	/* part */
	HG_JWT_ALG_MISSING,
	HG_JWT_ALG_NOT_ACCEPTED,
	HG_JWT_TYP_NOT_ACCEPTED,
	HG_JWT_CRIT_NOT_SUPPORTED,
	HG_JWT_CLAIM_MISSING,		/* member */
	HG_JWT_EXPIRED,
	HG_JWT_NOT_YET_VALID,
	HG_JWT_ISSUER_MISMATCH,
	HG_JWT_AUDIENCE_MISMATCH
} HgJwtStatus;

typedef struct HgJwtError
{
	HgJwtStatus status;
	int			part;			/* 1 header, 2 payload, 3 signature */
	const char *member;			/* a member name of this file, never token text */
} HgJwtError;

/* The three base64url parts, pointing into the caller's token. */
typedef struct HgJwtParts
{
	const char *text[3];
	size_t		len[3];
	size_t		signing_input_len;	/* header, period and payload */
} HgJwtParts;

typedef struct HgJwtHeader
{
	char	   *kid;			/* signing key name, NULL when absent */
} HgJwtHeader;

typedef struct HgJwtClaims
{
	char	   *sub;			/* non-empty */
	double		exp;			/* seconds since 1970-01-01 UTC */
	bool		has_nbf;
	double		nbf;
	char	   *iss;			/* NULL when absent */
	char	  **aud;			/* a string audience is one item */
	int			naud;
	char	  **roles;
	int			nroles;
	char	   *purpose;		/* NULL when absent */
	char	  **amr;
	int			namr;
} HgJwtClaims;

extern bool hg_jwt_split(const char *token, size_t len, HgJwtParts *parts,
						 HgJwtError *error);
extern bool hg_jwt_decode_header(const HgJwtParts *parts, bool ascii_only,
								 HgJwtHeader *header, HgJwtError *error);
extern bool hg_jwt_decode_signature(const HgJwtParts *parts, uint8_t *signature,
									HgJwtError *error);
extern bool hg_jwt_decode_claims(const HgJwtParts *parts, bool ascii_only,
								 HgJwtClaims *claims, HgJwtError *error);
extern bool hg_jwt_check_claims(const HgJwtClaims *claims, double now,
								int leeway, const char *issuer,
								const char *audience, HgJwtError *error);
extern bool hg_jwt_amr_shows_mfa(char *const *amr, int namr);
extern void hg_jwt_free_header(HgJwtHeader *header);
extern void hg_jwt_free_claims(HgJwtClaims *claims);

extern char *hg_jwt_reason(const HgJwtError *error);
extern char *hg_jwt_detail(const HgJwtError *error);

extern size_t hg_base64url_encoded_len(size_t len);
extern void hg_base64url_encode(const uint8_t *src, size_t len, char *dst);
extern bool hg_base64url_decode(const char *src, size_t len, uint8_t *dst,
								size_t *dst_len);

#endif							/* HG_JWT_H */
