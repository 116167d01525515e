/*
 * ui.c - terminal setup, the header, the status line, the prompt and the
 * confirmation question.
 *
 * The whole screen is drawn from the session state on each redraw; curses
 * sends only the cells that changed, which keeps a 2-second refresh cheap
 * even over a slow ssh link.
 */
#include "ui.h"

#include <curses.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


enum {
	PAIR_STATE = 1, /* PAIR_STATE + evf_state */
	PAIR_STATUS = PAIR_STATE + EVF_STATE__COUNT,
	PAIR_WARNING,
	PAIR_TITLE
};

static bool curses_active;
static volatile sig_atomic_t stop_requested;

void ui_request_stop(void)
{
	stop_requested = 1;
}

bool ui_stop_requested(void)
{
	return stop_requested != 0;
}

void ui_init(tui_app *app)
{
	static const short state_colors[EVF_STATE__COUNT] = {
		[EVF_STATE_PENDING] = COLOR_WHITE, [EVF_STATE_SCHEDULED] = COLOR_BLUE,
		[EVF_STATE_RUNNING] = COLOR_CYAN, [EVF_STATE_FAILED] = COLOR_YELLOW,
		[EVF_STATE_STUCK] = COLOR_MAGENTA, [EVF_STATE_DEAD] = COLOR_RED,
		[EVF_STATE_DONE] = COLOR_GREEN,
	};
	const char *no_color = getenv("NO_COLOR");

	initscr();
	curses_active = true;
	cbreak();
	noecho();
	keypad(stdscr, TRUE);
	curs_set(0);
	set_escdelay(25);
	app->color = has_colors() && !(no_color && *no_color);
	if (app->color) {
		start_color();
		use_default_colors();
		for (int s = 0; s < EVF_STATE__COUNT; s++)
			init_pair((short)(PAIR_STATE + s), state_colors[s], -1);
		init_pair(PAIR_STATUS, COLOR_BLACK, COLOR_CYAN);
		init_pair(PAIR_WARNING, COLOR_WHITE, COLOR_RED);
		init_pair(PAIR_TITLE, COLOR_CYAN, -1);
	}
}

void ui_end(void)
{
	if (curses_active) {
		curses_active = false;
		curs_set(1);
		endwin();
	}
}

int ui_state_attr(const tui_app *app, evf_state s)
{
	if (!app->color)
		return s == EVF_STATE_DEAD || s == EVF_STATE_STUCK ? A_BOLD : A_NORMAL;
	return (int)COLOR_PAIR(PAIR_STATE + s) | (s == EVF_STATE_DEAD ? A_BOLD : 0);
}

int ui_selected_attr(const tui_app *app)
{
	(void)app;
	return A_REVERSE;
}

int ui_title_attr(const tui_app *app)
{
	return app->color ? (int)(COLOR_PAIR(PAIR_TITLE) | A_BOLD) : A_BOLD;
}

static int status_attr(const tui_app *app)
{
	return app->color ? (int)COLOR_PAIR(PAIR_STATUS) : A_REVERSE;
}

static int warning_attr(const tui_app *app)
{
	return app->color ? (int)(COLOR_PAIR(PAIR_WARNING) | A_BOLD) : (A_REVERSE | A_BOLD);
}

void ui_text(int y, int x, int width, int attr, const char *text)
{
	char buf[2048];
	size_t n = 0;
	int cols = 0;

	if (width <= 0 || y < 0 || y >= LINES || x >= COLS)
		return;
	if (width > COLS - x)
		width = COLS - x;
	/* cut without padding: count columns, not bytes */
	for (const char *s = text; s[n] && cols < width; cols++) {
		n++;
		while (((unsigned char)s[n] & 0xC0) == 0x80)
			n++;
	}
	if (n >= sizeof buf)
		n = sizeof buf - 1;
	memcpy(buf, text, n);
	buf[n] = '\0';
	attron(attr);
	mvaddstr(y, x, buf);
	attroff(attr);
}

void ui_line(int y, int attr, const char *text)
{
	char buf[2048];

	tui_fit(buf, sizeof buf, text, COLS);
	attron(attr);
	mvaddstr(y, 0, buf);
	attroff(attr);
}

/* ---- the header --------------------------------------------------------------- */

static const char *const short_names[EVF_STATE__COUNT] = {
	"pend", "sched", "run", "fail", "stuck", "dead", "done"
};

static bool estimated_state(int s)
{
	return s == EVF_STATE_DONE || s == EVF_STATE_DEAD;
}

