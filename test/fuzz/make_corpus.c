/*
 * make_corpus.c
 *		Write the seed corpus of the fuzz targets: valid and malformed
 *		envelopes in binary and text form, valid and malformed master keys,
 *		and valid and malformed actor tokens.
 *
 * Usage: make_corpus DIR, which writes DIR/envelope_binary, DIR/envelope_text,
 * DIR/key_text and DIR/jwt, one file per seed.  The output is the same on
 * every run.
 *
 * The envelopes are built here from the layout documented in envelope.h, with
 * a base64 encoder of our own, rather than with hg_envelope_write_header() and
 * hg_text_encode().  Each seed comes with the status that the documented
 * layout requires, and the program exits 1 when the parser returns another
 * one, so a run also checks the parser against the layout.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "envelope.h"
#include "jwt.h"
#include "keytext.h"

#define MAX_SEED_LEN	4096

static const char *output_dir;
static int	mismatch_count;

static void
make_dir(const char *name)
{
	char		path[1024];

	snprintf(path, sizeof(path), "%s/%s", output_dir, name);
	if (mkdir(path, 0755) != 0 && errno != EEXIST)
	{
		fprintf(stderr, "error: could not create directory \"%s\": %s\n",
				path, strerror(errno));
		exit(1);
	}
}

static void
write_seed(const char *target, const char *name, const void *bytes, size_t len)
{
	char		path[1024];
	FILE	   *file;

	snprintf(path, sizeof(path), "%s/%s/%s", output_dir, target, name);
	file = fopen(path, "wb");
	if (file == NULL || fwrite(bytes, 1, len, file) != len || fclose(file) != 0)
	{
		fprintf(stderr, "error: could not write \"%s\": %s\n", path, strerror(errno));
		exit(1);
	}
}

static void
report_mismatch(const char *target, const char *name, int expected, int actual)
{
	fprintf(stderr, "error: seed %s/%s: expected status %d, the parser returned %d\n",
			target, name, expected, actual);
	mismatch_count++;
}

/* Standard base64 with padding (RFC 4648, section 4). */
static size_t
encode_base64(const uint8_t *in, size_t len, char *out)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t		n = 0;

	for (size_t i = 0; i < len; i += 3)
	{
		uint32_t	group = (uint32_t) in[i] << 16;

		if (i + 1 < len)
			group |= (uint32_t) in[i + 1] << 8;
		if (i + 2 < len)
			group |= in[i + 2];
		out[n++] = alphabet[(group >> 18) & 63];
		out[n++] = alphabet[(group >> 12) & 63];
		out[n++] = i + 1 < len ? alphabet[(group >> 6) & 63] : '=';
		out[n++] = i + 2 < len ? alphabet[group & 63] : '=';
	}
	out[n] = '\0';
	return n;
}

static void
put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t) (v >> 24);
	p[1] = (uint8_t) (v >> 16);
	p[2] = (uint8_t) (v >> 8);
	p[3] = (uint8_t) v;
}

/*
 * Lay out an envelope by hand.  The ciphertext and tag are a byte pattern,
 * because parsing never authenticates.  Returns the length written.
 */
static size_t
build_envelope(uint8_t *out, uint8_t type_code, uint32_t key_id,
			   uint32_t key_version, const char *row_key, size_t row_key_len,
			   uint32_t cipher_len)
{
	size_t		len;

	out[0] = HG_ENVELOPE_VERSION;
	out[1] = type_code;
	out[2] = row_key_len > 0 ? HG_FLAG_BOUND : 0;
	out[3] = 0;
	put_u32(out + 4, key_id);
	put_u32(out + 8, key_version);
	for (int i = 0; i < 12; i++)
		out[12 + i] = (uint8_t) (0xa0 + i);
	put_u32(out + 24, cipher_len);
	out[28] = (uint8_t) (row_key_len >> 8);
	out[29] = (uint8_t) row_key_len;
	memcpy(out + 30, row_key, row_key_len);
	len = 30 + row_key_len;
	for (uint32_t i = 0; i < cipher_len + 16; i++)
		out[len++] = (uint8_t) (i * 7 + 3);
	return len;
}

