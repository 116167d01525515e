/*
 * cmd_metrics.c - `evfctl metrics`: the state of the database in the
 * Prometheus text format, for node_exporter's textfile collector.
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>

int cmd_metrics(const cli_ctx *ctx, int argc, char **argv)
{
	evf_db *db;
	char *text = NULL;
	int rc = cli_open_no_args(ctx, argc, argv, false, &db);

	if (!db)
		return rc;
	int err = evf_metrics_text(db, &text);
	if (err < 0)
		rc = cli_lib_error(ctx, err);
	else
		fputs(text, stdout);
	free(text);
	evf_close(db);
	return rc;
}
