/* contract.h - the backend contract suite, written once and run unchanged
 * against every backend.  A backend's runner supplies a way to open a
 * fresh, initialised, empty event table. */
#ifndef EVF_CONTRACT_H
#define EVF_CONTRACT_H

#include "testutil.h"

typedef struct contract_backend {
	const char *name;
	/* Open a fresh empty table with these options and evf_init() it. */
	int (*open_fresh)(evf_db **out, evf_options *opts);
	/* Open the last fresh database again, with other options, no init. */
	int (*reopen)(evf_db **out, evf_options *opts);
	/* Run SQL on that database as another program would; 0 on success. */
	int (*exec_raw)(const char *sql);
	int (*column_count)(const char *table);
	/* The table the original Django package's migration makes, with one
	 * row for each combination of processed and error. */
	const char *django_ddl;
	/* Extra backend-specific tests, may be NULL. */
	const struct CMUnitTest *extra;
	size_t nextra;
} contract_backend;

extern const contract_backend *contract;

/* Open a fresh db with test-friendly defaults (fast backoff). */
evf_db *contract_db(evf_options *opts_or_null);
int contract_run(const contract_backend *b);
/* How many events of the table are in state s. */
int64_t contract_count_state(evf_db *db, evf_state s);
/* Emit a batch of events without keys (COPY on PostgreSQL) with every
 * option set somewhere and check each column back. */
void contract_check_keyless_batch(evf_db *db, const char *type);

#endif
