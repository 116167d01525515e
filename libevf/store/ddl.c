/* ddl.c - the schema, written once for both backends: the columns, the
 * indexes and the migration of tables made by the original package. */
#include "evf_internal.h"

#include <string.h>

const char *const evfi_basic_columns[EVFI_NBASIC] = {
	"id", "type", "date", "parameters", "processed", "error", "error_message",
};

/* The extended columns with their SQLite and PostgreSQL types (NULL: a
 * timestamp, whose SQLite type depends on the table, see
 * sqlite_time_type); the defaults give old rows their old meaning
 * (nothing scheduled, never tried, not dead). */
static const struct {
	const char *name, *sqlite, *pg;
} ext[EVFI_NEXT] = {
	{ "idempotency_key", "TEXT", "text" },
	{ "correlation_id", "TEXT", "text" },
	{ "priority", "INTEGER NOT NULL DEFAULT 0", "integer NOT NULL DEFAULT 0" },
	{ "not_before", NULL, "timestamptz" },
	{ "attempts", "INTEGER NOT NULL DEFAULT 0", "integer NOT NULL DEFAULT 0" },
	{ "max_attempts", "INTEGER NOT NULL DEFAULT %d", "integer NOT NULL DEFAULT %d" },
	{ "last_error_at", NULL, "timestamptz" },
	{ "processed_at", NULL, "timestamptz" },
	{ "error_code", "TEXT", "text" },
	{ "dead", "INTEGER NOT NULL DEFAULT 0", "boolean NOT NULL DEFAULT false" },
	{ "locked_by", "TEXT", "text" },
	{ "locked_until", NULL, "timestamptz" },
};

/* A SQLite timestamp column: Django's TEXT in tables of the original
 * package (and of earlier evf builds), integer microseconds since the epoch
 * in the tables evf makes now (design-notes.md).  On date and not_before,
 * which programs emitting by hand write, a CHECK turns a text time into
 * an error instead of an event that sorts after every integer and so
 * never becomes ready.  Only there: SQLite checks a constraint on every
 * update that changes its column, and on the columns a claim and a
 * completion change they cost 6% of a drain. */
static void sqlite_time_type(evfi_buf *b, const char *col, bool int_times)
{
	if (!int_times)
		evfi_buf_puts(b, "TEXT");
	else if (!strcmp(col, "date") || !strcmp(col, "not_before"))
		evfi_buf_printf(b, "INTEGER CHECK (typeof(%s) IN ('integer', 'null'))", col);
	else
		evfi_buf_puts(b, "INTEGER");
}

static void column_type(evfi_buf *b, size_t i, bool pg, bool int_times, int max_attempts)
{
	if (pg)
		evfi_buf_printf(b, ext[i].pg, max_attempts);
	else if (ext[i].sqlite)
		evfi_buf_printf(b, ext[i].sqlite, max_attempts);
	else
		sqlite_time_type(b, ext[i].name, int_times);
}

void evfi_ddl_date(evfi_buf *b, bool int_times)
{
	evfi_buf_puts(b, "date ");
	sqlite_time_type(b, "date", int_times);
	evfi_buf_puts(b, " NOT NULL");
}

const char *evfi_ext_column(size_t i)
{
	return i < EVFI_NEXT ? ext[i].name : NULL;
}

void evfi_ddl_columns(evfi_buf *b, bool pg, bool int_times, int max_attempts)
{
	for (size_t i = 0; i < EVFI_NEXT; i++) {
		evfi_buf_printf(b, ", %s ", ext[i].name);
		column_type(b, i, pg, int_times, max_attempts);
	}
}

void evfi_ddl_add_columns(evfi_buf *b, const char *qt, unsigned have, bool pg,
                          bool int_times, int max_attempts)
{
	for (size_t i = 0; i < EVFI_NEXT; i++) {
		if (have & (1u << i))
			continue;
		evfi_buf_printf(b, "ALTER TABLE %s ADD COLUMN %s ", qt, ext[i].name);
		column_type(b, i, pg, int_times, max_attempts);
		evfi_buf_puts(b, ";\n");
	}
}

