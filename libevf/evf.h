/*
 * evf.h - the public API of libevf: a database table of events as a
 * dependable work queue.
 *
 * Conventions (see libevf(3)):
 *  - Fallible calls return 0 on success or a negative EVF_E* code; the
 *    reason is readable with evf_error_last() on the same thread.  The
 *    library never prints.
 *  - Results come back through `out` parameters placed first.  What comes
 *    back through `**out` belongs to the caller and has a matching _free();
 *    a `const` pointer returned by value is borrowed from its parent.
 *  - Options structs carry a version; initialise them with the *_INIT macro
 *    so that callers keep compiling when fields are added.
 *  - Times are microseconds since the Unix epoch, UTC (evf_time); 0 means
 *    "not set".  Durations in options are milliseconds.
 */
#ifndef EVF_H
#define EVF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EVF_VERSION_STRING "0.1.0"

#if defined(__GNUC__)
#define EVF_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define EVF_PRINTF(f, a)
#endif

/* ---- errors ------------------------------------------------------------ */

enum {
	EVF_OK = 0,
	EVF_ERROR = -1,     /* generic failure */
	EVF_ENOMEM = -2,    /* out of memory */
	EVF_EINVAL = -3,    /* bad argument: malformed JSON, unknown state, ... */
	EVF_ENOTFOUND = -4, /* no such event, table or database file */
	EVF_EBUSY = -5,     /* database stayed locked past the busy timeout */
	EVF_ESTORE = -6,    /* the database reported an error */
	EVF_ENOBACKEND = -7,/* URL names a backend this build does not have */
	EVF_EBASIC = -8,    /* needs the extended columns the table lacks */
	EVF_ESCHEMA = -9,   /* table missing or of an unknown shape */
	EVF_EREFUSED = -10, /* refused for safety, e.g. an action with no filter */
	EVF_EUNAVAILABLE = -11,/* server unreachable or connection lost; retry */
	EVF_ETIMEDOUT = -12 /* a query ran past the time budget it was given */
};

/* Message for the last failure on this thread; never NULL. Borrowed. */
const char *evf_error_last(void);
/* Short name of an EVF_E* code; never NULL. Static. */
const char *evf_strerror(int code);

/* ---- time, durations -------------------------------------------------- */

typedef int64_t evf_time; /* microseconds since the epoch, UTC; 0 = unset */

evf_time evf_now(void);
/* Parse "500ms", "30s", "5m", "2h", "7d", "1h30m" or a bare number of
 * seconds into milliseconds.  Rejects negatives, junk and overflow. */
int evf_duration_parse(int64_t *out_ms, const char *text);
/* Format a duration the way evf_duration_parse reads it, to the two
 * largest units ("500ms", "45s", "7m12s", "15m", "3h5m", "2d4h"; negative
 * is "0s") into buf (>= 32 bytes). */
char *evf_duration_format(char *buf, size_t len, int64_t ms);
/* Parse "2026-01-02T03:04:05Z", "2026-01-02 03:04:05.123456" (UTC when no
 * offset is given), "+01:00" offsets, or "@UNIXSECONDS". */
int evf_time_parse(evf_time *out, const char *text);
/* A time as evf_time_parse() reads it, or a duration meaning that long
 * before `now` ("2h" = two hours ago): what --since and since: take. */
int evf_when_parse(evf_time *out, const char *text, evf_time now);
/* Format as "2026-01-02 03:04:05.123456" (UTC) into buf (>= 27 bytes). */
char *evf_time_format(char *buf, size_t len, evf_time t);

/* ---- states ------------------------------------------------------------ */

/* Derived from the columns; one definition serves every query (the STATES
 * section of evfctl(1) has the table). */
typedef enum evf_state {
	EVF_STATE_PENDING = 0, /* ready to run */
	EVF_STATE_SCHEDULED,   /* not_before in the future */
	EVF_STATE_RUNNING,     /* a worker holds a valid lease */
	EVF_STATE_FAILED,      /* last attempt failed, waiting for its retry */
	EVF_STATE_STUCK,       /* lease expired: the worker vanished */
	EVF_STATE_DEAD,        /* dead-lettered, or processed with error */
	EVF_STATE_DONE,        /* processed successfully */
	EVF_STATE__COUNT
} evf_state;

const char *evf_state_name(evf_state s);
int evf_state_parse(evf_state *out, const char *name);
/* Parse a comma-separated list ("failed,dead") into a bit mask of
 * (1u << state). */
int evf_state_mask_parse(unsigned *out_mask, const char *list);

/* ---- the event --------------------------------------------------------- */

