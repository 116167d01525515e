/*
 * background.h - per-type counts, taken on a thread and connection of
 * their own so that the screen never waits for them.
 */
#ifndef EVF_TUI_BACKGROUND_H
#define EVF_TUI_BACKGROUND_H

#include <stddef.h>
#include <stdint.h>

#include "evf.h"

typedef struct tui_bg tui_bg;

/* Start the thread; it opens its own connection to url (table) when first
 * asked.  EVF_ENOMEM or EVF_ERROR (no thread) on failure. */
int tui_bg_start(tui_bg **out, const char *url, const char *table);
/* Ask for fresh counts unless a count is running. */
void tui_bg_request(tui_bg *bg);
/* The newest counts not yet taken (the caller frees them), or NULL.
 * *at gets when that count began, *took_ms how long it took; *error (may
 * be NULL) gets a failure not reported before, else "". */
evf_stats *tui_bg_take(tui_bg *bg, evf_time *at, int64_t *took_ms, char *error,
                       size_t error_len);
/* True while a count runs. */
int tui_bg_busy(tui_bg *bg);
/* Stop the thread.  One still counting is left to finish on its own (the
 * process is about to exit); an idle one is joined and freed. */
void tui_bg_stop(tui_bg *bg);

#endif
