/*
 * background.c - per-type counts off the screen's thread.
 *
 * Counting events by type and state reads every row: about a second at a
 * million events.  Done on the screen's thread at each refresh it would
 * freeze the keyboard; here a second connection counts when asked and the
 * screen shows the newest answer with its age.
 */
#include "background.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct tui_bg {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_t thread;
	char *url, *table;
	bool asked, busy, stop;
	bool orphaned;      /* stopped while counting: the thread frees bg */
	evf_stats *fresh;   /* the newest counts, until taken */
	evf_time at;        /* when they began */
	int64_t took_ms;
	char error[256];    /* the last failure; "" after a success */
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void bg_free(tui_bg *bg)
{
	evf_stats_free(bg->fresh);
	pthread_cond_destroy(&bg->wake);
	pthread_mutex_destroy(&bg->lock);
	free(bg->url);
	free(bg->table);
	free(bg);
}

/* One count on db (opened on first use, reopened after a lost server). */
static evf_stats *count(tui_bg *bg, evf_db **db, char *error, size_t len)
{
	evf_stats *s = NULL;
	int rc = 0;

	if (!*db) {
		evf_options o = EVF_OPTIONS_INIT;
		o.table = bg->table;
		rc = evf_open(db, bg->url, &o);
	}
	if (rc == 0)
		rc = evf_stats_get(*db, &s);
	if (rc != 0) {
		snprintf(error, len, "%s", evf_error_last());
		if (rc == EVF_EUNAVAILABLE && *db) {
			evf_close(*db);
			*db = NULL;
		}
	}
	return s;
}

static void *run(void *arg)
{
	tui_bg *bg = arg;
	evf_db *db = NULL;
	bool orphaned;

	pthread_mutex_lock(&bg->lock);
	for (;;) {
		while (!bg->stop && !bg->asked)
			pthread_cond_wait(&bg->wake, &bg->lock);
		if (bg->stop)
			break;
		bg->asked = false;
		bg->busy = true;
		pthread_mutex_unlock(&bg->lock);

		char error[sizeof bg->error] = "";
		evf_time at = evf_now();
		int64_t t0 = mono_ms();
		evf_stats *s = count(bg, &db, error, sizeof error);
		int64_t took = mono_ms() - t0;

		pthread_mutex_lock(&bg->lock);
		bg->busy = false;
		snprintf(bg->error, sizeof bg->error, "%s", error);
		if (s) {
			evf_stats_free(bg->fresh);
			bg->fresh = s;
			bg->at = at;
			bg->took_ms = took;
		}
	}
	orphaned = bg->orphaned;
	pthread_mutex_unlock(&bg->lock);
	evf_close(db);
	if (orphaned)
		bg_free(bg);
	return NULL;
}

int tui_bg_start(tui_bg **out, const char *url, const char *table)
{
	tui_bg *bg = calloc(1, sizeof *bg);

	*out = NULL;
	if (!bg)
		return EVF_ENOMEM;
	bg->url = strdup(url);
	bg->table = strdup(table);
	if (!bg->url || !bg->table) {
		free(bg->url);
		free(bg->table);
		free(bg);
		return EVF_ENOMEM;
	}
	pthread_mutex_init(&bg->lock, NULL);
	pthread_cond_init(&bg->wake, NULL);
	if (pthread_create(&bg->thread, NULL, run, bg) != 0) {
		bg_free(bg);
		return EVF_ERROR;
	}
	*out = bg;
	return 0;
}

void tui_bg_request(tui_bg *bg)
{
	pthread_mutex_lock(&bg->lock);
	if (!bg->busy) {
		bg->asked = true;
		pthread_cond_signal(&bg->wake);
	}
	pthread_mutex_unlock(&bg->lock);
}

evf_stats *tui_bg_take(tui_bg *bg, evf_time *at, int64_t *took_ms, char *error,
                       size_t error_len)
{
	pthread_mutex_lock(&bg->lock);
	evf_stats *s = bg->fresh;
	bg->fresh = NULL;
	if (s) {
		*at = bg->at;
		*took_ms = bg->took_ms;
	}
	if (error)
		snprintf(error, error_len, "%s", bg->error);
	bg->error[0] = '\0'; /* reported once */
	pthread_mutex_unlock(&bg->lock);
	return s;
}

int tui_bg_busy(tui_bg *bg)
{
	pthread_mutex_lock(&bg->lock);
	int busy = bg->busy || bg->asked;
	pthread_mutex_unlock(&bg->lock);
	return busy;
}

void tui_bg_stop(tui_bg *bg)
{
	if (!bg)
		return;
	pthread_mutex_lock(&bg->lock);
	bg->stop = true;
	bool busy = bg->busy;
	bg->orphaned = busy;
	pthread_cond_signal(&bg->wake);
	pthread_mutex_unlock(&bg->lock);
	if (busy) {
		/* the count may take a second more; the thread frees itself */
		pthread_detach(bg->thread);
		return;
	}
	pthread_join(bg->thread, NULL);
	bg_free(bg);
}
