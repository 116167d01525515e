/*
 * cmd_maintain.c - `evfctl maintain`: give back what a big purge or bulk
 * change left behind (VACUUM on PostgreSQL, a WAL checkpoint on SQLite).
 */
#include "cli.h"

int cmd_maintain(const cli_ctx *ctx, int argc, char **argv)
{
	return cli_table_command(ctx, argc, argv, false, evf_maintain, "maintained");
}