/* Write an envelope seed in both forms and check both parse as expected. */
static void
add_envelope(const char *name, const uint8_t *bin, size_t len,
			 HgParseStatus expected)
{
	char		text[MAX_SEED_LEN * 2];
	size_t		text_len;
	HgEnvelope	env;
	HgParseStatus status;
	uint8_t    *decoded = NULL;
	size_t		decoded_len;

	write_seed("envelope_binary", name, bin, len);
	status = hg_envelope_parse(bin, len, &env);
	if (status != expected)
		report_mismatch("envelope_binary", name, expected, status);

	memcpy(text, HG_TEXT_PREFIX, HG_TEXT_PREFIX_LEN);
	text_len = HG_TEXT_PREFIX_LEN + encode_base64(bin, len, text + HG_TEXT_PREFIX_LEN);
	write_seed("envelope_text", name, text, text_len);
	status = hg_text_decode(text, text_len, &decoded, &decoded_len, malloc);
	if (status != expected)
		report_mismatch("envelope_text", name, expected, status);
	free(decoded);
}

/* Write a text seed that only the text form can get wrong. */
static void
add_text(const char *name, const char *text, HgParseStatus expected)
{
	uint8_t    *decoded = NULL;
	size_t		decoded_len;
	HgParseStatus status;

	write_seed("envelope_text", name, text, strlen(text));
	status = hg_text_decode(text, strlen(text), &decoded, &decoded_len, malloc);
	if (status != expected)
		report_mismatch("envelope_text", name, expected, status);
	free(decoded);
}

static void
add_key(const char *name, const char *text, size_t len, HgKeyTextStatus expected)
{
	uint8_t		key[HG_KEY_TEXT_HEX_LEN / 2];
	HgKeyTextStatus status;

	write_seed("key_text", name, text, len);
	status = hg_key_text_parse(text, len, key);
	if (status != expected)
		report_mismatch("key_text", name, expected, status);
}

