/*
 * fuzz_key_text.c
 *		libFuzzer target for hg_key_text_parse(), the parser of the master key
 *		that the key command prints or the key file contains.
 *
 * Besides crashes and sanitizer reports, it compares the result with a
 * reference written from the documented format: trailing spaces, tabs, CR
 * and LF are ignored, and what remains must be exactly 64 hexadecimal digits
 * of either case.  An accepted key must print back as the input's digits.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keytext.h"
#include "fuzz_check.h"

#define KEY_LEN		(HG_KEY_TEXT_HEX_LEN / 2)

static size_t
reference_trimmed_len(const uint8_t *text, size_t len)
{
	while (len > 0 && strchr(" \t\r\n", text[len - 1]) != NULL &&
		   text[len - 1] != '\0')
		len--;
	return len;
}

static HgKeyTextStatus
reference_status(const uint8_t *text, size_t len)
{
	if (reference_trimmed_len(text, len) != HG_KEY_TEXT_HEX_LEN)
		return HG_KEY_TEXT_BAD_LENGTH;
	for (size_t i = 0; i < HG_KEY_TEXT_HEX_LEN; i++)
	{
		if (text[i] == '\0' || strchr("0123456789abcdefABCDEF", text[i]) == NULL)
			return HG_KEY_TEXT_BAD_CHARACTER;
	}
	return HG_KEY_TEXT_OK;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *text;
	uint8_t		key[KEY_LEN];
	HgKeyTextStatus status;
	char		printed[3];

	/* An exact-size copy, so that AddressSanitizer flags reads past the end. */
	text = malloc(size > 0 ? size : 1);
	memcpy(text, data, size);
	memset(key, 0xa5, sizeof(key));

	status = hg_key_text_parse(text, size, key);
	FUZZ_CHECK(hg_key_text_trimmed_len(text, size) ==
			   reference_trimmed_len(data, size));
	FUZZ_CHECK(status == reference_status(data, size));

	if (status == HG_KEY_TEXT_OK)
	{
		for (size_t i = 0; i < KEY_LEN; i++)
		{
			snprintf(printed, sizeof(printed), "%02x", key[i]);
			FUZZ_CHECK(tolower((unsigned char) text[2 * i]) == printed[0]);
			FUZZ_CHECK(tolower((unsigned char) text[2 * i + 1]) == printed[1]);
		}
	}
	free(text);
	return 0;
}
