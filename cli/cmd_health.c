/*
 * cmd_health.c - `evfctl health`: a monitoring plugin (Nagios, Icinga,
 * Sensu).  One line per check, the worst first; the exit status is the
 * worst check: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN when the database
 * cannot be opened or read.  Usage errors stay 2, as for every command.
 */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

static int parse_ratio(const cli_ctx *ctx, const char *what, const char *text, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(text, &end);
	if (text[0] == '\0' || *end != '\0' || errno == ERANGE || isnan(v) || v < 0 || v > 1)
		return cli_usage(ctx, "bad ratio for %s: '%s' (a number from 0 to 1)", what, text);
	*out = v;
	return CLI_EXIT_OK;
}

/* JSON number, or null for "none" (a negative threshold, an unavailable
 * value). */
static void add_number_or_null(cJSON *obj, const char *key, double v, bool have)
{
	if (have && v >= 0)
		cli_json_add_number(obj, key, v);
	else if (cJSON_AddNullToObject(obj, key) == NULL)
		cli_oom();
}

static void print_json(const evf_health_report *r, const char *error)
{
	cJSON *obj = cli_json_object(), *checks = cli_json_array();
	evf_health_status st = r ? r->status : EVF_HEALTH_UNKNOWN;

	cli_json_add_string(obj, "status", evf_health_status_name(st));
	cli_json_add_number(obj, "exit", (double)st);
	for (size_t i = 0; r && i < r->nchecks; i++) {
		const evf_health_item *c = &r->checks[i];
		cJSON *o = cli_json_object();

		cli_json_add_string(o, "name", c->name);
		cli_json_add_string(o, "status", evf_health_status_name(c->status));
		cli_json_add_bool(o, "available", c->available);
		add_number_or_null(o, "value", c->value, c->available);
		add_number_or_null(o, "warning", c->warning, c->available);
		add_number_or_null(o, "critical", c->critical, c->available);
		cli_json_add_string(o, "detail", c->detail);
		if (!cJSON_AddItemToArray(checks, o))
			cli_oom();
	}
	cli_json_add_item(obj, "checks", checks);
	if (error != NULL)
		cli_json_add_string(obj, "error", error);
	cli_print_json(obj);
}

/* The database could not be reached or read: UNKNOWN, exit 3. */
static int unknown(const cli_ctx *ctx)
{
	char msg[512];

	snprintf(msg, sizeof msg, "%s", evf_error_last());
	if (ctx->json)
		print_json(NULL, msg);
	else
		printf("UNKNOWN database: %s\n", msg);
	return EVF_HEALTH_UNKNOWN;
}

static void print_human(const evf_health_report *r)
{
	/* the worst first: a monitoring system shows the first line */
	for (int st = EVF_HEALTH_UNKNOWN; st >= EVF_HEALTH_OK; st--)
		for (size_t i = 0; i < r->nchecks; i++)
			if ((int)r->checks[i].status == st)
				printf("%s %s: %s\n", evf_health_status_name(r->checks[i].status),
				       r->checks[i].name, r->checks[i].detail);
}

