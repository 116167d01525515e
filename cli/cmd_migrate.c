/*
 * cmd_migrate.c - `evfctl migrate`: the opt-in upgrade of a table made by
 * the original Django package (never done implicitly by any other command).
 */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

int cmd_migrate(const cli_ctx *ctx, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "dry-run", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	bool dry_run = false;
	evf_db *db = NULL;
	char *sql = NULL;
	int c, rc, before;

	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		if (c == 'h') {
			cli_command_help(ctx->cmd);
			return CLI_EXIT_OK;
		}
		if (c != 'n')
			return cli_option_error(ctx, c, argv);
		dry_run = true;
	}
	if (optind < argc)
		return cli_usage(ctx, "unexpected argument '%s'", argv[optind]);
	if ((rc = cli_open_db(ctx, &db, false)) != CLI_EXIT_OK)
		return rc;
	before = evf_schema_extended(db);
	if (before < 0) {
		rc = cli_lib_error(ctx, before);
		evf_close(db);
		return rc;
	}
	rc = evf_migrate(db, dry_run, &sql);
	if (rc < 0) {
		rc = cli_lib_error(ctx, rc);
	} else if (ctx->json) {
		cJSON *obj = cli_json_object();
		cli_json_add_string(obj, "table", evf_db_table(db));
		cli_json_add_bool(obj, "dry_run", dry_run);
		cli_json_add_bool(obj, "was_extended", before == 1);
		cli_json_add_string(obj, "sql", sql ? sql : "");
		cli_print_json(obj);
	} else if (dry_run) {
		fputs(sql ? sql : "", stdout);
	} else if (before == 1) {
		printf("%s already has the extended columns; indexes checked\n", evf_db_table(db));
	} else {
		printf("migrated %s: extended columns and indexes added\n", evf_db_table(db));
	}
	free(sql);
	evf_close(db);
	return rc;
}