/* One row.  Strings are NUL-terminated and may be NULL when the column is
 * NULL (type and parameters never are). */
typedef struct evf_event {
	int64_t id;
	char *type;
	char *parameters; /* JSON text */
	evf_time date;
	bool processed;
	bool error;
	bool dead;
	char *error_message;
	char *error_code;
	char *idempotency_key;
	char *correlation_id;
	int priority;
	evf_time not_before;
	int attempts;
	int max_attempts;
	evf_time last_error_at;
	evf_time processed_at;
	char *locked_by;
	evf_time locked_until;
	evf_state state; /* derived when the row was read */
} evf_event;

void evf_event_free(evf_event *ev);
/* The event as a JSON object keyed by column names plus "state"; the
 * parameters are embedded as JSON.  Caller frees with free(). */
char *evf_event_to_json(const evf_event *ev, bool pretty);

/* ---- opening a database ------------------------------------------------ */

typedef struct evf_db evf_db;

#define EVF_OPTIONS_VERSION 2
typedef struct evf_options {
	unsigned version;
	const char *table;        /* default "evf_event" */
	int64_t lock_timeout_ms;  /* lease length; default 300000 (5 min) */
	int64_t poll_interval_ms; /* idle worker sleep; default 1000 */
	int max_attempts;         /* default for new events; default 5 */
	int64_t backoff_base_ms;  /* first retry delay; default 1000 */
	int64_t backoff_max_ms;   /* cap; default 3600000 (1 h) */
	int64_t busy_timeout_ms;  /* SQLite busy timeout; default 10000 */
	bool create;              /* create a missing SQLite file (init only) */
	bool no_listen;           /* PostgreSQL: poll only, never LISTEN, and
	                             prepare no named statements (for PgBouncer
	                             in transaction mode) */
	/* Version 2.  PostgreSQL: emits send no NOTIFY; idle workers find
	 * the events at their next poll. */
	bool no_wake;
} evf_options;
#define EVF_OPTIONS_INIT { EVF_OPTIONS_VERSION, NULL, 0, 0, 0, 0, 0, 0, false, false, false }

/* Open by URL: "sqlite:PATH", "sqlite://PATH", a bare path, or
 * "postgresql://..." / a libpq conninfo.  A missing SQLite file is
 * EVF_ENOTFOUND unless opts->create.  The table need not exist yet (see
 * evf_init).  *out is the caller's: evf_close() it. */
int evf_open(evf_db **out, const char *url, const evf_options *opts);

/* Use the caller's own SQLite connection (borrowed: evf_close() leaves it
 * open).  Emits then join the caller's transaction when one is open: the
 * outbox pattern.  `conn` is a `sqlite3 *`. */
struct sqlite3;
int evf_open_sqlite(evf_db **out, struct sqlite3 *conn, const evf_options *opts);

/* The same on the caller's own PostgreSQL connection (a `PGconn *`,
 * borrowed): emits inside the caller's open transaction commit or roll back
 * with it.  EVF_ENOBACKEND when built without libpq. */
struct pg_conn;
int evf_open_pg(evf_db **out, struct pg_conn *conn, const evf_options *opts);

void evf_close(evf_db *db);

/* Backend name ("sqlite", "postgresql") and table; borrowed. */
const char *evf_db_backend(const evf_db *db);
const char *evf_db_table(const evf_db *db);
/* The URL with any password masked; borrowed. */
const char *evf_db_display_url(const evf_db *db);

/* Create the table, its indexes and the evf_schema row in one transaction.
 * Idempotent. */
int evf_init(evf_db *db);

/* Drop the table and forget it in evf_schema, in one transaction: for
 * scratch tables (evfctl bench uses one).  Everything in it is gone. */
int evf_drop(evf_db *db);

/* Give back what a big purge or bulk change left behind: on PostgreSQL
 * VACUUM (ANALYZE) of the table, so that claims stop stepping over the
 * index entries of dead rows (autovacuum would, later); on SQLite a
 * checkpoint that truncates the write-ahead log.  Not inside a
 * transaction.  EVF_EBUSY when SQLite readers or writers are in the way. */
int evf_maintain(evf_db *db);

/* One line naming the database and the settings that decide what a
 * commit survives (SQLite journal mode and synchronous; PostgreSQL fsync
 * and synchronous_commit), for benchmark reports. */
int evf_db_durability(evf_db *db, char *buf, size_t len);

/* The opt-in upgrade of a table made by the original package: add the
 * extended columns and indexes in one transaction, keeping every row's
 * meaning (a processed row with error stays dead).  Never run implicitly.
 * With dry_run nothing changes.  *out_sql (may be NULL) gets the SQL, the
 * caller's to free(). */
