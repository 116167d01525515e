/*
 * cmd_mark_processed.c - `evfctl mark-processed`; the shared work is cli_run_action().
 */
#include "cli.h"

int cmd_mark_processed(const cli_ctx *ctx, int argc, char **argv)
{
	return cli_run_action(ctx, EVF_ACTION_MARK_PROCESSED, argc, argv);
}
