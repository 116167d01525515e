/*
 * cmd_config.c - `evfctl config`: every setting with its effective value
 * and where that value comes from (default, file:PATH:LINE, env VAR or a
 * flag).  Passwords in database URLs come masked from the library.
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

/* Longer values push the source column out rather than widen it for all. */
enum { VALUE_WIDTH_MAX = 40 };

struct widths {
	int name, value;
};

static const char *shown(const evf_setting *st)
{
	return st->value != NULL ? st->value : "(unset)";
}

static int measure(const evf_setting *st, void *user)
{
	struct widths *w = user;
	int name = (int)strlen(st->name), value = (int)strlen(shown(st));

	if (name > w->name)
		w->name = name;
	if (value > w->value && value <= VALUE_WIDTH_MAX)
		w->value = value;
	return 0;
}

static int print_line(const evf_setting *st, void *user)
{
	const struct widths *w = user;

	printf("%-*s  %-*s  %s\n", w->name, st->name, w->value, shown(st), st->source);
	return 0;
}

static int add_json(const evf_setting *st, void *user)
{
	cJSON *arr = user, *obj = cli_json_object();

	cli_json_add_string(obj, "name", st->name);
	if (st->value != NULL)
		cli_json_add_string(obj, "value", st->value);
	else
		cli_json_add_item(obj, "value", cJSON_CreateNull());
	cli_json_add_string(obj, "source", st->source);
	if (st->env != NULL)
		cli_json_add_string(obj, "env", st->env);
	else
		cli_json_add_item(obj, "env", cJSON_CreateNull());
	if (!cJSON_AddItemToArray(arr, obj))
		cli_oom();
	return 0;
}

int cmd_config(const cli_ctx *ctx, int argc, char **argv)
{
	enum { OPT_JSON = CLI_OPT_COMMAND };
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *path = evf_settings_path(ctx->settings);
	bool json = ctx->json;
	int c;

	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		if (c == 'h') {
			cli_command_help(ctx->cmd);
			return CLI_EXIT_OK;
		}
		if (c != OPT_JSON)
			return cli_option_error(ctx, c, argv);
		json = true;
	}
	if (optind < argc)
		return cli_usage(ctx, "unexpected argument '%s'", argv[optind]);
	if (json) {
		cJSON *obj = cli_json_object(), *arr = cli_json_array();

		if (path != NULL)
			cli_json_add_string(obj, "file", path);
		else
			cli_json_add_item(obj, "file", cJSON_CreateNull());
		if (evf_settings_foreach(ctx->settings, add_json, arr) < 0) {
			cJSON_Delete(arr);
			cJSON_Delete(obj);
			return cli_fail(ctx, "%s", evf_error_last());
		}
		cli_json_add_item(obj, "settings", arr);
		cli_print_json(obj);
		return CLI_EXIT_OK;
	}
	struct widths w = { 0, 0 };
	if (evf_settings_foreach(ctx->settings, measure, &w) < 0 ||
	    evf_settings_foreach(ctx->settings, print_line, &w) < 0)
		return cli_fail(ctx, "%s", evf_error_last());
	return CLI_EXIT_OK;
}