int evf_migrate(evf_db *db, bool dry_run, char **out_sql);

/* 1 when the table has the extended columns, 0 when it is a basic (original
 * Django package) table; negative on error (EVF_ESCHEMA: no such table). */
int evf_schema_extended(evf_db *db);

/* ---- emitting ---------------------------------------------------------- */

#define EVF_EMIT_OPTIONS_VERSION 1
typedef struct evf_emit_options {
	unsigned version;
	const char *key;            /* idempotency key, unique per type */
	int priority;               /* smaller runs first; default 0 */
	evf_time not_before;        /* absolute; 0 = now */
	int64_t delay_ms;           /* relative to now; used when not_before==0 */
	const char *correlation_id;
	int max_attempts;           /* 0 = the database default */
} evf_emit_options;
#define EVF_EMIT_OPTIONS_INIT { EVF_EMIT_OPTIONS_VERSION, NULL, 0, 0, 0, NULL, 0 }

typedef struct evf_emit_result {
	int64_t id;
	bool duplicate; /* (type, key) existed: id is that event's */
} evf_emit_result;

/* Validate `parameters` as JSON (NULL means "{}") and insert.  Nothing is
 * written on error.  `out` may be NULL. */
int evf_emit(evf_db *db, const char *type, const char *parameters,
             const evf_emit_options *opts, evf_emit_result *out);

typedef struct evf_emit_item {
	const char *type;
	const char *parameters;
	evf_emit_options opts;
} evf_emit_item;

/* All or nothing, in one transaction (or the caller's).  `out` may be NULL
 * or an array of n results. */
int evf_emit_batch(evf_db *db, const evf_emit_item *items, size_t n,
                   evf_emit_result *out);

/* ---- handlers and workers ---------------------------------------------- */

typedef struct evf_worker evf_worker;
typedef struct evf_job evf_job; /* context of one handler call */

/* Return 0 for success; anything else fails the event (retryable, with a
 * generic message unless evf_job_fail() said more).  An event marked with
 * evf_job_fail() fails whatever the return value. */
typedef int (*evf_handler_fn)(evf_job *job, const evf_event *ev, void *user);
/* A batch handler gets every claimed event of its type at once; mark the
 * ones that failed with evf_job_fail(job, index, ...).  A non-zero return
 * fails every event not already marked. */
typedef int (*evf_batch_handler_fn)(evf_job *job, const evf_event *const *evs,
                                    size_t n, void *user);
/* Return false to skip: the event is marked processed without running. */
typedef bool (*evf_when_fn)(const evf_event *ev, void *user);

#define EVF_HANDLER_OPTIONS_VERSION 1
typedef struct evf_handler_options {
	unsigned version;
	evf_when_fn when;
	void *user;                 /* passed to fn, batch and when */
	void (*user_free)(void *);  /* called on user when the worker is freed */
} evf_handler_options;
#define EVF_HANDLER_OPTIONS_INIT { EVF_HANDLER_OPTIONS_VERSION, NULL, NULL, NULL }

/* Register a handler for an exact type ("*" catches every type without
 * its own handler).  Registering a type twice is EVF_EINVAL. */
int evf_register(evf_worker *w, const char *type, evf_handler_fn fn,
                 const evf_handler_options *opts);
int evf_register_batch(evf_worker *w, const char *type, evf_batch_handler_fn fn,
                       const evf_handler_options *opts);

/* Run `command` with /bin/sh -c for each event of `type`: event JSON on
 * stdin; EVF_EVENT_ID, EVF_EVENT_TYPE, EVF_ATTEMPT, EVF_CORRELATION_ID in
 * the environment.  Exit 0 succeeds, 75 retries later, 65 fails without
 * retry, any other status (or a signal) is a retryable failure; the tail of
 * stderr becomes the error message.  timeout_ms > 0 kills the process
 * group when exceeded (retryable). */
int evf_register_exec(evf_worker *w, const char *type, const char *command,
                      int64_t timeout_ms);

/* dlopen() a shared object and call its
 *   int evf_plugin_init(evf_worker *w);
 * which registers handlers.  A non-zero return is an error. */
int evf_load_plugin(evf_worker *w, const char *path);
/* What a plugin defines (libevf does not): declared here so plugins build
 * clean with -Wmissing-prototypes. */
int evf_plugin_init(evf_worker *w);

/* Inside a handler: record a failure for event `index` of the call (0 for
 * single handlers).  `code` may be NULL; retryable=false dead-letters at
 * once. */
int evf_job_fail(evf_job *job, size_t index, const char *code, bool retryable,
                 const char *fmt, ...) EVF_PRINTF(5, 6);