static void
add_envelopes(void)
{
	static char long_row_key[HG_MAX_ROW_KEY_LEN + 1];
	uint8_t		bin[MAX_SEED_LEN];
	char		text[MAX_SEED_LEN * 2];
	size_t		len;

	memset(long_row_key, 'k', sizeof(long_row_key));

	/* Accepted: each base type, with and without a row key. */
	len = build_envelope(bin, HG_TYPE_TEXT, 1, 1, "", 0, 11);
	add_envelope("ok-text", bin, len, HG_PARSE_OK);
	len = build_envelope(bin, HG_TYPE_TEXT, 1, 1, "", 0, 0);
	add_envelope("ok-text-empty", bin, len, HG_PARSE_OK);
	len = build_envelope(bin, HG_TYPE_BYTEA, 7, 3, "patient:1002", 12, 5);
	add_envelope("ok-bytea-bound", bin, len, HG_PARSE_OK);
	len = build_envelope(bin, HG_TYPE_DATE, 2, 1, "", 0, 4);
	add_envelope("ok-date", bin, len, HG_PARSE_OK);
	len = build_envelope(bin, HG_TYPE_JSONB, 0xffffffff, 0xffffffff, "r", 1, 200);
	add_envelope("ok-jsonb-bound", bin, len, HG_PARSE_OK);
	len = build_envelope(bin, HG_TYPE_TEXT, 1, 2, long_row_key, HG_MAX_ROW_KEY_LEN, 1);
	add_envelope("ok-max-row-key", bin, len, HG_PARSE_OK);

	/* Rejected: each header field wrong in turn. */
	len = build_envelope(bin, HG_TYPE_TEXT, 1, 1, "", 0, 0);
	add_envelope("bad-too-short", bin, len - 1, HG_PARSE_TOO_SHORT);
	/* The text form of no bytes is "hg1:", a seed of its own below. */
	write_seed("envelope_binary", "bad-empty", bin, 0);

	len = build_envelope(bin, HG_TYPE_TEXT, 1, 1, "", 0, 3);
	bin[0] = 2;
	add_envelope("bad-version", bin, len, HG_PARSE_BAD_VERSION);

	len = build_envelope(bin, 0, 1, 1, "", 0, 3);
	add_envelope("bad-type-zero", bin, len, HG_PARSE_BAD_TYPE);
	len = build_envelope(bin, HG_TYPE_JSONB + 1, 1, 1, "", 0, 3);
	add_envelope("bad-type-unknown", bin, len, HG_PARSE_BAD_TYPE);

	len = build_envelope(bin, HG_TYPE_TEXT, 1, 1, "", 0, 3);
	bin[3] = 1;
	add_envelope("bad-reserved-byte", bin, len, HG_PARSE_BAD_FLAGS);
	len = build_envelope(bin, HG_TYPE_TEXT, 1, 1, "", 0, 3);
	bin[2] = 0x02;
	add_envelope("bad-unknown-flag", bin, len, HG_PARSE_BAD_FLAGS);
	len = build_envelope(bin, HG_TYPE_TEXT, 1, 1, "", 0, 3);
	bin[2] = HG_FLAG_BOUND;
	add_envelope("bad-bound-without-row-key", bin, len, HG_PARSE_BAD_FLAGS);
	len = build_envelope(bin, HG_TYPE_TEXT, 1, 1, "ab", 2, 3);
	bin[2] = 0;
	add_envelope("bad-row-key-without-bound", bin, len, HG_PARSE_BAD_FLAGS);
	len = build_envelope(bin, HG_TYPE_TEXT, 1, 1, long_row_key, HG_MAX_ROW_KEY_LEN + 1, 1);
	add_envelope("bad-row-key-too-long", bin, len, HG_PARSE_BAD_FLAGS);

	len = build_envelope(bin, HG_TYPE_TEXT, 1, 1, "", 0, 11);
	put_u32(bin + 24, 12);
	add_envelope("bad-cipher-length-over", bin, len, HG_PARSE_BAD_LENGTH);
	put_u32(bin + 24, 10);
	add_envelope("bad-cipher-length-under", bin, len, HG_PARSE_BAD_LENGTH);
	put_u32(bin + 24, 0xffffffff);
	add_envelope("bad-cipher-length-max", bin, len, HG_PARSE_BAD_LENGTH);
	len = build_envelope(bin, HG_TYPE_TEXT, 1, 1, "", 0, 0);
	bin[28] = 0;
	bin[29] = 1;
	bin[2] = HG_FLAG_BOUND;
	add_envelope("bad-row-key-past-end", bin, len, HG_PARSE_BAD_LENGTH);

	/* Rejected text forms of the valid "ok-text" envelope. */
	len = build_envelope(bin, HG_TYPE_TEXT, 1, 1, "", 0, 11);
	memcpy(text, "hg2:", 4);
	encode_base64(bin, len, text + 4);
	add_text("bad-prefix-version", text, HG_PARSE_BAD_PREFIX);
	add_text("bad-prefix-case", "HG1:AQEAAA==", HG_PARSE_BAD_PREFIX);
	add_text("bad-prefix-short", "hg1", HG_PARSE_BAD_PREFIX);
	add_text("bad-prefix-only", "hg1:", HG_PARSE_BAD_ENCODING);
	add_text("bad-empty-text", "", HG_PARSE_BAD_PREFIX);
	add_text("bad-length-not-multiple-of-4", "hg1:AQEAAA=", HG_PARSE_BAD_ENCODING);
	add_text("bad-missing-padding", "hg1:AQEAAA", HG_PARSE_BAD_ENCODING);
	add_text("bad-line-break", "hg1:AQEA\nAA==", HG_PARSE_BAD_ENCODING);
	add_text("bad-space", "hg1:AQEA AA==", HG_PARSE_BAD_ENCODING);
	add_text("bad-symbol", "hg1:AQEA*A==", HG_PARSE_BAD_ENCODING);
	add_text("bad-url-alphabet", "hg1:AQE-_A==", HG_PARSE_BAD_ENCODING);
	add_text("bad-padding-in-group", "hg1:AA=A", HG_PARSE_BAD_ENCODING);
	add_text("bad-padding-inside", "hg1:AAA=AA==", HG_PARSE_BAD_ENCODING);
	add_text("bad-padding-bits", "hg1:AAB=", HG_PARSE_BAD_ENCODING);
	add_text("short-envelope", "hg1:AQEAAA==", HG_PARSE_TOO_SHORT);
}

