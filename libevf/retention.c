/*
 * retention.c - purge, archive and restore: the jobs cron and systemd
 * timers run.  Work goes in chunks, each its own transaction, so that
 * workers and the console are never blocked for long and an interruption
 * costs at most the chunk in flight.
 */
#include "evf_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_CHUNK 5000
#define MAX_CHUNK 1000000

static const unsigned finished = (1u << EVF_STATE_DONE) | (1u << EVF_STATE_DEAD);

static int check_retention(evf_db *db, const evf_retention *r, const char *what)
{
	if (r->version != EVF_RETENTION_VERSION)
		return evfi_fail(EVF_EINVAL, "retention options version %u is not supported",
		                 r->version);
	if (!r->older_than)
		return evfi_fail(EVF_EINVAL, "%s needs an age: only events older than it go", what);
	if (r->states >> EVF_STATE__COUNT)
		return evfi_fail(EVF_EINVAL, "unknown state in the state mask");
	if (r->chunk < 0 || r->chunk > MAX_CHUNK)
		return evfi_fail(EVF_EINVAL, "chunk must be between 1 and %d rows", MAX_CHUNK);
	int rc = db->store->ops->schema_extended(db->store);
	return rc < 0 ? evfi_wrap(rc, "%s", what) : 0; /* a busy or lost database says so */
}

/* The filter a retention job walks: old events of the asked states. */
static evf_filter retention_filter(const evf_retention *r)
{
	evf_filter f = EVF_FILTER_INIT;
	f.states = r->states ? r->states : finished;
	f.type = r->type;
	f.until = r->older_than;
	f.limit = r->chunk ? r->chunk : DEFAULT_CHUNK;
	return f;
}

static void add_counts(evf_retention_result *out, const int64_t counts[EVF_STATE__COUNT])
{
	for (int i = 0; i < EVF_STATE__COUNT; i++) {
		out->counts[i] += counts[i];
		out->total += counts[i];
	}
}

static int64_t sum(const int64_t counts[EVF_STATE__COUNT])
{
	int64_t n = 0;
	for (int i = 0; i < EVF_STATE__COUNT; i++)
		n += counts[i];
	return n;
}

/* After a chunk: tell the caller, who may ask to stop. */
static bool stop_here(const evf_retention *r, evf_retention_result *out)
{
	out->chunks++;
	if (r->progress && r->progress(out, r->user)) {
		out->interrupted = true;
		return true;
	}
	return false;
}

static int dry_run(evf_db *db, const evf_filter *f, evf_retention_result *out)
{
	int64_t counts[EVF_STATE__COUNT] = { 0 };
	int rc = db->store->ops->count_states(db->store, f, counts);
	if (!rc)
		add_counts(out, counts);
	return rc;
}

int evf_purge(evf_db *db, const evf_retention *r, evf_retention_result *out)
{
	evf_filter f;
	int rc;

	memset(out, 0, sizeof *out);
	if ((rc = check_retention(db, r, "purge")))
		return rc;
	f = retention_filter(r);
	if (r->dry_run)
		return dry_run(db, &f, out);
	for (;;) {
		int64_t counts[EVF_STATE__COUNT] = { 0 };
		if ((rc = db->store->ops->delete_chunk(db->store, &f, counts)))
			return evfi_wrap(rc, "purge stopped after %lld events",
			                 (long long)out->total);
		add_counts(out, counts);
		if (sum(counts) == 0 || stop_here(r, out))
			return 0;
	}
}

/* ---- archive to a file ------------------------------------------------------ */

typedef struct file_chunk {
	evfi_buf lines;
	int64_t *ids;
	size_t n, cap;
	int64_t counts[EVF_STATE__COUNT];
	int rc;
} file_chunk;

static int collect(const evf_event *ev, void *user)
{
	file_chunk *c = user;
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 256;
		int64_t *ids = realloc(c->ids, cap * sizeof *ids);
		if (!ids)
			return c->rc = evfi_fail(EVF_ENOMEM, "out of memory");
		c->ids = ids;
		c->cap = cap;
	}
	c->ids[c->n++] = ev->id;
	c->counts[ev->state]++;
	return c->rc = evfi_event_line(&c->lines, ev);
}

static int archive_to_file(evf_db *db, const evf_retention *r, evf_filter *f,
                           evf_retention_result *out)
{
	evfi_archive_out file;
	file_chunk c = { 0 };
	int rc = evfi_archive_open(&file, r->to_file, r->append);
	if (rc)
		return rc;
	for (;;) {
		c.lines.len = 0;
		c.n = 0;
		memset(c.counts, 0, sizeof c.counts);
		rc = db->store->ops->query(db->store, f, collect, &c);
		if (rc || c.rc || c.n == 0)
			break;
		if ((rc = evfi_archive_write(&file, c.lines.data, c.lines.len)))
			break;
		add_counts(out, c.counts);
		f->after_id = c.ids[c.n - 1];
		if (r->purge) {
			/* only the rows just written, and only if still as they were
			 * read: a row requeued meanwhile stays (its copy is harmless) */
			evf_filter del = *f;
			int64_t gone[EVF_STATE__COUNT] = { 0 };
			del.ids = c.ids;
			del.nids = c.n;
			del.after_id = 0;
			del.limit = 0;
			if ((rc = db->store->ops->delete_chunk(db->store, &del, gone)))
				break;
			out->purged += sum(gone);
		}
		if (stop_here(r, out))
			break;
	}
	if (!rc)
		rc = c.rc;
	int crc = evfi_archive_close(&file);
	evfi_buf_free(&c.lines);
	free(c.ids);
	return rc ? rc : crc;
}

