/* test_backoff.c - retry delays. */
#include "testutil.h"

static void test_backoff_grows_and_caps(void **state)
{
	(void)state;
	/* r = 0: the fixed half */
	assert_int_equal(evf_backoff_ms(1, 1000, 3600000, 0), 500);
	assert_int_equal(evf_backoff_ms(2, 1000, 3600000, 0), 1000);
	assert_int_equal(evf_backoff_ms(3, 1000, 3600000, 0), 2000);
	/* r near 1: close to the full step */
	assert_in_range(evf_backoff_ms(3, 1000, 3600000, 0.999), 3990, 4000);
	/* capped, and no overflow for huge attempt counts */
	assert_in_range(evf_backoff_ms(40, 1000, 3600000, 0.5), 1800000, 3600000);
	assert_in_range(evf_backoff_ms(100000, 1000, 3600000, 0.999), 1800000, 3600000);
	/* nonsense inputs are clamped, not trusted */
	assert_int_equal(evf_backoff_ms(0, 1000, 3600000, 0), 500);
	assert_int_equal(evf_backoff_ms(1, 1000, 3600000, 7.0), 500);
}

static void test_backoff_jitter_spreads(void **state)
{
	(void)state;
	int64_t lo = evf_backoff_ms(5, 1000, 3600000, 0.0);
	int64_t hi = evf_backoff_ms(5, 1000, 3600000, 0.99);
	assert_true(hi > lo);
	assert_true(lo >= 8000 && hi < 16000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backoff_grows_and_caps),
		cmocka_unit_test(test_backoff_jitter_spreads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
