/*
 * store.h - the storage interface: the only place SQL lives is behind it.
 *
 * Each backend fills a struct evf_store_ops and embeds struct evf_store as
 * the first member of its own handle.  Every operation is one transaction
 * of its own unless the backend runs on a borrowed connection that is
 * already inside the caller's transaction (emit only).
 *
 * Basic tables (made by the original Django package, without the extended
 * columns) have no leases: claim opens a transaction that end_batch closes,
 * every failure is final (processed and error, as the original recorded
 * it), and the lease arguments are ignored.
 *
 * Leases: a claim sets locked_by = the worker id, locked_until and
 * attempts += 1.  complete/fail/extend/release write only rows whose
 * (id, locked_by, attempts) still match the claim, so a worker whose lease
 * expired and was taken over can never overwrite the new holder's row.
 */
#ifndef EVF_STORE_H
#define EVF_STORE_H

#include "evf.h"

#include <signal.h>

typedef struct evf_store evf_store;

/* A claim request. */
typedef struct evf_claim {
	const char *worker_id;
	const char *const *types;   /* NULL = any type */
	size_t ntypes;
	int limit;                  /* events to claim */
	int64_t lock_ms;            /* lease length */
	evf_time older_than;        /* only date <= this; 0 = no bound */
	bool only_errors;
	int max_attempts;           /* > 0: only attempts < this */
	const char *const *skip;    /* leave out types matching these globs
	                               ('*' the only wildcard) */
	size_t nskip;
} evf_claim;

/* The lease a worker holds on one event. */
typedef struct evf_lease {
	int64_t id;
	int attempts;
	const char *type;   /* borrowed; completions only: SQLite counts
	                       them per type and leaves out those without */
	bool clean;         /* completions only: the event's error flag was
	                       clear when claimed (and so is while the lease
	                       holds), so completing need not clear it */
} evf_lease;

/* Failure of one leased event. */
typedef struct evf_failure_rec {
	evf_lease lease;
	const char *message;
	const char *code;
	bool dead;                  /* dead-letter now */
	int64_t retry_ms;           /* the backoff: the store counts it from
	                               the time it stamps on last_error_at */
} evf_failure_rec;

typedef int (*evf_row_cb)(const evf_event *ev, void *user);

