/*
 * jwt.c
 *		Split, decode and check an actor token: a JSON Web Signature in
 *		compact form (RFC 7515) made with HS256, whose payload contains the
 *		claims of a JSON Web Token (RFC 7519).
 *
 * Base64url is accepted without padding only (RFC 7515, section 2): "=",
 * any character outside the URL-safe alphabet, and unused trailing bits that
 * are not zero are rejected, so that each byte string has exactly one
 * encoding.
 *
 * JSON is parsed by PostgreSQL's own parser (common/jsonapi.h), in three
 * passes over at most a few kilobytes.  The first runs its lexer alone, to
 * bound the nesting depth, because the parser recurses once per level; in
 * databases whose encoding is not UTF8 it also rejects non-ASCII text,
 * because the server's parser converts \u escapes to the database encoding
 * and raises its own error when it cannot.  The second parses without
 * semantic actions, so that the third, which keeps values, never fails: the
 * parser of PostgreSQL 15 does not free a member name it has copied when the
 * parse fails after it.
 *
 * A member name that occurs twice in the header or in the claims rejects the
 * token; RFC 7519 (section 4) allows that or taking the last one, and taking
 * one silently would let two JSON parsers read different claims.  Unknown
 * header parameters and claims are ignored, except "crit", which lists
 * extensions the recipient must understand, and none is understood here.
 *
 * Memory comes from palloc: in the server, the caller's memory context; in
 * the fuzz target, malloc.
 */
#ifdef FRONTEND
#include "postgres_fe.h"
#else
#include "postgres.h"
#endif

#include <math.h>

#include "common/jsonapi.h"
#include "mb/pg_wchar.h"

#include "jwt.h"

/* A top-level member of a JSON object, by the kind of its value. */
typedef enum MemberKind
{
	MEMBER_STRING,
	MEMBER_NUMBER,
	MEMBER_STRING_ARRAY,
	MEMBER_OTHER				/* object, true, false, null or a mixed array */
} MemberKind;

typedef struct Member
{
	char	   *name;
	MemberKind	kind;
	char	   *value;			/* de-escaped string, or the number's text */
	char	  **items;			/* strings of a string array */
	int			nitems;
	int			items_size;
} Member;

/* State of the semantic actions while one part is parsed. */
typedef struct JsonObject
{
	Member	   *members;
	int			nmembers;
	int			members_size;
	int			depth;
	bool		is_object;		/* the top-level value is an object */
} JsonObject;

/* ----------------------------------------------------------------
 *		Base64url
 * ---------------------------------------------------------------- */

static const char base64url_alphabet[] =
"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int
base64url_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

size_t
hg_base64url_encoded_len(size_t len)
{
	return (len / 3) * 4 + (len % 3 == 0 ? 0 : len % 3 + 1);
}

/* Encode without padding into dst, which needs encoded_len + 1 bytes. */
void
hg_base64url_encode(const uint8_t *src, size_t len, char *dst)
{
	size_t		i;
	char	   *out = dst;

	for (i = 0; i + 3 <= len; i += 3)
	{
		uint32_t	group = ((uint32_t) src[i] << 16) | ((uint32_t) src[i + 1] << 8) | src[i + 2];

		*out++ = base64url_alphabet[(group >> 18) & 63];
		*out++ = base64url_alphabet[(group >> 12) & 63];
		*out++ = base64url_alphabet[(group >> 6) & 63];
		*out++ = base64url_alphabet[group & 63];
	}
	if (len - i == 1)
	{
		*out++ = base64url_alphabet[src[i] >> 2];
		*out++ = base64url_alphabet[(src[i] & 3) << 4];
	}
	else if (len - i == 2)
	{
		uint32_t	group = ((uint32_t) src[i] << 8) | src[i + 1];

		*out++ = base64url_alphabet[(group >> 10) & 63];
		*out++ = base64url_alphabet[(group >> 4) & 63];
		*out++ = base64url_alphabet[(group & 15) << 2];
	}
	*out = '\0';
}

