/*
 * bridge/util/netaddr.c — addresses, CIDR ranges and the client behind trusted proxies.
 *
 * A proxy appends the address it saw to X-Forwarded-For (or adds a Forwarded element), after
 * whatever the client itself sent. So only the right end of the chain is known to be true, and
 * only as far as the hops are proxies we trust: the chain is read from the right, and the first
 * hop that is not a trusted proxy is the client. Whatever lies left of it is the client's word.
 */
#include "netaddr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* The longest address text inet_pton reads, with an IPv4 tail (INET6_ADDRSTRLEN - 1). */
#define ADDR_TEXT_MAX 45
/* A Forwarded value longer than this is no address (nor an obfuscated one worth reading). */
#define VALUE_MAX 96

static const uint8_t v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static bool is_v4(const struct netaddr *a)
{
	return !memcmp(a->b, v4_mapped_prefix, sizeof(v4_mapped_prefix));
}

int netaddr_parse(const char *s, size_t len, struct netaddr *out)
{
	char text[ADDR_TEXT_MAX + 1];
	struct netaddr a;

	if (!len || len > ADDR_TEXT_MAX || memchr(s, '\0', len))
		return -EINVAL;
	memcpy(text, s, len);
	text[len] = '\0';
	if (strchr(text, ':')) {
		if (inet_pton(AF_INET6, text, a.b) != 1)
			return -EINVAL;
	} else {
		memcpy(a.b, v4_mapped_prefix, sizeof(v4_mapped_prefix));
		if (inet_pton(AF_INET, text, a.b + 12) != 1)
			return -EINVAL;
	}
	*out = a;
	return 0;
}

int netaddr_parse_range(const char *s, struct netaddr_range *out)
{
	const char *slash = strchr(s, '/');
	size_t len = slash ? (size_t)(slash - s) : strlen(s);
	struct netaddr_range r;
	bool v6 = memchr(s, ':', len) != NULL;
	unsigned max = v6 ? 128 : 32, bits = 0;
	const char *p;

	if (netaddr_parse(s, len, &r.addr))
		return -EINVAL;
	if (!slash) {
		bits = max;
	} else {
		/* Decimal digits only, no sign, no leading zeros beyond "0", at most three. */
		p = slash + 1;
		if (!*p || strlen(p) > 3 || (p[0] == '0' && p[1]))
			return -EINVAL;
		for (; *p; p++) {
			if (*p < '0' || *p > '9')
				return -EINVAL;
			bits = bits * 10 + (unsigned)(*p - '0');
		}
		if (bits > max)
			return -EINVAL;
	}
	/* A range written as IPv4 covers IPv4 addresses only, mapped or not. */
	r.bits = v6 ? bits : bits + 96;
	*out = r;
	return 0;
}

