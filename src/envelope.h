/*
 * envelope.h
 *		The stored format of an encrypted value, and its text form.
 *
 * Binary layout, version 1 (integers big-endian):
 *
 *	offset	size	field
 *	0		1		format version (1)
 *	1		1		base type code (HgTypeCode)
 *	2		1		flags (HG_FLAG_BOUND: a row key follows the header)
 *	3		1		reserved, 0
 *	4		4		data key id
 *	8		4		data key version
 *	12		12		nonce
 *	24		4		ciphertext length n
 *	28		2		row key length c (0 unless bound)
 *	30		c		row key, UTF-8
 *	30+c	n		ciphertext
 *	30+c+n	16		GCM tag
 *
 * Bytes 0 to 30+c are the additional authenticated data, so the type, the
 * key, the nonce and the row key cannot be altered without the tag failing.
 * The text form is "hg1:" followed by the standard base64 of those bytes.
 * This file does no catalog access, so a fuzzer can drive it alone.
 */
#ifndef HG_ENVELOPE_H
#define HG_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include "crypto.h"

#define HG_ENVELOPE_VERSION		1
#define HG_HEADER_LEN			30
#define HG_TEXT_PREFIX			"hg1:"
#define HG_TEXT_PREFIX_LEN		4
#define HG_FLAG_BOUND			0x01
#define HG_MAX_ROW_KEY_LEN		1024

/* Guards the 1 GB varlena limit with room for the header and base64. */
#define HG_MAX_PLAIN_LEN		(700 * 1024 * 1024)

typedef enum HgTypeCode
{
	HG_TYPE_TEXT = 1,
	HG_TYPE_BYTEA = 2,
	HG_TYPE_DATE = 3,
	HG_TYPE_JSONB = 4
} HgTypeCode;

/* A parsed envelope; the pointers point into the caller's buffer. */
typedef struct HgEnvelope
{
	uint8_t		type_code;
	uint8_t		flags;
	uint32_t	key_id;
	uint32_t	key_version;
	const uint8_t *nonce;
	const uint8_t *row_key;
	uint16_t	row_key_len;
	const uint8_t *cipher;
	uint32_t	cipher_len;
	const uint8_t *tag;
	const uint8_t *aad;			/* the header and row key */
	size_t		aad_len;
} HgEnvelope;

/* Why a byte string is not an envelope; each maps to one error detail. */
typedef enum HgParseStatus
{
	HG_PARSE_OK = 0,
	HG_PARSE_TOO_SHORT,
	HG_PARSE_BAD_VERSION,
	HG_PARSE_BAD_TYPE,
	HG_PARSE_BAD_FLAGS,
	HG_PARSE_BAD_LENGTH,
	HG_PARSE_BAD_PREFIX,
	HG_PARSE_BAD_ENCODING
} HgParseStatus;

extern size_t hg_envelope_size(size_t row_key_len, size_t plain_len);
extern void hg_envelope_write_header(uint8_t *out, HgTypeCode type_code,
									 uint32_t key_id, uint32_t key_version,
									 const uint8_t *nonce,
									 const uint8_t *row_key, size_t row_key_len,
									 uint32_t plain_len);
extern HgParseStatus hg_envelope_parse(const uint8_t *buf, size_t len,
									   HgEnvelope *env);
extern const char *hg_parse_status_detail(HgParseStatus status);

extern size_t hg_text_encoded_len(size_t bin_len);
extern size_t hg_text_encode(const uint8_t *bin, size_t bin_len, char *out);
extern HgParseStatus hg_text_decode(const char *text, size_t text_len,
									uint8_t **bin, size_t *bin_len,
									void *(*alloc) (size_t));

#endif							/* HG_ENVELOPE_H */
