// graphile-worker on the same PostgreSQL as `evfctl bench`, for the
// side-by-side figures in evfctl(1), BENCHMARKS.  Not part of the build.
//
//   mkdir /tmp/gw && cd /tmp/gw && npm init -y >/dev/null &&
//     npm install graphile-worker@0.17.3 pg   # 0.18 needs Node 22
//   createdb gw_bench
//   GW_URL='postgres://USER@/gw_bench?host=/path/to/socket' \
//     node /path/to/evf/docs/peers/graphile-worker.mjs 100000 2
//
// N no-op jobs, P worker processes of 24 concurrent jobs each with
// batching on (local queue of 500, completions and failures batched), as
// on graphile-worker's own performance page.  The workers are started and
// idle before one add_jobs call adds every job; the drain is timed from
// that commit until the jobs table is empty, so, unlike evf's bench, no
// process start-up is counted.  graphile-worker deletes a job when it
// succeeds; evf keeps every row.
import { run, runMigrations } from "graphile-worker";
import pg from "pg";
import { fork } from "node:child_process";

const url = process.env.GW_URL;
if (!url) {
  console.error("graphile-worker.mjs: set GW_URL to a PostgreSQL URL");
  process.exit(2);
}
const preset = {
  worker: {
    connectionString: url, concurrentJobs: 24, maxPoolSize: 25,
    localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0,
  },
};

if (process.argv[2] === "worker") {
  const runner = await run({ preset, noHandleSignals: true, taskList: { noop: async () => {} } });
  process.send("ready");
  process.on("message", async () => {
    await runner.stop();
    process.exit(0);
  });
} else {
  const n = Number(process.argv[2] || 100000), procs = Number(process.argv[3] || 1);
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await c.query("DROP SCHEMA IF EXISTS graphile_worker CASCADE");
  await runMigrations({ preset });
  const kids = [];
  for (let i = 0; i < procs; i++) {
    const k = fork(new URL(import.meta.url).pathname, ["worker"],
      { stdio: ["ignore", "ignore", "inherit", "ipc"] });
    await new Promise((ready) => k.once("message", ready));
    kids.push(k);
  }
  const t0 = process.hrtime.bigint();
  await c.query("SELECT graphile_worker.add_jobs(array(SELECT json_populate_record(" +
    "null::graphile_worker.job_spec, json_build_object('identifier', 'noop', " +
    "'payload', json_build_object('i', i))) FROM generate_series(1, $1) i))", [n]);
  const t1 = process.hrtime.bigint();
  for (;;) {
    const r = await c.query("SELECT count(*)::int AS n FROM graphile_worker._private_jobs");
    if (r.rows[0].n === 0) break;
    await new Promise((later) => setTimeout(later, 5));
  }
  const t2 = process.hrtime.bigint();
  const rate = (ns) => (n / (Number(ns) / 1e9)).toFixed(0);
  console.log(`graphile-worker, ${procs} process(es), ${n} jobs: ` +
    `batched add ${rate(t1 - t0)} jobs/s, drain ${rate(t2 - t1)} jobs/s`);
  for (const k of kids) k.send("stop");
  await c.end();
}
