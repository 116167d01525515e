/*
 * cli.h - what the evfctl command files share: the command table, the
 * context a command runs in, error reporting, value parsing and the event
 * filter options common to `list` and the action commands.
 *
 * Exit codes follow evfctl(1): 0 success, 1 failure, 2 usage error.
 * Every helper that reports a problem prints exactly one line on stderr
 * and returns the exit code, so callers can `return helper(...)`.
 */
#ifndef EVF_CLI_H
#define EVF_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <getopt.h>

#include "evf.h"

struct cJSON;

enum { CLI_EXIT_OK = 0, CLI_EXIT_FAIL = 1, CLI_EXIT_USAGE = 2 };

struct cli_command;

/* Global options and the command being run.  The settings hold evf.conf,
 * the environment and the global flags; a command's own flags that
 * override a setting go through evf_settings_set() with the flag as the
 * source.  db_url, table and log_format are copies of the settings. */
typedef struct cli_ctx {
	const struct cli_command *cmd;
	evf_settings *settings;
	const char *db_url;   /* --db, $EVF_DATABASE_URL, evf.conf; may be NULL */
	const char *table;    /* --table, $EVF_TABLE, evf.conf, evf_event */
	bool json;
	evf_log_format log_format;
} cli_ctx;

/* argv[0] is the command name, so getopt_long can run on it directly. */
typedef int (*cli_exec_fn)(const cli_ctx *ctx, int argc, char **argv);

typedef struct cli_command {
	const char *name;
	const char *usage;   /* what follows the name on the usage line */
	const char *summary; /* one line */
	const char *options; /* option lines for --help; NULL when none */
	cli_exec_fn exec;
} cli_command;

/* ---- commands.c: the table ----------------------------------------------- */

/* The table, in help order; *n gets its length. */
const cli_command *cli_commands(size_t *n);
/* Exact name, else unique prefix.  Prints the usage error and returns
 * CLI_EXIT_USAGE for an unknown or ambiguous name. */
int cli_command_find(const cli_command **out, const char *name);
/* `usage:` line, summary and options of one command, on stdout. */
void cli_command_help(const cli_command *cmd);
/* Usage of the program with the list of commands. */
void cli_main_help(void);

/* ---- cli.c: entry point --------------------------------------------------- */

int cli_main(int argc, char **argv);

/* ---- cli.c: reporting ---------------------------------------------------- */

/* "evfctl: COMMAND: message" on stderr; each returns the exit code. */
int cli_fail(const cli_ctx *ctx, const char *fmt, ...) EVF_PRINTF(2, 3);
int cli_usage(const cli_ctx *ctx, const char *fmt, ...) EVF_PRINTF(2, 3);
/* A library call returned rc: print evf_error_last(); bad input (EINVAL,
 * EREFUSED) is a usage error, anything else a failure. */
int cli_lib_error(const cli_ctx *ctx, int rc);
/* getopt_long returned '?' or ':' for argv: report it as a usage error. */
int cli_option_error(const cli_ctx *ctx, int c, char **argv);
/* Print `obj` compactly on one line of stdout, then delete it. */
void cli_print_json(struct cJSON *obj);

/* ---- cli.c: JSON output --------------------------------------------------- */

/* The programs abort on allocation failure (the library never does). */
_Noreturn void cli_oom(void);
struct cJSON *cli_json_object(void);
struct cJSON *cli_json_array(void);
void cli_json_add_number(struct cJSON *obj, const char *key, double value);
void cli_json_add_bool(struct cJSON *obj, const char *key, bool value);
void cli_json_add_string(struct cJSON *obj, const char *key, const char *value);
/* Takes ownership of item. */
void cli_json_add_item(struct cJSON *obj, const char *key, struct cJSON *item);

/* ---- cli.c: the database --------------------------------------------------- */

/* Open the database named by the settings, with their options; `create`
 * for init. */
int cli_open_db(const cli_ctx *ctx, evf_db **out, bool create);
/* Set one key of the settings from a command's flag: a bad value is a
 * usage error naming the flag. */
int cli_set(const cli_ctx *ctx, const char *key, const char *value,
            const char *flag);

/* ---- cli.c: values ---------------------------------------------------------- */

/* Integers in [min, max]; `what` names the option for the message. */
int cli_parse_int(const cli_ctx *ctx, const char *what, const char *text,
                  int min, int max, int *out);
int cli_parse_int64(const cli_ctx *ctx, const char *what, const char *text,
                    int64_t min, int64_t max, int64_t *out);
int cli_parse_duration(const cli_ctx *ctx, const char *what, const char *text,
                       int64_t *out_ms);
int cli_parse_time(const cli_ctx *ctx, const char *what, const char *text,
                   evf_time *out);
/* A time, or a duration meaning "that long ago" (--since, --until). */
int cli_parse_time_or_ago(const cli_ctx *ctx, const char *what,
                          const char *text, evf_time *out);
int cli_parse_states(const cli_ctx *ctx, const char *what, const char *text,
                     unsigned *out_mask);