/* Extend, to ms from now, the lease of every event of the batch the worker
 * is running (the events waiting behind a long handler keep theirs too). */
int evf_job_extend(evf_job *job, int64_t ms);
/* Emit a follow-up event that inherits the correlation id of the event
 * being handled (unless opts sets one). */
int evf_job_emit(evf_job *job, const char *type, const char *parameters,
                 const evf_emit_options *opts, evf_emit_result *out);
evf_db *evf_job_db(evf_job *job); /* borrowed */
const char *evf_job_worker_id(const evf_job *job);

typedef enum evf_log_format { EVF_LOG_LOGFMT = 0, EVF_LOG_JSON } evf_log_format;

/* Outcome of one event, given to the processed/failed callbacks. */
typedef struct evf_outcome {
	const evf_event *event;
	bool ok;
	bool skipped;        /* a `when` predicate said no */
	bool dead;           /* failed and dead-lettered */
	bool applied;        /* false: the lease was lost, nothing written */
	const char *error_code;
	const char *error_message;
	evf_time retry_at;   /* for retryable failures */
	double duration_ms;
} evf_outcome;

/* A limit on how fast events of some types start (see libevf(3), Rate
 * limits).  Every limit whose pattern matches an event's type applies. */
typedef struct evf_rate_limit {
	const char *type;     /* an exact type, a glob with '*', or "*" for all */
	double per_second;    /* > 0; 1/60 is one a minute */
	bool global;          /* shared by every worker through the database */
} evf_rate_limit;
/* Parse "N/s", "N/m" or "N/h" (N a positive decimal) into events per
 * second. */
int evf_rate_parse(double *out_per_second, const char *text);

/* Version 2 appended the metrics fields, version 3 concurrency and rate
 * limits; structs of versions 1 and 2 are still accepted (what they lack
 * is off). */
#define EVF_WORKER_OPTIONS_VERSION 3
typedef struct evf_worker_options {
	unsigned version;
	const char *name;          /* prefix of the worker id; default hostname */
	const char *const *types;  /* claim only these (NULL = all registered) */
	size_t ntypes;
	int batch_size;            /* events per claim; default 100 */
	int64_t limit;             /* stop after this many outcomes; 0 = none */
	bool once;                 /* drain what is ready, then return */
	int64_t older_than_ms;     /* only events created at least this long ago */
	bool only_errors;          /* only events whose last attempt failed */
	int max_attempts;          /* override every event's max_attempts */
	bool requeue_errors;       /* first make failed and dead events ready */
	int64_t lock_timeout_ms;   /* 0 = the database option */
	int64_t poll_interval_ms;  /* 0 = the database option */
	/* One formatted line per outcome (no newline); NULL = no logging. */
	void (*log)(void *log_user, const char *line);
	void *log_user;
	evf_log_format log_format;
	void (*on_processed)(const evf_outcome *o, void *user);
	void (*on_failed)(const evf_outcome *o, void *user);
	void *callback_user;
	/* Worker metrics, off unless set (see libevf(3), Worker metrics):
	 * a Prometheus text file rewritten atomically every interval and at
	 * the end, and StatsD lines sent over UDP to "HOST:PORT". */
	const char *metrics_textfile;
	const char *statsd;
	int64_t metrics_interval_ms; /* default 5000 (0 also means 5000) */
	/* Version 3.  Handlers running at once in evf_worker_run(), each
	 * thread on a connection of its own (0 or 1: the caller's thread
	 * only; see libevf(3), Concurrency). */
	int concurrency;
	/* Version 3.  Limits on how fast events start (see libevf(3), Rate
	 * limits); copied by evf_worker_new. */
	const evf_rate_limit *rates;
	size_t nrates;
} evf_worker_options;
#define EVF_WORKER_OPTIONS_INIT { EVF_WORKER_OPTIONS_VERSION, NULL, NULL, 0, 0, 0, \
	false, 0, false, 0, false, 0, 0, NULL, NULL, EVF_LOG_LOGFMT, NULL, NULL, NULL, \
	NULL, NULL, 5000, 0, NULL, 0 }

/* The worker borrows db (keep it open until evf_worker_free). */
int evf_worker_new(evf_worker **out, evf_db *db, const evf_worker_options *opts);
void evf_worker_free(evf_worker *w);

/* Claim, run and record until evf_worker_stop(), the limit, or (once)
 * nothing is ready.  Returns 0, or an error that stopped it.  With
 * concurrency > 1 it runs that many handler threads, each on a connection
 * of its own opened from db's URL, and returns when all have stopped. */