/*
 * Decode len characters of unpadded base64url into dst, which needs
 * len * 3 / 4 bytes.  Returns false for a character outside the alphabet, a
 * length that leaves one character over, or nonzero unused bits in the last
 * character.
 */
bool
hg_base64url_decode(const char *src, size_t len, uint8_t *dst, size_t *dst_len)
{
	uint32_t	group = 0;
	int			bits = 0;
	size_t		out = 0;

	if (len % 4 == 1)
		return false;
	for (size_t i = 0; i < len; i++)
	{
		int			value = base64url_value((unsigned char) src[i]);

		if (value < 0)
			return false;
		group = (group << 6) | (uint32_t) value;
		bits += 6;
		if (bits >= 8)
		{
			bits -= 8;
			dst[out++] = (uint8_t) (group >> bits);
			group &= (1U << bits) - 1;
		}
	}
	/* What is left are the unused low bits of the last character. */
	if (group != 0)
		return false;
	*dst_len = out;
	return true;
}

/* ----------------------------------------------------------------
 *		Splitting the token
 * ---------------------------------------------------------------- */

/*
 * Split a token into its three parts.  The parts point into token, which
 * need not be terminated.
 */
bool
hg_jwt_split(const char *token, size_t len, HgJwtParts *parts, HgJwtError *error)
{
	int			part = 0;
	size_t		start = 0;

	memset(error, 0, sizeof(*error));
	if (len > HG_JWT_MAX_LEN)
	{
		error->status = HG_JWT_TOO_LONG;
		return false;
	}
	for (size_t i = 0; i <= len; i++)
	{
		if (i < len && token[i] != '.')
			continue;
		if (part == 3)
		{
			error->status = HG_JWT_NOT_THREE_PARTS;
			return false;
		}
		parts->text[part] = token + start;
		parts->len[part] = i - start;
		part++;
		start = i + 1;
	}
	if (part != 3)
	{
		error->status = HG_JWT_NOT_THREE_PARTS;
		return false;
	}
	parts->signing_input_len = parts->len[0] + 1 + parts->len[1];
	return true;
}

/* ----------------------------------------------------------------
 *		JSON objects
 * ---------------------------------------------------------------- */

static void
fail(HgJwtError *error, HgJwtStatus status, int part, const char *member)
{
	error->status = status;
	error->part = part;
	error->member = member;
}

static Member *
current_member(JsonObject *object)
{
	return object->nmembers > 0 ? &object->members[object->nmembers - 1] : NULL;
}

static void
free_member_value(Member *member)
{
	for (int i = 0; i < member->nitems; i++)
		pfree(member->items[i]);
	if (member->items != NULL)
		pfree(member->items);
	if (member->value != NULL)
		pfree(member->value);
	member->items = NULL;
	member->nitems = member->items_size = 0;
	member->value = NULL;
}

static void
mark_other(Member *member)
{
	if (member != NULL)
	{
		free_member_value(member);
		member->kind = MEMBER_OTHER;
	}
}

static void
free_object(JsonObject *object)
{
	for (int i = 0; i < object->nmembers; i++)
	{
		free_member_value(&object->members[i]);
		pfree(object->members[i].name);
	}
	if (object->members != NULL)
		pfree(object->members);
	object->members = NULL;
	object->nmembers = 0;
}

/*
 * The semantic actions below keep the top-level members (depth 1) and, for
 * arrays, their string elements (depth 2).  Anything nested deeper only
 * marks its member as MEMBER_OTHER.
 */
static void
on_object_start(void *state)
{
	JsonObject *object = state;

	if (object->depth == 0)
		object->is_object = true;
	else if (object->depth <= 2)
		mark_other(current_member(object));
	object->depth++;
}

static void
on_array_start(void *state)
{
	JsonObject *object = state;
	Member	   *member = current_member(object);

	if (object->depth == 1 && member != NULL)
		member->kind = MEMBER_STRING_ARRAY;
	else if (object->depth == 2)
		mark_other(member);
	object->depth++;
}

static void
on_structure_end(void *state)
{
	JsonObject *object = state;

	object->depth--;
}