/*
 * Run a token through the stages of set_actor() that jwt.c covers, and
 * return the first status other than HG_JWT_OK.
 */
static HgJwtStatus
token_status(const char *token, size_t len, bool ascii_only)
{
	HgJwtParts	parts;
	HgJwtHeader header;
	HgJwtClaims claims;
	HgJwtError	error;
	uint8_t		signature[HG_JWT_SIGNATURE_LEN];

	if (!hg_jwt_split(token, len, &parts, &error) ||
		!hg_jwt_decode_header(&parts, ascii_only, &header, &error))
		return error.status;
	hg_jwt_free_header(&header);
	if (!hg_jwt_decode_signature(&parts, signature, &error) ||
		!hg_jwt_decode_claims(&parts, ascii_only, &claims, &error))
		return error.status;
	hg_jwt_free_claims(&claims);
	return HG_JWT_OK;
}

/* Unpadded base64url (RFC 4648, section 5), from the standard encoder. */
static size_t
encode_base64url(const uint8_t *in, size_t len, char *out)
{
	size_t		n = encode_base64(in, len, out);

	while (n > 0 && out[n - 1] == '=')
		n--;
	for (size_t i = 0; i < n; i++)
	{
		if (out[i] == '+')
			out[i] = '-';
		else if (out[i] == '/')
			out[i] = '_';
	}
	out[n] = '\0';
	return n;
}

/*
 * Write a seed of fuzz_jwt's structured mode: the mode byte, the header,
 * a NUL byte and the claims.  The check builds the token as the target
 * does, with a signature part of 32 zero bytes.
 */
static void
add_token_json(const char *name, bool ascii_only, const char *header,
			   const char *claims, HgJwtStatus expected)
{
	char		seed[MAX_SEED_LEN];
	char		token[MAX_SEED_LEN * 2];
	uint8_t		zeros[HG_JWT_SIGNATURE_LEN] = {0};
	size_t		header_len = strlen(header);
	size_t		claims_len = strlen(claims);
	size_t		n;
	HgJwtStatus status;

	seed[0] = ascii_only ? 1 : 0;
	memcpy(seed + 1, header, header_len);
	seed[1 + header_len] = '\0';
	memcpy(seed + 2 + header_len, claims, claims_len);
	write_seed("jwt", name, seed, 2 + header_len + claims_len);

	n = encode_base64url((const uint8_t *) header, header_len, token);
	token[n++] = '.';
	n += encode_base64url((const uint8_t *) claims, claims_len, token + n);
	token[n++] = '.';
	n += encode_base64url(zeros, sizeof(zeros), token + n);
	status = token_status(token, n, ascii_only);
	if (status != expected)
		report_mismatch("jwt", name, expected, status);
}

/* Write a seed of fuzz_jwt's raw mode: the mode byte and a token as sent. */
static void
add_token_raw(const char *name, const char *token, HgJwtStatus expected)
{
	char		seed[MAX_SEED_LEN];
	HgJwtStatus status;

	seed[0] = 2;
	memcpy(seed + 1, token, strlen(token));
	write_seed("jwt", name, seed, 1 + strlen(token));
	status = token_status(token, strlen(token), false);
	if (status != expected)
		report_mismatch("jwt", name, expected, status);
}

