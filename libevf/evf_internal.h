/*
 * evf_internal.h - what the library's files share and the front ends never
 * see.  Internal names start with evfi_ so that only the public evf_*
 * symbols are exported from the shared library.
 */
#ifndef EVF_INTERNAL_H
#define EVF_INTERNAL_H

#include "evf.h"
#include "store/store.h"

#include <stdarg.h>

/* Record the message for evf_error_last() and return code. */
int evfi_fail(int code, const char *fmt, ...) EVF_PRINTF(2, 3);
int evfi_failv(int code, const char *fmt, va_list ap);
/* Milliseconds on a clock that never jumps: for deadlines and timings. */
int64_t evfi_mono_ms(void);
/* A number no other process or object is likely to draw: the clock, the
 * pid and the address of salt (random tags and seeds, not secrets). */
uint64_t evfi_seed(const void *salt);
/* Milliseconds since t0, a CLOCK_MONOTONIC reading. */
struct timespec;
double evfi_ms_since(const struct timespec *t0);
/* Keep the code of an earlier failure but prefix its message. */
int evfi_wrap(int code, const char *fmt, ...) EVF_PRINTF(2, 3);
void evfi_error_clear(void);

char *evfi_strdup(const char *s); /* NULL stays NULL */

/* JSON: 0 when text is one valid JSON value. */
int evfi_json_validate(const char *text);

/* A parsed database URL. */
typedef struct evfi_url {
	char *backend;  /* "sqlite" or "postgresql" */
	char *target;   /* file path, or libpq conninfo */
	char *display;  /* safe to print: password masked */
} evfi_url;
int evfi_url_parse(evfi_url *out, const char *url);
void evfi_url_clear(evfi_url *u);

/* SQL-safe identifier: [A-Za-z_][A-Za-z0-9_]{0,47}; short enough that
 * index names built from it stay under PostgreSQL's 63-byte limit. */
bool evfi_identifier_ok(const char *name);

struct evf_db {
	evf_store *store;
	evf_options opts;
	char *table;
	evfi_url url;
	bool borrowed;   /* on the caller's connection: cannot be opened again */
};

/* Open another connection to the same database with the same options,
 * for a worker thread; EVF_EINVAL for a borrowed connection or an
 * in-memory SQLite database (another connection would see another one). */
int evfi_db_reopen(const evf_db *db, evf_db **out);

/* Fill defaults into a copy of caller options. */
void evfi_options_resolve(evf_options *dst, const evf_options *src);

/* The state of a row given the time now (the single definition in C;
 * the backends carry the same definition in SQL). */
evf_state evfi_state_of(const evf_event *ev, evf_time now);

/* Deep copy of an event; NULL on OOM. */
evf_event *evfi_event_dup(const evf_event *ev);
void evfi_event_clear(evf_event *ev);

/* Format one outcome line for the worker log. */
char *evfi_log_line(evf_log_format fmt, const char *worker_id,
                    const evf_outcome *o);

/* A warning line for the worker log (msg is the message). */
char *evfi_log_warning(evf_log_format fmt, const char *worker_id, const char *msg,
                       const char *error);

/* True when the filter selects a subset (anything but "everything"). */
bool evfi_filter_narrows(const evf_filter *f);

/* A growable string. */
typedef struct evfi_buf {
	char *data;
	size_t len, cap;
	bool oom;
} evfi_buf;
void evfi_buf_add(evfi_buf *b, const char *s, size_t n);
void evfi_buf_puts(evfi_buf *b, const char *s);
void evfi_buf_printf(evfi_buf *b, const char *fmt, ...) EVF_PRINTF(2, 3);
/* An integer in decimal, without printf: lists of ids are built per claim. */
void evfi_buf_add_int(evfi_buf *b, int64_t v);
void evfi_buf_free(evfi_buf *b);

/* Prometheus label value: backslash, double quote and newline escaped. */
void evfi_prom_escape(evfi_buf *b, const char *v);

/* Worker metrics (metrics.c): NULL when neither a text file nor StatsD is
 * configured.  Setting up checks both, so a bad path or address is an
 * error of evf_worker_new. */
