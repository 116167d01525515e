/*
 * actions.c - the handlers of the key table in actions.h, the key lookup
 * and the man page's KEYS list.
 *
 * Operator actions go through evf_act only, and always as two calls: a dry
 * run that counts what would change, shown in the confirmation, then the
 * real one.  The next refresh shows the result at once.
 */
#include "actions.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ui.h"

#define TUI_DEFINE_ACTION(name, key, alt, label, alt_label, help) \
	{ #name, key, alt, label, alt_label, help, tui_act_##name },
const tui_action tui_actions[] = { TUI_ACTIONS(TUI_DEFINE_ACTION) };
#undef TUI_DEFINE_ACTION
const size_t tui_nactions = sizeof tui_actions / sizeof *tui_actions;

const tui_action *tui_action_for_key(int key)
{
	if (key == '\r')
		key = '\n';
	for (size_t i = 0; i < tui_nactions; i++)
		if (tui_actions[i].key == key || (tui_actions[i].alt_key && tui_actions[i].alt_key == key))
			return &tui_actions[i];
	return NULL;
}

/* mdoc needs \& before a lone punctuation mark and \- for a minus. */
static void print_mdoc_key(FILE *out, const char *label)
{
	fprintf(out, "Ic %s", strcmp(label, "-") == 0 ? "\\-" : "");
	if (strcmp(label, "-") != 0)
		fprintf(out, "\\&%s", label);
}

void tui_print_keys_mdoc(FILE *out)
{
	fputs(".Bl -tag -width Ds\n", out);
	for (size_t i = 0; i < tui_nactions; i++) {
		const tui_action *a = &tui_actions[i];

		fputs(".It ", out);
		print_mdoc_key(out, a->key_label);
		if (a->alt_label) {
			fputs(" , ", out);
			print_mdoc_key(out, a->alt_label);
		}
		fprintf(out, "\n%s.\n", a->help);
	}
	fputs(".El\n", out);
}

/* ---- screens and movement ------------------------------------------------------ */

static bool on_overlay(const tui_app *app)
{
	return app->screen == &tui_screen_detail || app->screen == &tui_screen_help;
}

int tui_act_help(tui_app *app)
{
	app->help_scroll = 0;
	app_show(app, &tui_screen_help);
	return TUI_REDRAW;
}

int tui_act_quit(tui_app *app)
{
	if (on_overlay(app)) {
		app_go_back(app);
		return TUI_REFRESH | TUI_REDRAW;
	}
	return TUI_QUIT;
}

static void list_from_start(tui_app *app)
{
	app->events.top = (tui_pos){ 0, 0 };
	app->events.sel_id = 0;
	app->events.sel = 0;
}

int tui_act_back(tui_app *app)
{
	if (on_overlay(app)) {
		app_go_back(app);
		return TUI_REFRESH | TUI_REDRAW;
	}
	if (!app->filter.expr)
		return TUI_REDRAW;
	tui_filter_free(&app->filter);
	list_from_start(app);
	app_message(app, false, "filter cleared");
	return TUI_REFRESH | TUI_REDRAW;
}

int tui_act_down(tui_app *app)
{
	return app->screen->navigate(app, 1);
}

int tui_act_up(tui_app *app)
{
	return app->screen->navigate(app, -1);
}

static int page_size(void)
{
	int rows = app_body_rows() - 1;

	return rows > 1 ? rows : 1;
}

int tui_act_page_down(tui_app *app)
{
	return app->screen->navigate(app, page_size());
}

int tui_act_page_up(tui_app *app)
{
	return app->screen->navigate(app, -page_size());
}

int tui_act_home(tui_app *app)
{
	return app->screen->navigate(app, TUI_MOVE_HOME);
}

int tui_act_end(tui_app *app)
{
	return app->screen->navigate(app, TUI_MOVE_END);
}

int tui_act_open(tui_app *app)
{
	return app->screen->open ? app->screen->open(app) : 0;
}

static int show_tab(tui_app *app, int tab)
{
	app->tab = tab;
	list_from_start(app);
	app_show(app, &tui_screen_events);
	return TUI_REFRESH | TUI_REDRAW;
}

int tui_act_next_tab(tui_app *app)
{
	return show_tab(app, app->tab + 1 < EVF_STATE__COUNT ? app->tab + 1 : -1);
}

int tui_act_prev_tab(tui_app *app)
{
	return show_tab(app, app->tab > -1 ? app->tab - 1 : EVF_STATE__COUNT - 1);
}

int tui_act_events(tui_app *app)
{
	app_show(app, &tui_screen_events);
	return TUI_REFRESH | TUI_REDRAW;
}

int tui_act_types(tui_app *app)
{
	app_show(app, &tui_screen_types);
	return TUI_REFRESH | TUI_REDRAW;
}

int tui_act_health(tui_app *app)
{
	app->health_scroll = 0;
	app_show(app, &tui_screen_health);
	return TUI_REFRESH | TUI_REDRAW;
}

/* ---- the filter ------------------------------------------------------------------- */

static int apply_filter(tui_app *app, const char *expr)
{
	char err[256];

	if (tui_filter_parse(&app->filter, expr, evf_now(), err, sizeof err)) {
		app_message(app, true, "bad filter: %s (filter unchanged)", err);
		return TUI_REDRAW;
	}
	list_from_start(app);
	app_show(app, &tui_screen_events);
	return TUI_REFRESH | TUI_REDRAW;
}

int tui_act_filter(tui_app *app)
{
	char expr[512];

	if (!ui_prompt(app, "/", app->filter.expr, expr, sizeof expr))
		return TUI_REDRAW;
	return apply_filter(app, expr);
}

static const evf_event *selected_event(const tui_app *app)
{
	int64_t id = app->screen->selected ? app->screen->selected(app) : 0;

	if (app->screen == &tui_screen_detail)
		return app->detail.ev;
	for (size_t i = 0; id && i < app->events.n; i++)
		if (app->events.rows[i]->id == id)
			return app->events.rows[i];
	return NULL;
}

int tui_act_correlate(tui_app *app)
{
	const evf_event *ev = selected_event(app);
	char expr[512];

	if (!ev) {
		app_message(app, true, "no event selected");
		return TUI_REDRAW;
	}
	if (!ev->correlation_id || !*ev->correlation_id) {
		app_message(app, true, "event %" PRId64 " has no correlation id", ev->id);
		return TUI_REDRAW;
	}
	if (strchr(ev->correlation_id, '"')) {
		app_message(app, true, "cannot filter on a correlation id holding a quote");
		return TUI_REDRAW;
	}
	snprintf(expr, sizeof expr, "corr:\"%s\"", ev->correlation_id);
	app->tab = -1;
	return apply_filter(app, expr);
}

/* ---- refresh control ---------------------------------------------------------------- */

int tui_act_sort(tui_app *app)
{
	app->events.descending = !app->events.descending;
	app->events.top = (tui_pos){ 0, 0 };
	app->events.sel = 0;
	return TUI_REFRESH | TUI_REDRAW;
}

int tui_act_order(tui_app *app)
{
	app->events.tried = (evf_order)((app->events.tried + 1) % EVF_ORDER__COUNT);
	app->events.order = app->events.tried;
	list_from_start(app);
	app_message(app, false, "sorted by %s", evf_order_name(app->events.order));
	return TUI_REFRESH | TUI_REDRAW;
}

int tui_act_pause(tui_app *app)
{
	app->paused = !app->paused;
	return app->paused ? TUI_REDRAW : TUI_REFRESH | TUI_REDRAW;
}

static const int64_t intervals_ms[] = { 500, 1000, 2000, 5000, 10000, 30000, 60000 };
enum { NINTERVALS = sizeof intervals_ms / sizeof *intervals_ms };

int tui_act_slower(tui_app *app)
{
	for (int i = 0; i < NINTERVALS; i++)
		if (intervals_ms[i] > app->interval_ms) {
			app->interval_ms = intervals_ms[i];
			break;
		}
	return TUI_REDRAW;
}

int tui_act_faster(tui_app *app)
{
	for (int i = NINTERVALS - 1; i >= 0; i--)
		if (intervals_ms[i] < app->interval_ms) {
			app->interval_ms = intervals_ms[i];
			break;
		}
	return TUI_REDRAW;
}

int tui_act_refresh(tui_app *app)
{
	(void)app;
	return TUI_REFRESH | TUI_REDRAW;
}

/* ---- tags ------------------------------------------------------------------------ */

int tui_act_tag(tui_app *app)
{
	int64_t id = app->screen->selected ? app->screen->selected(app) : 0;

	if (!id) {
		app_message(app, true, "no event selected");
		return TUI_REDRAW;
	}
	app_tag_toggle(app, id);
	if (app->screen == &tui_screen_events)
		return app->screen->navigate(app, 1) | TUI_REDRAW;
	return TUI_REDRAW;
}

int tui_act_untag_all(tui_app *app)
{
	app_untag_all(app);
	return TUI_REDRAW;
}

/* ---- operator actions ------------------------------------------------------------- */

static const char *const verbs[] = { "Requeue", "Mark processed", "Dead-letter" };
static const char *const done_verbs[] = { "requeued", "marked processed", "dead-lettered" };

static const char *plural(int64_t n)
{
	return n == 1 ? "" : "s";
}

/* Count, confirm, act.  `what` describes the target for the question. */
static int act(tui_app *app, evf_action a, const evf_filter *f, const char *what,
               bool clear_tags)
{
	int64_t n = 0;
	char question[768];

	if (app->read_only) {
		app_message(app, true, "read-only (--read-only): %s is disabled",
		            evf_action_name(a));
		return TUI_REDRAW;
	}
	if (!app->db) {
		app_message(app, true, "not connected to the database");
		return TUI_REDRAW;
	}
	if (evf_act(app->db, a, f, 0, true, &n)) {
		app_message(app, true, "%s: %s", evf_action_name(a), evf_error_last());
		return TUI_REDRAW;
	}
	if (n == 0) {
		app_message(app, true, "%s: nothing to change (%s: running, or already %s)",
		            evf_action_name(a), what, a == EVF_ACTION_REQUEUE ? "ready" :
		            a == EVF_ACTION_DEAD_LETTER ? "dead" : "done");
		return TUI_REDRAW;
	}
	snprintf(question, sizeof question, "%s %" PRId64 " event%s (%s)?", verbs[a], n,
	         plural(n), what);
	if (!ui_confirm(app, question)) {
		app_message(app, false, "%s cancelled", evf_action_name(a));
		return TUI_REDRAW;
	}
	if (evf_act(app->db, a, f, 0, false, &n)) {
		app_message(app, true, "%s: %s", evf_action_name(a), evf_error_last());
		return TUI_REFRESH | TUI_REDRAW;
	}
	app_message(app, false, "%s %" PRId64 " event%s", done_verbs[a], n, plural(n));
	if (clear_tags)
		app_untag_all(app);
	return TUI_REFRESH | TUI_REDRAW;
}

/* On the tagged events when there are some, else on the selected one. */
static int act_on_selection(tui_app *app, evf_action a)
{
	evf_filter f = EVF_FILTER_INIT;
	char what[64];
	int64_t id;

	if (app->ntags) {
		f.ids = app->tags;
		f.nids = app->ntags;
		snprintf(what, sizeof what, "%zu tagged", app->ntags);
		return act(app, a, &f, what, true);
	}
	id = app->screen->selected ? app->screen->selected(app) : 0;
	if (!id) {
		app_message(app, true, "no event selected");
		return TUI_REDRAW;
	}
	f.ids = &id;
	f.nids = 1;
	snprintf(what, sizeof what, "id %" PRId64, id);
	return act(app, a, &f, what, false);
}

static int act_on_matching(tui_app *app, evf_action a)
{
	evf_filter f;
	char what[600];

	if (!app_list_filter(app, &f)) {
		app_message(app, true, "%s: the filter and the state tab match nothing",
		            evf_action_name(a));
		return TUI_REDRAW;
	}
	f.limit = 0;
	f.after_id = 0;
	f.descending = false;
	if (!app->filter.expr && app->tab < 0) {
		/* an explicit "everything": the question below says so */
		f.all = true;
		snprintf(what, sizeof what, "ALL events, no filter");
	} else {
		snprintf(what, sizeof what, "matching %s%s%s",
		         app->filter.expr ? app->filter.expr : "",
		         app->filter.expr && app->tab >= 0 ? " " : "",
		         app->tab >= 0 ? evf_state_name((evf_state)app->tab) : "");
	}
	return act(app, a, &f, what, false);
}

int tui_act_requeue(tui_app *app)
{
	return act_on_selection(app, EVF_ACTION_REQUEUE);
}

int tui_act_mark(tui_app *app)
{
	return act_on_selection(app, EVF_ACTION_MARK_PROCESSED);
}

int tui_act_dead(tui_app *app)
{
	return act_on_selection(app, EVF_ACTION_DEAD_LETTER);
}

int tui_act_requeue_all(tui_app *app)
{
	return act_on_matching(app, EVF_ACTION_REQUEUE);
}

int tui_act_mark_all(tui_app *app)
{
	return act_on_matching(app, EVF_ACTION_MARK_PROCESSED);
}

int tui_act_dead_all(tui_app *app)
{
	return act_on_matching(app, EVF_ACTION_DEAD_LETTER);
}