int evf_worker_run(evf_worker *w);
/* Claim and run at most one batch on the caller's thread (whatever the
 * concurrency); *out_n (may be NULL) gets its size. */
int evf_worker_step(evf_worker *w, size_t *out_n);
/* Ask a running worker to stop after the current handler; unstarted claims
 * are released.  Async-signal-safe. */
void evf_worker_stop(evf_worker *w);
const char *evf_worker_id(const evf_worker *w); /* borrowed */

typedef struct evf_worker_counters {
	int64_t processed, failed, retried, dead, skipped, lost;
} evf_worker_counters;
void evf_worker_counters_get(const evf_worker *w, evf_worker_counters *out);

/* Pure helper, exposed for tests and tools: retry delay in ms after
 * `attempts` tries, with jitter drawn from r in [0,1). */
int64_t evf_backoff_ms(int attempts, int64_t base_ms, int64_t max_ms, double r);

/* ---- queries and actions ----------------------------------------------- */

/* The order of a query: by id, or by a column with id breaking ties. */
typedef enum evf_order {
	EVF_ORDER_ID = 0,
	EVF_ORDER_DATE,
	EVF_ORDER_PRIORITY,
	EVF_ORDER_ATTEMPTS,
	EVF_ORDER__COUNT
} evf_order;
const char *evf_order_name(evf_order o);
int evf_order_parse(evf_order *out, const char *name);
/* The sort key of an event under order o (the date, priority or attempts;
 * the id for EVF_ORDER_ID): what evf_filter.after_key takes. */
int64_t evf_order_key(evf_order o, const evf_event *ev);

#define EVF_FILTER_VERSION 2
typedef struct evf_filter {
	unsigned version;
	unsigned states;            /* mask of 1u << evf_state; 0 = any */
	const char *type;           /* exact, or a glob with '*' */
	const int64_t *ids;         /* exact ids */
	size_t nids;
	evf_time since, until;      /* date range [since, until) */
	bool errors;                /* only rows with the error flag */
	const char *correlation_id;
	const char *text;           /* substring of error_message or parameters */
	int64_t after_id;           /* keyset paging: ids after (or before, when
	                               descending) this one; 0 = from the start */
	bool descending;
	int64_t limit;              /* 0 = no limit */
	bool all;                   /* actions: allow an empty filter */
	evf_order order;            /* evf_query: the order of the walk */
	int64_t after_key;          /* with order != EVF_ORDER_ID and after_id:
	                               start after (after_key, after_id), the key
	                               from evf_order_key() */
	/* version 2 */
	int64_t budget_ms;          /* evf_query: stop with EVF_ETIMEDOUT once the
	                               query has run this long (0 = no limit);
	                               for consoles that must stay responsive */
} evf_filter;
#define EVF_FILTER_INIT { EVF_FILTER_VERSION, 0, NULL, NULL, 0, 0, 0, false, \
	NULL, NULL, 0, false, 0, false, EVF_ORDER_ID, 0, 0 }

/* Fetch one event; EVF_ENOTFOUND when there is none. */
int evf_get(evf_db *db, int64_t id, evf_event **out);
/* Call cb for each matching event in f->order (id by default; ties by
 * id), ascending unless f->descending; a non-zero return from cb
 * stops the walk and is returned.  The event is borrowed for the call. */
int evf_query(evf_db *db, const evf_filter *f,
              int (*cb)(const evf_event *ev, void *user), void *user);
int evf_count(evf_db *db, const evf_filter *f, int64_t *out);

typedef struct evf_type_counts {
	char *type;
	int64_t counts[EVF_STATE__COUNT];
} evf_type_counts;
/* Counts by type and state.  On an extended table of more than 200,000
 * events the live states (pending to stuck) and dead stay exact, read
 * through partial indexes, and done is estimated from 4,000 ids drawn at
 * random, so that the cost grows with the live and dead events only, not
 * with the done ones; `estimated` says so.  A type with a few done events
 * in thousands may then show none, or an estimate far off. */
typedef struct evf_stats {
	int64_t counts[EVF_STATE__COUNT];
	int64_t total;
	size_t ntypes;
	evf_type_counts *types; /* sorted by type */
	bool estimated;         /* done from a sample */
} evf_stats;
int evf_stats_get(evf_db *db, evf_stats **out);
void evf_stats_free(evf_stats *s);

/* What a live console shows in its header, cheap enough to ask for every
 * refresh: the states of the queue (pending, scheduled, running, failed,
 * stuck) are exact; done and dead may be estimated on large tables, which
 * `estimated` says. */
