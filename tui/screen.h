/*
 * screen.h - evf-top's screens as a vtable (after tig's view_ops): each
 * screen fetches what it shows with a few library calls per refresh, draws
 * the body between the header and the status line, and interprets the
 * movement keys its own way.
 */
#ifndef EVF_TUI_SCREEN_H
#define EVF_TUI_SCREEN_H

#include <stdint.h>

typedef struct tui_app tui_app;

/* Movement requests beyond plain line counts. */
enum { TUI_MOVE_HOME = -1000000, TUI_MOVE_END = 1000000 };

typedef struct tui_screen_ops {
	const char *title;
	/* Library calls for one refresh (the header's overview is already
	 * done); 0 or an EVF_E* code with evf_error_last() set. */
	int (*fetch)(tui_app *app);
	/* Draw the body into screen rows [top, top + rows). */
	void (*draw)(tui_app *app, int top, int rows);
	/* Move by delta lines (or a page, or TUI_MOVE_*); returns TUI_* flags. */
	int (*navigate)(tui_app *app, int delta);
	/* Enter; NULL when the screen has nothing to open. */
	int (*open)(tui_app *app);
	/* The event the single-event actions apply to; 0 = none. */
	int64_t (*selected)(const tui_app *app);
	/* Between refreshes, while keys are awaited: TUI_REDRAW when work
	 * done in the background has arrived; NULL when there is none. */
	int (*poll)(tui_app *app);
} tui_screen_ops;

extern const tui_screen_ops tui_screen_events;
extern const tui_screen_ops tui_screen_types;
extern const tui_screen_ops tui_screen_health;
extern const tui_screen_ops tui_screen_detail;
extern const tui_screen_ops tui_screen_help;

#endif
