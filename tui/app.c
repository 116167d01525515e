/*
 * app.c - session state and the refresh that feeds every screen.
 *
 * A refresh is the overview for the header plus whatever the current
 * screen needs: a page of events, the stats, or one event and its
 * correlated ones.  A failed call keeps the previous data on screen and
 * leaves a warning for the status line; the next refresh tries again.
 */
#include "app.h"
#include "background.h"

#include <curses.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int app_init(tui_app *app, evf_db *db, const char *url, const char *table)
{
	memset(app, 0, sizeof *app);
	app->db = db;
	app->url = strdup(url);
	/* for the title while the connection is lost, when there is no db
	 * to ask: the raw URL may hold a password */
	app->display_url = strdup(db ? evf_db_display_url(db) : "(database)");
	app->table = strdup(table ? table : "evf_event");
	if (!app->url || !app->display_url || !app->table)
		return EVF_ENOMEM;
	app->interval_ms = 2000;
	app->sort_budget_ms = TUI_SORT_BUDGET_MS;
	app->screen = &tui_screen_events;
	app->back = &tui_screen_events;
	app->tab = -1;
	app->events.matching = -1;
	tui_rate_init(&app->rate);
	tui_filter_init(&app->filter);
	return 0;
}

void app_detail_clear(tui_detail *d)
{
	evf_event_free(d->ev);
	d->ev = NULL;
	for (size_t i = 0; i < d->nlines; i++)
		free(d->lines[i]);
	free(d->lines);
	d->lines = NULL;
	d->nlines = 0;
}

void app_free(tui_app *app)
{
	app_free_rows(app->events.rows, app->events.n);
	app_free_rows(app->stuck, app->nstuck);
	app_detail_clear(&app->detail);
	tui_bg_stop(app->bg);
	evf_stats_free(app->stats);
	evf_error_groups_free(app->groups, app->ngroups);
	tui_filter_free(&app->filter);
	free(app->tags);
	free(app->url);
	free(app->display_url);
	free(app->table);
	if (app->db)
		evf_close(app->db);
	memset(app, 0, sizeof *app);
}

void app_message(tui_app *app, bool warning, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(app->message, sizeof app->message, fmt, ap);
	va_end(ap);
	app->message_is_warning = warning;
}

int app_body_rows(void)
{
	int rows = LINES - TUI_HEADER_ROWS - TUI_FOOTER_ROWS;

	return rows > 1 ? rows : 1;
}

/* ---- copies of events ------------------------------------------------------ */

static bool dup_str(char **dst, const char *src)
{
	*dst = NULL;
	return !src || (*dst = strdup(src)) != NULL;
}

evf_event *app_event_dup(const evf_event *ev)
{
	evf_event *c = malloc(sizeof *c);

	if (!c)
		return NULL;
	*c = *ev;
	c->type = c->parameters = c->error_message = c->error_code = NULL;
	c->idempotency_key = c->correlation_id = c->locked_by = NULL;
	if (!dup_str(&c->type, ev->type) || !dup_str(&c->parameters, ev->parameters) ||
	    !dup_str(&c->error_message, ev->error_message) ||
	    !dup_str(&c->error_code, ev->error_code) ||
	    !dup_str(&c->idempotency_key, ev->idempotency_key) ||
	    !dup_str(&c->correlation_id, ev->correlation_id) ||
	    !dup_str(&c->locked_by, ev->locked_by)) {
		evf_event_free(c);
		return NULL;
	}
	return c;
}

void app_free_rows(evf_event **rows, size_t n)
{
	for (size_t i = 0; i < n; i++)
		evf_event_free(rows[i]);
	free(rows);
}

struct collect {
	evf_event **rows;
	size_t n, cap;
};

static int collect_row(const evf_event *ev, void *user)
{
	struct collect *c = user;

	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 32;
		evf_event **rows = realloc(c->rows, cap * sizeof *rows);

		if (!rows)
			return EVF_ENOMEM;
		c->rows = rows;
		c->cap = cap;
	}
	if (!(c->rows[c->n] = app_event_dup(ev)))
		return EVF_ENOMEM;
	c->n++;
	return 0;
}