typedef struct evfi_metrics evfi_metrics;
int evfi_metrics_new(evfi_metrics **out, const evf_worker_options *o, const char *name,
                     const char *worker_id);
void evfi_metrics_outcome(evfi_metrics *m, const evf_outcome *o);
/* Write and send what is due; `force` at the end of a run. */
void evfi_metrics_flush(evfi_metrics *m, bool force);
void evfi_metrics_free(evfi_metrics *m);

/* ---- schema text shared by the backends (store/ddl.c) ------------------ */

#define EVFI_NBASIC 7
#define EVFI_NEXT 12
#define EVFI_ALL_BASIC ((1u << EVFI_NBASIC) - 1)
#define EVFI_ALL_EXT ((1u << EVFI_NEXT) - 1)
extern const char *const evfi_basic_columns[EVFI_NBASIC];
const char *evfi_ext_column(size_t i);
/* The bit of a column in the basic or extended mask (*basic says which),
 * or 0 for a column evf does not know. */
unsigned evfi_column_bit(const char *name, bool *basic);
/* int_times: SQLite timestamps as integer microseconds, not TEXT
 * (ignored for PostgreSQL's timestamptz). */
/* "date <type> NOT NULL" for a SQLite table. */
void evfi_ddl_date(evfi_buf *b, bool int_times);
/* ", name type" for every extended column (CREATE TABLE). */
void evfi_ddl_columns(evfi_buf *b, bool pg, bool int_times, int max_attempts);
/* ALTER TABLE ... ADD COLUMN for the extended columns not in `have`. */
void evfi_ddl_add_columns(evfi_buf *b, const char *qt, unsigned have, bool pg,
                          bool int_times, int max_attempts);
/* The indexes of DESIGN.md and the evf_schema table. */
/* "id, type, ..." : the columns of a basic or an extended table. */
void evfi_sql_columns(evfi_buf *b, bool with_ext);
/* "type = excluded.type, ...": every column but id, for an upsert. */
void evfi_sql_excluded_set(evfi_buf *b, bool with_ext);
/* CREATE TABLE IF NOT EXISTS for an archive of a basic or extended table. */
void evfi_ddl_archive_table(evfi_buf *b, const char *qarch, bool pg, bool int_times,
                            bool with_ext);
void evfi_ddl_indexes(evfi_buf *b, const char *t, const char *qt, bool pg);

/* ---- what the backends share around their SQL (store/common.c) --------- */

/* Beyond this many events (SQLite: by the id range, PostgreSQL: by the
 * planner's estimate) a console's counts are estimated instead of
 * counted, so that a refresh stays cheap on huge tables: the total in
 * the overview, and done and dead by type in the stats, from a sample of
 * EVFI_STATS_SAMPLE ids drawn at random. */
#define EVFI_EXACT_LIMIT 200000
#define EVFI_STATS_SAMPLE 4000

void evfi_sql_state(evfi_buf *b, evf_state st, bool ext, bool pg, const char *now);
/* "CASE WHEN <dead> THEN 5 ... ELSE 0 END": a row's state as a number. */
void evfi_sql_state_case(evfi_buf *b, bool ext, bool pg, const char *now);
/* " AND (<state> OR ...)" for a filter's state mask; nothing for all. */
void evfi_sql_states(evfi_buf *b, unsigned mask, bool ext, bool pg, const char *now);
/* Conditions implied by a state mask that let indexes do the work. */
/* True for a non-empty mask of live states only (pending, scheduled,
 * running, failed, stuck): the rows of the ready-queue index. */
bool evfi_states_live_only(unsigned mask);
void evfi_sql_state_hints(evfi_buf *b, unsigned mask, bool ext, bool pg,
                          const char *table, const char *qt);
/* The SET list of an operator action (see store/common.c). */
void evfi_sql_action_set(evfi_buf *b, evf_action a, bool ext, bool pg, const char *now);
/* Rows (type, completed, failed, dead) of the activity since `since`
 * (":since" or "$1::timestamptz"), sorted by type. */
