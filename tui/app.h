/*
 * app.h - the state of one evf-top session, shared by the main loop, the
 * screens and the action handlers.
 *
 * The event list is a keyset window: `top` is the first event shown (its
 * sort key and id) and each refresh asks for one page from there
 * (evf_filter.after_key, after_id), so the table can hold millions of rows
 * without evf-top reading them.
 */
#ifndef EVF_TUI_APP_H
#define EVF_TUI_APP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "evf.h"
#include "filter.h"
#include "rowfmt.h"
#include "screen.h"

/* What a key handler asks the main loop to do. */
enum { TUI_REDRAW = 1, TUI_REFRESH = 2, TUI_QUIT = 4 };

/* Screen rows above the body (title, counts/tabs, bar, throughput) and
 * below it (status line). */
enum { TUI_HEADER_ROWS = 4, TUI_FOOTER_ROWS = 1 };

/* A place in the list order: an event's sort key and id; id 0 = none. */
typedef struct tui_pos {
	int64_t key, id;
} tui_pos;

typedef struct tui_events {
	evf_event **rows;   /* the visible page, owned */
	size_t n;
	tui_pos next;       /* the first event after the page; id 0 = none */
	tui_pos top;        /* first event shown; id 0 = from the start */
	int64_t sel_id;     /* selected event; 0 = use sel */
	int sel;            /* its index in rows */
	evf_order order;
	evf_order tried;    /* the order `o` last asked for: cycling goes on
	                       from it when that order gave up (too slow) */
	bool descending;
	int64_t matching;   /* evf_count of the filter, at most TUI_COUNT_CAP + 1
	                       (more than the cap); -1 = not counted */
} tui_events;

/* How long a page sorted by a column without an index (priority,
 * attempts) may take by default before the list falls back to id order:
 * on a large table with a loose filter such a sort reads every row. */
enum { TUI_SORT_BUDGET_MS = 80 };
/* The most matches of a filter counted on each refresh; more show as
 * "10k+". */
enum { TUI_COUNT_CAP = 10000 };

typedef struct tui_detail {
	int64_t id;
	evf_event *ev;      /* NULL when it vanished */
	char **lines;       /* the rendered view, owned */
	size_t nlines;
	int scroll;
} tui_detail;

typedef struct tui_app {
	evf_db *db;                 /* NULL while the connection is lost */
	char *url;
	char *display_url;          /* url with its password masked */
	char *table;
	bool read_only;
	bool utf8;
	int64_t sort_budget_ms;     /* --sort-budget; 0 = no limit */
	bool color;
	int64_t interval_ms;
	bool paused;

	const tui_screen_ops *screen;
	const tui_screen_ops *back;  /* where detail and help return to */

	evf_overview overview;
	bool have_overview;
	tui_rate rate;

	tui_filter filter;
	int tab;                     /* -1 = all states, else an evf_state */
	tui_events events;

	int64_t *tags;               /* sorted ids */
	size_t ntags, tags_cap;

	tui_detail detail;

	evf_stats *stats;            /* the per-type screen */
	struct tui_bg *bg;           /* counts them on a thread; NULL until shown */
	evf_time stats_at;           /* when the shown counts began */
	int64_t stats_took_ms;       /* and how long they took */
	int types_sel, types_top;

	evf_error_group *groups;     /* the health screen */
	size_t ngroups;
	evf_event **stuck;
	size_t nstuck;
	int health_scroll;

	int help_scroll;

	char message[512];           /* the last action's outcome or refusal */
	bool message_is_warning;
	char db_error[512];          /* set while refreshes fail */
} tui_app;

/* url and table are copied.  The database is opened by the caller. */
int app_init(tui_app *app, evf_db *db, const char *url, const char *table);
void app_free(tui_app *app);

/* One refresh: the overview, then the current screen's fetch.  Failures
 * land in db_error, never abort; returns 0 or the EVF_E* code. */
int app_refresh(tui_app *app);

/* The list filter plus the state tab.  Returns false when the two exclude
 * each other (nothing can match). */
bool app_list_filter(const tui_app *app, evf_filter *out);

/* Collect events of a query into *rows (owned copies). */
int app_query_rows(tui_app *app, const evf_filter *f, evf_event ***rows, size_t *n);
void app_free_rows(evf_event **rows, size_t n);
evf_event *app_event_dup(const evf_event *ev);

void app_message(tui_app *app, bool warning, const char *fmt, ...) EVF_PRINTF(3, 4);

bool app_tagged(const tui_app *app, int64_t id);
void app_tag_toggle(tui_app *app, int64_t id);
void app_untag_all(tui_app *app);

/* Switch screens; the detail and help screens remember where to return. */
void app_show(tui_app *app, const tui_screen_ops *screen);
void app_go_back(tui_app *app);
/* Forget the event and the lines of the detail view. */
void app_detail_clear(tui_detail *d);
/* Open the detail view of one event. */
void app_open_detail(tui_app *app, int64_t id);

/* Rows available to the body of a screen. */
int app_body_rows(void);

#endif