static int parse_args(const cli_ctx *ctx, evf_health_thresholds *t, int argc, char **argv)
{
	enum {
		OPT_STUCK_W = CLI_OPT_COMMAND, OPT_STUCK_C, OPT_OLDEST_W, OPT_OLDEST_C,
		OPT_WINDOW, OPT_RATIO_W, OPT_RATIO_C, OPT_DEAD_W, OPT_DEAD_C, OPT_IDLE
	};
	static const struct option longopts[] = {
		{ "stuck-warning", required_argument, NULL, OPT_STUCK_W },
		{ "stuck-critical", required_argument, NULL, OPT_STUCK_C },
		{ "oldest-ready-warning", required_argument, NULL, OPT_OLDEST_W },
		{ "oldest-ready-critical", required_argument, NULL, OPT_OLDEST_C },
		{ "window", required_argument, NULL, OPT_WINDOW },
		{ "failure-ratio-warning", required_argument, NULL, OPT_RATIO_W },
		{ "failure-ratio-critical", required_argument, NULL, OPT_RATIO_C },
		{ "dead-warning", required_argument, NULL, OPT_DEAD_W },
		{ "dead-critical", required_argument, NULL, OPT_DEAD_C },
		{ "idle-queue", required_argument, NULL, OPT_IDLE },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int c, rc = CLI_EXIT_OK;

	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		const char *name = c >= CLI_OPT_COMMAND && c <= OPT_IDLE
			? longopts[c - CLI_OPT_COMMAND].name : "";
		char flag[48];

		snprintf(flag, sizeof flag, "--%s", name);
		switch (c) {
		case 'h':
			cli_command_help(ctx->cmd);
			return CLI_EXIT_OK;
		case OPT_STUCK_W:
			rc = cli_parse_int64(ctx, flag, optarg, 0, INT64_MAX, &t->stuck_warning);
			break;
		case OPT_STUCK_C:
			rc = cli_parse_int64(ctx, flag, optarg, 0, INT64_MAX, &t->stuck_critical);
			break;
		case OPT_OLDEST_W:
			rc = cli_parse_duration(ctx, flag, optarg, &t->oldest_ready_warning_ms);
			break;
		case OPT_OLDEST_C:
			rc = cli_parse_duration(ctx, flag, optarg, &t->oldest_ready_critical_ms);
			break;
		case OPT_WINDOW:
			rc = cli_parse_duration(ctx, flag, optarg, &t->window_ms);
			break;
		case OPT_RATIO_W:
			rc = parse_ratio(ctx, flag, optarg, &t->failure_ratio_warning);
			break;
		case OPT_RATIO_C:
			rc = parse_ratio(ctx, flag, optarg, &t->failure_ratio_critical);
			break;
		case OPT_DEAD_W:
			rc = cli_parse_int64(ctx, flag, optarg, 0, INT64_MAX, &t->dead_warning);
			break;
		case OPT_DEAD_C:
			rc = cli_parse_int64(ctx, flag, optarg, 0, INT64_MAX, &t->dead_critical);
			break;
		case OPT_IDLE:
			rc = cli_parse_duration(ctx, flag, optarg, &t->idle_queue_ms);
			break;
		default:
			return cli_option_error(ctx, c, argv);
		}
		if (rc != CLI_EXIT_OK)
			return rc;
	}
	if (optind < argc)
		return cli_usage(ctx, "unexpected argument '%s'", argv[optind]);
	/* warning above critical and the like: usage errors, before any
	 * database is opened */
	if (evf_health_thresholds_validate(t) < 0)
		return cli_usage(ctx, "%s", evf_error_last());
	return -1;
}

int cmd_health(const cli_ctx *ctx, int argc, char **argv)
{
	evf_health_thresholds t;
	evf_options opts = EVF_OPTIONS_INIT;
	evf_health_report *r = NULL;
	evf_db *db = NULL;
	int rc;

	/* [health] of evf.conf and EVF_HEALTH_*, then the flags */
	evf_settings_health_thresholds(ctx->settings, &t);
	rc = parse_args(ctx, &t, argc, argv);

	if (rc >= 0)
		return rc;
	if (ctx->db_url == NULL)
		return cli_usage(ctx, "no database given: use --db URL or set EVF_DATABASE_URL");
	evf_settings_options(ctx->settings, &opts);
	opts.table = ctx->table;
	rc = evf_open(&db, ctx->db_url, &opts);
	if (rc == EVF_EINVAL) /* a malformed URL or table name */
		return cli_lib_error(ctx, rc);
	if (rc < 0)
		return unknown(ctx);
	if (evf_health_check(db, &t, &r) < 0) {
		rc = unknown(ctx);
	} else {
		if (ctx->json)
			print_json(r, NULL);
		else
			print_human(r);
		rc = (int)r->status;
	}
	evf_health_report_free(r);
	evf_close(db);
	return rc;
}