typedef struct evf_overview {
	int64_t counts[EVF_STATE__COUNT];
	int64_t total;
	bool estimated;
	evf_time oldest_ready;  /* when the oldest ready event became ready; 0 = none */
	int64_t workers;        /* distinct lease holders right now */
	evf_time now;           /* the database's clock */
} evf_overview;
int evf_overview_get(evf_db *db, evf_overview *out);

/* Failures grouped by message (and type), most frequent first. */
typedef struct evf_error_group {
	char *type;
	char *message;     /* the first line, at most 200 bytes */
	int64_t count;
	evf_time last_at;
} evf_error_group;
int evf_error_groups_get(evf_db *db, size_t limit, evf_error_group **out, size_t *n);
void evf_error_groups_free(evf_error_group *g, size_t n);

typedef enum evf_action {
	EVF_ACTION_REQUEUE = 0,      /* ready now, attempts reset, error cleared */
	EVF_ACTION_MARK_PROCESSED,   /* done without running */
	EVF_ACTION_DEAD_LETTER,      /* dead, kept for inspection */
	EVF_ACTION_SET_MAX_ATTEMPTS, /* arg = the new limit (>= 1) */
	EVF_ACTION_RELEASE           /* stuck only: lease cleared, ready now,
	                                attempts kept (the lost run counted) */
} evf_action;

const char *evf_action_name(evf_action a);
/* The states an action may change: it never touches a running event (a
 * worker holds it) nor one already in the target state. */
unsigned evf_action_states(evf_action a);

/* Apply `a` to the events matching f (restricted to evf_action_states).
 * An empty filter is EVF_EREFUSED unless f->all.  With dry_run nothing
 * changes and *affected is how many would. */
int evf_act(evf_db *db, evf_action a, const evf_filter *f, int arg,
            bool dry_run, int64_t *affected);

/* ---- retention: purge, archive, restore ---------------------------------- */

typedef struct evf_retention_result {
	int64_t counts[EVF_STATE__COUNT]; /* rows purged, or archived, per state */
	int64_t total;
	int64_t purged;    /* archive with purge: rows deleted once written */
	int64_t chunks;    /* transactions committed */
	bool interrupted;  /* the progress callback asked to stop */
} evf_retention_result;

#define EVF_RETENTION_VERSION 1
typedef struct evf_retention {
	unsigned version;
	evf_time older_than;  /* required: only events created before this */
	unsigned states;      /* mask of 1u << evf_state; 0 = done and dead */
	const char *type;     /* exact, or a glob with '*' */
	int chunk;            /* rows per transaction; 0 = 5000 */
	bool dry_run;         /* only count (per state) what would go */
	const char *to_file;  /* archive: JSON lines; gzip when it ends in .gz */
	bool append;          /* archive: add to an existing file */
	const char *to_table; /* archive: copy into this table instead */
	bool purge;           /* archive: delete each chunk once it is safe */
	/* After each chunk; a non-zero return stops before the next one. */
	int (*progress)(const evf_retention_result *so_far, void *user);
	void *user;
} evf_retention;
#define EVF_RETENTION_INIT { EVF_RETENTION_VERSION, 0, 0, NULL, 0, false, NULL, \
	false, NULL, false, NULL, NULL }

/* Delete old events in chunks of r->chunk rows, each its own transaction,
 * so that workers are never blocked for long; safe to interrupt and to run
 * again.  Without r->older_than it is EVF_EINVAL. */
int evf_purge(evf_db *db, const evf_retention *r, evf_retention_result *out);

/* Copy old events to r->to_file (created 0600, never overwritten unless
 * r->append) or into the table r->to_table (created when missing).  With
 * r->purge each chunk is deleted only after it is safe: the file written
 * and fsync'd, or the copy committed in the same transaction.  An
 * interruption loses nothing; at worst the last chunk is archived twice. */
int evf_archive(evf_db *db, const evf_retention *r, evf_retention_result *out);

typedef struct evf_restore_result {
	int64_t read;      /* events in the file */
	int64_t inserted;  /* written */
	int64_t skipped;   /* their id (or type and key) was already taken */
	bool truncated;    /* the file ends in an interrupted chunk: the lines
	                      before the cut were read, the rest ignored */
} evf_restore_result;

/* Put the events of an archive file back with their own ids, in chunks of
 * `chunk` rows (0 = 5000).  Every line is checked before any is written;
 * running it twice changes nothing.  With dry_run nothing is written. */
int evf_restore(evf_db *db, const char *path, int chunk, bool dry_run,
                evf_restore_result *out);
/* ---- settings: evf.conf, the environment, flags ------------------------ */

