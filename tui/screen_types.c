/*
 * screen_types.c - counts by state for every event type (evf_stats_get)
 * with each type's error rate: failed and dead events as a share of all.
 */
#include "app.h"

#include <curses.h>
#include <stdbool.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "background.h"
#include "ui.h"

enum { COUNT_WIDTH = 6, RATE_WIDTH = 6 };

/* Take the newest counts from the background thread, if any: true when
 * there were. */
static bool take_counts(tui_app *app)
{
	evf_time at;
	int64_t took;
	char error[256];
	evf_stats *s = tui_bg_take(app->bg, &at, &took, error, sizeof error);

	if (error[0])
		app_message(app, true, "per-type counts: %s", error);
	if (!s)
		return error[0] != '\0';
	evf_stats_free(app->stats);
	app->stats = s;
	app->stats_at = at;
	app->stats_took_ms = took;
	if (app->types_sel >= (int)s->ntypes)
		app->types_sel = s->ntypes ? (int)s->ntypes - 1 : 0;
	return true;
}

/* Show the newest counts and ask for more: at every refresh while
 * counting is quick, but no more than a tenth of the time when it is slow
 * (a second at a million events). */
static int types_fetch(tui_app *app)
{
	if (!app->bg && tui_bg_start(&app->bg, app->url, app->table) != 0)
		return EVF_ENOMEM;
	take_counts(app);
	int64_t wait_ms = app->stats_took_ms * 10 > app->interval_ms ? app->stats_took_ms * 10
	                                                             : app->interval_ms;
	if (!app->stats || evf_now() - app->stats_at >= (wait_ms - 100) * 1000)
		tui_bg_request(app->bg);
	return 0;
}

/* Counts that arrive between refreshes are shown at once. */
static int types_poll(tui_app *app)
{
	return app->bg && take_counts(app) ? TUI_REDRAW : 0;
}

static int type_width(void)
{
	/* the seven states, total and error rate, each with a space before */
	int w = COLS - (EVF_STATE__COUNT + 1) * (COUNT_WIDTH + 1) - (RATE_WIDTH + 1);

	return w < 8 ? 8 : w;
}

static void format_type_row(char *line, size_t len, const char *type,
                            const int64_t counts[EVF_STATE__COUNT])
{
	char name[512], n[16];
	int64_t total = 0;
	size_t o;

	tui_fit(name, sizeof name, type, type_width());
	o = (size_t)snprintf(line, len, "%s", name);
	for (int s = 0; s < EVF_STATE__COUNT && o < len; s++) {
		total += counts[s];
		o += (size_t)snprintf(line + o, len - o, " %*s", COUNT_WIDTH,
		                      tui_fmt_count(n, sizeof n, counts[s]));
	}
	if (o < len)
		o += (size_t)snprintf(line + o, len - o, " %*s", COUNT_WIDTH,
		                      tui_fmt_count(n, sizeof n, total));
	if (o < len) {
		double rate = total ? 100.0 * (double)(counts[EVF_STATE_FAILED] +
		                                       counts[EVF_STATE_DEAD]) / (double)total : 0;
		snprintf(line + o, len - o, " %*.1f%%", RATE_WIDTH - 1, rate);
	}
}

