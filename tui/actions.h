/*
 * actions.h - every key evf-top understands, in one X-macro table (after
 * tig's request.h).  The same table binds the keys, builds the `?` help
 * screen and prints the KEYS section of evf-top(1) (evf-top --keys-mdoc),
 * so the three cannot drift apart.
 *
 * X(name, key, alt_key, key_label, alt_label, help): the handler is
 * tui_act_<name>; alt_key 0 and alt_label NULL mean "no second key".
 */
#ifndef EVF_TUI_ACTIONS_H
#define EVF_TUI_ACTIONS_H

#include <stddef.h>
#include <curses.h>
#include <stdio.h>

#include "app.h"

#define TUI_KEY_CTRL(c) ((c) & 0x1f)

#define TUI_ACTIONS(X) \
	X(help, '?', KEY_F(1), "?", "F1", \
	  "Show this list of keys; q or Esc goes back") \
	X(quit, 'q', KEY_F(10), "q", "F10", \
	  "Quit; on the detail and help screens, go back") \
	X(back, 27, 0, "Esc", NULL, \
	  "Go back from the detail and help screens; on the other screens, clear the filter") \
	X(down, 'j', KEY_DOWN, "j", "Down", "Move the selection down") \
	X(up, 'k', KEY_UP, "k", "Up", "Move the selection up") \
	X(page_down, KEY_NPAGE, TUI_KEY_CTRL('f'), "PgDn", "C-f", "Move one page down") \
	X(page_up, KEY_PPAGE, TUI_KEY_CTRL('b'), "PgUp", "C-b", "Move one page up") \
	X(home, 'g', KEY_HOME, "g", "Home", "Go to the first line") \
	X(end, 'G', KEY_END, "G", "End", "Go to the last line") \
	X(open, '\n', KEY_ENTER, "Enter", NULL, \
	  "Open the selected event in the detail view; on the type screen, list that type") \
	X(next_tab, '\t', KEY_RIGHT, "Tab", "Right", \
	  "Next state tab: all, pending, scheduled, running, failed, stuck, dead, done") \
	X(prev_tab, KEY_BTAB, KEY_LEFT, "S-Tab", "Left", "Previous state tab") \
	X(events, '1', 0, "1", NULL, "Event list screen") \
	X(types, '2', 0, "2", NULL, "Per-type screen: counts by state and error rate") \
	X(health, '3', 0, "3", NULL, "Health screen: stuck events, backlog, top errors") \
	X(filter, '/', 0, "/", NULL, \
	  "Edit the filter; Enter applies it, Esc leaves it as it was") \
	X(correlate, 'c', 0, "c", NULL, \
	  "Filter on the correlation id of the selected event") \
	X(sort, 's', 0, "s", NULL, "Reverse the order: ascending or descending") \
	X(order, 'o', 0, "o", NULL, "Sort by the next key: id, date, priority, attempts") \
	X(pause, ' ', 0, "Space", NULL, "Pause or resume the live refresh") \
	X(slower, '+', 0, "+", NULL, "Refresh less often") \
	X(faster, '-', 0, "-", NULL, "Refresh more often") \
	X(refresh, KEY_F(5), TUI_KEY_CTRL('l'), "F5", "C-l", "Refresh now") \
	X(tag, 't', KEY_IC, "t", "Insert", "Tag or untag the selected event and move down") \
	X(untag_all, 'T', 'u', "T", "u", "Untag every event") \
	X(requeue, 'r', 0, "r", NULL, \
	  "Requeue the tagged events, or else the selected one") \
	X(mark, 'm', 0, "m", NULL, \
	  "Mark the tagged events processed, or else the selected one") \
	X(dead, 'd', 0, "d", NULL, \
	  "Dead-letter the tagged events, or else the selected one") \
	X(requeue_all, 'R', 0, "R", NULL, \
	  "Requeue every event the filter and state tab match") \
	X(mark_all, 'M', 0, "M", NULL, \
	  "Mark processed every event the filter and state tab match") \
	X(dead_all, 'D', 0, "D", NULL, \
	  "Dead-letter every event the filter and state tab match")

/* A handler returns TUI_REDRAW / TUI_REFRESH / TUI_QUIT flags. */
typedef int (*tui_action_fn)(tui_app *app);

#define TUI_DECLARE_ACTION(name, key, alt, label, alt_label, help) \
	int tui_act_##name(tui_app *app);
TUI_ACTIONS(TUI_DECLARE_ACTION)
#undef TUI_DECLARE_ACTION

typedef struct tui_action {
	const char *name;
	int key, alt_key;
	const char *key_label, *alt_label;
	const char *help;
	tui_action_fn fn;
} tui_action;

extern const tui_action tui_actions[];
extern const size_t tui_nactions;

/* The action bound to a key (after mapping '\r' to '\n'); NULL = none. */
const tui_action *tui_action_for_key(int key);

/* The KEYS list of the man page, in mdoc. */
void tui_print_keys_mdoc(FILE *out);

#endif
