/* bridge/mqtt/utf8.h — the UTF-8 rules MQTT puts on strings (MQTT 3.1.1 §1.5.3, MQTT 5 §1.5.4). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/**
 * Pure. True when @s[0..len) is well-formed UTF-8 (shortest form, no surrogates, <= U+10FFFF) with
 * no U+0000, no control characters U+0001..U+001F and U+007F..U+009F, and no non-characters
 * (U+FDD0..U+FDEF, U+xxFFFE, U+xxFFFF). The last two are the spec's "SHOULD NOT"s, rejected as
 * Mosquitto rejects them, so a client sees the same answer through the bridge as at the broker.
 */
bool utf8_valid_mqtt(const uint8_t *s, size_t len);

/** Pure. True when @s[0..len) is well-formed UTF-8 (any code point but the surrogates). */
bool utf8_valid(const uint8_t *s, size_t len);