static void
add_tokens(void)
{
	const char *header = "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"app\"}";
	const char *claims = "{\"sub\":\"alice\",\"exp\":1900000000,\"nbf\":1,"
		"\"iss\":\"https://issuer.example\",\"aud\":[\"api\",\"db\"],"
		"\"roles\":[\"clinician\"],\"purpose\":\"treatment\",\"amr\":[\"pwd\",\"otp\"]}";
	const char *minimal = "{\"sub\":\"a\",\"exp\":1}";
	char		deep[200];

	add_token_json("ok-full", false, header, claims, HG_JWT_OK);
	add_token_json("ok-minimal", false, "{\"alg\":\"HS256\"}", minimal, HG_JWT_OK);
	add_token_json("ok-escapes", false, "{\"alg\":\"HS\\u0032\\u00356\"}",
				   "{\"sub\":\"jos\\u00e9\",\"iss\":\"https:\\/\\/i\",\"exp\":1.5e9}", HG_JWT_OK);
	add_token_json("ok-non-ascii-utf8", false, header, "{\"sub\":\"jos\xc3\xa9\",\"exp\":1}", HG_JWT_OK);
	add_token_json("bad-non-ascii-escape", true, header, "{\"sub\":\"jos\\u00e9\",\"exp\":1}",
				   HG_JWT_NON_ASCII);
	add_token_json("bad-non-ascii-byte", true, header, "{\"sub\":\"jos\xc3\xa9\",\"exp\":1}",
				   HG_JWT_NON_ASCII);
	add_token_json("bad-alg-none", false, "{\"alg\":\"none\"}", minimal, HG_JWT_ALG_NOT_ACCEPTED);
	add_token_json("bad-alg-missing", false, "{\"typ\":\"JWT\"}", minimal, HG_JWT_ALG_MISSING);
	add_token_json("bad-typ", false, "{\"alg\":\"HS256\",\"typ\":\"at+jwt\"}", minimal,
				   HG_JWT_TYP_NOT_ACCEPTED);
	add_token_json("bad-crit", false, "{\"alg\":\"HS256\",\"crit\":[\"b64\"]}", minimal,
				   HG_JWT_CRIT_NOT_SUPPORTED);
	add_token_json("bad-kid-number", false, "{\"alg\":\"HS256\",\"kid\":7}", minimal,
				   HG_JWT_WRONG_TYPE);
	add_token_json("bad-duplicate", false, "{\"alg\":\"HS256\",\"alg\":\"HS256\"}", minimal,
				   HG_JWT_DUPLICATE_MEMBER);
	add_token_json("bad-header-array", false, "[\"HS256\"]", minimal, HG_JWT_NOT_OBJECT);
	add_token_json("bad-claims-json", false, header, "{\"sub\":", HG_JWT_BAD_JSON);
	add_token_json("bad-claims-zero-escape", false, header, "{\"sub\":\"a\\u0000\",\"exp\":1}",
				   HG_JWT_BAD_JSON);
	add_token_json("bad-claims-utf8", false, header, "{\"sub\":\"\xff\",\"exp\":1}", HG_JWT_BAD_UTF8);
	snprintf(deep, sizeof(deep), "{\"sub\":\"a\",\"exp\":1,\"x\":%.17s%.17s}",
			 "[[[[[[[[[[[[[[[[[[[[", "]]]]]]]]]]]]]]]]]]]]");
	add_token_json("bad-too-deep", false, header, deep, HG_JWT_TOO_DEEP);
	add_token_json("bad-sub-missing", false, header, "{\"exp\":1}", HG_JWT_CLAIM_MISSING);
	add_token_json("bad-sub-control", false, header, "{\"sub\":\"a\\nb\",\"exp\":1}",
				   HG_JWT_CONTROL_CHARACTER);
	add_token_json("bad-exp-string", false, header, "{\"sub\":\"a\",\"exp\":\"1\"}", HG_JWT_WRONG_TYPE);
	add_token_json("bad-exp-infinite", false, header, "{\"sub\":\"a\",\"exp\":1e999}", HG_JWT_WRONG_TYPE);
	add_token_json("bad-roles-mixed", false, header, "{\"sub\":\"a\",\"exp\":1,\"roles\":[\"r\",1]}",
				   HG_JWT_WRONG_TYPE);

	add_token_raw("raw-ok", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIiwiZXhwIjoxfQ."
				  "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", HG_JWT_OK);
	add_token_raw("raw-bad-padding", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIiwiZXhwIjoxfQ==."
				  "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", HG_JWT_BAD_BASE64);
	add_token_raw("raw-bad-trailing-bits", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIiwiZXhwIjoxfQ."
				  "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB", HG_JWT_BAD_BASE64);
	add_token_raw("raw-bad-short-signature", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIiwiZXhwIjoxfQ.AAAA",
				  HG_JWT_BAD_SIGNATURE_LENGTH);
	add_token_raw("raw-bad-two-parts", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIiwiZXhwIjoxfQ",
				  HG_JWT_NOT_THREE_PARTS);
	add_token_raw("raw-bad-alg-none", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIiwiZXhwIjoxfQ.",
				  HG_JWT_ALG_NOT_ACCEPTED);
}

