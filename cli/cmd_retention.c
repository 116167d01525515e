/*
 * cmd_retention.c - `evfctl purge` and `evfctl archive`, the retention jobs
 * for cron and systemd timers.  They share their options, their report and
 * their handling of SIGINT/SIGTERM: the chunk in flight is finished, the
 * report printed, and the exit status says the job did not complete.
 */
#include "cli.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

enum {
	OPT_OLDER_THAN = CLI_OPT_COMMAND,
	OPT_CHUNK,
	OPT_DRY_RUN,
	OPT_TO,
	OPT_TO_TABLE,
	OPT_APPEND,
	OPT_PURGE
};

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static int keep_going(const evf_retention_result *so_far, void *user)
{
	(void)so_far;
	(void)user;
	return stop_requested;
}

static void report(const cli_ctx *ctx, bool archive, const evf_retention *r,
                   const evf_retention_result *res)
{
	char when[40];
	evf_time_format(when, sizeof when, r->older_than);
	if (ctx->json) {
		cJSON *obj = cli_json_object(), *states = cli_json_object();
		cli_json_add_bool(obj, "dry_run", r->dry_run);
		cli_json_add_string(obj, "older_than", when);
		for (int s = 0; s < EVF_STATE__COUNT; s++)
			if (res->counts[s])
				cli_json_add_number(states, evf_state_name((evf_state)s),
				                    (double)res->counts[s]);
		cli_json_add_item(obj, "states", states);
		cli_json_add_number(obj, "total", (double)res->total);
		if (archive) {
			cli_json_add_string(obj, r->to_file ? "file" : "table",
			                    r->to_file ? r->to_file : r->to_table);
			cli_json_add_number(obj, "purged", (double)res->purged);
		}
		cli_json_add_number(obj, "chunks", (double)res->chunks);
		cli_json_add_bool(obj, "interrupted", res->interrupted);
		cli_print_json(obj);
		return;
	}
	const char *verb = archive ? (r->dry_run ? "would archive" : "archived")
	                           : (r->dry_run ? "would purge" : "purged");
	printf("%s %lld events created before %s", verb, (long long)res->total, when);
	if (archive)
		printf(" %s %s", r->to_file ? "to" : "to table", r->to_file ? r->to_file : r->to_table);
	if (!r->dry_run)
		printf(" (%lld chunk%s)", (long long)res->chunks, res->chunks == 1 ? "" : "s");
	putchar('\n');
	for (int s = 0; s < EVF_STATE__COUNT; s++)
		if (res->counts[s])
			printf("  %-10s %lld\n", evf_state_name((evf_state)s), (long long)res->counts[s]);
	if (archive && r->purge && !r->dry_run)
		printf("deleted %lld archived events from %s\n", (long long)res->purged,
		       ctx->table ? ctx->table : "the event table");
}

static int run_retention(const cli_ctx *ctx, bool archive, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "older-than", required_argument, NULL, OPT_OLDER_THAN },
		{ "state", required_argument, NULL, CLI_OPT_STATE },
		{ "type", required_argument, NULL, CLI_OPT_TYPE },
		{ "chunk", required_argument, NULL, OPT_CHUNK },
		{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
		{ "to", required_argument, NULL, OPT_TO },
		{ "to-table", required_argument, NULL, OPT_TO_TABLE },
		{ "append", no_argument, NULL, OPT_APPEND },
		{ "purge", no_argument, NULL, OPT_PURGE },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	evf_retention r = EVF_RETENTION_INIT;
	evf_retention_result res;
	evf_db *db = NULL;
	int c, rc;

	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		rc = CLI_EXIT_OK;
		switch (c) {
		case 'h':
			cli_command_help(ctx->cmd);
			return CLI_EXIT_OK;
		case OPT_OLDER_THAN:
			rc = cli_parse_time_or_ago(ctx, "--older-than", optarg, &r.older_than);
			break;
		case CLI_OPT_STATE:
			rc = cli_parse_states(ctx, "--state", optarg, &r.states);
			break;
		case CLI_OPT_TYPE:
			r.type = optarg;
			break;
		case OPT_CHUNK:
			rc = cli_parse_int(ctx, "--chunk", optarg, 1, 1000000, &r.chunk);
			break;
		case OPT_DRY_RUN:
			r.dry_run = true;
			break;
		case OPT_TO:
		case OPT_TO_TABLE:
		case OPT_APPEND:
		case OPT_PURGE:
			if (!archive)
				return cli_option_error(ctx, '?', argv);
			if (c == OPT_TO)
				r.to_file = optarg;
			else if (c == OPT_TO_TABLE)
				r.to_table = optarg;
			else if (c == OPT_APPEND)
				r.append = true;
			else
				r.purge = true;
			break;
		default:
			return cli_option_error(ctx, c, argv);
		}
		if (rc != CLI_EXIT_OK)
			return rc;
	}
	if (optind < argc)
		return cli_usage(ctx, "unexpected argument '%s'", argv[optind]);
	if (!r.older_than)
		return cli_usage(ctx, "--older-than is required (e.g. --older-than 30d): "
		                 "nothing is deleted by accident");
	if (archive && !r.to_file == !r.to_table)
		return cli_usage(ctx, "give exactly one of --to FILE and --to-table NAME");
	if (r.append && !r.to_file)
		return cli_usage(ctx, "--append goes with --to FILE");
	if ((rc = cli_open_db(ctx, &db, false)) != CLI_EXIT_OK)
		return rc;
	r.progress = keep_going;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	rc = archive ? evf_archive(db, &r, &res) : evf_purge(db, &r, &res);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	if (rc < 0) {
		rc = cli_lib_error(ctx, rc);
	} else {
		report(ctx, archive, &r, &res);
		if (res.interrupted)
			rc = cli_fail(ctx, "interrupted after %lld chunks; what was done is kept, "
			              "run it again to finish", (long long)res.chunks);
	}
	evf_close(db);
	return rc;
}

int cmd_purge(const cli_ctx *ctx, int argc, char **argv)
{
	return run_retention(ctx, false, argc, argv);
}

int cmd_archive(const cli_ctx *ctx, int argc, char **argv)
{
	return run_retention(ctx, true, argc, argv);
}
