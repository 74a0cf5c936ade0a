/* bridge/mqtt/utf8.c — UTF-8 well-formedness and the code points MQTT strings may not hold. */
#include "utf8.h"

/*
 * Decodes the code point at @s[*i..len) and advances *i past it. -1 when the bytes are not
 * well-formed: a stray continuation byte, a truncated sequence, an overlong form, a surrogate or
 * a value over U+10FFFF.
 */
static int32_t next_code_point(const uint8_t *s, size_t len, size_t *i)
{
	uint8_t lead = s[*i];
	size_t n;
	int32_t cp;
	int32_t min;

	if (lead < 0x80) {
		(*i)++;
		return lead;
	} else if ((lead & 0xE0) == 0xC0) {
		n = 2;
		cp = lead & 0x1F;
		min = 0x80;
	} else if ((lead & 0xF0) == 0xE0) {
		n = 3;
		cp = lead & 0x0F;
		min = 0x800;
	} else if ((lead & 0xF8) == 0xF0) {
		n = 4;
		cp = lead & 0x07;
		min = 0x10000;
	} else {
		return -1;
	}
	if (n > len - *i)
		return -1;
	for (size_t k = 1; k < n; k++) {
		uint8_t c = s[*i + k];
		if ((c & 0xC0) != 0x80)
			return -1;
		cp = (cp << 6) | (c & 0x3F);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return -1;
	*i += n;
	return cp;
}

bool utf8_valid(const uint8_t *s, size_t len)
{
	for (size_t i = 0; i < len;)
		if (next_code_point(s, len, &i) < 0)
			return false;
	return true;
}

bool utf8_valid_mqtt(const uint8_t *s, size_t len)
{
	for (size_t i = 0; i < len;) {
		int32_t cp = next_code_point(s, len, &i);
		if (cp < 0)
			return false;
		if (cp <= 0x1F || (cp >= 0x7F && cp <= 0x9F))
			return false;
		if ((cp >= 0xFDD0 && cp <= 0xFDEF) || (cp & 0xFFFE) == 0xFFFE)
			return false;
	}
	return true;
}