static bool in_range(const struct netaddr_range *r, const struct netaddr *a)
{
	unsigned whole = r->bits / 8, rest = r->bits % 8;

	if (memcmp(r->addr.b, a->b, whole))
		return false;
	if (!rest)
		return true;
	return ((r->addr.b[whole] ^ a->b[whole]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

bool netaddr_in_ranges(const struct netaddr_range *set, size_t n, const struct netaddr *a)
{
	for (size_t i = 0; i < n; i++) {
		if (in_range(&set[i], a))
			return true;
	}
	return false;
}

void netaddr_format(const struct netaddr *a, char out[NETADDR_STRLEN])
{
	const char *ok = is_v4(a) ? inet_ntop(AF_INET, a->b + 12, out, NETADDR_STRLEN)
				  : inet_ntop(AF_INET6, a->b, out, NETADDR_STRLEN);

	if (!ok)
		out[0] = '\0';
}

/* ---- the hops of a chain ---- */

/* The last NETADDR_MAX_HOPS hops of a chain, oldest first; a hop may be no address. */
struct hops {
	struct {
		bool ok;
		struct netaddr addr;
	} hop[NETADDR_MAX_HOPS];
	size_t n; /* hops seen in all; the ring holds the last NETADDR_MAX_HOPS of them */
};

static void push_hop(struct hops *h, bool ok, const struct netaddr *addr)
{
	size_t i = h->n % NETADDR_MAX_HOPS;

	h->hop[i].ok = ok;
	if (ok)
		h->hop[i].addr = *addr;
	h->n++;
}

static bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* ":digits" or an obfuscated port (RFC 7239 §6.3, "_" and letters, digits, '.', '_', '-'). */
static bool port_ok(const char *p, const char *end)
{
	unsigned port = 0;

	if (p == end)
		return true;
	if (*p++ != ':' || p == end || end - p > 16)
		return false;
	if (*p == '_') {
		for (p++; p < end; p++) {
			if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			      (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-'))
				return false;
		}
		return true;
	}
	if (end - p > 5)
		return false;
	for (; p < end; p++) {
		if (*p < '0' || *p > '9')
			return false;
		port = port * 10 + (unsigned)(*p - '0');
	}
	return port <= 65535;
}

/*
 * One hop's node: "1.2.3.4", "1.2.3.4:80", "2001:db8::1", "[2001:db8::1]", "[2001:db8::1]:80"
 * (proxies write all of these). "unknown" and obfuscated ids are not addresses: false.
 */
static bool parse_node(const char *s, size_t len, struct netaddr *out)
{
	const char *end = s + len, *close, *colon;

	while (s < end && is_ows(*s))
		s++;
	while (end > s && is_ows(end[-1]))
		end--;
	if (s == end)
		return false;
	if (*s == '[') {
		close = memchr(s, ']', (size_t)(end - s));
		return close && !netaddr_parse(s + 1, (size_t)(close - s - 1), out) &&
		       !is_v4(out) && port_ok(close + 1, end);
	}
	colon = memchr(s, ':', (size_t)(end - s));
	if (colon && !memchr(colon + 1, ':', (size_t)(end - colon - 1)))
		return !netaddr_parse(s, (size_t)(colon - s), out) && port_ok(colon, end);
	return !netaddr_parse(s, (size_t)(end - s), out);
}

/* X-Forwarded-For: "client, proxy1, proxy2"; empty items are skipped. 0 hops: absent. */
static void parse_xff(const char *s, struct hops *h)
{
	while (*s) {
		size_t len = strcspn(s, ",");
		struct netaddr a;
		const char *p = s;

		while (p < s + len && is_ows(*p))
			p++;
		if (p < s + len)
			push_hop(h, parse_node(s, len, &a), &a);
		s += len;
		if (*s == ',')
			s++;
	}
}

/* RFC 7230 tchar. */
static bool is_tchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

/*
 * One value at *@pp into @out (@cap bytes; *@len is its length, or SIZE_MAX when it did not
 * fit): a token, or a quoted-string with its backslash escapes undone. -EINVAL: malformed.
 * Unquoted values are read up to ';', ',' or space, as proxies write "for=1.2.3.4:80" that way
 * though ':' is no tchar.
 */
static int read_value(const char **pp, char *out, size_t cap, size_t *len)
{
	const char *p = *pp;
	size_t n = 0;
	bool over = false;

	if (*p == '"') {
		for (p++; *p != '"'; p++) {
			if (!*p)
				return -EINVAL;
			if (*p == '\\' && !*++p)
				return -EINVAL;
			if (n + 1 < cap)
				out[n++] = *p;
			else
				over = true;
		}
		p++;
	} else {
		for (; *p && *p != ';' && *p != ',' && !is_ows(*p); p++) {
			if (*p == '"' || (unsigned char)*p < 0x21 || (unsigned char)*p == 0x7f)
				return -EINVAL;
			if (n + 1 < cap)
				out[n++] = *p;
			else
				over = true;
		}
		if (!n && !over)
			return -EINVAL;
	}
	out[n] = '\0';
	*len = over ? SIZE_MAX : n;
	*pp = p;
	return 0;
}

/*
 * Forwarded (RFC 7239): elements separated by ',', pairs by ';', e.g.
 * 'for=192.0.2.60;proto=http, for="[2001:db8::1]:4711"'. Each element is one hop; an element
 * without a for= that is an address is a hop of unknown address. -EINVAL: not parseable.
 */
static int parse_forwarded(const char *s, struct hops *h)
{
	const char *p = s;

	for (;;) {
		bool seen_for = false, for_ok = false, any = false;
		struct netaddr addr = {{0}};

		for (;;) {
			char value[VALUE_MAX];
			const char *name;
			size_t nlen, vlen;

			while (is_ows(*p))
				p++;
			if (*p == ';' || *p == ',' || !*p) {
				/* An empty pair or element: allowed by the list syntax. */
			} else {
				for (name = p; is_tchar(*p); p++)
					;
				nlen = (size_t)(p - name);
				if (!nlen || *p++ != '=' ||
				    read_value(&p, value, sizeof(value), &vlen))
					return -EINVAL;
				any = true;
				if (nlen == 3 && !strncasecmp(name, "for", 3)) {
					/* A second for= in one element makes it meaningless. */
					for_ok = !seen_for && vlen != SIZE_MAX &&
						 parse_node(value, vlen, &addr);
					seen_for = true;
				}
				while (is_ows(*p))
					p++;
			}
			if (*p != ';')
				break;
			p++;
		}
		if (any)
			push_hop(h, for_ok, &addr);
		if (!*p)
			return 0;
		if (*p++ != ',')
			return -EINVAL;
	}
}

void netaddr_client(const struct netaddr_range *trusted, size_t ntrusted, const char *peer,
		    const char *xff, const char *forwarded, char *out, size_t cap)
{
	char text[NETADDR_STRLEN];
	struct netaddr current;
	struct hops h;
	size_t oldest;

	if (!cap)
		return;
	/* A peer that is no address (a unix socket, say) is shown as it is and trusted never. */
	if (netaddr_parse(peer, strlen(peer), &current)) {
		snprintf(out, cap, "%s", peer);
		return;
	}
	memset(&h, 0, sizeof(h));
	if (netaddr_in_ranges(trusted, ntrusted, &current)) {
		if (xff && *xff)
			parse_xff(xff, &h);
		if (!h.n && forwarded && *forwarded && parse_forwarded(forwarded, &h))
			h.n = 0;
	}
	oldest = h.n > NETADDR_MAX_HOPS ? h.n - NETADDR_MAX_HOPS : 0;
	for (size_t i = h.n; i > oldest; i--) {
		size_t k = (i - 1) % NETADDR_MAX_HOPS;
		if (!h.hop[k].ok)
			break;
		current = h.hop[k].addr;
		if (!netaddr_in_ranges(trusted, ntrusted, &current))
			break;
	}
	netaddr_format(&current, text);
	snprintf(out, cap, "%s", text);
}