static void
on_field_start(void *state, char *name, bool isnull)
{
	JsonObject *object = state;
	Member	   *member;

	if (object->depth != 1)
	{
		pfree(name);
		return;
	}
	if (object->nmembers == object->members_size)
	{
		object->members_size = Max(8, object->members_size * 2);
		object->members = object->members == NULL ?
			palloc(sizeof(Member) * object->members_size) :
			repalloc(object->members, sizeof(Member) * object->members_size);
	}
	member = &object->members[object->nmembers++];
	memset(member, 0, sizeof(*member));
	member->name = name;
	member->kind = MEMBER_OTHER;
}

static void
on_scalar(void *state, char *token, JsonTokenType type)
{
	JsonObject *object = state;
	Member	   *member = current_member(object);

	if (object->depth == 1 && member != NULL &&
		(type == JSON_TOKEN_STRING || type == JSON_TOKEN_NUMBER))
	{
		member->kind = type == JSON_TOKEN_STRING ? MEMBER_STRING : MEMBER_NUMBER;
		member->value = token;
		return;
	}
	if (object->depth == 2 && member != NULL && member->kind == MEMBER_STRING_ARRAY &&
		type == JSON_TOKEN_STRING)
	{
		if (member->nitems == member->items_size)
		{
			member->items_size = Max(4, member->items_size * 2);
			member->items = member->items == NULL ?
				palloc(sizeof(char *) * member->items_size) :
				repalloc(member->items, sizeof(char *) * member->items_size);
		}
		member->items[member->nitems++] = token;
		return;
	}
	if (object->depth == 2)
		mark_other(member);
	if (token != NULL)
		pfree(token);
}

