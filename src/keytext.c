/*
 * keytext.c
 *		Decode a master key printed by a command or read from a file.
 *
 * The input is untrusted bytes of any length.  Trailing whitespace (the line
 * end that echo and most tools add) is ignored; anything else must be exactly
 * 64 hexadecimal digits.  On failure the key buffer may hold a partial key,
 * which the caller wipes.
 */
#include "keytext.h"

static int
hex_digit_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

size_t
hg_key_text_trimmed_len(const char *text, size_t len)
{
	while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' ||
					   text[len - 1] == ' ' || text[len - 1] == '\t'))
		len--;
	return len;
}

/* Decode text into the 32-byte key. */
HgKeyTextStatus
hg_key_text_parse(const char *text, size_t len, uint8_t *key)
{
	len = hg_key_text_trimmed_len(text, len);
	if (len != HG_KEY_TEXT_HEX_LEN)
		return HG_KEY_TEXT_BAD_LENGTH;
	for (size_t i = 0; i < HG_KEY_TEXT_HEX_LEN / 2; i++)
	{
		int			high = hex_digit_value(text[2 * i]);
		int			low = hex_digit_value(text[2 * i + 1]);

		if (high < 0 || low < 0)
			return HG_KEY_TEXT_BAD_CHARACTER;
		key[i] = (uint8_t) ((high << 4) | low);
	}
	return HG_KEY_TEXT_OK;
}
