/*
 * ui.h - curses plumbing shared by the screens: start and stop the
 * terminal, colours (off under NO_COLOR), the header, the status line, the
 * filter prompt and the confirmation question.
 */
#ifndef EVF_TUI_UI_H
#define EVF_TUI_UI_H

#include <stdbool.h>
#include <stddef.h>

#include "app.h"

/* Start curses; colours unless NO_COLOR is set or the terminal has none. */
void ui_init(tui_app *app);
/* Give the terminal back; safe to call twice and from atexit(). */
void ui_end(void);

/* Async-signal-safe: ask the main loop (and any open prompt) to stop. */
void ui_request_stop(void);
bool ui_stop_requested(void);

/* Attribute for a state's text. */
int ui_state_attr(const tui_app *app, evf_state s);
/* Attribute of the selected row. */
int ui_selected_attr(const tui_app *app);
/* Attribute of titles and headings. */
int ui_title_attr(const tui_app *app);

/* Text at (y, x), cut to at most width columns. */
void ui_text(int y, int x, int width, int attr, const char *text);
/* A full-width row: text cut or padded to the screen width. */
void ui_line(int y, int attr, const char *text);

/* Draw everything: header, the current screen's body, status line. */
void ui_draw(tui_app *app);

/* Edit a line of text on the status line, starting from `initial`.
 * Returns true on Enter (out holds the text), false on Esc. */
bool ui_prompt(tui_app *app, const char *label, const char *initial,
               char *out, size_t outlen);
/* Ask a yes/no question on the status line; only y or Y says yes. */
bool ui_confirm(tui_app *app, const char *question);

#endif
