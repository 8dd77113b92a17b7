/*
 * envelope.c
 *		Build, parse and validate the stored envelope and its text form.
 *
 * Parsing checks every length against the buffer before reading, so that
 * text input and binary receive can reject a malformed value at once rather
 * than store something that only fails at decrypt time.  No catalog access
 * and no ereport here: callers turn an HgParseStatus into an error.
 */
#include "c.h"

#include <limits.h>

#include "common/base64.h"

#include "envelope.h"

static void
put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t) (v >> 24);
	p[1] = (uint8_t) (v >> 16);
	p[2] = (uint8_t) (v >> 8);
	p[3] = (uint8_t) v;
}

static uint32_t
get_u32(const uint8_t *p)
{
	return ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16) |
		((uint32_t) p[2] << 8) | (uint32_t) p[3];
}

size_t
hg_envelope_size(size_t row_key_len, size_t plain_len)
{
	return HG_HEADER_LEN + row_key_len + plain_len + HG_TAG_LEN;
}

/*
 * Write the header and row key; the caller encrypts into the bytes that
 * follow and appends the tag.
 */
void
hg_envelope_write_header(uint8_t *out, HgTypeCode type_code,
						 uint32_t key_id, uint32_t key_version,
						 const uint8_t *nonce,
						 const uint8_t *row_key, size_t row_key_len,
						 uint32_t plain_len)
{
	out[0] = HG_ENVELOPE_VERSION;
	out[1] = (uint8_t) type_code;
	out[2] = row_key != NULL ? HG_FLAG_BOUND : 0;
	out[3] = 0;
	put_u32(out + 4, key_id);
	put_u32(out + 8, key_version);
	memcpy(out + 12, nonce, HG_NONCE_LEN);
	put_u32(out + 24, plain_len);
	out[28] = (uint8_t) (row_key_len >> 8);
	out[29] = (uint8_t) row_key_len;
	if (row_key_len > 0)
		memcpy(out + HG_HEADER_LEN, row_key, row_key_len);
}

HgParseStatus
hg_envelope_parse(const uint8_t *buf, size_t len, HgEnvelope *env)
{
	size_t		row_key_len;
	size_t		cipher_len;

	if (len < HG_HEADER_LEN + HG_TAG_LEN)
		return HG_PARSE_TOO_SHORT;
	if (buf[0] != HG_ENVELOPE_VERSION)
		return HG_PARSE_BAD_VERSION;
	if (buf[1] < HG_TYPE_TEXT || buf[1] > HG_TYPE_JSONB)
		return HG_PARSE_BAD_TYPE;
	if ((buf[2] & ~HG_FLAG_BOUND) != 0 || buf[3] != 0)
		return HG_PARSE_BAD_FLAGS;

	cipher_len = get_u32(buf + 24);
	row_key_len = ((size_t) buf[28] << 8) | buf[29];
	if (((buf[2] & HG_FLAG_BOUND) != 0) != (row_key_len > 0) ||
		row_key_len > HG_MAX_ROW_KEY_LEN)
		return HG_PARSE_BAD_FLAGS;
	/* Compare without adding, so that a huge cipher_len cannot wrap. */
	if (len - HG_HEADER_LEN - HG_TAG_LEN < row_key_len ||
		len - HG_HEADER_LEN - HG_TAG_LEN - row_key_len != cipher_len)
		return HG_PARSE_BAD_LENGTH;

	env->type_code = buf[1];
	env->flags = buf[2];
	env->key_id = get_u32(buf + 4);
	env->key_version = get_u32(buf + 8);
	env->nonce = buf + 12;
	env->row_key_len = (uint16_t) row_key_len;
	env->row_key = row_key_len > 0 ? buf + HG_HEADER_LEN : NULL;
	env->aad = buf;
	env->aad_len = HG_HEADER_LEN + row_key_len;
	env->cipher = buf + env->aad_len;
	env->cipher_len = (uint32_t) cipher_len;
	env->tag = env->cipher + cipher_len;
	return HG_PARSE_OK;
}

