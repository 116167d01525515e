/*
 * cmd_set_max_attempts.c - `evfctl set-max-attempts`; the shared work is cli_run_action().
 */
#include "cli.h"

int cmd_set_max_attempts(const cli_ctx *ctx, int argc, char **argv)
{
	return cli_run_action(ctx, EVF_ACTION_SET_MAX_ATTEMPTS, argc, argv);
}
