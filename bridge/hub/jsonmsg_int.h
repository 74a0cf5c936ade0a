/* bridge/hub/jsonmsg_int.h — what jsonmsg_read.c and jsonmsg_write.c share; for no other module. */
#pragma once
#include <jansson.h>

#include "buf.h"

/** Pure. Appends the compact JSON text of @v (borrowed) in document order. 0 or -ENOMEM. */
int jsonmsg_put_value(struct buf *b, json_t *v);