void evfi_sql_activity(evfi_buf *b, bool pg, const char *qt, const char *since,
                       const char *completed);
/* Add one row of that query; rows of a type are adjacent. */
int evfi_activity_add(evf_activity *out, const char *type, int64_t completed,
                      int64_t failed, int64_t dead);
/* Actions that need the extended columns. */
bool evfi_action_needs_ext(evf_action a);
/* qsort comparator for evf_event *: priority, not_before, id. */
int evfi_cmp_claim_order(const void *a, const void *b);
/* Put claimed events in claim order (priority, not_before, id). */
void evfi_sort_claimed(evf_event **evs, size_t n);
/* Query callback that copies the first event into *(evf_event **)user. */
int evfi_keep_first(const evf_event *ev, void *user);
/* Add a (type, state, count) row, rows sorted by type. */
int evfi_stats_add(evf_stats *out, const char *type, int state, int64_t count);
/* "SELECT type, <state> AS st, count(*) FROM from [WHERE where] GROUP BY
 * 1, 2": counts by type and state, for evfi_stats_add. */
void evfi_sql_stats(evfi_buf *b, bool ext, bool pg, const char *now, const char *from,
                    const char *where);
/* Of a sample of EVFI_STATS_SAMPLE ids drawn over an id range of span:
 * whether the rows it found make the table big enough to be estimated,
 * and the done events it found added to out, scaled to the range (live
 * and dead are counted exactly apart). */
bool evfi_stats_sampled(const evf_stats *sample, int64_t span);
int evfi_stats_add_done(evf_stats *out, const evf_stats *sample, int64_t span);
/* Done is what the total leaves after the other states. */
void evfi_overview_finish(evf_overview *out, int64_t total, bool estimated);
/* 0, or EVF_ESCHEMA when a table is missing or lacks the basic columns. */
int evfi_schema_verdict(const char *table, int ncols, unsigned have_basic);
int evfi_fail_basic(const char *what, const char *table);
/* 0, or the EVF_EBASIC failure when an item asks for what only the
 * extended columns hold (a key, priority, schedule, ...). */
int evfi_emit_check_basic(const evf_emit_item *items, size_t n, const char *table);
/* Each of the n strings through map, the results through join (the
 * backend's array or JSON literal); NULL when out of memory. */
char *evfi_strings_mapped(const char *const *in, size_t n, char *(*map)(const char *),
                          char *(*join)(const char *const *, size_t));

/* ---- workers (handler.c, worker.c) -------------------------------------- */

#include <pthread.h>
#include <signal.h>

typedef struct evfi_handler {
	char *type;
	evf_handler_fn fn;
	evf_batch_handler_fn batch;
	evf_handler_options opts;
} evfi_handler;

/* What a handler call said about one of its events. */
typedef struct evfi_result {
	bool failed;
	bool retryable;
	char *code;
	char *message;
} evfi_result;

typedef struct evfi_rate evfi_rate; /* ratelimit.c */

/* One thread's share of a worker: its connection, its random numbers and
 * the batch it is running (for evf_job_extend). */
typedef struct evfi_lane {
	evf_worker *w;
	evf_db *db;
	evf_lease *leases;
	size_t nleases;
	uint64_t rng;
} evfi_lane;

struct evf_job {
	evfi_lane *lane;
	const evf_event *const *evs; /* the events of this call */
	evfi_result *res;            /* one per event of this call */
	size_t n;
};

struct evf_worker {
	evf_db *db;
	evf_worker_options o;
	char *id;
	char **types;            /* owned copies of o.types */
	size_t ntypes;
	const char **handler_types; /* derived from handlers when no types */
	size_t nhandler_types;
	evfi_handler *handlers;
	size_t nhandlers;
	void **plugins;          /* dlopen handles, closed last */
	size_t nplugins;
	volatile sig_atomic_t stop;
	int64_t lock_ms, poll_ms;
	evfi_lane lane;          /* the caller's thread, on the caller's db */
	/* What the threads of a concurrent run share: the counters, the
	 * metrics and the log and outcome callbacks (called one at a time). */
	pthread_mutex_t mu;
	evf_worker_counters counters;
	evfi_metrics *metrics;   /* NULL: off */
	evfi_rate *rate;         /* NULL: no rate limits */
	int64_t rate_wait_ms;    /* after the last step's claim: a limit opens
	                            again this soon (0: none held events back) */
};

