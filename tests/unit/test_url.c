/* test_url.c - database URLs, password masking, identifiers. */
#include "testutil.h"

#include <string.h>

static void check(const char *url, const char *backend, const char *target, const char *display)
{
	evfi_url u;
	EVF_OK_OR_FAIL(evfi_url_parse(&u, url));
	assert_string_equal(u.backend, backend);
	assert_string_equal(u.target, target);
	assert_string_equal(u.display, display);
	evfi_url_clear(&u);
}

static void test_urls(void **state)
{
	(void)state;
	check("sqlite:/tmp/a.db", "sqlite", "/tmp/a.db", "sqlite:/tmp/a.db");
	check("sqlite:///tmp/a.db", "sqlite", "/tmp/a.db", "sqlite:///tmp/a.db");
	check("events.db", "sqlite", "events.db", "events.db");
	check("postgresql://bob:s3cret@db.example/app", "postgresql",
	      "postgresql://bob:s3cret@db.example/app", "postgresql://bob:***@db.example/app");
	check("postgres://db/app?password=hunter2&sslmode=require", "postgresql",
	      "postgres://db/app?password=hunter2&sslmode=require",
	      "postgres://db/app?password=***&sslmode=require");
	check("host=localhost dbname=app password='a b' user=x", "postgresql",
	      "host=localhost dbname=app password='a b' user=x",
	      "host=localhost dbname=app password=*** user=x");
	check("postgresql:///evf?host=/tmp/s", "postgresql", "postgresql:///evf?host=/tmp/s",
	      "postgresql:///evf?host=/tmp/s");
	/* socket directories and passwords with slashes stay PostgreSQL */
	check("host=/run/postgresql dbname=app password=a/b", "postgresql",
	      "host=/run/postgresql dbname=app password=a/b",
	      "host=/run/postgresql dbname=app password=***");
	check("data/x=y.db", "sqlite", "data/x=y.db", "data/x=y.db");
	evfi_url u;
	assert_int_equal(evfi_url_parse(&u, "mysql://x/y"), EVF_EINVAL);
	assert_non_null(strstr(evf_error_last(), "mysql://"));
	assert_int_equal(evfi_url_parse(&u, ""), EVF_EINVAL);
	assert_int_equal(evfi_url_parse(&u, "sqlite:"), EVF_EINVAL);
}

static void test_identifiers(void **state)
{
	(void)state;
	assert_true(evfi_identifier_ok("evf_event"));
	assert_true(evfi_identifier_ok("_x1"));
	assert_true(evfi_identifier_ok("myapp_eventmodel"));
	assert_false(evfi_identifier_ok("1abc"));
	assert_false(evfi_identifier_ok("a-b"));
	assert_false(evfi_identifier_ok("a\"b"));
	assert_false(evfi_identifier_ok("t; DROP TABLE x"));
	assert_false(evfi_identifier_ok(""));
	assert_false(evfi_identifier_ok(NULL));
	assert_false(evfi_identifier_ok("abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijX"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_urls),
		cmocka_unit_test(test_identifiers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