static void
add_keys(void)
{
	const char *digits = "00112233445566778899aabbccddeeff0123456789abcdefABCDEF9876543210";
	char		key[200];

	add_key("ok-lower", digits, 64, HG_KEY_TEXT_OK);
	add_key("ok-upper", "00112233445566778899AABBCCDDEEFF0123456789ABCDEFABCDEF9876543210",
			64, HG_KEY_TEXT_OK);
	snprintf(key, sizeof(key), "%s\n", digits);
	add_key("ok-line-feed", key, 65, HG_KEY_TEXT_OK);
	snprintf(key, sizeof(key), "%s\r\n", digits);
	add_key("ok-crlf", key, 66, HG_KEY_TEXT_OK);
	snprintf(key, sizeof(key), "%s \t \n\n", digits);
	add_key("ok-trailing-blanks", key, 69, HG_KEY_TEXT_OK);

	add_key("bad-empty", "", 0, HG_KEY_TEXT_BAD_LENGTH);
	add_key("bad-only-newline", "\n", 1, HG_KEY_TEXT_BAD_LENGTH);
	add_key("bad-63-digits", digits, 63, HG_KEY_TEXT_BAD_LENGTH);
	snprintf(key, sizeof(key), "%s0", digits);
	add_key("bad-65-digits", key, 65, HG_KEY_TEXT_BAD_LENGTH);
	snprintf(key, sizeof(key), "0x%s", digits);
	add_key("bad-0x-prefix", key, 66, HG_KEY_TEXT_BAD_LENGTH);
	snprintf(key, sizeof(key), " %s", digits);
	add_key("bad-leading-space", key, 65, HG_KEY_TEXT_BAD_LENGTH);
	snprintf(key, sizeof(key), "%.32s\n%.32s", digits, digits + 32);
	add_key("bad-inner-line-feed", key, 65, HG_KEY_TEXT_BAD_LENGTH);
	snprintf(key, sizeof(key), "%.63sg", digits);
	add_key("bad-letter-g", key, 64, HG_KEY_TEXT_BAD_CHARACTER);
	memcpy(key, digits, 64);
	key[10] = '\0';
	add_key("bad-nul-inside", key, 64, HG_KEY_TEXT_BAD_CHARACTER);
	memcpy(key, digits, 64);
	key[30] = ' ';
	add_key("bad-inner-space", key, 64, HG_KEY_TEXT_BAD_CHARACTER);
	memcpy(key, digits, 64);
	key[0] = (char) 0xc3;
	add_key("bad-non-ascii", key, 64, HG_KEY_TEXT_BAD_CHARACTER);
}

int
main(int argc, char **argv)
{
	if (argc != 2)
	{
		fprintf(stderr, "usage: make_corpus DIR\n");
		return 2;
	}
	output_dir = argv[1];
	make_dir("envelope_binary");
	make_dir("envelope_text");
	make_dir("key_text");
	make_dir("jwt");

	add_envelopes();
	add_keys();
	add_tokens();

	if (mismatch_count > 0)
	{
		fprintf(stderr, "error: %d seeds did not parse as the layouts in envelope.h and jwt.h require\n",
				mismatch_count);
		return 1;
	}
	return 0;
}