int app_query_rows(tui_app *app, const evf_filter *f, evf_event ***rows, size_t *n)
{
	struct collect c = { NULL, 0, 0 };
	int rc;

	/* a limit is what keeps a page a page: never walk the whole table */
	if (f->limit <= 0)
		return EVF_EINVAL;
	evf_filter g = *f;
	if (g.order == EVF_ORDER_PRIORITY || g.order == EVF_ORDER_ATTEMPTS)
		g.budget_ms = app->sort_budget_ms;
	rc = evf_query(app->db, &g, collect_row, &c);
	if (rc) {
		app_free_rows(c.rows, c.n);
		return rc;
	}
	*rows = c.rows;
	*n = c.n;
	return 0;
}

/* ---- filters and tags ------------------------------------------------------ */

bool app_list_filter(const tui_app *app, evf_filter *out)
{
	*out = app->filter.f;
	if (app->tab >= 0) {
		unsigned tab = 1u << app->tab;

		if (out->states && !(out->states & tab))
			return false;
		out->states = tab;
	}
	return true;
}

static size_t tag_index(const tui_app *app, int64_t id, bool *found)
{
	size_t lo = 0, hi = app->ntags;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (app->tags[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < app->ntags && app->tags[lo] == id;
	return lo;
}

bool app_tagged(const tui_app *app, int64_t id)
{
	bool found;

	tag_index(app, id, &found);
	return found;
}

void app_tag_toggle(tui_app *app, int64_t id)
{
	bool found;
	size_t i = tag_index(app, id, &found);

	if (found) {
		memmove(app->tags + i, app->tags + i + 1, (app->ntags - i - 1) * sizeof *app->tags);
		app->ntags--;
		return;
	}
	if (app->ntags == app->tags_cap) {
		size_t cap = app->tags_cap ? app->tags_cap * 2 : 16;
		int64_t *tags = realloc(app->tags, cap * sizeof *tags);

		if (!tags) {
			app_message(app, true, "out of memory: cannot tag more events");
			return;
		}
		app->tags = tags;
		app->tags_cap = cap;
	}
	memmove(app->tags + i + 1, app->tags + i, (app->ntags - i) * sizeof *app->tags);
	app->tags[i] = id;
	app->ntags++;
}

void app_untag_all(tui_app *app)
{
	app->ntags = 0;
}

/* ---- screens ---------------------------------------------------------------- */

void app_show(tui_app *app, const tui_screen_ops *screen)
{
	if (screen == &tui_screen_detail || screen == &tui_screen_help) {
		if (app->screen != &tui_screen_detail && app->screen != &tui_screen_help)
			app->back = app->screen;
	}
	app->screen = screen;
}

void app_go_back(tui_app *app)
{
	app->screen = app->back;
}

void app_open_detail(tui_app *app, int64_t id)
{
	app_detail_clear(&app->detail);
	app->detail.id = id;
	app->detail.scroll = 0;
	app_show(app, &tui_screen_detail);
}

/* ---- the refresh ------------------------------------------------------------ */

static int reconnect(tui_app *app)
{
	evf_options opts = EVF_OPTIONS_INIT;

	opts.table = app->table;
	return evf_open(&app->db, app->url, &opts);
}

int app_refresh(tui_app *app)
{
	evf_overview ov;
	int rc;

	if (!app->db && (rc = reconnect(app)) != 0)
		goto failed;
	if ((rc = evf_overview_get(app->db, &ov)) != 0)
		goto failed;
	app->overview = ov;
	app->have_overview = true;
	tui_rate_push(&app->rate, ov.now ? ov.now : evf_now(), ov.counts[EVF_STATE_DONE],
	              ov.counts[EVF_STATE_FAILED] + ov.counts[EVF_STATE_DEAD]);
	if ((rc = app->screen->fetch(app)) != 0)
		goto failed;
	app->db_error[0] = '\0';
	return 0;

failed:
	snprintf(app->db_error, sizeof app->db_error, "database: %s (retrying)",
	         evf_error_last());
	/* a lost server connection is reopened on the next refresh */
	if (rc == EVF_EUNAVAILABLE && app->db) {
		evf_close(app->db);
		app->db = NULL;
	}
	return rc;
}
