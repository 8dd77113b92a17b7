/*
 * keytext.h
 *		Parsing the text form of a master key: 64 hexadecimal characters,
 *		optionally followed by a line end.  No server dependencies, so that a
 *		fuzzer can drive it alone.
 */
#ifndef HG_KEYTEXT_H
#define HG_KEYTEXT_H

#include <stddef.h>
#include <stdint.h>

#define HG_KEY_TEXT_HEX_LEN		64

typedef enum HgKeyTextStatus
{
	HG_KEY_TEXT_OK = 0,
	HG_KEY_TEXT_BAD_LENGTH,
	HG_KEY_TEXT_BAD_CHARACTER
} HgKeyTextStatus;

extern size_t hg_key_text_trimmed_len(const char *text, size_t len);
extern HgKeyTextStatus hg_key_text_parse(const char *text, size_t len,
										 uint8_t *key);

#endif							/* HG_KEYTEXT_H */