/* Event ids given as arguments; *out is the caller's (free()). */
int cli_parse_ids(const cli_ctx *ctx, int argc, char **argv,
                  int64_t **out, size_t *out_n);

/* ---- cli.c: filter options ------------------------------------------------- */

/* getopt_long values of the filter options; command-specific long options
 * use values from CLI_OPT_COMMAND on. */
enum {
	CLI_OPT_STATE = 0x100,
	CLI_OPT_TYPE,
	CLI_OPT_SINCE,
	CLI_OPT_UNTIL,
	CLI_OPT_ERRORS,
	CLI_OPT_CORRELATION_ID,
	CLI_OPT_TEXT,
	CLI_OPT_COMMAND = 0x200
};

#define CLI_FILTER_LONG_OPTIONS \
	{ "state", required_argument, NULL, CLI_OPT_STATE }, \
	{ "type", required_argument, NULL, CLI_OPT_TYPE }, \
	{ "since", required_argument, NULL, CLI_OPT_SINCE }, \
	{ "until", required_argument, NULL, CLI_OPT_UNTIL }, \
	{ "errors", no_argument, NULL, CLI_OPT_ERRORS }, \
	{ "correlation-id", required_argument, NULL, CLI_OPT_CORRELATION_ID }, \
	{ "text", required_argument, NULL, CLI_OPT_TEXT }

#define CLI_FILTER_HELP \
	"  --state S[,S]          pending, scheduled, running, failed, stuck, dead, done\n" \
	"  --type T               event type; '*' matches any characters\n" \
	"  --since TIME|DURATION  created at or after (a duration means that long ago)\n" \
	"  --until TIME|DURATION  created before\n" \
	"  --errors               only events whose last attempt failed\n" \
	"  --correlation-id ID    only events of this correlation id\n" \
	"  --text STR             substring of the parameters or the error message\n"

/* Apply one filter option to f.  Returns 0 when handled, -1 when `opt` is
 * not a filter option, or the usage exit code for a bad value. */
int cli_filter_option(const cli_ctx *ctx, evf_filter *f, int opt,
                      const char *arg);
/* True when f selects by anything but ids. */
bool cli_filter_given(const evf_filter *f);

/* ---- cli.c: the four action commands --------------------------------------- */

/* requeue, mark-processed, dead-letter and set-max-attempts differ only in
 * the action and, for set-max-attempts, a leading argument. */
int cli_run_action(const cli_ctx *ctx, evf_action action, int argc, char **argv);
/* "requeued N events" and so on, or its JSON object. */
void cli_print_action_result(const cli_ctx *ctx, evf_action action, int arg,
                             bool dry_run, int64_t n);

/* ---- the commands (cmd_*.c) --------------------------------------------------- */

int cmd_init(const cli_ctx *ctx, int argc, char **argv);
int cmd_maintain(const cli_ctx *ctx, int argc, char **argv);
int cmd_migrate(const cli_ctx *ctx, int argc, char **argv);
int cmd_emit(const cli_ctx *ctx, int argc, char **argv);
int cmd_process(const cli_ctx *ctx, int argc, char **argv);
int cmd_list(const cli_ctx *ctx, int argc, char **argv);
int cmd_show(const cli_ctx *ctx, int argc, char **argv);
int cmd_requeue(const cli_ctx *ctx, int argc, char **argv);
int cmd_mark_processed(const cli_ctx *ctx, int argc, char **argv);
int cmd_dead_letter(const cli_ctx *ctx, int argc, char **argv);
int cmd_set_max_attempts(const cli_ctx *ctx, int argc, char **argv);
int cmd_stats(const cli_ctx *ctx, int argc, char **argv);
int cmd_purge(const cli_ctx *ctx, int argc, char **argv);
int cmd_archive(const cli_ctx *ctx, int argc, char **argv);
int cmd_restore(const cli_ctx *ctx, int argc, char **argv);
int cmd_bench(const cli_ctx *ctx, int argc, char **argv);
int cmd_config(const cli_ctx *ctx, int argc, char **argv);
int cmd_health(const cli_ctx *ctx, int argc, char **argv);
int cmd_stuck(const cli_ctx *ctx, int argc, char **argv);
int cmd_metrics(const cli_ctx *ctx, int argc, char **argv);
int cmd_help(const cli_ctx *ctx, int argc, char **argv);

/* Parse the options of a command that takes only --help; returns -1 to go
 * on, else the exit code (help printed or a usage error). */
int cli_parse_no_options(const cli_ctx *ctx, int argc, char **argv);
/* For a command with no options or arguments: parse them and open the
 * database.  *db is NULL when the command is over (help, a usage error,
 * no database), and the return is then its exit code. */
int cli_open_no_args(const cli_ctx *ctx, int argc, char **argv, bool create, evf_db **db);
/* A command with no options or arguments that runs fn on the table and
 * says "<done> TABLE in URL" (or {"database","table"} with --json). */
int cli_table_command(const cli_ctx *ctx, int argc, char **argv, bool create,
                      int (*fn)(evf_db *db), const char *done);

#endif