const char *
hg_parse_status_detail(HgParseStatus status)
{
	switch (status)
	{
		case HG_PARSE_OK:
			return "The value is well formed.";
		case HG_PARSE_TOO_SHORT:
			return "The value is shorter than an envelope header and tag.";
		case HG_PARSE_BAD_VERSION:
			return "The envelope format version is not one this version of hipaa_guard reads.";
		case HG_PARSE_BAD_TYPE:
			return "The envelope names an unknown base type.";
		case HG_PARSE_BAD_FLAGS:
			return "The envelope flags or row key length are invalid.";
		case HG_PARSE_BAD_LENGTH:
			return "The envelope length does not match the lengths in its header.";
		case HG_PARSE_BAD_PREFIX:
			return "Encrypted values in text form start with \"hg1:\".";
		case HG_PARSE_BAD_ENCODING:
			return "The text after \"hg1:\" is not valid base64.";
	}
	return "The value is not an envelope.";
}

size_t
hg_text_encoded_len(size_t bin_len)
{
	return HG_TEXT_PREFIX_LEN + pg_b64_enc_len((int) bin_len);
}

/*
 * Write the text form of bin into out, which must hold
 * hg_text_encoded_len(bin_len) bytes plus a terminating zero.
 */
size_t
hg_text_encode(const uint8_t *bin, size_t bin_len, char *out)
{
	int			n;

	memcpy(out, HG_TEXT_PREFIX, HG_TEXT_PREFIX_LEN);
	n = pg_b64_encode((const char *) bin, (int) bin_len,
					  out + HG_TEXT_PREFIX_LEN, pg_b64_enc_len((int) bin_len));
	if (n < 0)
		n = 0;
	out[HG_TEXT_PREFIX_LEN + n] = '\0';
	return HG_TEXT_PREFIX_LEN + n;
}

/*
 * Decode the text form into a buffer from alloc, then parse it.  Only the
 * exact form hg_text_encode writes is accepted: no whitespace, no missing
 * padding, no trailing bytes.
 */
HgParseStatus
hg_text_decode(const char *text, size_t text_len, uint8_t **bin,
			   size_t *bin_len, void *(*alloc) (size_t))
{
	size_t		b64_len;
	int			max_len;
	int			n;
	size_t		expected;
	size_t		tail;
	char		last_group[4];
	HgEnvelope	env;

	if (text_len < HG_TEXT_PREFIX_LEN ||
		memcmp(text, HG_TEXT_PREFIX, HG_TEXT_PREFIX_LEN) != 0)
		return HG_PARSE_BAD_PREFIX;
	b64_len = text_len - HG_TEXT_PREFIX_LEN;
	if (b64_len == 0 || b64_len % 4 != 0 || b64_len > INT_MAX)
		return HG_PARSE_BAD_ENCODING;
	/* pg_b64_decode accepts "=" anywhere, so allow it only as padding. */
	if (memchr(text + HG_TEXT_PREFIX_LEN, '=', b64_len - 2) != NULL)
		return HG_PARSE_BAD_ENCODING;
	/* pg_b64_dec_len() overflows int past about 716 MB of text. */
	max_len = b64_len / 4 * 3;
	*bin = alloc(max_len + 1);
	n = pg_b64_decode(text + HG_TEXT_PREFIX_LEN, (int) b64_len,
					  (char *) *bin, max_len);
	/* A canonical string decodes to 3 bytes per group, less one per "=". */
	expected = b64_len / 4 * 3;
	if (text[text_len - 1] == '=')
		expected--;
	if (text[text_len - 2] == '=')
		expected--;
	if (n < 0 || (size_t) n != expected)
		return HG_PARSE_BAD_ENCODING;

	/*
	 * pg_b64_decode ignores the bits after the last byte, so "AAB=" decodes
	 * like "AAA=".  Re-encode a padded last group to require them zero.
	 */
	tail = expected % 3;
	if (tail != 0 &&
		(pg_b64_encode((const char *) *bin + expected - tail, (int) tail,
					   last_group, sizeof(last_group)) != (int) sizeof(last_group) ||
		 memcmp(last_group, text + text_len - sizeof(last_group),
				sizeof(last_group)) != 0))
		return HG_PARSE_BAD_ENCODING;
	*bin_len = (size_t) n;
	return hg_envelope_parse(*bin, *bin_len, &env);
}
