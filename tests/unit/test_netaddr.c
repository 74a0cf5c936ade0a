/*
 * tests/unit/test_netaddr.c — addresses and CIDR ranges, and the client address behind trusted
 * proxies: X-Forwarded-For chains, Forwarded quoting, ports and obfuscated ids, and garbage.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "netaddr.h"

static bool parses(const char *s)
{
	struct netaddr a;

	return netaddr_parse(s, strlen(s), &a) == 0;
}

static void test_parse(void **state)
{
	struct netaddr a, b;
	char text[NETADDR_STRLEN];

	(void)state;
	assert_true(parses("127.0.0.1"));
	assert_true(parses("0.0.0.0"));
	assert_true(parses("255.255.255.255"));
	assert_true(parses("::1"));
	assert_true(parses("2001:db8::17"));
	assert_true(parses("::ffff:10.1.2.3"));
	assert_false(parses(""));
	assert_false(parses("256.1.1.1"));
	assert_false(parses("1.2.3"));
	assert_false(parses("1.2.3.4.5"));
	assert_false(parses(" 1.2.3.4"));
	assert_false(parses("1.2.3.4:80"));
	assert_false(parses("[::1]"));
	assert_false(parses("unknown"));
	assert_false(parses("fe80::1%eth0"));
	assert_false(parses("1:2:3:4:5:6:7:8:9"));
	assert_false(parses("0123456789012345678901234567890123456789012345678"));
	/* Length, not NUL, ends the text. */
	assert_int_equal(netaddr_parse("10.0.0.1xyz", 8, &a), 0);
	netaddr_format(&a, text);
	assert_string_equal(text, "10.0.0.1");
	assert_int_equal(netaddr_parse("1.2\0.3.4", 8, &a), -EINVAL);

	/* IPv4 and its mapped IPv6 form are one address, shown as IPv4. */
	assert_int_equal(netaddr_parse("10.1.2.3", 8, &a), 0);
	assert_int_equal(netaddr_parse("::ffff:10.1.2.3", 15, &b), 0);
	assert_memory_equal(&a, &b, sizeof(a));
	netaddr_format(&b, text);
	assert_string_equal(text, "10.1.2.3");
	assert_int_equal(netaddr_parse("2001:0db8:0:0:0:0:0:0017", 24, &a), 0);
	netaddr_format(&a, text);
	assert_string_equal(text, "2001:db8::17");
}

static bool in(const char *range, const char *addr)
{
	struct netaddr_range r;
	struct netaddr a;

	assert_int_equal(netaddr_parse_range(range, &r), 0);
	assert_int_equal(netaddr_parse(addr, strlen(addr), &a), 0);
	return netaddr_in_ranges(&r, 1, &a);
}

