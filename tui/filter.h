/*
 * filter.h - the filter expressions of evf-top's `/` prompt and --filter.
 *
 * An expression is a list of QUALIFIER:VALUE words separated by spaces:
 *   type:order.*   state:failed,dead   id:12,13   corr:abc
 *   error:timeout  error:   since:1h   until:2026-01-02T00:00:00Z
 * A value holding spaces is written in double quotes (since:"2026-01-02
 * 03:04:05").  Parsing is pure (no curses, no database) so that it can be
 * unit-tested; the result owns every string its evf_filter points to.
 */
#ifndef EVF_TUI_FILTER_H
#define EVF_TUI_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "evf.h"

typedef struct tui_filter {
	evf_filter f;  /* points into the owned fields below */
	char *expr;    /* the expression as given, for the status line; NULL = none */
	char *type;
	char *corr;
	char *text;
	int64_t *ids;
	size_t nids;
} tui_filter;

/* An empty filter (matches everything). */
void tui_filter_init(tui_filter *tf);
void tui_filter_free(tui_filter *tf);

/* Parse expr (relative times count back from now).  On success *out is
 * freed and replaced and 0 is returned; on error *out is left as it was,
 * err gets one line naming the problem and -1 is returned.  An empty or
 * blank expression gives the empty filter. */
int tui_filter_parse(tui_filter *out, const char *expr, evf_time now,
                     char *err, size_t errlen);

/* Whether the filter narrows anything. */
bool tui_filter_active(const tui_filter *tf);

#endif
