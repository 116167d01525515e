/*
 * screen_health.c - what needs an operator: the ready backlog and how old
 * its head is, stuck events (a lease ran out: the worker vanished), dead
 * events, and the most frequent error messages grouped by the library.
 */
#include "app.h"

#include <curses.h>
#include <inttypes.h>
#include <stdio.h>

#include "ui.h"

enum { STUCK_SHOWN = 10, GROUPS_SHOWN = 20 };

static int health_fetch(tui_app *app)
{
	evf_filter f = EVF_FILTER_INIT;
	evf_error_group *groups;
	evf_event **stuck;
	size_t ngroups, nstuck;
	int rc;

	if ((rc = evf_error_groups_get(app->db, GROUPS_SHOWN, &groups, &ngroups)) != 0)
		return rc;
	f.states = 1u << EVF_STATE_STUCK;
	f.limit = STUCK_SHOWN;
	if ((rc = app_query_rows(app, &f, &stuck, &nstuck)) != 0) {
		evf_error_groups_free(groups, ngroups);
		return rc;
	}
	evf_error_groups_free(app->groups, app->ngroups);
	app->groups = groups;
	app->ngroups = ngroups;
	app_free_rows(app->stuck, app->nstuck);
	app->stuck = stuck;
	app->nstuck = nstuck;
	return 0;
}

/* Lines scroll as one document; `line` counts them from the top. */
struct doc {
	int top, rows, scroll, line;
};

static void put(struct doc *d, int attr, const char *text)
{
	int y = d->line - d->scroll;

	if (y >= 0 && y < d->rows)
		ui_line(d->top + y, attr, text);
	d->line++;
}

static void health_draw(tui_app *app, int top, int rows)
{
	const evf_overview *ov = &app->overview;
	const int64_t *c = ov->counts;
	evf_time now = ov->now ? ov->now : evf_now();
	struct doc d = { top, rows, app->health_scroll, 0 };
	char line[2048], age[16], n[16];
	tui_columns cols;

	put(&d, ui_title_attr(app), "Backlog");
	if (ov->oldest_ready)
		tui_fmt_age(age, sizeof age, now - ov->oldest_ready);
	else
		snprintf(age, sizeof age, "-");
	snprintf(line, sizeof line, "  ready %" PRId64 " (pending %" PRId64 ", stuck %" PRId64
	         ")  waiting: failed %" PRId64 ", scheduled %" PRId64 "  oldest %s",
	         c[EVF_STATE_PENDING] + c[EVF_STATE_STUCK], c[EVF_STATE_PENDING],
	         c[EVF_STATE_STUCK], c[EVF_STATE_FAILED], c[EVF_STATE_SCHEDULED], age);
	put(&d, A_NORMAL, line);
	snprintf(line, sizeof line, "  running %" PRId64 " on %" PRId64 " worker%s",
	         c[EVF_STATE_RUNNING], ov->workers, ov->workers == 1 ? "" : "s");
	put(&d, A_NORMAL, line);
	put(&d, A_NORMAL, "");

	snprintf(line, sizeof line, "Stuck: %" PRId64 " (lease expired; their worker vanished)",
	         c[EVF_STATE_STUCK]);
	put(&d, c[EVF_STATE_STUCK] ? (int)(ui_state_attr(app, EVF_STATE_STUCK) | A_BOLD)
	                            : ui_title_attr(app), line);
	tui_columns_for_width(&cols, COLS);
	for (size_t i = 0; i < app->nstuck; i++)
		put(&d, A_NORMAL, tui_format_row(line, sizeof line, &cols, app->stuck[i],
		                                 app_tagged(app, app->stuck[i]->id), now));
	if (c[EVF_STATE_STUCK] > (int64_t)app->nstuck)
		put(&d, A_NORMAL, "  ... see the stuck tab of the event list (Tab)");
	put(&d, A_NORMAL, "");

	snprintf(line, sizeof line, "Dead: %s%s", ov->estimated ? (app->utf8 ? "\u2248" : "~") : "",
	         tui_fmt_count(n, sizeof n, c[EVF_STATE_DEAD]));
	put(&d, c[EVF_STATE_DEAD] ? ui_state_attr(app, EVF_STATE_DEAD) : ui_title_attr(app), line);
	put(&d, A_NORMAL, "");

	put(&d, ui_title_attr(app), "Top errors   COUNT  LAST   TYPE                 MESSAGE");
	if (app->ngroups == 0)
		put(&d, A_NORMAL, "  none");
	for (size_t i = 0; i < app->ngroups; i++) {
		const evf_error_group *g = &app->groups[i];
		char type[128], msg[1024];

		tui_fmt_age(age, sizeof age, now - g->last_at);
		tui_fit(type, sizeof type, g->type, 20);
		tui_fit(msg, sizeof msg, g->message, COLS > 41 ? COLS - 41 : 0);
		snprintf(line, sizeof line, "           %6s %6s %s %s",
		         tui_fmt_count(n, sizeof n, g->count), g->last_at ? age : "-", type, msg);
		put(&d, A_NORMAL, line);
	}
	/* keep the scroll within the document */
	int max = d.line > rows ? d.line - rows : 0;
	if (app->health_scroll > max) {
		app->health_scroll = max;
		for (int y = 0; y < rows; y++) {
			move(top + y, 0);
			clrtoeol();
		}
		health_draw(app, top, rows);
	}
}

static int health_navigate(tui_app *app, int delta)
{
	if (delta == TUI_MOVE_HOME)
		app->health_scroll = 0;
	else if (delta == TUI_MOVE_END)
		app->health_scroll = 1000;
	else
		app->health_scroll += delta;
	if (app->health_scroll < 0)
		app->health_scroll = 0;
	return TUI_REDRAW;
}

const tui_screen_ops tui_screen_health = {
	"health", health_fetch, health_draw, health_navigate, NULL, NULL, NULL
};
