// graphile-worker's side of scripts/bench_peers.sh (graphile-worker itself is installed by that
// script with npm outside the repository; nothing of it is committed).
//
//   NODE_PATH=<dir>/node_modules DATABASE_URL=... node scripts/bench_peers_graphile.js migrate
//   NODE_PATH=<dir>/node_modules DATABASE_URL=... node scripts/bench_peers_graphile.js MODE N
//
// MODE is "tuned" (local queue of PEERS_LOCAL_QUEUE jobs fetched and locked in one query,
// completions batched, Node's clock, prepared statements) or "classic" (one query per job fetch
// and per completion, the database's clock: graphile-worker's behaviour before 0.16), both with
// PEERS_CONCURRENCY jobs at once. The N "send" jobs are queued beforehand (untimed); prints the
// milliseconds from run() until every job is done: its outbox row committed and the job deleted.
//
// The job is the engine's one-step send_sms: read the contact, render the same two-variable
// text, insert the outbox row (into bench.peer_outbox, a copy of journey.outbox with its indexes).
"use strict";
const { run, runMigrations } = require("graphile-worker");
const { EventEmitter } = require("events");
const pg = require("pg");

const connectionString = process.env.DATABASE_URL;
const concurrency = Number(process.env.PEERS_CONCURRENCY || 24);
const localQueue = Number(process.env.PEERS_LOCAL_QUEUE || 500);
const MODES = {
  tuned: {
    concurrentJobs: concurrency,
    maxPoolSize: concurrency + 2,
    useNodeTime: true,
    preparedStatements: true,
    localQueue: { size: localQueue },
    completeJobBatchDelay: 0,
    failJobBatchDelay: 0,
  },
  classic: { concurrentJobs: concurrency, maxPoolSize: concurrency + 2, preparedStatements: true },
};

const TEMPLATE = "Hi {{ contact.first_name }}, your code is {{ contact.attributes.code }}";
const CONTACT = {
  name: "peer_contact",
  text: "SELECT phone, first_name, attributes FROM journey.contacts WHERE id = $1",
};
const INSERT =
  "INSERT INTO bench.peer_outbox (idempotency_key, channel, flow_id, enrollment_id, node, contact_id, recipient, body) " +
  "VALUES ($1, 'sms', 1, $2, 'sms', $2, $3, $4) ON CONFLICT DO NOTHING";

// {{ contact.a.b }}: the value at that path, as the engine's Liquid prints it ('' when missing)
function render(template, vars) {
  return template.replace(/\{\{\s*([\w.]+)\s*\}\}/g, (_, path) => {
    let v = vars;
    for (const k of path.split(".")) v = v == null ? undefined : v[k];
    return v == null ? "" : String(v);
  });
}

const taskList = {
  send: async (payload, helpers) => {
    await helpers.withPgClient(async (client) => {
      const { rows } = await client.query({ ...CONTACT, values: [payload.id] });
      const contact = rows[0];
      const body = render(TEMPLATE, { contact });
      await client.query({
        name: "peer_insert",
        text: INSERT,
        values: [`gw:${payload.id}:sms`, payload.id, contact.phone, body],
      });
    });
  },
};

async function timed(mode, n) {
  const options = MODES[mode];
  if (!options || !(n > 0)) throw new Error(`usage: MODE (${Object.keys(MODES).join("|")}) N`);
  const events = new EventEmitter();
  let done = 0;
  let failed = null;
  const finished = new Promise((resolve) => {
    events.on("job:success", () => {
      if (++done === n) resolve();
    });
    events.on("job:error", ({ error }) => {
      failed = error;
      resolve();
    });
  });
  const poll = new pg.Client({ connectionString });
  await poll.connect();
  const t0 = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  const runner = await run({
    connectionString,
    taskList,
    noHandleSignals: true,
    events,
    logger: quietLogger(),
    preset: { worker: { pollInterval: 1000, ...options } },
  });
  await finished;
  if (failed) throw failed;
  // completions may still be batched in the pool: done when the database has no job left
  for (;;) {
    const { rows } = await poll.query("SELECT NOT EXISTS (SELECT 1 FROM graphile_worker._private_jobs) AS empty");
    if (rows[0].empty) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const cpu = process.cpuUsage(cpu0);
  // (on stderr: what limits it, Node's one thread or the database)
  console.error(`   graphile-worker ${mode}: ${ms.toFixed(0)} ms, node used ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms of CPU`);
  await runner.stop();
  await poll.end();
  return ms;
}

function quietLogger() {
  const { Logger } = require("graphile-worker");
  return new Logger(() => (level, message) => {
    if (level === "error") console.error(message);
  });
}

async function main() {
  const [cmd, n] = process.argv.slice(2);
  if (cmd === "migrate") {
    await runMigrations({ connectionString, logger: quietLogger() });
    return;
  }
  console.log((await timed(cmd, Number(n))).toFixed(1));
}

main().catch((e) => {
  console.error(`bench_peers_graphile: ${e.stack || e}`);
  process.exit(1);
});
