/*
 * cmd_dead_letter.c - `evfctl dead-letter`; the shared work is cli_run_action().
 */
#include "cli.h"

int cmd_dead_letter(const cli_ctx *ctx, int argc, char **argv)
{
	return cli_run_action(ctx, EVF_ACTION_DEAD_LETTER, argc, argv);
}
