/*
 * cmd_list.c - `evfctl list`: a filtered page of events.
 *
 * Rows are printed as the query delivers them, so `--limit 0` over a large
 * table never holds more than one event in memory; column widths are fixed
 * for the same reason.
 */
#include "cli.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ERROR_WIDTH 60

struct list_state {
	bool json;
	int64_t rows;
};

/* First line of msg, at most ERROR_WIDTH bytes, cut on a UTF-8 boundary. */
static void print_error_excerpt(const char *msg)
{
	size_t n;

	if (msg == NULL)
		return;
	n = strcspn(msg, "\r\n");
	if (n > ERROR_WIDTH) {
		n = ERROR_WIDTH - 3;
		while (n > 0 && ((unsigned char)msg[n] & 0xC0) == 0x80)
			n--;
		printf("%.*s...", (int)n, msg);
	} else {
		printf("%.*s", (int)n, msg);
	}
}

/* Printed with the first row or at the end, so that a query that fails
 * at once leaves stdout empty. */
static void print_opening(const struct list_state *ls)
{
	if (ls->json)
		putchar('[');
	else
		printf("%8s %-24s %-9s %-8s %4s %-19s %s\n", "ID", "TYPE", "STATE",
		       "ATTEMPTS", "PRIO", "DATE", "ERROR");
}

static int print_row(const evf_event *ev, void *user)
{
	struct list_state *ls = user;

	if (ls->rows == 0)
		print_opening(ls);
	if (ls->json) {
		char *json = evf_event_to_json(ev, false);

		if (json == NULL)
			cli_oom();
		printf("%s%s", ls->rows > 0 ? ",\n" : "\n", json);
		free(json);
	} else {
		char date[40], attempts[32];

		evf_time_format(date, sizeof date, ev->date);
		date[19] = '\0'; /* seconds are enough in a table */
		snprintf(attempts, sizeof attempts, "%d/%d", ev->attempts, ev->max_attempts);
		printf("%8" PRId64 " %-24s %-9s %-8s %4d %-19s ", ev->id, ev->type,
		       evf_state_name(ev->state), attempts, ev->priority, date);
		/* a retry that succeeded keeps its old message: show it only
		 * while the last attempt is the one that failed */
		print_error_excerpt(ev->error ? ev->error_message : NULL);
		putchar('\n');
	}
	ls->rows++;
	return 0;
}

int cmd_list(const cli_ctx *ctx, int argc, char **argv)
{
	enum { OPT_AFTER = CLI_OPT_COMMAND, OPT_DESC, OPT_LIMIT, OPT_SORT };
	static const struct option longopts[] = {
		CLI_FILTER_LONG_OPTIONS,
		{ "after", required_argument, NULL, OPT_AFTER },
		{ "desc", no_argument, NULL, OPT_DESC },
		{ "limit", required_argument, NULL, OPT_LIMIT },
		{ "sort", required_argument, NULL, OPT_SORT },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	evf_filter filter = EVF_FILTER_INIT;
	struct list_state ls = { ctx->json, 0 };
	evf_db *db = NULL;
	int c, rc;

	filter.limit = 100;
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			cli_command_help(ctx->cmd);
			return CLI_EXIT_OK;
		case OPT_AFTER:
			rc = cli_parse_int64(ctx, "--after", optarg, 0, INT64_MAX, &filter.after_id);
			if (rc != CLI_EXIT_OK)
				return rc;
			break;
		case OPT_DESC:
			filter.descending = true;
			break;
		case OPT_SORT:
			if (evf_order_parse(&filter.order, optarg) != 0)
				return cli_usage(ctx, "bad value for --sort: '%s' (id, date, priority "
				                 "or attempts)", optarg);
			break;
		case OPT_LIMIT:
			rc = cli_parse_int64(ctx, "--limit", optarg, 0, INT64_MAX, &filter.limit);
			if (rc != CLI_EXIT_OK)
				return rc;
			break;
		case '?':
		case ':':
			return cli_option_error(ctx, c, argv);
		default:
			rc = cli_filter_option(ctx, &filter, c, optarg);
			if (rc != CLI_EXIT_OK)
				return rc > 0 ? rc : cli_option_error(ctx, '?', argv);
		}
	}
	if (optind < argc)
		return cli_usage(ctx, "unexpected argument '%s'", argv[optind]);
	rc = cli_open_db(ctx, &db, false);
	if (rc != CLI_EXIT_OK)
		return rc;

	if (filter.after_id && filter.order != EVF_ORDER_ID) {
		/* a page goes on after that event's place in the order */
		evf_event *after = NULL;
		if ((rc = evf_get(db, filter.after_id, &after)) < 0) {
			rc = cli_lib_error(ctx, rc);
			evf_close(db);
			return rc;
		}
		filter.after_key = evf_order_key(filter.order, after);
		evf_event_free(after);
	}
	rc = evf_query(db, &filter, print_row, &ls);
	if (rc < 0) {
		if (ls.rows > 0)
			putchar('\n');
		rc = cli_lib_error(ctx, rc);
	} else {
		if (ls.rows == 0)
			print_opening(&ls);
		if (ctx->json)
			puts(ls.rows > 0 ? "\n]" : "]");
		rc = CLI_EXIT_OK;
	}
	evf_close(db);
	return rc;
}
