/*
 * rowfmt.c - plain-text layout of evf-top's rows and header numbers.
 *
 * Everything here writes fixed-width text so that columns line up without
 * curses knowing about them; the screens colour ranges of these buffers.
 */
#include "rowfmt.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define US_PER_SEC INT64_C(1000000)

static bool utf8_continuation(unsigned char c)
{
	return (c & 0xC0) == 0x80;
}

char *tui_fit(char *dst, size_t dstlen, const char *src, int width)
{
	size_t o = 0;
	int cols = 0;

	if (dstlen == 0)
		return dst;
	for (const char *s = src ? src : ""; *s && *s != '\n' && *s != '\r' && cols < width;) {
		unsigned char c = (unsigned char)*s;
		size_t n = 1;

		if (c >= 0x80)
			while (utf8_continuation((unsigned char)s[n]))
				n++;
		if (o + n >= dstlen)
			break;
		if (c < 0x20 || c == 0x7F)
			dst[o] = ' ';
		else
			memcpy(dst + o, s, n);
		o += (c < 0x20 || c == 0x7F) ? 1 : n;
		s += n;
		cols++;
	}
	for (; cols < width && o + 1 < dstlen; cols++)
		dst[o++] = ' ';
	dst[o] = '\0';
	return dst;
}

char *tui_fmt_age(char *buf, size_t len, int64_t us)
{
	int64_t s = us > 0 ? us / US_PER_SEC : 0;

	if (s < 60)
		snprintf(buf, len, "%" PRId64 "s", s);
	else if (s < 3600)
		snprintf(buf, len, "%" PRId64 "m%02" PRId64 "s", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, len, "%" PRId64 "h%02" PRId64 "m", s / 3600, s % 3600 / 60);
	else if (s < 100 * 86400)
		snprintf(buf, len, "%" PRId64 "d%02" PRId64 "h", s / 86400, s % 86400 / 3600);
	else
		snprintf(buf, len, "%" PRId64 "d", s / 86400);
	return buf;
}

/* One decimal below 100 units, none above, so that five columns suffice. */
static void scaled(char *buf, size_t len, double v, char unit)
{
	if (v < 99.95)
		snprintf(buf, len, "%.1f%c", v, unit);
	else
		snprintf(buf, len, "%.0f%c", v, unit);
}

char *tui_fmt_count(char *buf, size_t len, int64_t n)
{
	if (n < 10000)
		snprintf(buf, len, "%" PRId64, n);
	else if (n < INT64_C(999500))
		scaled(buf, len, (double)n / 1e3, 'k');
	else if (n < INT64_C(999500000))
		scaled(buf, len, (double)n / 1e6, 'M');
	else
		scaled(buf, len, (double)n / 1e9, 'G');
	return buf;
}

char *tui_fmt_rate(char *buf, size_t len, double per_sec)
{
	if (per_sec < 0.05)
		snprintf(buf, len, "0");
	else if (per_sec < 9.95)
		snprintf(buf, len, "%.1f", per_sec);
	else if (per_sec < 9999.5)
		snprintf(buf, len, "%.0f", per_sec);
	else
		scaled(buf, len, per_sec / 1e3, 'k');
	return buf;
}

/* ---- the event list ------------------------------------------------------ */

enum { TYPE_MIN = 6, TYPE_MAX = 24 };

void tui_columns_for_width(tui_columns *c, int width)
{
	int fixed, rest;

	c->mark = 1;
	c->id = 8;
	c->state = 9;
	c->attempts = 5;
	c->prio = 4;
	c->age = 6;
	c->next = 6;
	/* the fixed columns and the eight spaces between the nine columns */
	fixed = c->mark + c->id + c->state + c->attempts + c->prio + c->age + c->next + 7;
	rest = width - fixed;
	c->type = rest / 2;
	if (c->type < TYPE_MIN)
		c->type = TYPE_MIN;
	if (c->type > TYPE_MAX)
		c->type = TYPE_MAX;
	c->error = rest - c->type;
	if (c->error < 0)
		c->error = 0;
}

int tui_columns_state_at(const tui_columns *c)
{
	return c->mark + c->id + 1 + c->type + 1;
}

static char *layout(char *buf, size_t len, const tui_columns *c, const char *mark,
                    const char *id, const char *type, const char *state,
                    const char *attempts, const char *prio, const char *age,
                    const char *next, const char *error)
{
	char f_mark[8], f_type[4 * TYPE_MAX + 1], f_state[40], f_err[1024];

	tui_fit(f_mark, sizeof f_mark, mark, c->mark);
	tui_fit(f_type, sizeof f_type, type, c->type);
	tui_fit(f_state, sizeof f_state, state, c->state);
	tui_fit(f_err, sizeof f_err, error, c->error);
	snprintf(buf, len, "%s%*.*s %s %s %*.*s %*.*s %*.*s %*.*s%s%s", f_mark,
	         c->id, c->id, id, f_type, f_state, c->attempts, c->attempts, attempts,
	         c->prio, c->prio, prio, c->age, c->age, age, c->next, c->next, next,
	         c->error > 0 ? " " : "", c->error > 0 ? f_err : "");
	return buf;
}

char *tui_format_header(char *buf, size_t len, const tui_columns *c)
{
	return layout(buf, len, c, " ", "ID", "TYPE", "STATE", "TRIES", "PRIO", "AGE",
	              "NEXT", "ERROR");
}