static void types_draw(tui_app *app, int top, int rows)
{
	static const char *const heads[EVF_STATE__COUNT] = {
		"pend", "sched", "run", "fail", "stuck", "dead", "done"
	};
	const evf_stats *st = app->stats;
	char line[2048], name[512];
	size_t o;

	tui_fit(name, sizeof name, "TYPE", type_width());
	o = (size_t)snprintf(line, sizeof line, "%s", name);
	for (int s = 0; s < EVF_STATE__COUNT; s++)
		o += (size_t)snprintf(line + o, sizeof line - o, " %*s", COUNT_WIDTH, heads[s]);
	snprintf(line + o, sizeof line - o, " %*s %*s", COUNT_WIDTH, "total", RATE_WIDTH, "err%");
	ui_line(top, ui_title_attr(app), line);
	if (!st) {
		ui_text(top + 2, 2, COLS - 2, A_NORMAL, "counting...");
		return;
	}
	/* the counts' age, on the last row: they may be seconds old */
	char age[32], took[32], when[96];
	evf_time now = evf_now(); /* the clock stats_at was read from */
	if (app->stats_took_ms < 1000)
		snprintf(took, sizeof took, "%" PRId64 " ms", app->stats_took_ms);
	else
		snprintf(took, sizeof took, "%.1f s", (double)app->stats_took_ms / 1e3);
	snprintf(when, sizeof when, "%s %s ago in %s%s",
	         st->estimated ? "done estimated from a sample" : "counted",
	         tui_fmt_age(age, sizeof age, now > app->stats_at ? now - app->stats_at : 0),
	         took, app->bg && tui_bg_busy(app->bg) ? ", counting again" : "");
	ui_text(top + rows - 1, 1, COLS - 2, A_DIM, when);
	if (st->ntypes == 0) {
		ui_text(top + 2, 2, COLS - 2, A_NORMAL, "no events");
		return;
	}
	int visible = rows - 2;
	if (app->types_sel < app->types_top)
		app->types_top = app->types_sel;
	if (app->types_sel >= app->types_top + visible)
		app->types_top = app->types_sel - visible + 1;
	for (int i = 0; i < visible && app->types_top + i < (int)st->ntypes; i++) {
		const evf_type_counts *t = &st->types[app->types_top + i];
		int y = top + 1 + i;
		bool selected = app->types_top + i == app->types_sel;

		format_type_row(line, sizeof line, t->type, t->counts);
		ui_line(y, selected ? ui_selected_attr(app) : (int)A_NORMAL, line);
		if (selected)
			continue;
		/* colour the counts that need attention */
		for (int s = 0; s < EVF_STATE__COUNT; s++) {
			char cell[32], n[16];

			if (!t->counts[s] || s == EVF_STATE_DONE || s == EVF_STATE_PENDING)
				continue;
			snprintf(cell, sizeof cell, " %*s", COUNT_WIDTH,
			         tui_fmt_count(n, sizeof n, t->counts[s]));
			ui_text(y, type_width() + s * (COUNT_WIDTH + 1), COUNT_WIDTH + 1,
			        ui_state_attr(app, (evf_state)s), cell);
		}
	}
}

static int types_navigate(tui_app *app, int delta)
{
	int n = app->stats ? (int)app->stats->ntypes : 0;

	if (delta == TUI_MOVE_HOME)
		app->types_sel = 0;
	else if (delta == TUI_MOVE_END)
		app->types_sel = n - 1;
	else
		app->types_sel += delta;
	if (app->types_sel >= n)
		app->types_sel = n - 1;
	if (app->types_sel < 0)
		app->types_sel = 0;
	return TUI_REDRAW;
}

/* Enter lists the events of the selected type. */
static int types_open(tui_app *app)
{
	char expr[600], err[256];
	const char *type;

	if (!app->stats || app->types_sel >= (int)app->stats->ntypes)
		return 0;
	type = app->stats->types[app->types_sel].type;
	if (strchr(type, '"')) {
		app_message(app, true, "cannot filter on a type holding a quote");
		return TUI_REDRAW;
	}
	snprintf(expr, sizeof expr, "type:\"%s\"", type);
	if (tui_filter_parse(&app->filter, expr, evf_now(), err, sizeof err)) {
		app_message(app, true, "bad filter: %s", err);
		return TUI_REDRAW;
	}
	app->tab = -1;
	app->events.top = (tui_pos){ 0, 0 };
	app->events.sel_id = 0;
	app->events.sel = 0;
	app_show(app, &tui_screen_events);
	return TUI_REFRESH | TUI_REDRAW;
}

const tui_screen_ops tui_screen_types = {
	"types", types_fetch, types_draw, types_navigate, types_open, NULL, types_poll
};