typedef struct evf_store_ops {
	const char *name;
	void (*close)(evf_store *s);
	int (*init)(evf_store *s);
	/* Add the extended columns and indexes to a basic table in one
	 * transaction; with dry_run only *sql (caller frees) says what would
	 * run.  Harmless on a table that has them. */
	int (*migrate)(evf_store *s, bool dry_run, char **sql);
	/* 1 extended, 0 basic, <0 error (EVF_ESCHEMA when the table is
	 * missing). */
	int (*schema_extended)(evf_store *s);
	int (*emit)(evf_store *s, const evf_emit_item *items, size_t n,
	            evf_emit_result *out);
	/* Claimed events are appended to *out (caller frees each with
	 * evf_event_free and the array with free), sorted by priority,
	 * not_before, id. */
	int (*claim)(evf_store *s, const evf_claim *c, evf_event ***out,
	             size_t *n);
	/* applied[i] says whether lease i was still held and was written. */
	int (*complete)(evf_store *s, const char *worker_id,
	                const evf_lease *leases, size_t n, bool *applied);
	/* applied[i] says whether failure i was written. */
	int (*fail_batch)(evf_store *s, const char *worker_id,
	            const evf_failure_rec *recs, size_t n, bool *applied);
	int (*extend)(evf_store *s, const char *worker_id,
	              const evf_lease *leases, size_t n, int64_t lock_ms);
	/* Give back claims that never ran: lease cleared, attempts -= 1. */
	int (*release)(evf_store *s, const char *worker_id,
	               const evf_lease *leases, size_t n);
	int (*get)(evf_store *s, int64_t id, evf_event **out);
	int (*query)(evf_store *s, const evf_filter *f, evf_row_cb cb, void *user);
	int (*count)(evf_store *s, const evf_filter *f, int64_t *out);
	int (*stats)(evf_store *s, evf_stats *out);
	int (*overview)(evf_store *s, evf_overview *out);
	/* Groups of failed and dead events by (type, error message). */
	int (*error_groups)(evf_store *s, size_t limit, evf_error_group **out, size_t *n);
	/* Completions, failures and dead-letterings since `since`, by type
	 * (out->since is set; basic tables are evf_activity_get's business). */
	int (*activity)(evf_store *s, evf_time since, evf_activity *out);
	/* f->states is already restricted to the action's states. */
	int (*act)(evf_store *s, evf_action a, const evf_filter *f, int arg,
	           bool dry_run, int64_t *affected);
	/* Close the batch opened by claim.  Only basic tables (no lease
	 * columns) keep a transaction open from claim to here, holding their
	 * rows locked while the handlers run, as the original package did;
	 * commit=false rolls it back so the events stay unprocessed. */
	int (*end_batch)(evf_store *s, bool commit);
	/* Rows matching f per state (f->limit and paging ignored). */
	int (*count_states)(evf_store *s, const evf_filter *f,
	                    int64_t counts[EVF_STATE__COUNT]);
	/* Delete, in one transaction, the first f->limit rows matching f in
	 * id order (all of them when f->limit is 0); counts[] gets how many
	 * of each state went. */
	int (*delete_chunk)(evf_store *s, const evf_filter *f,
	                    int64_t counts[EVF_STATE__COUNT]);
	/* Create archive table `qarch` (quoted) with this table's columns and
	 * id as primary key, unless it exists. */
	int (*archive_table_create)(evf_store *s, const char *qarch);
	/* In one transaction: copy the first f->limit rows matching f after
	 * f->after_id into `qarch` (rows already there are left alone) and,
	 * with purge, delete them here.  *last_id gets the highest id of the
	 * chunk (0 when there was none), counts[] the rows per state. */
	int (*archive_chunk)(evf_store *s, const evf_filter *f, const char *qarch,
	                     bool purge, int64_t *last_id,
	                     int64_t counts[EVF_STATE__COUNT]);
	/* Insert archived rows with their own ids in one transaction; a row
	 * whose id (or type and key) is taken is skipped.  *inserted counts
	 * the rows written. */
	int (*restore)(evf_store *s, const evf_event *evs, size_t n,
	               int64_t *inserted);
	/* Drop the table and its evf_schema row in one transaction. */
	int (*drop)(evf_store *s);
	/* The settings that decide what a commit survives, for reports. */
	int (*durability)(evf_store *s, char *buf, size_t len);
	/* Give back what big changes left behind (see evf_maintain). */
	int (*maintain)(evf_store *s);
	/* Optional: sleep up to ms or until new work is announced (1) or stop
	 * is set.  Without it the worker just sleeps. */
	int (*wait)(evf_store *s, int64_t ms, volatile sig_atomic_t *stop);
	/* Global rate limits: the evf_rate table (made when missing) holds a
	 * token bucket per (event table, rule), full when first made.
	 * rate_take refills it at per_second up to burst and takes up to
	 * `want` whole tokens in one statement: *granted, and *left what
	 * remains (< 1 when fewer than wanted were granted). */
	int (*rate_setup)(evf_store *s, const char *rule, double burst);
	int (*rate_take)(evf_store *s, const char *rule, double per_second,
	                 double burst, int64_t want, int64_t *granted, double *left);
} evf_store_ops;

struct evf_store {
	const evf_store_ops *ops;
	const evf_options *opts; /* owned by the evf_db */
	const char *table;       /* validated identifier, owned by the evf_db */
};

int evfi_sqlite_open(evf_store **out, const char *path, const evf_options *o,
                     const char *table);
int evfi_sqlite_wrap(evf_store **out, struct sqlite3 *conn,
                     const evf_options *o, const char *table);
/* False when the SQLite library was built without threads: then even
 * one connection per thread is unsafe. */
bool evfi_sqlite_threadsafe(void);
#ifdef HAVE_LIBPQ
int evfi_pg_open(evf_store **out, const char *conninfo, const evf_options *o,
                 const char *table);
int evfi_pg_wrap(evf_store **out, struct pg_conn *conn, const evf_options *o,
                 const char *table);
#endif

#endif
