/*
 * cmd_init.c - `evfctl init`: create the database file and the table.
 */
#include "cli.h"

int cmd_init(const cli_ctx *ctx, int argc, char **argv)
{
	return cli_table_command(ctx, argc, argv, true, evf_init, "initialised");
}
