/*
 * evf-top.c - the live console of an evf event table: options, the
 * database check before the terminal is touched, and the main loop.
 *
 * The loop waits for a key with a timeout that ends at the next refresh;
 * key handlers return flags (redraw, refresh, quit) instead of acting on
 * the screen themselves, so every path goes through one place that fetches
 * and draws.  The terminal is given back on every way out: q, -n, SIGINT,
 * SIGTERM, SIGHUP, and atexit for the rest.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <langinfo.h>
#include <locale.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curses.h>

#include "actions.h"
#include "app.h"
#include "ui.h"

enum { EXIT_USAGE = 2 };
enum { MIN_INTERVAL_MS = 100, KEY_POLL_MS = 250 };

static void usage(FILE *out)
{
	fputs("usage: evf-top [OPTIONS]\n"
	      "Live console of an evf event table.\n"
	      "\n"
	      "Options:\n"
	      "  --config FILE          settings file (default: $EVF_CONFIG, ./evf.conf,\n"
	      "                         ~/.config/evf/evf.conf, /etc/evf/evf.conf)\n"
	      "  --db URL               database (default: $EVF_DATABASE_URL, evf.conf)\n"
	      "  --table NAME           event table (default: evf_event)\n"
	      "  --refresh SECONDS      refresh interval, or a duration like 500ms (default: 2)\n"
	      "  --read-only            disable requeue, mark processed and dead-letter\n"
	      "  --sort-budget DURATION longest a page sorted by priority or attempts may\n"
	      "                         take before the list goes back to id order\n"
	      "                         (default: 80ms; 0: no limit)\n"
	      "  --filter EXPR          start with this filter (see evf-top(1))\n"
	      "  -n, --max-iterations N exit after N refreshes\n"
	      "  -V, --version          print the version and exit\n"
	      "  -h, --help             print this help and exit\n"
	      "\n"
	      "Press ? in evf-top for the keys.\n", out);
}

static int usage_error(const char *fmt, ...) EVF_PRINTF(1, 2);
static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("evf-top: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (see evf-top --help)\n", stderr);
	return EXIT_USAGE;
}

struct options {
	evf_settings *settings; /* evf.conf, the environment, --db and --table */
	const char *config, *url, *table, *filter;
	int64_t interval_ms;
	int64_t sort_budget_ms;
	int64_t max_iterations;
	bool read_only;
};

/* Defaults, the config file, the environment, then --db and --table:
 * o->url and o->table come from the result.  0 or the exit status. */
static int load_settings(struct options *o)
{
	if (evf_settings_new(&o->settings) != 0) {
		fputs("evf-top: out of memory\n", stderr);
		return EXIT_FAILURE;
	}
	if (evf_settings_load(o->settings, o->config) != 0 ||
	    (o->url && evf_settings_set(o->settings, "evf.database", o->url, "--db") != 0) ||
	    (o->table && evf_settings_set(o->settings, "evf.table", o->table, "--table") != 0))
		return usage_error("%s", evf_error_last());
	o->url = o->settings->evf.database;
	o->table = o->settings->evf.table;
	if (!o->url)
		return usage_error("%s", "no database given: use --db URL or set "
		                   "EVF_DATABASE_URL (or database in evf.conf)");
	return 0;
}

