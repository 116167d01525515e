/*
 * screen_events.c - the event list: one keyset page per refresh.
 *
 * The page starts at events.top (inclusive) and holds one row more than
 * fits, which tells whether anything follows without counting.  Moving
 * past either edge asks for just the rows needed to re-anchor the page,
 * so the cost never depends on the size of the table.
 */
#include "app.h"

#include <curses.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ui.h"

static int page_rows(void)
{
	int rows = app_body_rows() - 1; /* the column titles take one */

	return rows > 1 ? rows : 1;
}

static tui_pos pos_of(const tui_events *e, const evf_event *ev)
{
	return (tui_pos){ evf_order_key(e->order, ev), ev->id };
}

/* Start a query after `pos` (exclusive) in the list order. */
static void start_after(const tui_events *e, evf_filter *f, tui_pos pos, bool descending)
{
	f->order = e->order;
	f->descending = descending;
	f->after_key = pos.key;
	f->after_id = pos.id;
}

/* The place just before `top` (ids are integers, so one less, or one
 * more when descending, is exclusive of nothing between): the page query
 * then starts at top itself. */
static tui_pos before(const tui_events *e, tui_pos top)
{
	if (top.id == 0)
		return top;
	if (!e->descending && top.id == 1 && e->order != EVF_ORDER_ID)
		return (tui_pos){ top.key - 1, INT64_MAX }; /* after_id 0 means none */
	top.id += e->descending ? 1 : -1;
	return top;
}

/* Up to `limit` rows before `pos` in the list order, nearest first. */
static int rows_before(tui_app *app, const evf_filter *base, tui_pos pos, int limit,
                       evf_event ***rows, size_t *n)
{
	evf_filter f = *base;

	start_after(&app->events, &f, pos, !app->events.descending);
	f.limit = limit;
	return app_query_rows(app, &f, rows, n);
}

/* The page query (and, when a short page leaves room, the rows above). */
static int fetch_page(tui_app *app)
{
	tui_events *e = &app->events;
	int page = page_rows();
	evf_event **rows = NULL;
	size_t n = 0;
	tui_pos next = { 0, 0 };
	evf_filter f;
	int rc;

	if (app_list_filter(app, &f)) {
		start_after(e, &f, before(e, e->top), e->descending);
		f.limit = page + 1;
		if ((rc = app_query_rows(app, &f, &rows, &n)) != 0)
			return rc;
		if (n > (size_t)page) {
			next = pos_of(e, rows[page]);
			evf_event_free(rows[page]);
			n = (size_t)page;
		} else if (n < (size_t)page && e->top.id != 0) {
			/* the end moved up (events left the filter): fill from above */
			evf_event **above;
			size_t m;
			tui_pos first = n ? pos_of(e, rows[0]) : e->top;

			if ((rc = rows_before(app, &f, first, page - (int)n, &above, &m)) != 0) {
				app_free_rows(rows, n);
				return rc;
			}
			evf_event **all = realloc(rows, (n + m + 1) * sizeof *all);
			if (!all) {
				app_free_rows(rows, n);
				app_free_rows(above, m);
				return EVF_ENOMEM;
			}
			memmove(all + m, all, n * sizeof *all);
			for (size_t i = 0; i < m; i++)
				all[m - 1 - i] = above[i];
			free(above);
			rows = all;
			n += m;
			/* a selection by position keeps its place under the anchor */
			if (!e->sel_id)
				e->sel += (int)m;
		}
	}
	app_free_rows(e->rows, e->n);
	e->rows = rows;
	e->n = n;
	e->next = next;
	if (e->top.id != 0)
		e->top = n ? pos_of(e, rows[0]) : (tui_pos){ 0, 0 };

	/* stay on the selected event when it is still on the page */
	if (e->sel_id) {
		for (size_t i = 0; i < n; i++)
			if (rows[i]->id == e->sel_id)
				e->sel = (int)i;
	}
	if (e->sel >= (int)n)
		e->sel = n ? (int)n - 1 : 0;
	if (e->sel < 0)
		e->sel = 0;
	e->sel_id = n ? rows[e->sel]->id : 0;
	return 0;
}

/* A sort that ran past its budget: list in id order again and say why
 * (and how to make that sort cheap).  True when that was the failure. */
static bool sort_gave_up(tui_app *app, int rc)
{
	tui_events *e = &app->events;

	if (rc != EVF_ETIMEDOUT || e->order == EVF_ORDER_ID)
		return false;
	app_message(app, true, "%s sort over %" PRId64 " ms here: id order; narrow with a filter first",
	            evf_order_name(e->order), app->sort_budget_ms);
	e->order = EVF_ORDER_ID;
	e->top = (tui_pos){ 0, 0 };
	e->sel_id = 0;
	e->sel = 0;
	return true;
}

/* The page, in id order when the chosen order turns out too slow. */
static int fetch_page_in_time(tui_app *app)
{
	int rc = fetch_page(app);

	return sort_gave_up(app, rc) ? fetch_page(app) : rc;
}

static int events_fetch(tui_app *app)
{
	tui_events *e = &app->events;
	evf_filter f;
	int rc = fetch_page_in_time(app);

	if (rc)
		return rc;
	/* how many match: the overview already knows for a bare state tab */
	e->matching = -1;
	if (!app_list_filter(app, &f))
		e->matching = 0;
	else if (app->filter.expr) {
		/* capped: a filter matching millions must not read them all on
		 * every refresh; the status line then says "10k+" */
		f.limit = TUI_COUNT_CAP + 1;
		return evf_count(app->db, &f, &e->matching);
	}
	else if (app->tab >= 0)
		e->matching = app->overview.counts[app->tab];
	return 0;
}

