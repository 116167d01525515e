/*
 * evfctl.c - the evfctl program; everything else lives in cli.c and the
 * command files, where tests can link it.
 */
#include "cli.h"

int main(int argc, char **argv)
{
	return cli_main(argc, argv);
}