/* 0 to go on, else the exit status (-1: exit 0 after --help/--version). */
static int parse_options(struct options *o, int argc, char **argv)
{
	enum { OPT_DB = 256, OPT_TABLE, OPT_REFRESH, OPT_READ_ONLY, OPT_FILTER, OPT_KEYS_MDOC,
	       OPT_CONFIG, OPT_SORT_BUDGET };
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, OPT_CONFIG },
		{ "db", required_argument, NULL, OPT_DB },
		{ "table", required_argument, NULL, OPT_TABLE },
		{ "refresh", required_argument, NULL, OPT_REFRESH },
		{ "read-only", no_argument, NULL, OPT_READ_ONLY },
		{ "sort-budget", required_argument, NULL, OPT_SORT_BUDGET },
		{ "filter", required_argument, NULL, OPT_FILTER },
		{ "max-iterations", required_argument, NULL, 'n' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		/* hidden: the KEYS section of evf-top(1), from the action table */
		{ "keys-mdoc", no_argument, NULL, OPT_KEYS_MDOC },
		{ NULL, 0, NULL, 0 }
	};
	int c;

	memset(o, 0, sizeof *o);
	o->interval_ms = 2000;
	o->sort_budget_ms = TUI_SORT_BUDGET_MS;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":n:Vh", longopts, NULL)) != -1) {
		char *end;

		switch (c) {
		case OPT_CONFIG:
			o->config = optarg;
			break;
		case OPT_DB:
			o->url = optarg;
			break;
		case OPT_TABLE:
			o->table = optarg;
			break;
		case OPT_REFRESH:
			if (evf_duration_parse(&o->interval_ms, optarg) || o->interval_ms < MIN_INTERVAL_MS)
				return usage_error("bad --refresh '%s': want seconds (2) or a "
				                   "duration of at least 100ms", optarg);
			break;
		case OPT_READ_ONLY:
			o->read_only = true;
			break;
		case OPT_SORT_BUDGET:
			if (strcmp(optarg, "0") && evf_duration_parse(&o->sort_budget_ms, optarg))
				return usage_error("bad --sort-budget '%s': want a duration like 80ms "
				                   "or 2s, or 0 for no limit", optarg);
			if (!strcmp(optarg, "0"))
				o->sort_budget_ms = 0;
			break;
		case OPT_FILTER:
			o->filter = optarg;
			break;
		case 'n':
			errno = 0;
			o->max_iterations = strtoll(optarg, &end, 10);
			if (errno || end == optarg || *end || o->max_iterations < 1)
				return usage_error("bad --max-iterations '%s': want a number >= 1", optarg);
			break;
		case 'V':
			printf("evf-top %s\n", EVF_VERSION_STRING);
			return -1;
		case 'h':
			usage(stdout);
			return -1;
		case OPT_KEYS_MDOC:
			tui_print_keys_mdoc(stdout);
			return -1;
		case ':':
			return usage_error("option %s needs a value", argv[optind - 1]);
		default:
			return usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	return load_settings(o);
}

/* Open the database and make sure the table is there, all before curses
 * starts, so that a wrong path is a plain error and never a new file. */
static int open_database(evf_db **db, const struct options *o)
{
	evf_options opts = EVF_OPTIONS_INIT;
	int rc;

	evf_settings_options(o->settings, &opts);
	if (evf_open(db, o->url, &opts) != 0) {
		fprintf(stderr, "evf-top: %s\n", evf_error_last());
		return EXIT_FAILURE;
	}
	if ((rc = evf_schema_extended(*db)) < 0) {
		fprintf(stderr, "evf-top: %s\n", evf_error_last());
		evf_close(*db);
		*db = NULL;
		return EXIT_FAILURE;
	}
	return 0;
}

static void on_signal(int sig)
{
	(void)sig;
	ui_request_stop();
}

static void catch_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

static int64_t ms_until(evf_time deadline)
{
	evf_time now = evf_now();

	return deadline > now ? (deadline - now + 999) / 1000 : 0;
}

static void run(tui_app *app, int64_t max_iterations)
{
	int64_t refreshes = 0;
	evf_time next_refresh = 0;
	int flags = TUI_REFRESH | TUI_REDRAW;

	while (!ui_stop_requested()) {
		if (flags & TUI_REFRESH) {
			app_refresh(app);
			refreshes++;
			next_refresh = evf_now() + app->interval_ms * 1000;
			flags |= TUI_REDRAW;
		}
		if (flags & TUI_REDRAW)
			ui_draw(app);
		if (flags & TUI_QUIT)
			break;
		if (max_iterations && refreshes >= max_iterations)
			break;
		flags = 0;

		int64_t wait = app->paused ? KEY_POLL_MS : ms_until(next_refresh);
		timeout((int)(wait < KEY_POLL_MS ? wait : KEY_POLL_MS));
		int key = getch();
		if (key == ERR) {
			if (!app->paused && evf_now() >= next_refresh)
				flags = TUI_REFRESH;
			else if (app->screen->poll)
				flags = app->screen->poll(app);
			continue;
		}
		if (key == KEY_RESIZE) {
			/* the page size follows the terminal: fetch a page that fits */
			flags = TUI_REFRESH | TUI_REDRAW;
			continue;
		}
		app->message[0] = '\0';
		const tui_action *a = tui_action_for_key(key);
		if (a)
			flags = a->fn(app);
		else
			flags = TUI_REDRAW;
	}
}

int main(int argc, char **argv)
{
	struct options o;
	tui_app app;
	evf_db *db;
	int rc;

	rc = parse_options(&o, argc, argv);
	if (rc == 0)
		rc = open_database(&db, &o);
	if (rc == 0 && app_init(&app, db, o.url, evf_db_table(db)) != 0) {
		fputs("evf-top: out of memory\n", stderr);
		evf_close(db);
		rc = EXIT_FAILURE;
	}
	/* app_init copied the URL and the table: the settings are done */
	evf_settings_free(o.settings);
	if (rc != 0)
		return rc < 0 ? EXIT_SUCCESS : rc;
	app.interval_ms = o.interval_ms;
	app.read_only = o.read_only;
	app.sort_budget_ms = o.sort_budget_ms;
	if (o.filter) {
		char err[256];

		if (tui_filter_parse(&app.filter, o.filter, evf_now(), err, sizeof err)) {
			fprintf(stderr, "evf-top: bad --filter: %s\n", err);
			app_free(&app);
			return EXIT_USAGE;
		}
	}

	setlocale(LC_ALL, "");
	app.utf8 = strcmp(nl_langinfo(CODESET), "UTF-8") == 0;
	catch_signals();
	atexit(ui_end);
	ui_init(&app);
	run(&app, o.max_iterations);
	ui_end();
	app_free(&app);
	return EXIT_SUCCESS;
}
