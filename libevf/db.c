/* db.c - opening a database: URL to backend, options, schema entry points. */
#include "evf_internal.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

void evfi_options_resolve(evf_options *dst, const evf_options *src)
{
	evf_options d = EVF_OPTIONS_INIT;
	/* a caller built against version 1 passed a shorter struct */
	if (src)
		memcpy(&d, src, src->version < 2 ? offsetof(evf_options, no_wake) : sizeof d);
	if (!d.table)
		d.table = "evf_event";
	if (d.lock_timeout_ms <= 0)
		d.lock_timeout_ms = 300000;
	if (d.poll_interval_ms <= 0)
		d.poll_interval_ms = 1000;
	if (d.max_attempts <= 0)
		d.max_attempts = 5;
	if (d.backoff_base_ms <= 0)
		d.backoff_base_ms = 1000;
	if (d.backoff_max_ms <= 0)
		d.backoff_max_ms = 3600000;
	if (d.busy_timeout_ms <= 0)
		d.busy_timeout_ms = 10000;
	d.version = EVF_OPTIONS_VERSION;
	*dst = d;
}

static int db_new(evf_db **out, const evf_options *opts)
{
	evf_db *db = calloc(1, sizeof *db);
	if (!db)
		return evfi_fail(EVF_ENOMEM, "out of memory");
	evfi_options_resolve(&db->opts, opts);
	if (!evfi_identifier_ok(db->opts.table)) {
		evfi_fail(EVF_EINVAL, "invalid table name '%s' (letters, digits and _ "
		          "only, at most 48, not starting with a digit)", db->opts.table);
		free(db);
		return EVF_EINVAL;
	}
	db->table = strdup(db->opts.table);
	if (!db->table) {
		free(db);
		return evfi_fail(EVF_ENOMEM, "out of memory");
	}
	db->opts.table = db->table;
	*out = db;
	return 0;
}

/* Open the store the parsed URL names. */
static int open_store(evf_db *db)
{
	if (!strcmp(db->url.backend, "sqlite"))
		return evfi_sqlite_open(&db->store, db->url.target, &db->opts, db->table);
#ifdef HAVE_LIBPQ
	return evfi_pg_open(&db->store, db->url.target, &db->opts, db->table);
#else
	return evfi_fail(EVF_ENOBACKEND, "this build has no %s backend "
	                 "(configure --with-libpq)", db->url.backend);
#endif
}

int evf_open(evf_db **out, const char *url, const evf_options *opts)
{
	evf_db *db;
	int rc;

	*out = NULL;
	if ((rc = db_new(&db, opts)))
		return rc;
	if ((rc = evfi_url_parse(&db->url, url)) || (rc = open_store(db))) {
		evf_close(db);
		return rc;
	}
	*out = db;
	return 0;
}

int evf_open_sqlite(evf_db **out, struct sqlite3 *conn, const evf_options *opts)
{
	evf_db *db;
	int rc;

	*out = NULL;
	if (!conn)
		return evfi_fail(EVF_EINVAL, "no SQLite connection given");
	if ((rc = db_new(&db, opts)))
		return rc;
	db->borrowed = true;
	db->url.backend = strdup("sqlite");
	db->url.target = strdup("(caller's connection)");
	db->url.display = strdup("sqlite:(caller's connection)");
	if (!db->url.backend || !db->url.target || !db->url.display) {
		evf_close(db);
		return evfi_fail(EVF_ENOMEM, "out of memory");
	}
	if ((rc = evfi_sqlite_wrap(&db->store, conn, &db->opts, db->table))) {
		evf_close(db);
		return rc;
	}
	*out = db;
	return 0;
}

int evf_open_pg(evf_db **out, struct pg_conn *conn, const evf_options *opts)
{
	*out = NULL;
	if (!conn)
		return evfi_fail(EVF_EINVAL, "no PostgreSQL connection given");
#ifdef HAVE_LIBPQ
	evf_db *db;
	int rc;
	if ((rc = db_new(&db, opts)))
		return rc;
	db->borrowed = true;
	db->url.backend = strdup("postgresql");
	db->url.target = strdup("(caller's connection)");
	db->url.display = strdup("postgresql:(caller's connection)");
	if (!db->url.backend || !db->url.target || !db->url.display) {
		evf_close(db);
		return evfi_fail(EVF_ENOMEM, "out of memory");
	}
	if ((rc = evfi_pg_wrap(&db->store, conn, &db->opts, db->table))) {
		evf_close(db);
		return rc;
	}
	*out = db;
	return 0;
#else
	(void)opts;
	return evfi_fail(EVF_ENOBACKEND, "this build has no postgresql backend "
	                 "(configure --with-libpq)");
#endif
}

int evfi_db_reopen(const evf_db *db, evf_db **out)
{
	*out = NULL;
	if (db->borrowed)
		return evfi_fail(EVF_EINVAL, "a worker with concurrency needs a database "
		                 "opened by URL, not the caller's own connection");
	if (!strcmp(db->url.backend, "sqlite") && !strcmp(db->url.target, ":memory:"))
		return evfi_fail(EVF_EINVAL, "a worker with concurrency cannot share an "
		                 "in-memory SQLite database");
	evf_options o = db->opts;
	o.create = false;
	/* the display form is the URL with the password masked: reopen by the
	 * backend's own target instead */
	evf_db *n;
	int rc = db_new(&n, &o);
	if (rc)
		return rc;
	n->url.backend = strdup(db->url.backend);
	n->url.target = strdup(db->url.target);
	n->url.display = strdup(db->url.display);
	if (!n->url.backend || !n->url.target || !n->url.display) {
		evf_close(n);
		return evfi_fail(EVF_ENOMEM, "out of memory");
	}
	if ((rc = open_store(n))) {
		evf_close(n);
		return rc;
	}
	*out = n;
	return 0;
}

void evf_close(evf_db *db)
{
	if (!db)
		return;
	if (db->store)
		db->store->ops->close(db->store);
	evfi_url_clear(&db->url);
	free(db->table);
	free(db);
}

const char *evf_db_backend(const evf_db *db) { return db->url.backend; }
const char *evf_db_table(const evf_db *db) { return db->table; }
const char *evf_db_display_url(const evf_db *db) { return db->url.display; }

int evf_init(evf_db *db)
{
	return db->store->ops->init(db->store);
}

int evf_drop(evf_db *db)
{
	return db->store->ops->drop(db->store);
}

int evf_maintain(evf_db *db)
{
	if (!db)
		return evfi_fail(EVF_EINVAL, "no database");
	evfi_error_clear();
	return db->store->ops->maintain(db->store);
}

int evf_db_durability(evf_db *db, char *buf, size_t len)
{
	if (len)
		buf[0] = '\0';
	return db->store->ops->durability(db->store, buf, len);
}

int evf_migrate(evf_db *db, bool dry_run, char **out_sql)
{
	char *sql = NULL;
	int rc = db->store->ops->migrate(db->store, dry_run, &sql);
	if (out_sql)
		*out_sql = sql;
	else
		free(sql);
	return rc;
}

int evf_schema_extended(evf_db *db)
{
	return db->store->ops->schema_extended(db->store);
}
