/* bridge/mqtt/codec_int.h — what the three codec files share; for no other module. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

/** Pure. May a @type packet of level @version carry reason code @rc? */
bool codec_reason_allowed(int type, int version, uint8_t rc);

/** Pure. The fixed-header flags of every type but PUBLISH (MQTT 5 §2.1.3). */
uint8_t codec_fixed_flags(int type);
