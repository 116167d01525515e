/* test_timefmt.c - durations and timestamps. */
#include "testutil.h"

#include <string.h>

static void test_durations(void **state)
{
	(void)state;
	int64_t ms;
	struct { const char *in; int64_t ms; } ok[] = {
		{ "500ms", 500 }, { "30s", 30000 }, { "5m", 300000 }, { "2h", 7200000 },
		{ "7d", 604800000 }, { "1h30m", 5400000 }, { "10", 10000 }, { "1.5s", 1500 },
		{ "0", 0 }, { "1w", 604800000 },
	};
	for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
		EVF_OK_OR_FAIL(evf_duration_parse(&ms, ok[i].in));
		assert_int_equal(ms, ok[i].ms);
	}
	const char *bad[] = { "", "-5s", "5x", "s", "1e3", "0x10", "5 s", "1h30", "99999999999999999999d", "1..2s" };
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		assert_int_equal(evf_duration_parse(&ms, bad[i]), EVF_EINVAL);
		assert_non_null(strstr(evf_error_last(), "duration"));
	}
}

static void test_times(void **state)
{
	(void)state;
	evf_time t;
	char buf[40];
	EVF_OK_OR_FAIL(evf_time_parse(&t, "1970-01-01T00:00:01Z"));
	assert_int_equal(t, 1000000);
	EVF_OK_OR_FAIL(evf_time_parse(&t, "2026-01-02 03:04:05.123456"));
	assert_string_equal(evf_time_format(buf, sizeof buf, t), "2026-01-02 03:04:05.123456");
	EVF_OK_OR_FAIL(evf_time_parse(&t, "2026-01-02T04:04:05+01:00"));
	assert_string_equal(evf_time_format(buf, sizeof buf, t), "2026-01-02 03:04:05.000000");
	EVF_OK_OR_FAIL(evf_time_parse(&t, "2024-02-29"));
	assert_string_equal(evf_time_format(buf, sizeof buf, t), "2024-02-29 00:00:00.000000");
	EVF_OK_OR_FAIL(evf_time_parse(&t, "@86400"));
	assert_int_equal(t, 86400LL * 1000000);
	/* Django writes microseconds only when there are some */
	EVF_OK_OR_FAIL(evf_time_parse(&t, "2026-01-02 03:04:05.5"));
	assert_string_equal(evf_time_format(buf, sizeof buf, t), "2026-01-02 03:04:05.500000");
	const char *bad[] = { "", "yesterday", "2026-13-01", "2026-01-02T25:00", "2026-01-02X", "@x", "2026-1-2" };
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		assert_int_equal(evf_time_parse(&t, bad[i]), EVF_EINVAL);
	/* a time, or a duration before now */
	EVF_OK_OR_FAIL(evf_when_parse(&t, "2h", 10000000000LL));
	assert_int_equal(t, 10000000000LL - 7200LL * 1000000);
	EVF_OK_OR_FAIL(evf_when_parse(&t, "@5", 10000000000LL));
	assert_int_equal(t, 5000000);
	assert_int_equal(evf_when_parse(&t, "soon", 1), EVF_EINVAL);
	/* text order is time order, which the SQLite backend relies on */
	char a[40], b[40];
	evf_time_format(a, sizeof a, 1000000);
	evf_time_format(b, sizeof b, 1000001);
	assert_true(strcmp(a, b) < 0);
}

/* The largest two units, and what comes out parses back to the input
 * (to the precision kept). */
static void test_duration_format(void **state)
{
	static const struct { int64_t ms; const char *text; int64_t back; } cases[] = {
		{ -5, "0s", 0 }, { 0, "0s", 0 }, { 1, "1ms", 1 }, { 999, "999ms", 999 },
		{ 1000, "1s", 1000 }, { 1500, "1s", 1000 }, { 59000, "59s", 59000 },
		{ 60000, "1m", 60000 }, { 432000, "7m12s", 432000 }, { 900000, "15m", 900000 },
		{ 3660000, "1h1m", 3660000 }, { 3661000, "1h1m", 3660000 },
		{ 86400000, "1d", 86400000 }, { 187200000, "2d4h", 187200000 },
	};
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		char buf[32];
		int64_t back;
		assert_string_equal(evf_duration_format(buf, sizeof buf, cases[i].ms),
		                    cases[i].text);
		EVF_OK_OR_FAIL(evf_duration_parse(&back, buf));
		assert_int_equal(back, cases[i].back);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_times),
		cmocka_unit_test(test_duration_format),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
