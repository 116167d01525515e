/*
 * cmd_stuck.c - `evfctl stuck`: events whose lease expired (the worker
 * that claimed them stopped or vanished), and --release to make them ready
 * at once instead of when the next claim finds them.
 */
#include "cli.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

struct stuck_list {
	evf_time now;
	cJSON *json;       /* the array, with --json */
	int64_t rows;
	int64_t *ids;      /* kept for --release --limit */
	size_t nids, cap;
};

/* --release --limit N: the ids of the first N. */
static int collect_id(const evf_event *ev, void *user)
{
	struct stuck_list *sl = user;

	if (sl->nids == sl->cap) {
		size_t cap = sl->cap ? sl->cap * 2 : 64;
		int64_t *ids = realloc(sl->ids, cap * sizeof *ids);
		if (ids == NULL)
			cli_oom();
		sl->ids = ids;
		sl->cap = cap;
	}
	sl->ids[sl->nids++] = ev->id;
	return 0;
}

static int show_row(const evf_event *ev, void *user)
{
	struct stuck_list *sl = user;
	char until[40], age[32];
	int64_t age_ms = (sl->now - ev->locked_until) / 1000;

	sl->rows++;
	evf_time_format(until, sizeof until, ev->locked_until);
	if (sl->json != NULL) {
		cJSON *o = cli_json_object();

		cli_json_add_number(o, "id", (double)ev->id);
		cli_json_add_string(o, "type", ev->type);
		cli_json_add_number(o, "attempts", ev->attempts);
		cli_json_add_string(o, "locked_by", ev->locked_by ? ev->locked_by : "");
		cli_json_add_string(o, "locked_until", until);
		cli_json_add_number(o, "age_s", age_ms > 0 ? (double)age_ms / 1000.0 : 0);
		if (!cJSON_AddItemToArray(sl->json, o))
			cli_oom();
		return 0;
	}
	if (sl->rows == 1)
		printf("%8s %-24s %8s %-28s %-26s %s\n", "ID", "TYPE", "ATTEMPTS",
		       "LOCKED_BY", "LOCKED_UNTIL", "AGE");
	printf("%8" PRId64 " %-24s %8d %-28s %-26s %s\n", ev->id, ev->type, ev->attempts,
	       ev->locked_by ? ev->locked_by : "", until,
	       evf_duration_format(age, sizeof age, age_ms));
	return 0;
}

/* Leases exist only in the extended columns. */
static int check_extended(const cli_ctx *ctx, evf_db *db)
{
	int ext = evf_schema_extended(db);

	if (ext < 0)
		return cli_lib_error(ctx, ext);
	if (ext == 0)
		return cli_fail(ctx, "stuck events need the lease columns, which table %s "
		                "(made by the original package) lacks: 'evfctl migrate' adds "
		                "them", evf_db_table(db));
	return CLI_EXIT_OK;
}

int cmd_stuck(const cli_ctx *ctx, int argc, char **argv)
{
	enum { OPT_RELEASE = CLI_OPT_COMMAND, OPT_LIMIT };
	static const struct option longopts[] = {
		{ "release", no_argument, NULL, OPT_RELEASE },
		{ "type", required_argument, NULL, CLI_OPT_TYPE },
		{ "limit", required_argument, NULL, OPT_LIMIT },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct stuck_list sl = { 0, NULL, 0, NULL, 0, 0 };
	evf_filter f = EVF_FILTER_INIT;
	bool release = false, limited = false;
	evf_db *db = NULL;
	int c, rc;

	f.states = 1u << EVF_STATE_STUCK;
	f.limit = 100;
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			cli_command_help(ctx->cmd);
			return CLI_EXIT_OK;
		case OPT_RELEASE:
			release = true;
			break;
		case CLI_OPT_TYPE:
			rc = cli_filter_option(ctx, &f, c, optarg);
			if (rc != CLI_EXIT_OK)
				return rc;
			break;
		case OPT_LIMIT:
			rc = cli_parse_int64(ctx, "--limit", optarg, 0, INT64_MAX, &f.limit);
			if (rc != CLI_EXIT_OK)
				return rc;
			limited = true;
			break;
		default:
			return cli_option_error(ctx, c, argv);
		}
	}
	if (optind < argc)
		return cli_usage(ctx, "unexpected argument '%s'", argv[optind]);
	rc = cli_open_db(ctx, &db, false);
	if (rc != CLI_EXIT_OK)
		return rc;
	rc = check_extended(ctx, db);
	if (rc != CLI_EXIT_OK)
		goto out;

	if (release) {
		int64_t affected = 0;
		int err = 0;

		/* --limit releases the first N stuck events (by id); without it,
		 * every one that matches */
		if (limited && f.limit > 0) {
			err = evf_query(db, &f, collect_id, &sl);
			f.ids = sl.ids;
			f.nids = sl.nids;
		}
		f.limit = 0;
		if (err == 0 && !(limited && sl.nids == 0))
			err = evf_act(db, EVF_ACTION_RELEASE, &f, 0, false, &affected);
		if (err < 0)
			rc = cli_lib_error(ctx, err);
		else
			cli_print_action_result(ctx, EVF_ACTION_RELEASE, 0, false, affected);
		goto out;
	}

	sl.now = evf_now();
	if (ctx->json)
		sl.json = cli_json_array();
	int err = evf_query(db, &f, show_row, &sl);
	if (err < 0) {
		cJSON_Delete(sl.json);
		rc = cli_lib_error(ctx, err);
		goto out;
	}
	if (sl.json != NULL)
		cli_print_json(sl.json);
	else if (sl.rows == 0)
		puts("no stuck events");
out:
	free(sl.ids);
	evf_close(db);
	return rc;
}
