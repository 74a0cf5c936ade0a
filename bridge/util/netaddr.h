/*
 * bridge/util/netaddr.h — IP addresses, CIDR ranges, and the client's address behind trusted reverse
 * proxies (X-Forwarded-For, Forwarded). Pure: no sockets, no allocation, any thread.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An address; IPv4 is held IPv4-mapped (::ffff:a.b.c.d), so that both compare alike. */
struct netaddr {
	uint8_t b[16];
};

/* An address range: the first @bits bits of @addr (an IPv4 /n is held as /96+n). */
struct netaddr_range {
	struct netaddr addr;
	unsigned bits;
};

/* Room for any address netaddr_format() writes, with its NUL (INET6_ADDRSTRLEN). */
#define NETADDR_STRLEN 46

/* Hops of a forwarding chain looked at, from the right; a longer chain's rest is not read. */
#define NETADDR_MAX_HOPS 32

/** 0 and *@out when the @len bytes at @s are one IPv4 or IPv6 address (no port), else -EINVAL. */
int netaddr_parse(const char *s, size_t len, struct netaddr *out);

/** 0 and *@out when @s is an address or "address/prefix" (CIDR), else -EINVAL. */
int netaddr_parse_range(const char *s, struct netaddr_range *out);

/** Is @a in any of the @n ranges of @set? */
bool netaddr_in_ranges(const struct netaddr_range *set, size_t n, const struct netaddr *a);

/** Writes @a to @out: dotted quad for IPv4 (mapped or not), RFC 5952 text for IPv6. */
void netaddr_format(const struct netaddr *a, char out[NETADDR_STRLEN]);

/**
 * The client's address as text in @out (@cap bytes, NUL-terminated, cut when short).
 * @peer is the direct peer's address; only when it is in @trusted are @xff (the
 * X-Forwarded-For value; several headers joined by ",") or else @forwarded (the RFC 7239
 * Forwarded value) read, NULL or "" when absent. Their hops are walked from the right: the
 * first one that is not trusted is the client. A hop that is no address ("unknown", an
 * obfuscated "_id", garbage) ends the walk at the trusted hop that reported it, and a header
 * that cannot be parsed at all counts as absent: what a client wrote never wins over what a
 * trusted proxy saw.
 */
void netaddr_client(const struct netaddr_range *trusted, size_t ntrusted, const char *peer,
		    const char *xff, const char *forwarded, char *out, size_t cap);
