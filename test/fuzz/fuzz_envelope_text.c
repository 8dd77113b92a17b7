/*
 * fuzz_envelope_text.c
 *		libFuzzer target for hg_text_decode(), the parser that the text input
 *		function of the encrypted types runs on "hg1:<base64>" strings.
 *
 * Besides crashes and sanitizer reports, it checks properties of the result:
 *	- BAD_PREFIX and BAD_ENCODING are the only statuses returned before the
 *	  base64 is decoded.  Any other status equals hg_envelope_parse() of the
 *	  decoded bytes, which fit in the buffer that the allocator returned.
 *	- Decoded text is canonical: hg_text_encode() of the decoded bytes gives
 *	  back the input exactly, as the contract of hg_text_decode() promises.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "fuzz_check.h"

/* The size of the last buffer that hg_text_decode() requested. */
static size_t last_alloc_size;

static void *
recording_malloc(size_t size)
{
	last_alloc_size = size;
	return malloc(size);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *text;
	uint8_t    *bin = NULL;
	size_t		bin_len = 0;
	HgParseStatus status;
	HgEnvelope	env;
	char	   *encoded;

	/*
	 * Copy into a buffer of exactly the input length, with no terminating
	 * zero, so that AddressSanitizer flags any read past the end.
	 */
	text = malloc(size > 0 ? size : 1);
	memcpy(text, data, size);
	last_alloc_size = 0;

	status = hg_text_decode(text, size, &bin, &bin_len, recording_malloc);
	FUZZ_CHECK(status >= HG_PARSE_OK && status <= HG_PARSE_BAD_ENCODING);
	FUZZ_CHECK(hg_parse_status_detail(status) != NULL);

	if (status != HG_PARSE_BAD_PREFIX && status != HG_PARSE_BAD_ENCODING)
	{
		FUZZ_CHECK(bin != NULL);
		FUZZ_CHECK(bin_len <= last_alloc_size);
		FUZZ_CHECK(hg_envelope_parse(bin, bin_len, &env) == status);

		encoded = malloc(hg_text_encoded_len(bin_len) + 1);
		FUZZ_CHECK(hg_text_encode(bin, bin_len, encoded) == size);
		FUZZ_CHECK(memcmp(encoded, text, size) == 0);
		free(encoded);
	}

	/* On BAD_ENCODING the buffer may or may not have been allocated. */
	free(bin);
	free(text);
	return 0;
}