static void events_draw(tui_app *app, int top, int rows)
{
	tui_events *e = &app->events;
	tui_columns c;
	char line[4096];
	evf_time now = app->overview.now ? app->overview.now : evf_now();
	int state_at;

	tui_columns_for_width(&c, COLS);
	state_at = tui_columns_state_at(&c);
	ui_line(top, ui_title_attr(app), tui_format_header(line, sizeof line, &c));
	if (e->n == 0) {
		ui_text(top + 2, 2, COLS - 2, A_NORMAL,
		        app->filter.expr || app->tab >= 0 ? "no events match the filter"
		                                          : "no events");
		return;
	}
	for (size_t i = 0; i < e->n && (int)i < rows - 1; i++) {
		const evf_event *ev = e->rows[i];
		bool tagged = app_tagged(app, ev->id);
		int attr = tagged ? A_BOLD : A_NORMAL;

		tui_format_row(line, sizeof line, &c, ev, tagged, now);
		if ((int)i == e->sel) {
			ui_line(top + 1 + (int)i, ui_selected_attr(app) | attr, line);
			continue;
		}
		ui_line(top + 1 + (int)i, attr, line);
		ui_text(top + 1 + (int)i, state_at, c.state, ui_state_attr(app, ev->state) | attr,
		        evf_state_name(ev->state));
	}
}

/* Re-anchor the page at new_top and select row index sel there. */
static int reanchor(tui_app *app, tui_pos new_top, int sel)
{
	tui_events *e = &app->events;
	e->top = new_top;
	e->sel_id = 0;
	e->sel = sel;
	if (fetch_page_in_time(app) != 0)
		snprintf(app->db_error, sizeof app->db_error, "database: %s (retrying)",
		         evf_error_last());
	return TUI_REDRAW;
}

static int jump_to_end(tui_app *app)
{
	evf_event **rows;
	size_t n;
	evf_filter f;
	int rc;

	if (!app_list_filter(app, &f))
		return TUI_REDRAW;
	if ((rc = rows_before(app, &f, (tui_pos){ 0, 0 }, page_rows(), &rows, &n)) != 0) {
		if (sort_gave_up(app, rc))
			return reanchor(app, (tui_pos){ 0, 0 }, 0);
		snprintf(app->db_error, sizeof app->db_error, "database: %s", evf_error_last());
		return TUI_REDRAW;
	}
	tui_pos top = n ? pos_of(&app->events, rows[n - 1]) : (tui_pos){ 0, 0 };
	app_free_rows(rows, n);
	return reanchor(app, top, (int)n - 1);
}

static int events_navigate(tui_app *app, int delta)
{
	tui_events *e = &app->events;
	int page = page_rows();
	int target;

	if (!app->db)
		return TUI_REDRAW;
	if (delta == TUI_MOVE_HOME)
		return reanchor(app, (tui_pos){ 0, 0 }, 0);
	if (delta == TUI_MOVE_END)
		return jump_to_end(app);
	if (e->n == 0)
		return TUI_REDRAW;
	target = e->sel + delta;
	if (target >= 0 && target < (int)e->n) {
		e->sel = target;
		e->sel_id = e->rows[target]->id;
		return TUI_REDRAW;
	}
	if (target >= (int)e->n) {
		if (!e->next.id) {
			e->sel = (int)e->n - 1;
			e->sel_id = e->rows[e->sel]->id;
			return TUI_REDRAW;
		}
		if (delta >= page)
			return reanchor(app, e->next, e->sel);
		int shift = target - ((int)e->n - 1);
		return reanchor(app, shift < (int)e->n ? pos_of(e, e->rows[shift]) : e->next,
		                (int)e->n - 1);
	}
	/* above the page: fetch just the rows needed there */
	evf_event **above;
	size_t m;
	evf_filter f;
	/* a page up moves the page by a whole page, a line up by one row */
	int need = -delta >= page ? page : -target;

	if (!app_list_filter(app, &f))
		return TUI_REDRAW;
	int rc = rows_before(app, &f, pos_of(e, e->rows[0]), need, &above, &m);
	if (rc != 0) {
		if (sort_gave_up(app, rc))
			return reanchor(app, (tui_pos){ 0, 0 }, 0);
		snprintf(app->db_error, sizeof app->db_error, "database: %s", evf_error_last());
		return TUI_REDRAW;
	}
	if (m == 0) {
		e->sel = 0;
		e->sel_id = e->rows[0]->id;
		return TUI_REDRAW;
	}
	tui_pos top = pos_of(e, above[m - 1]);
	app_free_rows(above, m);
	return reanchor(app, top, -delta >= page ? e->sel : 0);
}

static int events_open(tui_app *app)
{
	if (!app->events.sel_id)
		return 0;
	app_open_detail(app, app->events.sel_id);
	return TUI_REFRESH | TUI_REDRAW;
}

static int64_t events_selected(const tui_app *app)
{
	return app->events.n ? app->events.sel_id : 0;
}

const tui_screen_ops tui_screen_events = {
	"events", events_fetch, events_draw, events_navigate, events_open, events_selected, NULL
};