/* How much a worker logs: `info` one line per outcome, `warning` only
 * failures, retries and dead letters, `error` only dead letters and
 * worker errors.  The filter is the front end's (see evfctl(1)). */
typedef enum evf_log_level {
	EVF_LOG_LEVEL_ERROR = 0,
	EVF_LOG_LEVEL_WARNING,
	EVF_LOG_LEVEL_INFO
} evf_log_level;

/* One `TYPE = COMMAND` line of [handlers]: what --exec TYPE=COMMAND says. */
typedef struct evf_handler_setting {
	const char *type;
	const char *command;
} evf_handler_setting;

/* The settings every front end shares (evf.conf(5) has each key, its
 * default and its variable).  Made only by evf_settings_new(); read the
 * fields freely, change them only through evf_settings_set() so that the
 * source of each value stays right.  Strings are borrowed from the
 * settings; NULL means unset.  Durations are milliseconds. */
typedef struct evf_settings {
	struct {
		const char *database;     /* URL; NULL = none given */
		const char *table;
		int max_attempts;         /* default for new events */
		int64_t backoff_base_ms;
		int64_t backoff_max_ms;
		int64_t lock_timeout_ms;
		int64_t poll_interval_ms;
		int64_t busy_timeout_ms;
		int batch_size;
		bool listen;              /* false: poll only (PgBouncer) */
		int64_t exec_timeout_ms;  /* 0 = none */
		const char *worker_name;  /* NULL = the host name */
		evf_log_format log_format;
		evf_log_level log_level;
	} evf;
	const evf_handler_setting *handlers; /* [handlers], in file order */
	size_t nhandlers;
	struct {
		const char *textfile;     /* NULL = none */
		const char *statsd;       /* "HOST:PORT"; NULL = none */
		int64_t interval_ms;
	} metrics;
	struct {
		int stuck_warning, stuck_critical;
		int64_t oldest_ready_warning_ms, oldest_ready_critical_ms;
		int64_t window_ms;
		double failure_ratio_warning, failure_ratio_critical;
		int dead_warning, dead_critical;
		int64_t idle_queue_ms;
	} health;
	/* Appended after the rest, so that their offsets never move. */
	int concurrency;                /* [evf] concurrency */
	const evf_rate_limit *rates;    /* [rates], then [global_rates] */
	size_t nrates;
	bool wake;                      /* [evf] wake; false: emits send no NOTIFY */
} evf_settings;

/* The defaults, each with source "default".  *out is the caller's:
 * evf_settings_free() it. */
int evf_settings_new(evf_settings **out);
void evf_settings_free(evf_settings *s);

/* Read the config file, then the environment, over what s holds.  The
 * file is `path` when not NULL, else $EVF_CONFIG, else the first that
 * exists of ./evf.conf, $XDG_CONFIG_HOME/evf/evf.conf (or
 * ~/.config/evf/evf.conf) and /etc/evf/evf.conf; none is fine.  The
 * handlers of a file replace those s held.  A file
 * named by `path` or $EVF_CONFIG that does not exist is EVF_ENOTFOUND; a
 * bad line is EVF_EINVAL with a "FILE:LINE: problem" message, a bad
 * variable one that names the variable.  On error s may hold part of what
 * was read: free it. */
int evf_settings_load(evf_settings *s, const char *path);

/* The file evf_settings_load() read; NULL when none.  Borrowed. */
const char *evf_settings_path(const evf_settings *s);

/* Set one key ("evf.batch_size", "health.window", ...) from text parsed as
 * the file would, recording `source` (a flag such as "--batch-size"),
 * which also names the value in error messages.  Nothing changes on error:
 * EVF_EINVAL for an unknown key, a bad value, or a warning threshold above
 * its critical one.  [handlers] are not keys: a front end that takes
 * handlers of its own uses them instead of s->handlers. */
int evf_settings_set(evf_settings *s, const char *key, const char *value,
                     const char *source);

/* One effective setting, as evfctl config shows it. */
typedef struct evf_setting {
	const char *name;   /* "section.key", or "handlers.TYPE" */
	const char *value;  /* as text, passwords masked; NULL = unset */
	const char *source; /* "default", "file:PATH:LINE", "env VAR" or a flag */
	const char *env;    /* its environment variable; NULL for handlers */
} evf_setting;

/* Call cb for every key in evf.conf(5) order, each handler after the
 * [evf] keys.  The setting is borrowed for the call; a non-zero return
 * from cb stops the walk and is returned. */
int evf_settings_foreach(const evf_settings *s,
                         int (*cb)(const evf_setting *st, void *user), void *user);