/* Whether a lexed string token contains a \u escape of a non-ASCII character. */
static bool
has_non_ascii_escape(const char *start, const char *end)
{
	for (const char *p = start; p < end; p++)
	{
		unsigned int code = 0;

		if (*p != '\\')
			continue;
		p++;
		if (*p != 'u')
			continue;
		/* The lexer has checked that four hexadecimal digits follow. */
		for (int i = 1; i <= 4; i++)
		{
			char		c = p[i];

			code = code * 16 + (c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
		}
		if (code > 0x7f)
			return true;
		p += 4;
	}
	return false;
}

static void
free_lex(JsonLexContext *lex)
{
	if (lex->strval != NULL)
	{
		pfree(lex->strval->data);
		pfree(lex->strval);
	}
	pfree(lex);
}

/*
 * Lex the whole part once, without building values, to bound its nesting
 * and, when ascii_only, to find non-ASCII escapes.
 */
static bool
prescan_json(char *json, size_t len, bool ascii_only, int part, HgJwtError *error)
{
	JsonLexContext *lex = makeJsonLexContextCstringLen(json, (int) len, PG_UTF8, false);
	int			depth = 0;
	bool		ok = true;

	while (ok)
	{
		if (json_lex(lex) != JSON_SUCCESS)
		{
			fail(error, HG_JWT_BAD_JSON, part, NULL);
			ok = false;
			break;
		}
		if (lex->token_type == JSON_TOKEN_END)
			break;
		switch (lex->token_type)
		{
			case JSON_TOKEN_OBJECT_START:
			case JSON_TOKEN_ARRAY_START:
				if (++depth > HG_JWT_MAX_DEPTH)
				{
					fail(error, HG_JWT_TOO_DEEP, part, NULL);
					ok = false;
				}
				break;
			case JSON_TOKEN_OBJECT_END:
			case JSON_TOKEN_ARRAY_END:
				depth--;
				break;
			case JSON_TOKEN_STRING:
				if (ascii_only &&
					has_non_ascii_escape(lex->token_start, lex->token_terminator))
				{
					fail(error, HG_JWT_NON_ASCII, part, NULL);
					ok = false;
				}
				break;
			default:
				break;
		}
	}
	free_lex(lex);
	return ok;
}

/*
 * Decode one base64url part and parse it as a JSON object into *object.
 * On failure nothing in *object needs to be freed.
 */
static bool
parse_part(const HgJwtParts *parts, int part, bool ascii_only,
		   JsonObject *object, HgJwtError *error)
{
	size_t		encoded_len = parts->len[part - 1];
	char	   *json = palloc(encoded_len * 3 / 4 + 1);
	size_t		len = 0;
	JsonLexContext *lex;
	JsonSemAction sem;
	JsonParseErrorType result;

	memset(object, 0, sizeof(*object));
	if (!hg_base64url_decode(parts->text[part - 1], encoded_len, (uint8_t *) json, &len))
	{
		pfree(json);
		fail(error, HG_JWT_BAD_BASE64, part, NULL);
		return false;
	}
	json[len] = '\0';
	if (pg_encoding_verifymbstr(PG_UTF8, json, (int) len) != (int) len)
	{
		pfree(json);
		fail(error, HG_JWT_BAD_UTF8, part, NULL);
		return false;
	}
	if (ascii_only)
	{
		for (size_t i = 0; i < len; i++)
		{
			if (IS_HIGHBIT_SET(json[i]))
			{
				pfree(json);
				fail(error, HG_JWT_NON_ASCII, part, NULL);
				return false;
			}
		}
	}
	if (!prescan_json(json, len, ascii_only, part, error))
	{
		pfree(json);
		return false;
	}
	lex = makeJsonLexContextCstringLen(json, (int) len, PG_UTF8, true);
	result = pg_parse_json(lex, &nullSemAction);
	free_lex(lex);
	if (result != JSON_SUCCESS)
	{
		pfree(json);
		fail(error, HG_JWT_BAD_JSON, part, NULL);
		return false;
	}

	memset(&sem, 0, sizeof(sem));
	sem.semstate = object;
	sem.object_start = on_object_start;
	sem.object_end = on_structure_end;
	sem.array_start = on_array_start;
	sem.array_end = on_structure_end;
	sem.object_field_start = on_field_start;
	sem.scalar = on_scalar;
	lex = makeJsonLexContextCstringLen(json, (int) len, PG_UTF8, true);
	result = pg_parse_json(lex, &sem);
	free_lex(lex);
	pfree(json);

	if (result != JSON_SUCCESS || !object->is_object)
	{
		free_object(object);
		fail(error, result != JSON_SUCCESS ? HG_JWT_BAD_JSON : HG_JWT_NOT_OBJECT, part, NULL);
		return false;
	}
	for (int i = 0; i < object->nmembers; i++)
	{
		for (int j = i + 1; j < object->nmembers; j++)
		{
			if (strcmp(object->members[i].name, object->members[j].name) == 0)
			{
				free_object(object);
				fail(error, HG_JWT_DUPLICATE_MEMBER, part, NULL);
				return false;
			}
		}
	}
	return true;
}

static Member *
find_member(JsonObject *object, const char *name)
{
	for (int i = 0; i < object->nmembers; i++)
	{
		if (strcmp(object->members[i].name, name) == 0)
			return &object->members[i];
	}
	return NULL;
}

/* Move a string member's value out of the object, so free_object keeps it. */
static char *
take_string(Member *member)
{
	char	   *value = member->value;

	member->value = NULL;
	return value;
}

static char **
take_items(Member *member, int *nitems)
{
	char	  **items = member->items;

	*nitems = member->nitems;
	member->items = NULL;
	member->nitems = member->items_size = 0;
	return items;
}

static bool
has_control_character(const char *s)
{
	for (; *s != '\0'; s++)
	{
		if ((unsigned char) *s < 0x20 || *s == 0x7f)
			return true;
	}
	return false;
}

/* ----------------------------------------------------------------
 *		Header, signature and claims
 * ---------------------------------------------------------------- */

/*
 * Decode the header and check it: "alg" must be exactly "HS256", "typ" if
 * present "JWT" in any case, "crit" absent, "kid" if present a string.
 */
bool
hg_jwt_decode_header(const HgJwtParts *parts, bool ascii_only,
					 HgJwtHeader *header, HgJwtError *error)
{
	JsonObject	object;
	Member	   *alg;
	Member	   *typ;
	Member	   *kid;
	bool		ok = false;

	memset(header, 0, sizeof(*header));
	memset(error, 0, sizeof(*error));
	if (!parse_part(parts, 1, ascii_only, &object, error))
		return false;

	alg = find_member(&object, "alg");
	typ = find_member(&object, "typ");
	kid = find_member(&object, "kid");
	if (alg == NULL)
		fail(error, HG_JWT_ALG_MISSING, 1, "alg");
	else if (alg->kind != MEMBER_STRING || strcmp(alg->value, "HS256") != 0)
		fail(error, HG_JWT_ALG_NOT_ACCEPTED, 1, "alg");
	else if (find_member(&object, "crit") != NULL)
		fail(error, HG_JWT_CRIT_NOT_SUPPORTED, 1, "crit");
	else if (typ != NULL &&
			 (typ->kind != MEMBER_STRING || pg_strcasecmp(typ->value, "JWT") != 0))
		fail(error, HG_JWT_TYP_NOT_ACCEPTED, 1, "typ");
	else if (kid != NULL && kid->kind != MEMBER_STRING)
		fail(error, HG_JWT_WRONG_TYPE, 1, "kid");
	else
	{
		if (kid != NULL)
			header->kid = take_string(kid);
		ok = true;
	}
	free_object(&object);
	return ok;
}

/* Decode the signature part, which must hold exactly one HMAC-SHA-256. */
bool
hg_jwt_decode_signature(const HgJwtParts *parts, uint8_t *signature,
						HgJwtError *error)
{
	uint8_t		decoded[HG_JWT_MAX_LEN];
	size_t		len = 0;

	memset(error, 0, sizeof(*error));
	if (parts->len[2] > HG_JWT_MAX_LEN ||
		!hg_base64url_decode(parts->text[2], parts->len[2], decoded, &len))
	{
		fail(error, HG_JWT_BAD_BASE64, 3, NULL);
		return false;
	}
	if (len != HG_JWT_SIGNATURE_LEN)
	{
		fail(error, HG_JWT_BAD_SIGNATURE_LENGTH, 3, NULL);
		return false;
	}
	memcpy(signature, decoded, HG_JWT_SIGNATURE_LEN);
	return true;
}

/* Parse a NumericDate (RFC 7519, section 2): any finite JSON number. */
static bool
numeric_date(Member *member, double *value)
{
	char	   *end;

	if (member->kind != MEMBER_NUMBER)
		return false;
	*value = strtod(member->value, &end);
	return *end == '\0' && isfinite(*value);
}

/* Check an optional claim that must be an array of strings without control characters. */
static bool
take_string_array(JsonObject *object, const char *name, char ***items,
				  int *nitems, bool check_control, HgJwtError *error)
{
	Member	   *member = find_member(object, name);

	*items = NULL;
	*nitems = 0;
	if (member == NULL)
		return true;
	if (member->kind != MEMBER_STRING_ARRAY)
	{
		fail(error, HG_JWT_WRONG_TYPE, 2, name);
		return false;
	}
	for (int i = 0; check_control && i < member->nitems; i++)
	{
		if (has_control_character(member->items[i]))
		{
			fail(error, HG_JWT_CONTROL_CHARACTER, 2, name);
			return false;
		}
	}
	*items = take_items(member, nitems);
	return true;
}

/*
 * Take the claims this extension reads out of the parsed payload, checking
 * their types.  "sub" and "exp" are required here; "iss" and "aud" are
 * checked against the settings by hg_jwt_check_claims.
 */
static bool
take_claims(JsonObject *object, HgJwtClaims *claims, HgJwtError *error)
{
	Member	   *sub = find_member(object, "sub");
	Member	   *exp = find_member(object, "exp");
	Member	   *nbf = find_member(object, "nbf");
	Member	   *iss = find_member(object, "iss");
	Member	   *aud = find_member(object, "aud");
	Member	   *purpose = find_member(object, "purpose");

	if (sub == NULL)
	{
		fail(error, HG_JWT_CLAIM_MISSING, 2, "sub");
		return false;
	}
	if (sub->kind != MEMBER_STRING || sub->value[0] == '\0')
	{
		fail(error, HG_JWT_WRONG_TYPE, 2, "sub");
		return false;
	}
	if (has_control_character(sub->value))
	{
		fail(error, HG_JWT_CONTROL_CHARACTER, 2, "sub");
		return false;
	}
	if (exp == NULL)
	{
		fail(error, HG_JWT_CLAIM_MISSING, 2, "exp");
		return false;
	}
	if (!numeric_date(exp, &claims->exp))
	{
		fail(error, HG_JWT_WRONG_TYPE, 2, "exp");
		return false;
	}
	if (nbf != NULL && !numeric_date(nbf, &claims->nbf))
	{
		fail(error, HG_JWT_WRONG_TYPE, 2, "nbf");
		return false;
	}
	claims->has_nbf = nbf != NULL;
	if (iss != NULL && iss->kind != MEMBER_STRING)
	{
		fail(error, HG_JWT_WRONG_TYPE, 2, "iss");
		return false;
	}
	if (aud != NULL && aud->kind != MEMBER_STRING && aud->kind != MEMBER_STRING_ARRAY)
	{
		fail(error, HG_JWT_WRONG_TYPE, 2, "aud");
		return false;
	}
	if (purpose != NULL && purpose->kind != MEMBER_STRING)
	{
		fail(error, HG_JWT_WRONG_TYPE, 2, "purpose");
		return false;
	}
	if (purpose != NULL && has_control_character(purpose->value))
	{
		fail(error, HG_JWT_CONTROL_CHARACTER, 2, "purpose");
		return false;
	}
	if (!take_string_array(object, "roles", &claims->roles, &claims->nroles, true, error) ||
		!take_string_array(object, "amr", &claims->amr, &claims->namr, false, error))
		return false;

	claims->sub = take_string(sub);
	if (iss != NULL)
		claims->iss = take_string(iss);
	if (purpose != NULL)
		claims->purpose = take_string(purpose);
	if (aud != NULL && aud->kind == MEMBER_STRING)
	{
		claims->aud = palloc(sizeof(char *));
		claims->aud[0] = take_string(aud);
		claims->naud = 1;
	}
	else if (aud != NULL)
		claims->aud = take_items(aud, &claims->naud);
	return true;
}

/* Decode the payload and take the claims out of it.  Call after the signature matched. */
bool
hg_jwt_decode_claims(const HgJwtParts *parts, bool ascii_only,
					 HgJwtClaims *claims, HgJwtError *error)
{
	JsonObject	object;
	bool		ok;

	memset(claims, 0, sizeof(*claims));
	memset(error, 0, sizeof(*error));
	if (!parse_part(parts, 2, ascii_only, &object, error))
		return false;
	ok = take_claims(&object, claims, error);
	free_object(&object);
	if (!ok)
		hg_jwt_free_claims(claims);
	return ok;
}

/*
 * Check the time window and the issuer and audience.  now is in seconds
 * since 1970-01-01 UTC; leeway (seconds) widens the window on both sides
 * for clocks that differ.  issuer and audience are the configured values.
 */
bool
hg_jwt_check_claims(const HgJwtClaims *claims, double now, int leeway,
					const char *issuer, const char *audience, HgJwtError *error)
{
	bool		audience_found = false;

	memset(error, 0, sizeof(*error));
	if (now >= claims->exp + leeway)
	{
		fail(error, HG_JWT_EXPIRED, 2, "exp");
		return false;
	}
	if (claims->has_nbf && now + leeway < claims->nbf)
	{
		fail(error, HG_JWT_NOT_YET_VALID, 2, "nbf");
		return false;
	}
	if (claims->iss == NULL)
	{
		fail(error, HG_JWT_CLAIM_MISSING, 2, "iss");
		return false;
	}
	if (strcmp(claims->iss, issuer) != 0)
	{
		fail(error, HG_JWT_ISSUER_MISMATCH, 2, "iss");
		return false;
	}
	if (claims->aud == NULL)
	{
		fail(error, HG_JWT_CLAIM_MISSING, 2, "aud");
		return false;
	}
	for (int i = 0; i < claims->naud; i++)
		audience_found |= strcmp(claims->aud[i], audience) == 0;
	if (!audience_found)
	{
		fail(error, HG_JWT_AUDIENCE_MISMATCH, 2, "aud");
		return false;
	}
	return true;
}

/*
 * Whether an "amr" claim (RFC 8176) shows a second authentication factor:
 * it contains "mfa", or methods of at least two of the three factor kinds
 * (something known, something held, something the user is).  Methods that
 * name no factor of their own (mca, geo, rba, user, wia) and unregistered
 * values count for nothing.
 */
bool
hg_jwt_amr_shows_mfa(char *const *amr, int namr)
{
	static const struct
	{
		const char *method;
		unsigned int factor;
	}			methods[] =
	{
		{"pwd", 1}, {"pin", 1}, {"kba", 1},
		{"otp", 2}, {"hwk", 2}, {"swk", 2}, {"sms", 2}, {"tel", 2}, {"sc", 2}, {"pop", 2},
		{"fpt", 4}, {"face", 4}, {"iris", 4}, {"retina", 4}, {"vbm", 4}
	};
	unsigned int factors = 0;

	for (int i = 0; i < namr; i++)
	{
		if (strcmp(amr[i], "mfa") == 0)
			return true;
		for (size_t m = 0; m < lengthof(methods); m++)
		{
			if (strcmp(amr[i], methods[m].method) == 0)
				factors |= methods[m].factor;
		}
	}
	return factors != 0 && (factors & (factors - 1)) != 0;
}

static void
free_strings(char **items, int nitems)
{
	for (int i = 0; i < nitems; i++)
		pfree(items[i]);
	if (items != NULL)
		pfree(items);
}

void
hg_jwt_free_header(HgJwtHeader *header)
{
	if (header->kid != NULL)
		pfree(header->kid);
	header->kid = NULL;
}

void
hg_jwt_free_claims(HgJwtClaims *claims)
{
	if (claims->sub != NULL)
		pfree(claims->sub);
	if (claims->iss != NULL)
		pfree(claims->iss);
	if (claims->purpose != NULL)
		pfree(claims->purpose);
	free_strings(claims->aud, claims->naud);
	free_strings(claims->roles, claims->nroles);
	free_strings(claims->amr, claims->namr);
	memset(claims, 0, sizeof(*claims));
}

/* ----------------------------------------------------------------
 *		Messages
 * ---------------------------------------------------------------- */

/* A short reason for the server log line, palloc'd.  It never quotes the token. */
char *
hg_jwt_reason(const HgJwtError *error)
{
	switch (error->status)
	{
		case HG_JWT_OK:
			break;
		case HG_JWT_TOO_LONG:
			return pstrdup("token too long");
		case HG_JWT_NOT_THREE_PARTS:
			return pstrdup("not three parts");
		case HG_JWT_BAD_BASE64:
		case HG_JWT_BAD_UTF8:
		case HG_JWT_NON_ASCII:
		case HG_JWT_BAD_JSON:
		case HG_JWT_TOO_DEEP:
		case HG_JWT_NOT_OBJECT:
		case HG_JWT_DUPLICATE_MEMBER:
		case HG_JWT_WRONG_TYPE:
		case HG_JWT_CONTROL_CHARACTER:
		case HG_JWT_BAD_SIGNATURE_LENGTH:
			return psprintf("malformed part %d", error->part);
		case HG_JWT_ALG_MISSING:
		case HG_JWT_ALG_NOT_ACCEPTED:
			return pstrdup("algorithm not accepted");
		case HG_JWT_TYP_NOT_ACCEPTED:
			return pstrdup("type not accepted");
		case HG_JWT_CRIT_NOT_SUPPORTED:
			return pstrdup("critical header parameter not supported");
		case HG_JWT_CLAIM_MISSING:
			return psprintf("claim \"%s\" missing", error->member);
		case HG_JWT_EXPIRED:
			return pstrdup("expired");
		case HG_JWT_NOT_YET_VALID:
			return pstrdup("not yet valid");
		case HG_JWT_ISSUER_MISMATCH:
			return pstrdup("issuer mismatch");
		case HG_JWT_AUDIENCE_MISMATCH:
			return pstrdup("audience mismatch");
	}
	return pstrdup("rejected");
}

/* The errdetail sentence, palloc'd.  It never quotes the token. */
char *
hg_jwt_detail(const HgJwtError *error)
{
	switch (error->status)
	{
		case HG_JWT_OK:
			break;
		case HG_JWT_TOO_LONG:
			return psprintf("The token is longer than %d bytes.", HG_JWT_MAX_LEN);
		case HG_JWT_NOT_THREE_PARTS:
			return pstrdup("A token must have three parts separated by periods.");
		case HG_JWT_BAD_BASE64:
			return psprintf("Part %d of the token is not base64url without padding.", error->part);
		case HG_JWT_BAD_UTF8:
			return psprintf("Part %d of the token is not valid UTF-8.", error->part);
		case HG_JWT_NON_ASCII:
			return psprintf("Part %d of the token contains non-ASCII characters, which only databases with the UTF8 encoding accept.",
							error->part);
		case HG_JWT_BAD_JSON:
			return psprintf("Part %d of the token is not valid JSON.", error->part);
		case HG_JWT_TOO_DEEP:
			return psprintf("Part %d of the token nests JSON deeper than %d levels.",
							error->part, HG_JWT_MAX_DEPTH);
		case HG_JWT_NOT_OBJECT:
			return psprintf("Part %d of the token is not a JSON object.", error->part);
		case HG_JWT_DUPLICATE_MEMBER:
			return psprintf("Part %d of the token contains a member name twice.", error->part);
		case HG_JWT_WRONG_TYPE:
			if (strcmp(error->member, "sub") == 0)
				return pstrdup("Claim \"sub\" must be a non-empty string.");
			if (strcmp(error->member, "exp") == 0 || strcmp(error->member, "nbf") == 0)
				return psprintf("Claim \"%s\" must be a number of seconds since 1970-01-01 UTC.",
								error->member);
			if (strcmp(error->member, "aud") == 0)
				return pstrdup("Claim \"aud\" must be a string or an array of strings.");
			if (strcmp(error->member, "roles") == 0 || strcmp(error->member, "amr") == 0)
				return psprintf("Claim \"%s\" must be an array of strings.", error->member);
			if (error->part == 1)
				return psprintf("Header parameter \"%s\" must be a string.", error->member);
			return psprintf("Claim \"%s\" must be a string.", error->member);
		case HG_JWT_CONTROL_CHARACTER:
			return psprintf("Claim \"%s\" contains control characters.", error->member);
		case HG_JWT_BAD_SIGNATURE_LENGTH:
			return pstrdup("Part 3 of the token is not a 32-byte HS256 signature.");
		case HG_JWT_ALG_MISSING:
			return pstrdup("The token's header has no \"alg\"; only HS256 is accepted.");
		case HG_JWT_ALG_NOT_ACCEPTED:
			return pstrdup("The token's algorithm is not accepted; only HS256 is.");
		case HG_JWT_TYP_NOT_ACCEPTED:
			return pstrdup("The token's header has a \"typ\" other than JWT.");
		case HG_JWT_CRIT_NOT_SUPPORTED:
			return pstrdup("The token's header has \"crit\", and no critical extension is supported.");
		case HG_JWT_CLAIM_MISSING:
			return psprintf("The token has no \"%s\" claim.", error->member);
		case HG_JWT_EXPIRED:
			return pstrdup("The token has expired.");
		case HG_JWT_NOT_YET_VALID:
			return pstrdup("The token is not valid yet (\"nbf\").");
		case HG_JWT_ISSUER_MISMATCH:
			return pstrdup("The token's issuer (\"iss\") does not match hipaa_guard.token_issuer.");
		case HG_JWT_AUDIENCE_MISMATCH:
			return pstrdup("The token's audience (\"aud\") does not include hipaa_guard.token_audience.");
	}
	return pstrdup("The token was rejected.");
}
