/*
 * screen_detail.c - one event: every column, the parameters as indented
 * JSON, the full error, and the events that share its correlation id.
 *
 * The view is rendered into lines at fetch time; drawing and scrolling
 * then only index into them.
 */
#include "app.h"

#include <cjson/cJSON.h>
#include <curses.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ui.h"

enum { RELATED_SHOWN = 50 };

/* Lines start with a kind byte: 'T' a title, ' ' plain text. */
struct lines {
	char **v;
	size_t n, cap;
	bool oom;
};

static void add(struct lines *l, char kind, const char *fmt, ...) EVF_PRINTF(3, 4);
static void add(struct lines *l, char kind, const char *fmt, ...)
{
	char buf[4096];
	va_list ap;

	if (l->oom)
		return;
	buf[0] = kind;
	va_start(ap, fmt);
	vsnprintf(buf + 1, sizeof buf - 1, fmt, ap);
	va_end(ap);
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		char **v = realloc(l->v, cap * sizeof *v);

		if (!v) {
			l->oom = true;
			return;
		}
		l->v = v;
		l->cap = cap;
	}
	if (!(l->v[l->n] = strdup(buf))) {
		l->oom = true;
		return;
	}
	l->n++;
}

/* Each line of a multi-line text, indented. */
static void add_text(struct lines *l, const char *text)
{
	const char *s = text;

	while (*s) {
		size_t n = strcspn(s, "\n");

		add(l, ' ', "  %.*s", (int)n, s);
		s += n;
		if (*s == '\n')
			s++;
	}
}

static void add_time(struct lines *l, const char *name, evf_time t, evf_time now)
{
	char when[40], rel[16];

	if (!t) {
		add(l, ' ', "%-16s -", name);
		return;
	}
	evf_time_format(when, sizeof when, t);
	tui_fmt_age(rel, sizeof rel, t > now ? t - now : now - t);
	add(l, ' ', "%-16s %s UTC (%s %s)", name, when, t > now ? "in" : rel, t > now ? rel : "ago");
}

static void render(struct lines *l, const evf_event *ev, evf_event **related,
                   size_t nrelated, evf_time now)
{
	cJSON *params = cJSON_Parse(ev->parameters);
	char *pretty = params ? cJSON_Print(params) : NULL;

	add(l, 'T', "Event %" PRId64, ev->id);
	add(l, ' ', "%-16s %s", "type", ev->type);
	add(l, ' ', "%-16s %s", "state", evf_state_name(ev->state));
	add(l, ' ', "%-16s %d of %d", "attempts", ev->attempts, ev->max_attempts);
	add(l, ' ', "%-16s %d", "priority", ev->priority);
	add_time(l, "date", ev->date, now);
	add_time(l, "not_before", ev->not_before, now);
	add(l, ' ', "%-16s %s%s%s", "flags", ev->processed ? "processed " : "",
	    ev->error ? "error " : "", ev->dead ? "dead" : "");
	add_time(l, "processed_at", ev->processed_at, now);
	add_time(l, "last_error_at", ev->last_error_at, now);
	add(l, ' ', "%-16s %s", "locked_by", ev->locked_by ? ev->locked_by : "-");
	add_time(l, "locked_until", ev->locked_until, now);
	add(l, ' ', "%-16s %s", "idempotency_key", ev->idempotency_key ? ev->idempotency_key : "-");
	add(l, ' ', "%-16s %s", "correlation_id", ev->correlation_id ? ev->correlation_id : "-");
	add(l, ' ', "%-16s %s", "error_code", ev->error_code ? ev->error_code : "-");
	add(l, ' ', "%s", "");
	add(l, 'T', "Error");
	add_text(l, ev->error_message && *ev->error_message ? ev->error_message : "-");
	add(l, ' ', "%s", "");
	add(l, 'T', "Parameters");
	add_text(l, pretty ? pretty : ev->parameters);
	cJSON_free(pretty);
	cJSON_Delete(params);
	if (!ev->correlation_id)
		return;
	add(l, ' ', "%s", "");
	add(l, 'T', "Events with correlation id %s (%zu%s)", ev->correlation_id, nrelated,
	    nrelated == RELATED_SHOWN ? " shown" : "");
	for (size_t i = 0; i < nrelated; i++) {
		char age[16];

		tui_fmt_age(age, sizeof age, now - related[i]->date);
		add(l, ' ', "%c %8" PRId64 " %-24s %-9s %6s ago", related[i]->id == ev->id ? '>' : ' ',
		    related[i]->id, related[i]->type, evf_state_name(related[i]->state), age);
	}
}

static int detail_fetch(tui_app *app)
{
	tui_detail *d = &app->detail;
	evf_event *ev = NULL, **related = NULL;
	size_t nrelated = 0;
	struct lines l = { NULL, 0, 0, false };
	int rc = evf_get(app->db, d->id, &ev);

	if (rc == EVF_ENOTFOUND) {
		app_detail_clear(d);
		return 0; /* drawn as "no longer exists", not a database problem */
	}
	if (rc)
		return rc;
	if (ev->correlation_id) {
		evf_filter f = EVF_FILTER_INIT;

		f.correlation_id = ev->correlation_id;
		f.limit = RELATED_SHOWN;
		if ((rc = app_query_rows(app, &f, &related, &nrelated)) != 0) {
			evf_event_free(ev);
			return rc;
		}
	}
	render(&l, ev, related, nrelated, app->overview.now ? app->overview.now : evf_now());
	app_free_rows(related, nrelated);
	int scroll = d->scroll;
	app_detail_clear(d);
	d->ev = ev;
	d->lines = l.v;
	d->nlines = l.n;
	d->scroll = scroll;
	if (l.oom)
		app_message(app, true, "out of memory: the detail view is cut short");
	return 0;
}

static void detail_draw(tui_app *app, int top, int rows)
{
	tui_detail *d = &app->detail;

	if (!d->ev) {
		char line[128];

		snprintf(line, sizeof line, "event %" PRId64 " does not exist (any more)", d->id);
		ui_text(top + 1, 2, COLS - 2, A_BOLD, line);
		return;
	}
	if (d->scroll > (int)d->nlines - rows)
		d->scroll = (int)d->nlines > rows ? (int)d->nlines - rows : 0;
	for (int i = 0; i < rows && d->scroll + i < (int)d->nlines; i++) {
		const char *s = d->lines[d->scroll + i];

		ui_line(top + i, s[0] == 'T' ? ui_title_attr(app) : (int)A_NORMAL, s + 1);
		if (strncmp(s + 1, "state ", 6) == 0)
			ui_text(top + i, 17, 9, ui_state_attr(app, d->ev->state),
			        evf_state_name(d->ev->state));
	}
}

static int detail_navigate(tui_app *app, int delta)
{
	tui_detail *d = &app->detail;

	if (delta == TUI_MOVE_HOME)
		d->scroll = 0;
	else if (delta == TUI_MOVE_END)
		d->scroll = (int)d->nlines;
	else
		d->scroll += delta;
	if (d->scroll < 0)
		d->scroll = 0;
	return TUI_REDRAW;
}

static int64_t detail_selected(const tui_app *app)
{
	return app->detail.ev ? app->detail.id : 0;
}

const tui_screen_ops tui_screen_detail = {
	"detail", detail_fetch, detail_draw, detail_navigate, NULL, detail_selected, NULL
};
