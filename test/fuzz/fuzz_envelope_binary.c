/*
 * fuzz_envelope_binary.c
 *		libFuzzer target for hg_envelope_parse(), the parser that binary
 *		receive of the encrypted types runs on the bytes a client sends.
 *
 * Besides crashes and sanitizer reports, it checks properties of the result:
 *	- An accepted envelope's pointers lie inside the input and end exactly at
 *	  its end (cipher + cipher_len + 16 == end).
 *	- hg_envelope_write_header() of the parsed fields rebuilds the header and
 *	  row key byte for byte.
 *	- An accepted envelope one byte shorter or longer is rejected.
 *	- The text form of any input decodes to the same bytes and the same
 *	  parse status.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "fuzz_check.h"

static void
check_accepted(const uint8_t *data, size_t size, const HgEnvelope *env)
{
	const uint8_t *end = data + size;
	uint8_t    *header;
	uint8_t    *longer;
	HgEnvelope	other;

	FUZZ_CHECK(env->type_code >= HG_TYPE_TEXT && env->type_code <= HG_TYPE_JSONB);
	FUZZ_CHECK((env->flags & ~HG_FLAG_BOUND) == 0);
	FUZZ_CHECK(env->row_key_len <= HG_MAX_ROW_KEY_LEN);
	FUZZ_CHECK(((env->flags & HG_FLAG_BOUND) != 0) == (env->row_key_len > 0));
	FUZZ_CHECK((env->row_key != NULL) == (env->row_key_len > 0));
	FUZZ_CHECK(env->aad == data);
	FUZZ_CHECK(env->aad_len == HG_HEADER_LEN + (size_t) env->row_key_len);
	FUZZ_CHECK(env->nonce == data + 12);
	if (env->row_key != NULL)
		FUZZ_CHECK(env->row_key == data + HG_HEADER_LEN);
	FUZZ_CHECK(env->cipher == data + env->aad_len);
	FUZZ_CHECK(env->cipher_len <= size);
	FUZZ_CHECK(env->tag == env->cipher + env->cipher_len);
	FUZZ_CHECK(env->cipher + env->cipher_len + HG_TAG_LEN == end);
	FUZZ_CHECK(hg_envelope_size(env->row_key_len, env->cipher_len) == size);

	header = malloc(env->aad_len);
	hg_envelope_write_header(header, (HgTypeCode) env->type_code,
							 env->key_id, env->key_version, env->nonce,
							 env->row_key, env->row_key_len, env->cipher_len);
	FUZZ_CHECK(memcmp(header, data, env->aad_len) == 0);
	free(header);

	/* The lengths in the header fix the total length exactly. */
	FUZZ_CHECK(hg_envelope_parse(data, size - 1, &other) != HG_PARSE_OK);
	longer = malloc(size + 1);
	memcpy(longer, data, size);
	longer[size] = 0;
	FUZZ_CHECK(hg_envelope_parse(longer, size + 1, &other) != HG_PARSE_OK);
	free(longer);
}

/* Encode the input as text, decode it again and compare with the input. */
static void
check_text_round_trip(const uint8_t *data, size_t size, HgParseStatus status)
{
	size_t		buffer_len = hg_text_encoded_len(size);
	char	   *text = malloc(buffer_len + 1);
	size_t		text_len;
	uint8_t    *bin = NULL;
	size_t		bin_len = 0;
	HgParseStatus text_status;

	/* hg_text_encoded_len() is an upper bound, as pg_b64_enc_len() is. */
	text_len = hg_text_encode(data, size, text);
	FUZZ_CHECK(text_len <= buffer_len);
	FUZZ_CHECK(text_len == HG_TEXT_PREFIX_LEN + (size + 2) / 3 * 4);
	FUZZ_CHECK(strlen(text) == text_len);

	text_status = hg_text_decode(text, text_len, &bin, &bin_len, malloc);
	if (size == 0)
		FUZZ_CHECK(text_status == HG_PARSE_BAD_ENCODING);
	else
	{
		FUZZ_CHECK(text_status == status);
		FUZZ_CHECK(bin != NULL);
		FUZZ_CHECK(bin_len == size);
		FUZZ_CHECK(memcmp(bin, data, size) == 0);
	}
	free(bin);
	free(text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	HgEnvelope	env;
	HgParseStatus status;

	status = hg_envelope_parse(data, size, &env);
	FUZZ_CHECK(status >= HG_PARSE_OK && status <= HG_PARSE_BAD_LENGTH);
	FUZZ_CHECK(hg_parse_status_detail(status) != NULL);
	if (status == HG_PARSE_OK)
		check_accepted(data, size, &env);
	check_text_round_trip(data, size, status);
	return 0;
}
