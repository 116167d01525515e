/*
 * commands.c - the table of evfctl commands.  Usage lines, `--help`,
 * `evfctl help COMMAND` and the command list all come from these entries,
 * so they cannot drift apart.
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>

#define ACTION_OPTIONS \
	CLI_FILTER_HELP \
	"  --dry-run              only count the events that would change\n" \
	"  --all                  allow acting with neither ids nor a filter\n"

static const cli_command commands[] = {
	{ "init", "",
	  "create the database file (SQLite) and the event table; safe to repeat",
	  NULL, cmd_init },
	{ "migrate", "[--dry-run]",
	  "add the extended columns to a table made by the original Django package",
	  "  --dry-run              print the SQL and change nothing\n",
	  cmd_migrate },
	{ "emit", "[OPTIONS] TYPE [JSON] | --stdin",
	  "add an event (parameters default to {}), or JSON lines from stdin",
	  "  --key KEY              idempotency key: a second emit is a duplicate\n"
	  "  --priority N           smaller runs first (default 0)\n"
	  "  --in DURATION          do not run before this long from now\n"
	  "  --at TIME              do not run before this time\n"
	  "  --correlation-id ID    trace id carried to logs and follow-up events\n"
	  "  --max-attempts N       tries before the event is dead-lettered\n"
	  "  --stdin                read one JSON object per line: type, parameters,\n"
	  "                         key, priority, correlation_id, max_attempts, in|at;\n"
	  "                         all lines are checked before any is written\n"
	  "  --no-wake              PostgreSQL: send idle workers no NOTIFY; they find\n"
	  "                         the events at their next poll\n",
	  cmd_emit },
	{ "process", "[OPTIONS]",
	  "run a worker: claim ready events and run their handlers",
	  "  --exec TYPE=COMMAND    run COMMAND with /bin/sh for TYPE ('*' = any other type);\n"
	  "                         replaces the [handlers] of evf.conf\n"
	  "  --exec-timeout DURATION  kill a handler command that runs longer\n"
	  "  --plugin FILE.so       load handlers from a shared object\n"
	  "  --types A,B            claim only these types\n"
	  "  --limit N              stop after N outcomes\n"
	  "  --batch-size N         events per claim (default: batch_size, 100)\n"
	  "  --concurrency N        run N handlers at once, each thread on its own\n"
	  "                         connection (default: concurrency, 1)\n"
	  "  --rate TYPE=N/s        start at most N events of TYPE a second (also N/m,\n"
	  "                         N/h; TYPE may be a glob such as 'mail.*', '*' is\n"
	  "                         every type); repeatable; replaces [rates] and\n"
	  "                         [global_rates] of evf.conf\n"
	  "  --rate-global TYPE=N/s  the same, shared by every worker through the\n"
	  "                         database\n"
	  "  --once                 drain what is ready, then exit\n"
	  "  --older-than DURATION  only events created at least this long ago\n"
	  "  --only-errors          only events whose last attempt failed\n"
	  "  --max-attempts N       override every event's maximum attempts\n"
	  "  --requeue-errors       first make failed and dead events ready\n"
	  "  --lock-timeout DURATION  lease length (default: lock_timeout, 5m)\n"
	  "  --poll-interval DURATION  sleep when idle (default: poll_interval, 1s)\n"
	  "  --name NAME            prefix of the worker id (default: the host name)\n"
	  "  --no-listen            PostgreSQL: poll only, no LISTEN and no prepared\n"
	  "                         statements (PgBouncer in transaction mode)\n"
	  "  --metrics-textfile PATH  write worker metrics there (Prometheus text,\n"
	  "                         replaced atomically every interval and at exit)\n"
	  "  --statsd HOST:PORT     send worker metrics to StatsD over UDP\n"
	  "  --metrics-interval DURATION  how often metrics are written (default 5s)\n",
	  cmd_process },
	{ "list", "[OPTIONS]",
	  "list events, oldest first (or in another order)",
	  CLI_FILTER_HELP
	  "  --sort KEY             order by id (default), date, priority or attempts;\n"
	  "                         ties by id\n"
	  "  --after ID             start after this event (before it with --desc)\n"
	  "  --desc                 newest (or largest) first\n"
	  "  --limit N              at most N events (default 100; 0 = all)\n",
	  cmd_list },
	{ "show", "ID",
	  "show every column of one event",
	  NULL, cmd_show },
	{ "requeue", "[OPTIONS] [ID...]",
	  "make events ready again: attempts reset, error cleared",
	  ACTION_OPTIONS, cmd_requeue },
	{ "mark-processed", "[OPTIONS] [ID...]",
	  "mark events done without running them",
	  ACTION_OPTIONS, cmd_mark_processed },
	{ "dead-letter", "[OPTIONS] [ID...]",
	  "move events to the dead letters, kept for inspection",
	  ACTION_OPTIONS, cmd_dead_letter },
	{ "set-max-attempts", "[OPTIONS] N [ID...]",
	  "change how many tries events get",
	  ACTION_OPTIONS, cmd_set_max_attempts },
	{ "stats", "",
	  "count events by state and type, with throughput and the oldest ready age",
	  NULL, cmd_stats },
	{ "purge", "--older-than DURATION|TIME [OPTIONS]",
	  "delete old done and dead events in chunks (for cron and timers)",
	  "  --older-than DURATION|TIME  only events created before this (required)\n"
	  "  --state S[,S]          states to delete (default done,dead); live states\n"
	  "                         only when named here\n"
	  "  --type T               event type; '*' matches any characters\n"
	  "  --chunk N              rows per transaction (default 5000)\n"
	  "  --dry-run              only count, per state, what would go\n",
	  cmd_purge },
	{ "archive", "--older-than DURATION|TIME --to FILE | --to-table NAME [OPTIONS]",
	  "copy old events to a JSON lines file (.gz: gzip) or a table",
	  "  --older-than DURATION|TIME  only events created before this (required)\n"
	  "  --to FILE              one JSON object per line, mode 0600; gzip when\n"
	  "                         FILE ends in .gz; never overwritten\n"
	  "  --append               add to an existing FILE\n"
	  "  --to-table NAME        copy into table NAME (created when missing)\n"
	  "  --purge                delete each chunk once it is written and synced\n"
	  "  --state S[,S]          states to archive (default done,dead)\n"
	  "  --type T               event type; '*' matches any characters\n"
	  "  --chunk N              rows per transaction (default 5000)\n"
	  "  --dry-run              only count, per state, what would be archived\n",
	  cmd_archive },
	{ "restore", "[OPTIONS] FILE",
	  "put archived events back with their ids (already present: skipped)",
	  "  --chunk N              rows per transaction (default 5000)\n"
	  "  --dry-run              only check that every line can be restored\n",
	  cmd_restore },
	{ "maintain", "",
	  "after a big purge: VACUUM (ANALYZE) the table, or shrink SQLite's WAL file",
	  NULL, cmd_maintain },
	{ "bench", "[OPTIONS]",
	  "measure emit, drain and wake-up speed on a scratch table",
	  "  --phase P[,P]          emit, drain, latency, mixed, scale or all\n"
	  "                         (default emit,drain,latency,mixed)\n"
	  "  --events N             events per phase (default 100000)\n"
	  "  --workers W            worker processes (default 2)\n"
	  "  --batch-size B         events per claim (default 100)\n"
	  "  --concurrency C        emitting clients (default 1)\n"
	  "  --duration DURATION    length of the mixed phase (default 5s)\n"
	  "  --max-rows N           largest table of the scale phase: 1000 to\n"
	  "                         10000000 (default 1000000)\n"
	  "  --poll-interval DURATION  idle workers' poll (default 50ms)\n"
	  "  --scratch-table NAME   the scratch table (default evf_bench_PID); it must\n"
	  "                         not exist\n"
	  "  --keep                 keep the scratch table (default: dropped)\n",
	  cmd_bench },
	{ "config", "[--json]",
	  "show every setting, its value and where it comes from",
	  "  --json                 machine-readable output (as the global --json)\n",
	  cmd_config },
	{ "health", "[OPTIONS]",
	  "check the queue like a monitoring plugin: exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN",
	  "  --stuck-warning N      stuck events for WARNING (default 1)\n"
	  "  --stuck-critical N     stuck events for CRITICAL (default 10)\n"
	  "  --oldest-ready-warning DURATION  oldest ready event's wait (default 5m)\n"
	  "  --oldest-ready-critical DURATION  (default 30m)\n"
	  "  --window DURATION      window of failure-ratio and dead (default 15m)\n"
	  "  --failure-ratio-warning X  failures / (failures + completions) (default 0.1)\n"
	  "  --failure-ratio-critical X  (default 0.5)\n"
	  "  --dead-warning N       events dead-lettered in the window (default 1)\n"
	  "  --dead-critical N      (default 100)\n"
	  "  --idle-queue DURATION  CRITICAL when events are ready this long and no\n"
	  "                         worker holds a lease (default 5m)\n",
	  cmd_health },
	{ "stuck", "[--release] [--type T] [--limit N]",
	  "list events whose lease expired, or make them ready again",
	  "  --release              make them ready now (lease cleared, attempts kept)\n"
	  "  --type T               event type; '*' matches any characters\n"
	  "  --limit N              at most N events (default 100; 0 = all)\n",
	  cmd_stuck },
	{ "metrics", "",
	  "print the database state in the Prometheus text format",
	  NULL, cmd_metrics },
	{ "help", "[COMMAND]",
	  "show the usage of evfctl or of one command",
	  NULL, cmd_help },
};

const cli_command *cli_commands(size_t *n)
{
	*n = sizeof commands / sizeof commands[0];
	return commands;
}

int cli_command_find(const cli_command **out, const char *name)
{
	size_t n = sizeof commands / sizeof commands[0], len = strlen(name);
	const cli_command *found = NULL;
	size_t matches = 0;
	char candidates[256] = "";

	for (size_t i = 0; i < n; i++) {
		if (strcmp(commands[i].name, name) == 0) {
			*out = &commands[i];
			return CLI_EXIT_OK;
		}
	}
	for (size_t i = 0; len > 0 && i < n; i++) {
		if (strncmp(commands[i].name, name, len) != 0)
			continue;
		found = &commands[i];
		if (matches++ > 0)
			strncat(candidates, ", ", sizeof candidates - strlen(candidates) - 1);
		strncat(candidates, commands[i].name, sizeof candidates - strlen(candidates) - 1);
	}
	if (matches == 1) {
		*out = found;
		return CLI_EXIT_OK;
	}
	if (matches > 1)
		return cli_usage(NULL, "ambiguous command '%s': %s", name, candidates);
	return cli_usage(NULL, "unknown command '%s' (try 'evfctl --help')", name);
}

void cli_command_help(const cli_command *cmd)
{
	printf("usage: evfctl [GLOBAL OPTIONS] %s%s%s\n%s\n\nOptions:\n",
	       cmd->name, cmd->usage[0] ? " " : "", cmd->usage, cmd->summary);
	if (cmd->options != NULL)
		fputs(cmd->options, stdout);
	fputs("  -h, --help             show this help\n", stdout);
}

void cli_main_help(void)
{
	size_t n;
	const cli_command *cmds = cli_commands(&n);

	fputs("usage: evfctl [GLOBAL OPTIONS] COMMAND [OPTIONS] [ARGS]\n"
	      "\n"
	      "Global options:\n"
	      "  --config FILE          settings file (default: $EVF_CONFIG, ./evf.conf,\n"
	      "                         ~/.config/evf/evf.conf, /etc/evf/evf.conf)\n"
	      "  --db URL               sqlite:PATH, sqlite://PATH, PATH or postgresql://...\n"
	      "                         (default: $EVF_DATABASE_URL, database in evf.conf)\n"
	      "  --table NAME           event table (default evf_event)\n"
	      "  --json                 machine-readable output\n"
	      "  --log-format logfmt|json  format of the worker's log lines on stderr\n"
	      "  -h, --help             show this help\n"
	      "  -V, --version          show the version\n"
	      "\n"
	      "Commands (a unique prefix is enough):\n", stdout);
	for (size_t i = 0; i < n; i++)
		printf("  %-18s %s\n", cmds[i].name, cmds[i].summary);
	fputs("\nRun 'evfctl help COMMAND' for the options of a command.\n", stdout);
}

int cmd_help(const cli_ctx *ctx, int argc, char **argv)
{
	const cli_command *cmd;
	int rc = cli_parse_no_options(ctx, argc, argv);

	if (rc >= 0)
		return rc;
	if (optind >= argc) {
		cli_main_help();
		return CLI_EXIT_OK;
	}
	if (argc - optind > 1)
		return cli_usage(ctx, "unexpected argument '%s'", argv[optind + 1]);
	rc = cli_command_find(&cmd, argv[optind]);
	if (rc != CLI_EXIT_OK)
		return rc;
	cli_command_help(cmd);
	return CLI_EXIT_OK;
}