/* Fill the database options (table, lock timeout, poll interval, max
 * attempts, backoff, busy timeout, listen and, from version 2, wake) of
 * *out from s; the other fields are left as they are.  out->table is
 * borrowed from s. */
void evf_settings_options(const evf_settings *s, evf_options *out);
/* Fill the worker options (name, batch size, lock timeout, poll interval,
 * log format, metrics, and from version 3 concurrency and rate limits)
 * of *out from s;
 * the rest is left alone.  Borrows from s. */
void evf_settings_worker_options(const evf_settings *s, evf_worker_options *out);
/* evf_health_check()'s thresholds from the [health] keys. */
struct evf_health_thresholds;
void evf_settings_health_thresholds(const evf_settings *s,
                                    struct evf_health_thresholds *out);
/* ---- activity, health and metrics --------------------------------------- */

/* What happened since a time: completions in the window (PostgreSQL:
 * done rows whose processed_at is in it; SQLite: the completions its
 * tally counted, to the second for the last hour and to the minute for
 * the last day; see libevf(3)); failures are rows whose last failure
 * (last_error_at) is in the window, one per row however often it failed;
 * dead are dead rows whose last failure is in the window (an operator's
 * dead-letter records no time and is not counted). */
typedef struct evf_activity_counts {
	int64_t completed, failed, dead;
} evf_activity_counts;
typedef struct evf_type_activity {
	char *type;
	evf_activity_counts c;
} evf_type_activity;
typedef struct evf_activity {
	evf_time since;
	bool available;          /* false on a basic table: no time columns, so
	                            the counts are unknown (-1), not zero */
	evf_activity_counts all;
	size_t ntypes;
	evf_type_activity *types; /* sorted by type; only types with activity */
} evf_activity;
int evf_activity_get(evf_db *db, evf_time since, evf_activity **out);
void evf_activity_free(evf_activity *a);

typedef enum evf_health_status {
	EVF_HEALTH_OK = 0, EVF_HEALTH_WARNING, EVF_HEALTH_CRITICAL, EVF_HEALTH_UNKNOWN
} evf_health_status;
/* "OK", "WARNING", "CRITICAL", "UNKNOWN". Static. */
const char *evf_health_status_name(evf_health_status s);

/* The thresholds of evf_health_check(); a check is at a level when its
 * value is >= the threshold.  Durations in ms, ratios in [0, 1]. */
#define EVF_HEALTH_THRESHOLDS_VERSION 1
typedef struct evf_health_thresholds {
	unsigned version;
	int64_t stuck_warning, stuck_critical;                 /* events */
	int64_t oldest_ready_warning_ms, oldest_ready_critical_ms;
	int64_t window_ms;       /* of failure_ratio and dead */
	double failure_ratio_warning, failure_ratio_critical;
	int64_t dead_warning, dead_critical;                   /* events */
	int64_t idle_queue_ms;   /* ready this long with no lease holder */
} evf_health_thresholds;
/* The defaults, written once: 1/10 stuck, 5m/30m oldest ready, a 15m
 * window, 0.1/0.5 failure ratio, 1/100 dead, 5m idle queue. */
#define EVF_HEALTH_THRESHOLDS_INIT { EVF_HEALTH_THRESHOLDS_VERSION, 1, 10, \
	300000, 1800000, 900000, 0.1, 0.5, 1, 100, 300000 }
/* EVF_EINVAL with a message naming the first bad threshold (negative,
 * a warning above its critical, a ratio outside [0, 1], a zero window). */
int evf_health_thresholds_validate(const evf_health_thresholds *t);

typedef struct evf_health_item {
	const char *name;        /* stuck, oldest_ready, failure_ratio, dead,
	                            idle_queue; static */
	evf_health_status status;
	bool available;          /* false: needs the extended columns (OK) */
	double value;            /* events, seconds or a ratio */
	double warning, critical; /* thresholds in the unit of value; a
	                             negative warning means none */
	char *detail;            /* one line */
} evf_health_item;
typedef struct evf_health_report {
	evf_health_status status; /* the worst check */
	size_t nchecks;
	evf_health_item *checks;
} evf_health_report;
/* Run every check (t NULL = the defaults).  Failing to read the database
 * is an error return, which a monitoring plugin reports as UNKNOWN. */
int evf_health_check(evf_db *db, const evf_health_thresholds *t,
                     evf_health_report **out);
void evf_health_report_free(evf_health_report *r);

/* The state of the database in the Prometheus text format (0.0.4), for
 * node_exporter's textfile collector; *out is the caller's to free(). */
int evf_metrics_text(evf_db *db, char **out);

#ifdef __cplusplus
}
#endif
#endif /* EVF_H */