/* The state tabs with their counts; the current one in reverse video. */
static void draw_tabs(tui_app *app, int y)
{
	const evf_overview *ov = &app->overview;
	const char *approx = app->utf8 ? "\u2248" : "~";
	char items[EVF_STATE__COUNT + 1][64], count[16];
	int widths[EVF_STATE__COUNT + 1], total = 0;
	bool abbreviate = false;

	for (int pass = 0; pass < 2; pass++) {
		total = 0;
		for (int t = -1; t < EVF_STATE__COUNT; t++) {
			const char *name = t < 0 ? "all" :
			                   abbreviate ? short_names[t] : evf_state_name((evf_state)t);
			int64_t n = t < 0 ? ov->total : ov->counts[t];
			bool approx_here = ov->estimated && (t < 0 || estimated_state(t));

			tui_fmt_count(count, sizeof count, n);
			snprintf(items[t + 1], sizeof items[t + 1], " %s %s%s ", name,
			         approx_here ? approx : "", count);
			widths[t + 1] = (int)strlen(items[t + 1]) - (approx_here && app->utf8 ? 2 : 0);
			total += widths[t + 1];
		}
		if (total <= COLS)
			break;
		abbreviate = true;
	}
	int x = 0;
	for (int t = -1; t < EVF_STATE__COUNT && x < COLS; t++) {
		int attr = t < 0 ? (int)A_BOLD : ui_state_attr(app, (evf_state)t);

		if (t == app->tab)
			attr |= A_REVERSE;
		ui_text(y, x, COLS - x, attr, items[t + 1]);
		x += widths[t + 1];
	}
}

/* One column per share of the states; with colour a solid block, without
 * a letter of its own so that the parts stay apart. */
static void draw_bar(tui_app *app, int y)
{
	static const char marks[EVF_STATE__COUNT] = { '=', '~', '>', '!', '?', 'x', '.' };
	int widths[EVF_STATE__COUNT], x = 0;

	tui_bar_widths(app->overview.counts, COLS, widths);
	move(y, 0);
	for (int s = 0; s < EVF_STATE__COUNT; s++) {
		int attr = ui_state_attr(app, (evf_state)s);

		char mark[2] = { marks[s], '\0' };
		/* a full block in colour; a letter when colour cannot tell apart */
		const char *glyph = app->color && app->utf8 ? "\u2588" : mark;

		if (app->color && !app->utf8) {
			attr |= A_REVERSE;
			mark[0] = ' ';
		}
		attron(attr);
		for (int i = 0; i < widths[s] && x < COLS; i++, x++)
			addstr(glyph);
		attroff(attr);
	}
}

static void draw_throughput(tui_app *app, int y)
{
	const evf_overview *ov = &app->overview;
	char done[16], failed[16], spark_done[128], spark_failed[128], age[16];
	char line[512], workers[16];

	tui_fmt_rate(done, sizeof done, tui_rate_done(&app->rate));
	tui_fmt_rate(failed, sizeof failed, tui_rate_failed(&app->rate));
	tui_sparkline(spark_done, sizeof spark_done, app->rate.done, app->rate.n, 10, app->utf8);
	tui_sparkline(spark_failed, sizeof spark_failed, app->rate.failed, app->rate.n, 10, app->utf8);
	if (ov->oldest_ready)
		tui_fmt_age(age, sizeof age, (ov->now ? ov->now : evf_now()) - ov->oldest_ready);
	else
		snprintf(age, sizeof age, "-");
	tui_fmt_count(workers, sizeof workers, ov->workers);
	snprintf(line, sizeof line, "done %s/s %s  failed %s/s %s  oldest ready %s  workers %s",
	         done, spark_done, failed, spark_failed, age, workers);
	ui_text(y, 0, COLS, A_NORMAL, line);
}

static void draw_title(tui_app *app, int y)
{
	char left[1024], right[64];
	int rlen;

	snprintf(left, sizeof left, "evf-top %s  %s  table %s  [%s]", EVF_VERSION_STRING,
	         app->display_url, app->table,
	         app->screen->title);
	if (app->paused)
		snprintf(right, sizeof right, "PAUSED");
	else
		snprintf(right, sizeof right, "every %gs", (double)app->interval_ms / 1000.0);
	rlen = (int)strlen(right);
	ui_text(y, 0, COLS - rlen - 1, ui_title_attr(app), left);
	if (COLS > rlen)
		ui_text(y, COLS - rlen, rlen, app->paused ? A_BOLD | A_REVERSE : A_BOLD, right);
}

/* ---- the status line ---------------------------------------------------------- */

