/* bridge/util/b64.h — base64 (RFC 4648, standard alphabet) for binary payloads in JSON. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/** Appends the padded base64 text of @data[0..len) to @out (no NUL). 0 or -ENOMEM. */
int b64_encode(struct buf *out, const void *data, size_t len);

/**
 * Appends the bytes @text[0..len) stands for. Padding is optional; whitespace and characters
 * outside the alphabet are refused. 0, -EINVAL (then @out is as it was) or -ENOMEM.
 */
int b64_decode(struct buf *out, const char *text, size_t len);
