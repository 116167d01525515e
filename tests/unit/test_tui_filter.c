/* test_tui_filter.c - evf-top's filter expressions. */
#include "testutil.h"

#include <string.h>

#include "filter.h"

#define NOW (INT64_C(1767323045) * 1000000) /* 2026-01-02 03:04:05 UTC */

static tui_filter parsed(const char *expr)
{
	tui_filter tf;
	char err[256];

	tui_filter_init(&tf);
	if (tui_filter_parse(&tf, expr, NOW, err, sizeof err))
		fail_msg("'%s' did not parse: %s", expr, err);
	return tf;
}

/* The error message of a filter that must not parse. */
static void expect_error(const char *expr, const char *needle)
{
	tui_filter tf;
	char err[256] = "";

	tui_filter_init(&tf);
	assert_int_equal(tui_filter_parse(&tf, expr, NOW, err, sizeof err), -1);
	if (!strstr(err, needle))
		fail_msg("'%s': error '%s' lacks '%s'", expr, err, needle);
	assert_false(tui_filter_active(&tf));
	tui_filter_free(&tf);
}

static void test_each_qualifier(void **state)
{
	(void)state;
	tui_filter tf = parsed("type:order.* state:failed,dead id:12,13 corr:abc "
	                       "error:timeout since:1h until:@1767323000");

	assert_true(tui_filter_active(&tf));
	assert_string_equal(tf.f.type, "order.*");
	assert_int_equal(tf.f.states, (1u << EVF_STATE_FAILED) | (1u << EVF_STATE_DEAD));
	assert_int_equal(tf.f.nids, 2);
	assert_int_equal(tf.f.ids[0], 12);
	assert_int_equal(tf.f.ids[1], 13);
	assert_string_equal(tf.f.correlation_id, "abc");
	assert_true(tf.f.errors);
	assert_string_equal(tf.f.text, "timeout");
	assert_int_equal(tf.f.since, NOW - INT64_C(3600) * 1000000);
	assert_int_equal(tf.f.until, INT64_C(1767323000) * 1000000);
	assert_string_equal(tf.expr, "type:order.* state:failed,dead id:12,13 corr:abc "
	                             "error:timeout since:1h until:@1767323000");
	/* the filter never pages by itself */
	assert_int_equal(tf.f.limit, 0);
	assert_int_equal(tf.f.after_id, 0);
	assert_false(tf.f.all);
	tui_filter_free(&tf);
}

static void test_quotes_and_times(void **state)
{
	(void)state;
	tui_filter tf = parsed("  since:\"2026-01-02 03:04:00\"   corr:\"a b\" ");

	assert_int_equal(tf.f.since, NOW - INT64_C(5) * 1000000);
	assert_string_equal(tf.f.correlation_id, "a b");
	tui_filter_free(&tf);

	/* error: alone keeps only the rows with the error flag */
	tf = parsed("error:");
	assert_true(tf.f.errors);
	assert_null(tf.f.text);
	tui_filter_free(&tf);
}

static void test_empty_is_no_filter(void **state)
{
	(void)state;
	tui_filter tf = parsed("   ");

	assert_false(tui_filter_active(&tf));
	assert_null(tf.expr);
	tui_filter_free(&tf);
	tf = parsed("");
	assert_false(tui_filter_active(&tf));
	tui_filter_free(&tf);
}

static void test_errors(void **state)
{
	(void)state;
	expect_error("timeout", "not QUALIFIER:VALUE");
	expect_error("colour:red", "unknown qualifier 'colour:'");
	expect_error("state:finished", "unknown state 'finished'");
	expect_error("state:failed state:dead", "given twice");
	expect_error("type:a type:b", "given twice");
	expect_error("id:12,x", "bad id list");
	expect_error("id:0", "bad id list");
	expect_error("id:-4", "bad id list");
	expect_error("since:yesterday", "bad since value");
	expect_error("until:", "needs a value");
	expect_error("corr:\"open", "unbalanced");
}

/* A bad expression leaves the filter in force untouched. */
static void test_bad_keeps_previous(void **state)
{
	(void)state;
	tui_filter tf = parsed("type:mail.*");
	char err[256];

	assert_int_equal(tui_filter_parse(&tf, "type:x state:nope", NOW, err, sizeof err), -1);
	assert_string_equal(tf.f.type, "mail.*");
	assert_string_equal(tf.expr, "type:mail.*");
	assert_int_equal(tf.f.states, 0);
	/* and a good one replaces it whole */
	assert_int_equal(tui_filter_parse(&tf, "state:stuck", NOW, err, sizeof err), 0);
	assert_null(tf.f.type);
	assert_int_equal(tf.f.states, 1u << EVF_STATE_STUCK);
	tui_filter_free(&tf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_each_qualifier),
		cmocka_unit_test(test_quotes_and_times),
		cmocka_unit_test(test_empty_is_no_filter),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_bad_keeps_previous),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
