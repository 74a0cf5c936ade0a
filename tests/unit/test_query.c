/* tests/unit/test_query.c — '+' restored in filters from form-decoded query strings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "query.h"

static void expect(const char *in, const char *out)
{
	char buf[256];

	strcpy(buf, in);
	query_restore_plus(buf);
	assert_string_equal(buf, out);
}

static void test_single_space_levels(void **state)
{
	(void)state;
	expect(" ", "+");
	expect("sensors/ /temp", "sensors/+/temp");
	expect(" /a", "+/a");
	expect("a/ ", "a/+");
	expect(" / / ", "+/+/+");
	expect("a/ /#", "a/+/#");
}

static void test_other_spaces_stay(void **state)
{
	(void)state;
	expect("living room/temp", "living room/temp");
	expect("a/  /b", "a/  /b");
	expect("a/ b", "a/ b");
	expect("a /b", "a /b");
	expect("", "");
	expect("plain/topic", "plain/topic");
	expect("a/+/b", "a/+/b");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_single_space_levels),
	    cmocka_unit_test(test_other_spaces_stay),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
