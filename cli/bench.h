/*
 * bench.h - the phases of `evfctl bench`, each on a fresh scratch table.
 */
#ifndef EVF_CLI_BENCH_H
#define EVF_CLI_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
	BENCH_EMIT = 1 << 0,
	BENCH_DRAIN = 1 << 1,
	BENCH_LATENCY = 1 << 2,
	BENCH_MIXED = 1 << 3,
	BENCH_SCALE = 1 << 4
};

typedef struct bench_config {
	const char *url;
	char table[64];       /* the scratch table */
	unsigned phases;
	int64_t events;       /* N */
	int workers;          /* W worker processes */
	int batch_size;       /* B */
	int concurrency;      /* C emitting clients */
	int64_t duration_ms;  /* mixed */
	int64_t max_rows;     /* scale: largest table */
	int64_t poll_ms;      /* idle workers' poll interval */
} bench_config;

typedef struct bench_scale_point {
	int64_t rows;
	double claim_ms, overview_ms, stats_ms;
} bench_scale_point;

typedef struct bench_results {
	char durability[200];
	bool pg;                 /* the database is PostgreSQL */
	double emit_single_per_s, emit_per_s;
	double emit_single_no_wake_per_s; /* PostgreSQL: without the NOTIFY */
	double drain_per_s, drain_exec_per_s;
	int64_t exec_events;
	long worker_max_rss_kb;  /* the no-op drain's largest worker, peak */
	double latency_p50, latency_p95, latency_p99;
	int64_t latency_samples;
	double mixed_emit_per_s, mixed_drain_per_s;
	bench_scale_point scale[4];
	size_t nscale;
} bench_results;

/* Run the phases of cfg; 0, or a negative EVF_E* code with the reason in
 * evf_error_last() (or a message printed for a child that failed). */
int bench_run(const bench_config *cfg, bench_results *out);

#endif