/* ---- archive to a table --------------------------------------------------------- */

static int archive_to_table(evf_db *db, const evf_retention *r, evf_filter *f,
                            evf_retention_result *out)
{
	char qarch[64];
	int rc;
	if (!evfi_identifier_ok(r->to_table))
		return evfi_fail(EVF_EINVAL, "bad archive table name '%s' (letters, digits "
		                 "and _, at most 48)", r->to_table);
	if (!strcmp(r->to_table, db->table))
		return evfi_fail(EVF_EINVAL, "the archive table must not be the event table");
	snprintf(qarch, sizeof qarch, "\"%s\"", r->to_table);
	if ((rc = db->store->ops->archive_table_create(db->store, qarch)))
		return rc;
	for (;;) {
		int64_t counts[EVF_STATE__COUNT] = { 0 }, last = 0;
		if ((rc = db->store->ops->archive_chunk(db->store, f, qarch, r->purge, &last, counts)))
			return rc;
		if (!last)
			return 0;
		add_counts(out, counts);
		if (r->purge)
			out->purged += sum(counts);
		f->after_id = last;
		if (stop_here(r, out))
			return 0;
	}
}

int evf_archive(evf_db *db, const evf_retention *r, evf_retention_result *out)
{
	evf_filter f;
	int rc;

	memset(out, 0, sizeof *out);
	if ((rc = check_retention(db, r, "archive")))
		return rc;
	if (!r->to_file == !r->to_table)
		return evfi_fail(EVF_EINVAL, "archive needs exactly one of a file and a table");
	if (r->to_file && !*r->to_file)
		return evfi_fail(EVF_EINVAL, "empty archive file name");
	f = retention_filter(r);
	if (r->dry_run)
		return dry_run(db, &f, out);
	rc = r->to_file ? archive_to_file(db, r, &f, out) : archive_to_table(db, r, &f, out);
	return rc ? evfi_wrap(rc, "archive stopped after %lld events", (long long)out->total) : 0;
}

/* ---- restore ------------------------------------------------------------------ */

typedef struct restore_ctx {
	evf_db *db;
	const char *path;
	evf_event *evs;
	size_t n, chunk;
	bool write;
	evf_restore_result *out;
} restore_ctx;

static int flush_restore(restore_ctx *c)
{
	int64_t inserted = 0;
	int rc = 0;
	if (c->n && c->write)
		rc = c->db->store->ops->restore(c->db->store, c->evs, c->n, &inserted);
	if (!rc) {
		c->out->inserted += inserted;
		c->out->skipped += c->write ? (int64_t)c->n - inserted : 0;
	}
	for (size_t i = 0; i < c->n; i++)
		evfi_event_clear(&c->evs[i]);
	c->n = 0;
	return rc;
}

static int restore_line(const char *line, size_t len, size_t lineno, void *user)
{
	restore_ctx *c = user;
	int rc = evfi_event_from_line(&c->evs[c->n], line, len, lineno);
	if (rc)
		return evfi_wrap(rc, "%s", c->path);
	c->n++;
	c->out->read++;
	return c->n == c->chunk ? flush_restore(c) : 0;
}

int evf_restore(evf_db *db, const char *path, int chunk, bool dry_run,
                evf_restore_result *out)
{
	restore_ctx c = { .db = db, .path = path, .out = out };
	int rc;

	memset(out, 0, sizeof *out);
	if (chunk < 0 || chunk > MAX_CHUNK)
		return evfi_fail(EVF_EINVAL, "chunk must be between 1 and %d rows", MAX_CHUNK);
	if ((rc = db->store->ops->schema_extended(db->store)) < 0)
		return rc;
	c.chunk = chunk ? (size_t)chunk : DEFAULT_CHUNK;
	if (!(c.evs = calloc(c.chunk, sizeof *c.evs)))
		return evfi_fail(EVF_ENOMEM, "out of memory");
	/* the whole file is checked before anything is written */
	rc = evfi_archive_read(path, restore_line, &c, NULL, &out->truncated);
	if (!rc)
		rc = flush_restore(&c);
	if (!rc && !dry_run) {
		out->read = 0;
		c.write = true;
		rc = evfi_archive_read(path, restore_line, &c, NULL, &out->truncated);
		if (!rc)
			rc = flush_restore(&c);
	}
	for (size_t i = 0; i < c.n; i++)
		evfi_event_clear(&c.evs[i]);
	free(c.evs);
	return rc;
}
