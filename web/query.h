/* web/query.h — query-string values as lws hands them over (already percent-decoded). */
#pragma once

/**
 * Pure. lws decodes a query as a form does, so the '+' a user wrote in "?topic=sensors/+/temp"
 * arrives as a space. A topic level that is exactly one space is read back as '+', in place in
 * @filter: a real one-space level would have to be written %20 and is taken as '+' too, the price
 * of accepting the natural spelling. Other spaces stay.
 */
void query_restore_plus(char *filter);
