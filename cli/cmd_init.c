/*
 * cmd_init.c - `evfctl init`: create the database file and the table.
 */
#include "cli.h"

#include <stdio.h>

#include <cjson/cJSON.h>

int cmd_init(const cli_ctx *ctx, int argc, char **argv)
{
	evf_db *db = NULL;
	int rc = cli_parse_no_options(ctx, argc, argv);

	if (rc >= 0)
		return rc;
	if (optind < argc)
		return cli_usage(ctx, "unexpected argument '%s'", argv[optind]);
	rc = cli_open_db(ctx, &db, true);
	if (rc != CLI_EXIT_OK)
		return rc;
	rc = evf_init(db);
	if (rc < 0) {
		rc = cli_lib_error(ctx, rc);
	} else if (ctx->json) {
		cJSON *obj = cli_json_object();

		cli_json_add_string(obj, "database", evf_db_display_url(db));
		cli_json_add_string(obj, "table", evf_db_table(db));
		cli_print_json(obj);
	} else {
		printf("initialised %s in %s\n", evf_db_table(db), evf_db_display_url(db));
	}
	evf_close(db);
	return rc;
}