const evfi_handler *evfi_handler_find(const evf_worker *w, const char *type);

/* worker.c, for pool.c: claim up to `want` events on a lane; run, record
 * and report a claimed batch (taking the events); the outcomes so far;
 * errors a worker waits out; sleeping and saying so. */
int evfi_worker_claim(evfi_lane *l, int64_t want, evf_event ***evs, size_t *n,
                      int64_t *wait_ms);
int evfi_batch_process(evfi_lane *l, evf_event **evs, size_t n);
int64_t evfi_worker_outcomes(evf_worker *w);
bool evfi_transient(int rc);
void evfi_worker_idle(evfi_lane *l, int64_t ms);
void evfi_worker_rest(evfi_lane *l, int64_t rate_wait_ms);
void evfi_back_off(evfi_lane *l, int64_t *pause);
void evfi_log_retry(evf_worker *w, int64_t pause);
void evfi_log_warn(evf_worker *w, const char *msg);
/* ratelimit.c: the worker's rate limits (NULL when it has none), used
 * by the claiming thread only.  Before a claim: *want capped by limits on
 * every type, *skip the patterns whose bucket is empty.  After it: the
 * events beyond the buckets released and dropped from evs.  *wait_ms gets
 * how soon a closed limit opens again (0: none is closed). */
int evfi_rate_new(evfi_rate **out, const evf_rate_limit *limits, size_t n);
void evfi_rate_free(evfi_rate *r);
int evfi_rate_before(evfi_rate *r, evf_store *s, int64_t *want,
                     const char *const **skip, size_t *nskip, int64_t *wait_ms);
int evfi_rate_admit(evfi_rate *r, evf_store *s, const char *worker_id,
                    evf_event **evs, size_t *n, int64_t *wait_ms);

/* pool.c: evf_worker_run with w->o.concurrency threads (at most this). */
#define EVFI_MAX_CONCURRENCY 256
int evfi_pool_run(evf_worker *w);
void evfi_handlers_free(evf_worker *w);
void evfi_result_clear(evfi_result *r);
void evfi_plugins_close(evf_worker *w);

/* ---- archive files (archive_file.c, event_line.c) ------------------------- */

/* Every column of an event and its state as a cJSON object, without the
 * parameters (each caller adds them its own way); NULL on OOM. */
struct cJSON *evfi_event_columns_json(const evf_event *ev);
/* Append one event as a JSON line (with its newline) to b. */
int evfi_event_line(evfi_buf *b, const evf_event *ev);
/* Parse a line written by evfi_event_line; lineno goes into messages. */
int evfi_event_from_line(evf_event *ev, const char *line, size_t len, size_t lineno);

typedef int (*evfi_line_fn)(const char *line, size_t len, size_t lineno, void *user);
/* Call fn for each complete line of a plain or gzip archive (fn may be
 * NULL).  *good_end (may be NULL) gets the offset up to which the file
 * holds only complete chunks; *truncated says an interrupted chunk
 * follows it. */
int evfi_archive_read(const char *path, evfi_line_fn fn, void *user,
                      int64_t *good_end, bool *truncated);

typedef struct evfi_archive_out {
	int fd;
	bool gz;
	const char *path;
} evfi_archive_out;
/* Create path (mode 0600; EVF_EREFUSED when it exists) or, with append,
 * open it and cut off an interrupted last chunk. */
int evfi_archive_open(evfi_archive_out *a, const char *path, bool append);
/* Write one chunk (a gzip member when the name ends in .gz) and fsync. */
int evfi_archive_write(evfi_archive_out *a, const char *data, size_t len);
int evfi_archive_close(evfi_archive_out *a);

#endif
