/* test_tui_rowfmt.c - evf-top's row layout, numbers, bar and sparkline. */
#include "testutil.h"

#include <stdio.h>
#include <string.h>

#include "rowfmt.h"

#define SEC INT64_C(1000000)

/* Columns of a UTF-8 string, one per sequence. */
static int columns(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += ((unsigned char)*s & 0xC0) != 0x80;
	return n;
}

static void test_fit(void **state)
{
	(void)state;
	char buf[64];

	assert_string_equal(tui_fit(buf, sizeof buf, "abc", 5), "abc  ");
	assert_string_equal(tui_fit(buf, sizeof buf, "abcdef", 4), "abcd");
	assert_string_equal(tui_fit(buf, sizeof buf, NULL, 3), "   ");
	/* first line only, control characters blanked */
	assert_string_equal(tui_fit(buf, sizeof buf, "a\tb\nsecond", 6), "a b   ");
	/* cut between characters, never inside one */
	tui_fit(buf, sizeof buf, "h\xc3\xa9llo", 2);
	assert_string_equal(buf, "h\xc3\xa9");
	assert_int_equal(columns(tui_fit(buf, sizeof buf, "\xc3\xa9\xc3\xa9", 4)), 4);
	/* a small buffer is never overrun */
	assert_string_equal(tui_fit(buf, 4, "abcdef", 10), "abc");
}

static void test_ages_counts_rates(void **state)
{
	(void)state;
	char b[32];

	assert_string_equal(tui_fmt_age(b, sizeof b, -5 * SEC), "0s");
	assert_string_equal(tui_fmt_age(b, sizeof b, 45 * SEC + 999999), "45s");
	assert_string_equal(tui_fmt_age(b, sizeof b, 330 * SEC), "5m30s");
	assert_string_equal(tui_fmt_age(b, sizeof b, 2 * 3600 * SEC + 300 * SEC), "2h05m");
	assert_string_equal(tui_fmt_age(b, sizeof b, (3 * 86400 + 4 * 3600) * SEC), "3d04h");
	assert_string_equal(tui_fmt_age(b, sizeof b, INT64_C(400) * 86400 * SEC), "400d");

	assert_string_equal(tui_fmt_count(b, sizeof b, 0), "0");
	assert_string_equal(tui_fmt_count(b, sizeof b, 9999), "9999");
	assert_string_equal(tui_fmt_count(b, sizeof b, 12345), "12.3k");
	assert_string_equal(tui_fmt_count(b, sizeof b, 123456), "123k");
	assert_string_equal(tui_fmt_count(b, sizeof b, 4500000), "4.5M");
	assert_string_equal(tui_fmt_count(b, sizeof b, INT64_C(1200000000)), "1.2G");
	for (int64_t n = 1; n < INT64_C(1000000000000); n = n * 7 + 3)
		assert_true(strlen(tui_fmt_count(b, sizeof b, n)) <= 5);

	assert_string_equal(tui_fmt_rate(b, sizeof b, 0.01), "0");
	assert_string_equal(tui_fmt_rate(b, sizeof b, 0.44), "0.4");
	assert_string_equal(tui_fmt_rate(b, sizeof b, 12.4), "12");
	assert_string_equal(tui_fmt_rate(b, sizeof b, 12345), "12.3k");
}

static evf_event sample(void)
{
	evf_event ev;

	memset(&ev, 0, sizeof ev);
	ev.id = 42;
	ev.type = "order.created";
	ev.parameters = "{}";
	ev.state = EVF_STATE_FAILED;
	ev.attempts = 2;
	ev.max_attempts = 5;
	ev.priority = -1;
	ev.date = 1000 * SEC;
	ev.not_before = 1100 * SEC;
	ev.error = true;
	ev.error_message = "connection refused\nat line 2";
	return ev;
}

static void test_rows(void **state)
{
	(void)state;
	tui_columns c;
	evf_event ev = sample();
	char row[512], head[512], want[512];

	for (int width = 60; width <= 200; width += 20) {
		tui_columns_for_width(&c, width);
		tui_format_header(head, sizeof head, &c);
		tui_format_row(row, sizeof row, &c, &ev, false, 1030 * SEC);
		assert_int_equal(columns(head), width);
		assert_int_equal(columns(row), width);
		/* the state sits where the screens colour it */
		assert_memory_equal(row + tui_columns_state_at(&c), "failed", 6);
		assert_memory_equal(head + tui_columns_state_at(&c), "STATE", 5);
	}
	tui_columns_for_width(&c, 80);
	tui_format_row(row, sizeof row, &c, &ev, true, 1030 * SEC);
	snprintf(want, sizeof want, "*%8s %-17s %-9s %5s %4s %6s %6s %-17s", "42",
	         "order.created", "failed", "2/5", "-1", "30s", "1m10s", "connection refuse");
	assert_string_equal(row, want);
}