void evfi_ddl_indexes(evfi_buf *b, const char *t, const char *qt, bool pg)
{
	const char *no = pg ? "false" : "0";
	/* The ready queue: claims walk this partial index in claim order. */
	evfi_buf_printf(b, "CREATE INDEX IF NOT EXISTS \"%s_ready\" ON %s "
		"(priority, not_before, id) WHERE processed = %s AND dead = %s;\n", t, qt, no, no);
	/* On PostgreSQL a completion cannot be a HOT update (it changes
	 * processed), so it adds an entry to every index whose predicate the
	 * new row meets.  Partial indexes keep it out of those that only live
	 * or failed rows need: a third less server CPU per drained event. */
	if (pg) {
		evfi_buf_printf(b, "CREATE INDEX IF NOT EXISTS \"%s_processed_type\" ON %s "
			"(processed, type) WHERE processed = false;\n", t, qt);
	} else {
		/* Type filters walk (type) in rowid order, the state checked row
		 * by row: as quick as (processed, type) for the console's pages
		 * and counts, and a completion leaves it alone (processed is not
		 * in it), 20-25% of a drain.  Tables from before get it in place
		 * of the old index on their next init or migrate (sqlite.c,
		 * drop_old_indexes).  "_by_type": "<t>_type" could be the old
		 * index of a table named <t> minus "_processed". */
		evfi_buf_printf(b, "CREATE INDEX IF NOT EXISTS \"%s_by_type\" ON %s (type);\n", t, qt);
	}
	/* Partial on both: an emit writes neither, and SQLite's planner takes
	 * them for the queries that name error = 1 or a key (failed and dead
	 * filters, the dead count, key look-ups), the only ones they serve.
	 * SQLite tables from before get them in place of whole ones on their
	 * next init or migrate (sqlite.c, drop_old_indexes). */
	evfi_buf_printf(b, "CREATE INDEX IF NOT EXISTS \"%s_error_date\" ON %s (error, date) "
		"WHERE error%s;\n", t, qt, pg ? "" : " = 1");
	evfi_buf_printf(b, "CREATE INDEX IF NOT EXISTS \"%s_date\" ON %s (date);\n", t, qt);
	/* What happened in a recent window (health, stats, metrics): partial,
	 * so rows never completed or never failed cost nothing.  Completion
	 * and failure already change indexed columns (processed, error), so
	 * these add an index entry to updates that were not HOT anyway.
	 * SQLite counts completions in a tally instead (sqlite.c, the
	 * completion tally): one row per second and type, not one index
	 * entry per event. */
	if (pg)
		evfi_buf_printf(b, "CREATE INDEX IF NOT EXISTS \"%s_processed_at\" ON %s "
			"(processed_at) WHERE processed_at IS NOT NULL;\n", t, qt);
	evfi_buf_printf(b, "CREATE INDEX IF NOT EXISTS \"%s_last_error_at\" ON %s (last_error_at) "
		"WHERE last_error_at IS NOT NULL;\n", t, qt);
	evfi_buf_printf(b, "CREATE UNIQUE INDEX IF NOT EXISTS \"%s_idempotency\" ON %s "
		"(type, idempotency_key) WHERE idempotency_key IS NOT NULL;\n", t, qt);
	evfi_buf_printf(b, "CREATE INDEX IF NOT EXISTS \"%s_correlation\" ON %s "
		"(correlation_id) WHERE correlation_id IS NOT NULL;\n", t, qt);
	evfi_buf_printf(b, "CREATE TABLE IF NOT EXISTS evf_schema (table_name %s PRIMARY KEY, "
		"version integer NOT NULL, updated_at %s NOT NULL);\n",
		pg ? "text" : "TEXT", pg ? "timestamptz" : "TEXT");
}

unsigned evfi_column_bit(const char *name, bool *basic)
{
	for (size_t i = 0; i < EVFI_NBASIC; i++)
		if (!strcmp(name, evfi_basic_columns[i])) {
			*basic = true;
			return 1u << i;
		}
	*basic = false;
	for (size_t i = 0; i < EVFI_NEXT; i++)
		if (!strcmp(name, ext[i].name))
			return 1u << i;
	return 0;
}

void evfi_sql_columns(evfi_buf *b, bool with_ext)
{
	for (size_t i = 0; i < EVFI_NBASIC; i++)
		evfi_buf_printf(b, "%s%s", i ? ", " : "", evfi_basic_columns[i]);
	for (size_t i = 0; with_ext && i < EVFI_NEXT; i++)
		evfi_buf_printf(b, ", %s", ext[i].name);
}

void evfi_ddl_archive_table(evfi_buf *b, const char *qarch, bool pg, bool int_times,
                            bool with_ext)
{
	/* no identity and no defaults: rows arrive with every value; id stays
	 * the primary key so that archiving the same row twice keeps one */
	if (pg) {
		evfi_buf_printf(b, "CREATE TABLE IF NOT EXISTS %s (id bigint PRIMARY KEY, "
			"type text NOT NULL, date timestamptz NOT NULL, parameters jsonb, "
			"processed boolean NOT NULL, error boolean NOT NULL, error_message text", qarch);
	} else {
		evfi_buf_printf(b, "CREATE TABLE IF NOT EXISTS %s (id INTEGER PRIMARY KEY, "
			"type TEXT NOT NULL, ", qarch);
		evfi_ddl_date(b, int_times);
		evfi_buf_puts(b, ", parameters TEXT, processed INTEGER NOT NULL, "
		              "error INTEGER NOT NULL, error_message TEXT");
	}
	if (with_ext)
		evfi_ddl_columns(b, pg, int_times, 5);
	evfi_buf_puts(b, ")");
}

void evfi_sql_excluded_set(evfi_buf *b, bool with_ext)
{
	for (size_t i = 1; i < EVFI_NBASIC; i++)
		evfi_buf_printf(b, "%s%s = excluded.%s", i > 1 ? ", " : "",
		                evfi_basic_columns[i], evfi_basic_columns[i]);
	for (size_t i = 0; with_ext && i < EVFI_NEXT; i++)
		evfi_buf_printf(b, ", %s = excluded.%s", ext[i].name, ext[i].name);
}
