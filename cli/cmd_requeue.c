/*
 * cmd_requeue.c - `evfctl requeue`; the shared work is cli_run_action().
 */
#include "cli.h"

int cmd_requeue(const cli_ctx *ctx, int argc, char **argv)
{
	return cli_run_action(ctx, EVF_ACTION_REQUEUE, argc, argv);
}