static void test_ranges(void **state)
{
	struct netaddr_range r[2];
	struct netaddr a;

	(void)state;
	assert_true(in("10.0.0.0/8", "10.255.1.2"));
	assert_false(in("10.0.0.0/8", "11.0.0.1"));
	assert_true(in("192.168.1.0/24", "192.168.1.200"));
	assert_false(in("192.168.1.0/24", "192.168.2.1"));
	assert_true(in("172.16.0.0/12", "172.31.255.255"));
	assert_false(in("172.16.0.0/12", "172.32.0.0"));
	assert_true(in("10.0.0.5", "10.0.0.5"));
	assert_false(in("10.0.0.5", "10.0.0.6"));
	assert_true(in("10.0.0.5/32", "10.0.0.5"));
	/* Host bits in the range do not matter. */
	assert_true(in("10.1.2.3/16", "10.1.200.1"));
	/* 0.0.0.0/0 is every IPv4 address, and no IPv6 one. */
	assert_true(in("0.0.0.0/0", "203.0.113.9"));
	assert_false(in("0.0.0.0/0", "2001:db8::1"));
	assert_true(in("::/0", "2001:db8::1"));
	assert_true(in("::/0", "1.2.3.4"));
	/* An IPv4 range holds the mapped form of its addresses. */
	assert_true(in("127.0.0.0/8", "::ffff:127.0.0.1"));
	assert_true(in("::ffff:127.0.0.0/104", "127.9.9.9"));
	assert_true(in("2001:db8::/32", "2001:db8:ffff::1"));
	assert_false(in("2001:db8::/32", "2001:db9::1"));
	assert_true(in("2001:db8::/33", "2001:db8:7fff::1"));
	assert_false(in("2001:db8::/33", "2001:db8:8000::1"));
	assert_true(in("::1", "::1"));
	assert_true(in("::1/128", "::1"));
	assert_false(in("::1", "::2"));

	assert_int_equal(netaddr_parse_range("10.0.0.0/33", &r[0]), -EINVAL);
	assert_int_equal(netaddr_parse_range("::/129", &r[0]), -EINVAL);
	assert_int_equal(netaddr_parse_range("10.0.0.0/", &r[0]), -EINVAL);
	assert_int_equal(netaddr_parse_range("10.0.0.0/08", &r[0]), -EINVAL);
	assert_int_equal(netaddr_parse_range("10.0.0.0/-1", &r[0]), -EINVAL);
	assert_int_equal(netaddr_parse_range("10.0.0.0/8/8", &r[0]), -EINVAL);
	assert_int_equal(netaddr_parse_range("10.0.0.0/ 8", &r[0]), -EINVAL);
	assert_int_equal(netaddr_parse_range("localhost", &r[0]), -EINVAL);
	assert_int_equal(netaddr_parse_range("", &r[0]), -EINVAL);
	assert_int_equal(netaddr_parse_range("/8", &r[0]), -EINVAL);

	assert_int_equal(netaddr_parse_range("10.0.0.0/8", &r[0]), 0);
	assert_int_equal(netaddr_parse_range("fd00::/8", &r[1]), 0);
	assert_int_equal(netaddr_parse("fd12::1", 7, &a), 0);
	assert_true(netaddr_in_ranges(r, 2, &a));
	assert_false(netaddr_in_ranges(r, 1, &a));
	assert_false(netaddr_in_ranges(r, 0, &a));
}