static void draw_status(tui_app *app)
{
	int y = LINES - 1;
	char left[1024], right[160], count[16];
	const char *approx = app->utf8 ? "\u2248" : "~";
	int attr = status_attr(app);

	right[0] = '\0';
	if (app->read_only)
		strcat(right, " READ-ONLY");
	if (app->ntags) {
		size_t n = strlen(right);
		snprintf(right + n, sizeof right - n, " tagged %zu", app->ntags);
	}
	{
		size_t n = strlen(right);
		snprintf(right + n, sizeof right - n, " %s %s ",
		         evf_order_name(app->events.order), app->events.descending ? (app->utf8 ? "\u2193" : "desc")
		                                : (app->utf8 ? "\u2191" : "asc"));
	}

	if (app->message[0]) {
		snprintf(left, sizeof left, " %s", app->message);
		if (app->message_is_warning)
			attr = warning_attr(app);
	} else if (app->db_error[0]) {
		snprintf(left, sizeof left, " %s", app->db_error);
		attr = warning_attr(app);
	} else if (app->filter.expr || app->tab >= 0) {
		int n = snprintf(left, sizeof left, " filter: %s%s%s",
		                 app->filter.expr ? app->filter.expr : "",
		                 app->filter.expr && app->tab >= 0 ? " " : "",
		                 app->tab >= 0 ? evf_state_name((evf_state)app->tab) : "");
		if (app->events.matching >= 0 && n > 0 && (size_t)n < sizeof left)
			snprintf(left + n, sizeof left - (size_t)n, "  (%s%s%s match)",
			         app->overview.estimated && !app->filter.expr ? approx : "",
			         tui_fmt_count(count, sizeof count,
			                       app->events.matching > TUI_COUNT_CAP ? TUI_COUNT_CAP
			                                                            : app->events.matching),
			         app->events.matching > TUI_COUNT_CAP ? "+" : "");
	} else {
		snprintf(left, sizeof left, " ? help  / filter  Tab state  1 events  2 types  "
		         "3 health  q quit");
	}
	ui_line(y, attr, left);
	int rlen = (int)strlen(right) - (app->utf8 ? 2 : 0);
	if (COLS > rlen + 20)
		ui_text(y, COLS - rlen, rlen, status_attr(app), right);
}

void ui_draw(tui_app *app)
{
	erase();
	draw_title(app, 0);
	if (app->have_overview) {
		draw_tabs(app, 1);
		draw_bar(app, 2);
		draw_throughput(app, 3);
	} else {
		ui_text(1, 0, COLS, A_NORMAL, "waiting for the database...");
	}
	app->screen->draw(app, TUI_HEADER_ROWS, app_body_rows());
	draw_status(app);
	wnoutrefresh(stdscr);
	doupdate();
}

/* ---- questions on the status line --------------------------------------------- */

/* A key, or ERR when a stop was requested while waiting. */
static int wait_key(void)
{
	timeout(250);
	for (;;) {
		int c = getch();

		if (ui_stop_requested())
			return ERR;
		if (c != ERR)
			return c;
	}
}

bool ui_prompt(tui_app *app, const char *label, const char *initial,
               char *out, size_t outlen)
{
	size_t len;

	if (outlen == 0)
		return false;
	snprintf(out, outlen, "%s", initial ? initial : "");
	len = strlen(out);
	curs_set(1);
	for (;;) {
		char line[2048];
		int c;

		snprintf(line, sizeof line, "%s%s", label, out);
		ui_line(LINES - 1, A_NORMAL, line);
		move(LINES - 1, (int)strlen(label) + (int)len > COLS - 1 ? COLS - 1
		                : (int)strlen(label) + (int)len);
		refresh();
		c = wait_key();
		if (c == ERR || c == 27) {
			curs_set(0);
			return false;
		}
		if (c == '\n' || c == '\r' || c == KEY_ENTER) {
			curs_set(0);
			return true;
		}
		if (c == KEY_RESIZE) {
			ui_draw(app);
		} else if (c == KEY_BACKSPACE || c == 127 || c == 8) {
			/* drop a whole UTF-8 sequence */
			while (len > 0 && ((unsigned char)out[len - 1] & 0xC0) == 0x80)
				len--;
			if (len > 0)
				len--;
			out[len] = '\0';
		} else if (c == 21) { /* C-u */
			len = 0;
			out[0] = '\0';
		} else if (c >= 32 && c < 256 && c != 127 && len + 1 < outlen) {
			out[len++] = (char)c;
			out[len] = '\0';
		}
	}
}

bool ui_confirm(tui_app *app, const char *question)
{
	for (;;) {
		char line[1024];
		int c;

		snprintf(line, sizeof line, " %s [y/N] ", question);
		ui_line(LINES - 1, warning_attr(app), line);
		refresh();
		c = wait_key();
		if (c == KEY_RESIZE) {
			ui_draw(app);
			continue;
		}
		return c == 'y' || c == 'Y';
	}
}
