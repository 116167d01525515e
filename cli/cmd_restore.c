/*
 * cmd_restore.c - `evfctl restore FILE`: put archived events back.
 */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>

#include <cjson/cJSON.h>

enum { OPT_CHUNK = CLI_OPT_COMMAND, OPT_DRY_RUN };

int cmd_restore(const cli_ctx *ctx, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "chunk", required_argument, NULL, OPT_CHUNK },
		{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	evf_restore_result res;
	evf_db *db = NULL;
	bool dry_run = false;
	int chunk = 0, c, rc;

	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		if (c == 'h') {
			cli_command_help(ctx->cmd);
			return CLI_EXIT_OK;
		} else if (c == OPT_CHUNK) {
			if ((rc = cli_parse_int(ctx, "--chunk", optarg, 1, 1000000, &chunk)) != CLI_EXIT_OK)
				return rc;
		} else if (c == OPT_DRY_RUN) {
			dry_run = true;
		} else {
			return cli_option_error(ctx, c, argv);
		}
	}
	if (optind >= argc)
		return cli_usage(ctx, "which archive file? (evfctl restore FILE)");
	if (argc - optind > 1)
		return cli_usage(ctx, "unexpected argument '%s'", argv[optind + 1]);
	if ((rc = cli_open_db(ctx, &db, false)) != CLI_EXIT_OK)
		return rc;
	rc = evf_restore(db, argv[optind], chunk, dry_run, &res);
	if (rc < 0) {
		rc = cli_lib_error(ctx, rc);
	} else if (ctx->json) {
		cJSON *obj = cli_json_object();
		cli_json_add_string(obj, "file", argv[optind]);
		cli_json_add_bool(obj, "dry_run", dry_run);
		cli_json_add_number(obj, "read", (double)res.read);
		cli_json_add_number(obj, "inserted", (double)res.inserted);
		cli_json_add_number(obj, "skipped", (double)res.skipped);
		cli_json_add_bool(obj, "truncated", res.truncated);
		cli_print_json(obj);
	} else if (dry_run) {
		printf("%s: %lld events, all readable; nothing written\n", argv[optind],
		       (long long)res.read);
	} else {
		printf("restored %lld of %lld events from %s (%lld already there)\n",
		       (long long)res.inserted, (long long)res.read, argv[optind],
		       (long long)res.skipped);
	}
	if (rc >= 0 && res.truncated)
		fprintf(stderr, "evfctl: restore: %s ends in an interrupted chunk: the "
		        "complete lines before the cut were read, the rest ignored\n", argv[optind]);
	evf_close(db);
	return rc;
}