/* The client netaddr_client() finds with @trusted (comma-separated ranges). */
static const char *client(const char *trusted, const char *peer, const char *xff,
			  const char *forwarded)
{
	static char out[NETADDR_STRLEN];
	struct netaddr_range ranges[8];
	char list[256], *save = NULL, *item;
	size_t n = 0;

	strcpy(list, trusted);
	for (item = strtok_r(list, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		assert_true(n < 8);
		assert_int_equal(netaddr_parse_range(item, &ranges[n]), 0);
		n++;
	}
	netaddr_client(ranges, n, peer, xff, forwarded, out, sizeof(out));
	return out;
}

static void test_untrusted_peer(void **state)
{
	(void)state;
	/* Nothing trusted, or a peer outside the list: the headers are the client's word. */
	assert_string_equal(client("", "203.0.113.7", "1.1.1.1", "for=2.2.2.2"), "203.0.113.7");
	assert_string_equal(client("10.0.0.0/8", "203.0.113.7", "1.1.1.1", NULL), "203.0.113.7");
	assert_string_equal(client("10.0.0.0/8", "::ffff:203.0.113.7", "1.1.1.1", NULL),
			    "203.0.113.7");
	/* A trusted peer that sends no header is the client itself. */
	assert_string_equal(client("127.0.0.1", "127.0.0.1", NULL, NULL), "127.0.0.1");
	assert_string_equal(client("127.0.0.1", "127.0.0.1", "", ""), "127.0.0.1");
	/* A peer that is no address is shown as it is. */
	assert_string_equal(client("127.0.0.1", "unix:/run/x", "1.1.1.1", NULL), "unix:/run/x");
}

static void test_xff(void **state)
{
	(void)state;
	assert_string_equal(client("127.0.0.1", "127.0.0.1", "198.51.100.4", NULL), "198.51.100.4");
	/* The mapped form of a trusted peer is trusted. */
	assert_string_equal(client("127.0.0.1", "::ffff:127.0.0.1", "198.51.100.4", NULL),
			    "198.51.100.4");
	/* A spoofed entry the client sent stays left of what the proxy appended. */
	assert_string_equal(client("127.0.0.1", "127.0.0.1", "6.6.6.6, 198.51.100.4", NULL),
			    "198.51.100.4");
	/* Two trusted proxies: the first untrusted hop from the right. */
	assert_string_equal(client("127.0.0.1,10.0.0.0/8", "127.0.0.1",
				   "6.6.6.6,198.51.100.4, 10.1.1.1 ,10.2.2.2", NULL),
			    "198.51.100.4");
	/* All trusted: the leftmost. */
	assert_string_equal(client("127.0.0.1,10.0.0.0/8", "127.0.0.1", "10.9.9.9, 10.1.1.1", NULL),
			    "10.9.9.9");
	/* Ports and brackets as some proxies write them; IPv6 shown canonical. */
	assert_string_equal(client("127.0.0.1", "127.0.0.1", "198.51.100.4:5555", NULL),
			    "198.51.100.4");
	assert_string_equal(client("127.0.0.1", "127.0.0.1", "[2001:DB8::0:1]:443", NULL),
			    "2001:db8::1");
	assert_string_equal(client("127.0.0.1", "127.0.0.1", "[2001:db8::1]", NULL), "2001:db8::1");
	assert_string_equal(client("127.0.0.1", "127.0.0.1", "2001:db8::1", NULL), "2001:db8::1");
	assert_string_equal(client("::1", "::1", "2001:db8::1", NULL), "2001:db8::1");
	/* Empty items (a client's trailing comma) are skipped. */
	assert_string_equal(client("127.0.0.1", "127.0.0.1", "6.6.6.6,, ,198.51.100.4,", NULL),
			    "198.51.100.4");
	/* Garbage where the proxy's hop should be: the proxy that reported it is the client. */
	assert_string_equal(client("127.0.0.1", "127.0.0.1", "unknown", NULL), "127.0.0.1");
	assert_string_equal(client("127.0.0.1", "127.0.0.1", "198.51.100.4, <script>", NULL),
			    "127.0.0.1");
	assert_string_equal(client("127.0.0.1,10.0.0.0/8", "127.0.0.1", "garbage, 10.1.1.1", NULL),
			    "10.1.1.1");
	assert_string_equal(client("127.0.0.1", "127.0.0.1", "1.2.3.4:99999", NULL), "127.0.0.1");
	assert_string_equal(client("127.0.0.1", "127.0.0.1", "[1.2.3.4]", NULL), "127.0.0.1");
	assert_string_equal(client("127.0.0.1", "127.0.0.1", "[::1", NULL), "127.0.0.1");
	/* Only empty items: as if absent, Forwarded is read. */
	assert_string_equal(client("127.0.0.1", "127.0.0.1", " , ", "for=198.51.100.9"),
			    "198.51.100.9");
	/* X-Forwarded-For wins over Forwarded. */
	assert_string_equal(client("127.0.0.1", "127.0.0.1", "198.51.100.4", "for=198.51.100.9"),
			    "198.51.100.4");
}

static void test_xff_long_chain(void **state)
{
	char chain[2048] = "";

	(void)state;
	/* More trusted hops than are read: the walk stops at the oldest it holds, trusted. */
	for (int i = 0; i < NETADDR_MAX_HOPS + 10; i++)
		snprintf(chain + strlen(chain), sizeof(chain) - strlen(chain), "%s10.0.0.%d",
			 i ? "," : "", i + 1);
	assert_string_equal(client("127.0.0.1,10.0.0.0/8", "127.0.0.1", chain, NULL), "10.0.0.11");
	/* A long spoofed prefix does not push the proxy's hop out. */
	chain[0] = '\0';
	for (int i = 0; i < 100; i++)
		snprintf(chain + strlen(chain), sizeof(chain) - strlen(chain), "6.6.6.%d,", i);
	strcat(chain, "198.51.100.4");
	assert_string_equal(client("127.0.0.1", "127.0.0.1", chain, NULL), "198.51.100.4");
}

static void test_forwarded(void **state)
{
	(void)state;
	assert_string_equal(client("127.0.0.1", "127.0.0.1", NULL, "for=192.0.2.60"), "192.0.2.60");
	assert_string_equal(client("127.0.0.1", "127.0.0.1", NULL, "For=\"192.0.2.60\""),
			    "192.0.2.60");
	assert_string_equal(client("127.0.0.1", "127.0.0.1", NULL,
				   "for=192.0.2.60;proto=http;by=203.0.113.43"),
			    "192.0.2.60");
	assert_string_equal(client("127.0.0.1", "127.0.0.1", NULL,
				   "proto=https ; FOR=192.0.2.60 ; host=\"a.example\""),
			    "192.0.2.60");
	/* Quoted IPv6 with a port, escapes undone. */
	assert_string_equal(client("127.0.0.1", "127.0.0.1", NULL,
				   "for=\"[2001:db8:cafe::17]:4711\""),
			    "2001:db8:cafe::17");
	assert_string_equal(client("127.0.0.1", "127.0.0.1", NULL, "for=\"\\[2001:db8::9\\]\""),
			    "2001:db8::9");
	assert_string_equal(client("127.0.0.1", "127.0.0.1", NULL, "for=\"192.0.2.60:_port1\""),
			    "192.0.2.60");
	/* A comma inside quotes does not end the element. */
	assert_string_equal(client("127.0.0.1", "127.0.0.1", NULL,
				   "for=6.6.6.6;host=\"a,b\", for=192.0.2.60"),
			    "192.0.2.60");
	/* Chains, as with X-Forwarded-For. */
	assert_string_equal(client("127.0.0.1,10.0.0.0/8", "127.0.0.1", NULL,
				   "for=6.6.6.6, for=192.0.2.60, for=10.3.3.3;proto=http"),
			    "192.0.2.60");
	/* unknown and obfuscated ids are no address: the proxy that wrote them is the client. */
	assert_string_equal(client("127.0.0.1", "127.0.0.1", NULL, "for=unknown"), "127.0.0.1");
	assert_string_equal(client("127.0.0.1", "127.0.0.1", NULL, "for=_hidden"), "127.0.0.1");
	assert_string_equal(client("127.0.0.1,10.0.0.0/8", "127.0.0.1", NULL,
				   "for=192.0.2.60, for=_hidden, for=10.3.3.3"),
			    "10.3.3.3");
	/* An element without for= is a hop that does not say. */
	assert_string_equal(client("127.0.0.1", "127.0.0.1", NULL, "for=192.0.2.60, proto=http"),
			    "127.0.0.1");
	/* Two for= in one element make it meaningless. */
	assert_string_equal(client("127.0.0.1", "127.0.0.1", NULL, "for=1.1.1.1;for=2.2.2.2"),
			    "127.0.0.1");
	/* Garbage: the header counts as absent. */
	assert_string_equal(client("127.0.0.1", "127.0.0.1", NULL, "for=\"192.0.2.60"),
			    "127.0.0.1");
	assert_string_equal(client("127.0.0.1", "127.0.0.1", NULL, "for=\"6.6.6.6, for=192.0.2.60"),
			    "127.0.0.1");
	assert_string_equal(client("127.0.0.1", "127.0.0.1", NULL, "for"), "127.0.0.1");
	assert_string_equal(client("127.0.0.1", "127.0.0.1", NULL, "for="), "127.0.0.1");
	assert_string_equal(client("127.0.0.1", "127.0.0.1", NULL, "=1.2.3.4"), "127.0.0.1");
	assert_string_equal(client("127.0.0.1", "127.0.0.1", NULL, "for=1.2.3.4 x"), "127.0.0.1");
	assert_string_equal(client("127.0.0.1", "127.0.0.1", NULL, "for=a\"b"), "127.0.0.1");
	assert_string_equal(client("127.0.0.1", "127.0.0.1", NULL, "for=\"\\"), "127.0.0.1");
	assert_string_equal(client("127.0.0.1", "127.0.0.1", NULL, "for=[::1]"), "::1");
	/* Empty elements and pairs are allowed. */
	assert_string_equal(client("127.0.0.1", "127.0.0.1", NULL, ",, for=192.0.2.60;, "),
			    "192.0.2.60");
	/* A value too long to be an address is none. */
	assert_string_equal(
	    client("127.0.0.1", "127.0.0.1", NULL,
		   "for=\"1111111111111111111111111111111111111111111111111111111111"
		   "11111111111111111111111111111111111111111111111111\""),
	    "127.0.0.1");
}

static void test_small_output(void **state)
{
	struct netaddr_range r;
	char out[5];

	(void)state;
	assert_int_equal(netaddr_parse_range("127.0.0.1", &r), 0);
	netaddr_client(&r, 1, "127.0.0.1", "198.51.100.4", NULL, out, sizeof(out));
	assert_string_equal(out, "198.");
	netaddr_client(&r, 1, "127.0.0.1", "198.51.100.4", NULL, out, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse),          cmocka_unit_test(test_ranges),
	    cmocka_unit_test(test_untrusted_peer), cmocka_unit_test(test_xff),
	    cmocka_unit_test(test_xff_long_chain), cmocka_unit_test(test_forwarded),
	    cmocka_unit_test(test_small_output),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
