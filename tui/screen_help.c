/*
 * screen_help.c - the `?` screen, generated from the action table so that
 * it lists exactly the keys that are bound.
 */
#include "app.h"

#include <curses.h>
#include <stdio.h>

#include "actions.h"
#include "ui.h"

static int help_fetch(tui_app *app)
{
	(void)app;
	return 0;
}

static void help_draw(tui_app *app, int top, int rows)
{
	int total = (int)tui_nactions + 2;

	if (app->help_scroll > total - rows)
		app->help_scroll = total > rows ? total - rows : 0;
	for (int i = 0; i < rows && app->help_scroll + i < total; i++) {
		int k = app->help_scroll + i - 2;
		char keys[32], line[512];

		if (k == -2) {
			ui_line(top + i, ui_title_attr(app),
			        "Keys (q or Esc goes back; see evf-top(1) for the filter syntax)");
			continue;
		}
		if (k == -1)
			continue;
		snprintf(keys, sizeof keys, "%s%s%s", tui_actions[k].key_label,
		         tui_actions[k].alt_label ? " " : "",
		         tui_actions[k].alt_label ? tui_actions[k].alt_label : "");
		snprintf(line, sizeof line, "  %-13s %s", keys, tui_actions[k].help);
		ui_line(top + i, A_NORMAL, line);
	}
}

static int help_navigate(tui_app *app, int delta)
{
	if (delta == TUI_MOVE_HOME)
		app->help_scroll = 0;
	else if (delta == TUI_MOVE_END)
		app->help_scroll = (int)tui_nactions;
	else
		app->help_scroll += delta;
	if (app->help_scroll < 0)
		app->help_scroll = 0;
	return TUI_REDRAW;
}

const tui_screen_ops tui_screen_help = {
	"help", help_fetch, help_draw, help_navigate, NULL, NULL, NULL
};
