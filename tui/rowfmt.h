/*
 * rowfmt.h - evf-top's text layout, kept free of curses: event rows, column
 * widths, ages, compact numbers, the stacked bar and the throughput
 * history with its sparkline all format into plain buffers, so the unit
 * tests can check them and the screens only add colour.
 *
 * Widths count terminal columns; every UTF-8 sequence counts as one (the
 * types and messages evf-top shows are expected to be narrow characters).
 */
#ifndef EVF_TUI_ROWFMT_H
#define EVF_TUI_ROWFMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "evf.h"

/* Copy the first line of src into dst (dstlen bytes) cut or padded with
 * spaces to exactly width columns; control characters become spaces and
 * cuts fall on UTF-8 boundaries.  src may be NULL (blank).  Returns dst. */
char *tui_fit(char *dst, size_t dstlen, const char *src, int width);

/* Compact age of a span in microseconds: "0s", "45s", "5m30s", "2h05m",
 * "3d04h"; at most 6 columns; negative spans print as "0s". */
char *tui_fmt_age(char *buf, size_t len, int64_t us);

/* Counts that fit 5 columns: "1234", "12.3k", "4.5M", "1.2G". */
char *tui_fmt_count(char *buf, size_t len, int64_t n);

/* Rates per second: "0", "0.4", "12", "1.2k". */
char *tui_fmt_rate(char *buf, size_t len, double per_sec);

/* ---- the event list ------------------------------------------------------ */

/* Column widths of the event list for a screen of `width` columns. */
typedef struct tui_columns {
	int mark, id, type, state, attempts, prio, age, next, error;
} tui_columns;

void tui_columns_for_width(tui_columns *c, int width);
/* Offset of the STATE column, where the screens put its colour. */
int tui_columns_state_at(const tui_columns *c);
/* The title row of the list. */
char *tui_format_header(char *buf, size_t len, const tui_columns *c);
/* One event: mark (tagged) id type state attempts/max priority age next-run
 * first-line-of-error.  `now` is the database clock. */
char *tui_format_row(char *buf, size_t len, const tui_columns *c,
                     const evf_event *ev, bool tagged, evf_time now);
/* When the event next matters: the retry or schedule time for failed and
 * scheduled events, the lease end for running ones, else "-". */
char *tui_fmt_next(char *buf, size_t len, const evf_event *ev, evf_time now);

/* ---- the header ---------------------------------------------------------- */

/* Split `width` columns between the states in proportion to counts (largest
 * remainder; a non-zero count gets at least one column while columns
 * last).  out[] sums to width when any count is non-zero, else to 0. */
void tui_bar_widths(const int64_t counts[EVF_STATE__COUNT], int width,
                    int out[EVF_STATE__COUNT]);

#define TUI_RATE_HISTORY 32

/* Throughput derived from the change of the done and failed+dead counts
 * between two refreshes. */
typedef struct tui_rate {
	bool have_base;
	evf_time base_at;
	int64_t base_done, base_failed;
	size_t n;                           /* samples held, <= TUI_RATE_HISTORY */
	double done[TUI_RATE_HISTORY];      /* oldest first, per second */
	double failed[TUI_RATE_HISTORY];
} tui_rate;

void tui_rate_init(tui_rate *r);
/* Record the counts seen at `at`; adds a sample once a base exists.  Counts
 * that go down (a requeue) count as zero throughput, never negative. */
void tui_rate_push(tui_rate *r, evf_time at, int64_t done, int64_t failed);
/* Latest rates (0 before the second refresh). */
double tui_rate_done(const tui_rate *r);
double tui_rate_failed(const tui_rate *r);

/* The last `width` values as a sparkline scaled to their maximum: the
 * eight block characters when utf8, else " .:-=+*#".  Returns buf. */
char *tui_sparkline(char *buf, size_t len, const double *vals, size_t n,
                    int width, bool utf8);

#endif
