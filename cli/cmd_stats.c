/*
 * cmd_stats.c - `evfctl stats`: counts by state, then by type and state.
 */
#include "cli.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

static cJSON *state_counts_json(const int64_t counts[EVF_STATE__COUNT])
{
	cJSON *obj = cli_json_object();

	for (int s = 0; s < EVF_STATE__COUNT; s++)
		cli_json_add_number(obj, evf_state_name((evf_state)s), (double)counts[s]);
	return obj;
}

static void print_json(const evf_stats *st)
{
	cJSON *obj = cli_json_object(), *types = cli_json_object();

	cli_json_add_number(obj, "total", (double)st->total);
	cli_json_add_item(obj, "states", state_counts_json(st->counts));
	for (size_t i = 0; i < st->ntypes; i++)
		cli_json_add_item(types, st->types[i].type,
		                  state_counts_json(st->types[i].counts));
	cli_json_add_item(obj, "types", types);
	cli_print_json(obj);
}

static void print_human(const evf_stats *st)
{
	int width = 4; /* "TYPE" */

	printf("%-10s %10" PRId64 "\n", "total", st->total);
	for (int s = 0; s < EVF_STATE__COUNT; s++)
		printf("%-10s %10" PRId64 "\n", evf_state_name((evf_state)s), st->counts[s]);
	if (st->ntypes == 0)
		return;

	for (size_t i = 0; i < st->ntypes; i++) {
		int len = (int)strlen(st->types[i].type);

		if (len > width)
			width = len;
	}
	printf("\n%-*s", width, "TYPE");
	for (int s = 0; s < EVF_STATE__COUNT; s++)
		printf(" %9s", evf_state_name((evf_state)s));
	printf(" %9s\n", "total");
	for (size_t i = 0; i < st->ntypes; i++) {
		int64_t total = 0;

		printf("%-*s", width, st->types[i].type);
		for (int s = 0; s < EVF_STATE__COUNT; s++) {
			printf(" %9" PRId64, st->types[i].counts[s]);
			total += st->types[i].counts[s];
		}
		printf(" %9" PRId64 "\n", total);
	}
}

int cmd_stats(const cli_ctx *ctx, int argc, char **argv)
{
	evf_db *db = NULL;
	evf_stats *st = NULL;
	int rc = cli_parse_no_options(ctx, argc, argv);

	if (rc >= 0)
		return rc;
	if (optind < argc)
		return cli_usage(ctx, "unexpected argument '%s'", argv[optind]);
	rc = cli_open_db(ctx, &db, false);
	if (rc != CLI_EXIT_OK)
		return rc;
	rc = evf_stats_get(db, &st);
	if (rc < 0) {
		rc = cli_lib_error(ctx, rc);
	} else {
		if (ctx->json)
			print_json(st);
		else
			print_human(st);
		rc = CLI_EXIT_OK;
	}
	if (st != NULL)
		evf_stats_free(st);
	evf_close(db);
	return rc;
}