char *tui_fmt_next(char *buf, size_t len, const evf_event *ev, evf_time now)
{
	evf_time at = 0;

	if (ev->state == EVF_STATE_FAILED || ev->state == EVF_STATE_SCHEDULED)
		at = ev->not_before;
	else if (ev->state == EVF_STATE_RUNNING)
		at = ev->locked_until;
	if (at == 0)
		snprintf(buf, len, "-");
	else if (at <= now)
		snprintf(buf, len, "now");
	else
		tui_fmt_age(buf, len, at - now);
	return buf;
}

char *tui_format_row(char *buf, size_t len, const tui_columns *c,
                     const evf_event *ev, bool tagged, evf_time now)
{
	char id[24], attempts[24], prio[16], age[16], next[16];

	snprintf(id, sizeof id, "%" PRId64, ev->id);
	snprintf(attempts, sizeof attempts, "%d/%d", ev->attempts, ev->max_attempts);
	snprintf(prio, sizeof prio, "%d", ev->priority);
	tui_fmt_age(age, sizeof age, now - ev->date);
	tui_fmt_next(next, sizeof next, ev, now);
	/* A retry that succeeded keeps its old message in the row; only show
	 * it while the error flag says the last attempt failed. */
	return layout(buf, len, c, tagged ? "*" : " ", id, ev->type,
	              evf_state_name(ev->state), attempts, prio, age, next,
	              ev->error ? ev->error_message : NULL);
}

/* ---- the header ---------------------------------------------------------- */

void tui_bar_widths(const int64_t counts[EVF_STATE__COUNT], int width,
                    int out[EVF_STATE__COUNT])
{
	double total = 0, rem[EVF_STATE__COUNT];
	int used = 0;

	for (int i = 0; i < EVF_STATE__COUNT; i++) {
		out[i] = 0;
		if (counts[i] > 0)
			total += (double)counts[i];
	}
	if (total == 0 || width <= 0)
		return;
	for (int i = 0; i < EVF_STATE__COUNT; i++) {
		double exact = counts[i] > 0 ? (double)counts[i] / total * width : 0;

		out[i] = (int)exact;
		rem[i] = counts[i] > 0 ? exact - out[i] : -1;
		used += out[i];
	}
	/* the floors leave fewer spare columns than there are states present,
	 * so each largest remainder gets at most one */
	while (used < width) {
		int best = -1;

		for (int i = 0; i < EVF_STATE__COUNT; i++)
			if (rem[i] >= 0 && (best < 0 || rem[i] > rem[best]))
				best = i;
		if (best < 0)
			break;
		out[best]++;
		rem[best] = -1;
		used++;
	}
	/* a state present keeps one column, taken from the widest, so that a
	 * lone stuck event among millions of done ones still shows */
	for (int i = 0; i < EVF_STATE__COUNT; i++) {
		int widest = 0;

		if (counts[i] <= 0 || out[i] > 0)
			continue;
		for (int j = 1; j < EVF_STATE__COUNT; j++)
			if (out[j] > out[widest])
				widest = j;
		if (out[widest] > 1) {
			out[widest]--;
			out[i]++;
		}
	}
}

void tui_rate_init(tui_rate *r)
{
	memset(r, 0, sizeof *r);
}

static void append(double *hist, size_t n, double v)
{
	if (n == TUI_RATE_HISTORY) {
		memmove(hist, hist + 1, (TUI_RATE_HISTORY - 1) * sizeof *hist);
		hist[TUI_RATE_HISTORY - 1] = v;
	} else {
		hist[n] = v;
	}
}

void tui_rate_push(tui_rate *r, evf_time at, int64_t done, int64_t failed)
{
	if (r->have_base && at > r->base_at) {
		double dt = (double)(at - r->base_at) / (double)US_PER_SEC;
		int64_t dd = done - r->base_done, df = failed - r->base_failed;

		append(r->done, r->n, dd > 0 ? (double)dd / dt : 0);
		append(r->failed, r->n, df > 0 ? (double)df / dt : 0);
		if (r->n < TUI_RATE_HISTORY)
			r->n++;
	} else if (r->have_base) {
		return; /* the clock did not move: nothing to divide by */
	}
	r->have_base = true;
	r->base_at = at;
	r->base_done = done;
	r->base_failed = failed;
}

double tui_rate_done(const tui_rate *r)
{
	return r->n ? r->done[r->n - 1] : 0;
}

double tui_rate_failed(const tui_rate *r)
{
	return r->n ? r->failed[r->n - 1] : 0;
}

char *tui_sparkline(char *buf, size_t len, const double *vals, size_t n,
                    int width, bool utf8)
{
	static const char *const blocks[8] = {
		"\u2581", "\u2582", "\u2583", "\u2584", "\u2585", "\u2586", "\u2587", "\u2588"
	};
	static const char ascii[] = " .:-=+*#";
	size_t first = n > (size_t)width ? n - (size_t)width : 0, o = 0;
	double max = 0;

	if (len == 0)
		return buf;
	for (size_t i = first; i < n; i++)
		if (vals[i] > max)
			max = vals[i];
	/* pad on the left so that the newest sample is always at the right */
	for (int i = (int)(n - first); i < width && o + 1 < len; i++)
		buf[o++] = ' ';
	for (size_t i = first; i < n; i++) {
		int level = max > 0 ? (int)(vals[i] / max * 7 + 0.5) : 0;
		const char *glyph;
		char one[2] = { 0, 0 };

		if (level == 0 && vals[i] > 0)
			level = 1;
		if (utf8) {
			glyph = blocks[level];
		} else {
			one[0] = ascii[level];
			glyph = one;
		}
		size_t gl = strlen(glyph);
		if (o + gl >= len)
			break;
		memcpy(buf + o, glyph, gl);
		o += gl;
	}
	buf[o] = '\0';
	return buf;
}