static void test_next(void **state)
{
	(void)state;
	evf_event ev = sample();
	char b[32];

	assert_string_equal(tui_fmt_next(b, sizeof b, &ev, 1030 * SEC), "1m10s");
	assert_string_equal(tui_fmt_next(b, sizeof b, &ev, 2000 * SEC), "now");
	ev.state = EVF_STATE_RUNNING;
	ev.locked_until = 1060 * SEC;
	assert_string_equal(tui_fmt_next(b, sizeof b, &ev, 1030 * SEC), "30s");
	ev.state = EVF_STATE_DONE;
	assert_string_equal(tui_fmt_next(b, sizeof b, &ev, 1030 * SEC), "-");
}

static int sum(const int w[EVF_STATE__COUNT])
{
	int s = 0;

	for (int i = 0; i < EVF_STATE__COUNT; i++)
		s += w[i];
	return s;
}

static void test_bar(void **state)
{
	(void)state;
	int64_t counts[EVF_STATE__COUNT] = { 0 };
	int w[EVF_STATE__COUNT];

	tui_bar_widths(counts, 80, w);
	assert_int_equal(sum(w), 0);

	counts[EVF_STATE_PENDING] = 1;
	counts[EVF_STATE_DONE] = 3;
	tui_bar_widths(counts, 80, w);
	assert_int_equal(w[EVF_STATE_PENDING], 20);
	assert_int_equal(w[EVF_STATE_DONE], 60);

	/* one stuck event among millions still gets its column */
	counts[EVF_STATE_DONE] = 5000000;
	counts[EVF_STATE_STUCK] = 1;
	tui_bar_widths(counts, 79, w);
	assert_int_equal(sum(w), 79);
	assert_int_equal(w[EVF_STATE_STUCK], 1);
	assert_int_equal(w[EVF_STATE_PENDING], 1);

	/* fewer columns than states present: still exactly the width */
	for (int i = 0; i < EVF_STATE__COUNT; i++)
		counts[i] = i + 1;
	tui_bar_widths(counts, 3, w);
	assert_int_equal(sum(w), 3);
	tui_bar_widths(counts, 100, w);
	assert_int_equal(sum(w), 100);
}

static void test_rate_and_sparkline(void **state)
{
	(void)state;
	tui_rate r;
	char b[256];

	tui_rate_init(&r);
	tui_rate_push(&r, 10 * SEC, 100, 5);
	assert_int_equal(r.n, 0);
	assert_true(tui_rate_done(&r) == 0);
	tui_rate_push(&r, 12 * SEC, 120, 9);
	assert_true(tui_rate_done(&r) == 10.0);
	assert_true(tui_rate_failed(&r) == 2.0);
	/* a requeue lowers the failed count: no negative rate */
	tui_rate_push(&r, 14 * SEC, 120, 1);
	assert_true(tui_rate_done(&r) == 0);
	assert_true(tui_rate_failed(&r) == 0);
	/* a clock that did not move adds nothing */
	tui_rate_push(&r, 14 * SEC, 500, 1);
	assert_int_equal(r.n, 2);
	for (int i = 0; i < 100; i++)
		tui_rate_push(&r, (20 + i) * SEC, 500 + i, 1);
	assert_int_equal(r.n, TUI_RATE_HISTORY);

	double vals[] = { 0, 1, 2, 4, 8 };
	assert_string_equal(tui_sparkline(b, sizeof b, vals, 5, 5, false), " .:=#");
	/* padded on the left, newest at the right */
	assert_string_equal(tui_sparkline(b, sizeof b, vals, 5, 7, false), "   .:=#");
	/* the last `width` samples only */
	assert_string_equal(tui_sparkline(b, sizeof b, vals, 5, 2, false), "=#");
	assert_string_equal(tui_sparkline(b, sizeof b, vals, 5, 2, true), "\u2585\u2588");
	assert_int_equal(columns(tui_sparkline(b, sizeof b, vals, 5, 10, true)), 10);
	double zeros[] = { 0, 0 };
	assert_string_equal(tui_sparkline(b, sizeof b, zeros, 2, 2, false), "  ");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fit),
		cmocka_unit_test(test_ages_counts_rates),
		cmocka_unit_test(test_rows),
		cmocka_unit_test(test_next),
		cmocka_unit_test(test_bar),
		cmocka_unit_test(test_rate_and_sparkline),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
