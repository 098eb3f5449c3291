// One worker of the config-push benchmark: N simulated agents using the real
// agent transport (dist/agent/transport/client.js), each with its own TLS
// connection; "apply" is stubbed to an immediate acknowledgement.
// Mode `deploy` (the stack benchmark) also "runs" software deployments as the
// agent's Deployer does: once per id and content, a fixed script time each,
// acknowledged with per-deployment results and Heat's reserved outputs.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { AgentTransport } from '../../dist/agent/transport/client.js';
import { silentLogger } from '../../dist/common/logging.js';

// The fifth argument is the poll interval (poll) or the script time per deployment (deploy).
const [credsFile, from, to, mode, intervalArg] = process.argv.slice(2);
// The poll interval comes as an argument from config-push.mjs (it once read an
// env var nobody set, so --poll-interval-ms was silently replaced by 30 s).
const pollIntervalMs = Number(intervalArg);
if (mode === 'poll' && !(Number.isInteger(pollIntervalMs) && pollIntervalMs > 0)) {
  process.send({ type: 'error', message: `config-push-worker: poll interval argument is ${JSON.stringify(intervalArg)}; expected a whole number of milliseconds > 0` }, () => process.exit(2));
}
const scriptMs = Number(intervalArg);
if (mode === 'deploy' && !(Number.isInteger(scriptMs) && scriptMs >= 0)) {
  process.send({ type: 'error', message: `config-push-worker: script time argument is ${JSON.stringify(intervalArg)}; expected a whole number of milliseconds >= 0` }, () => process.exit(2));
}
const creds = JSON.parse(readFileSync(credsFile, 'utf8')).slice(Number(from), Number(to));
const acks = [];
/** deploy mode: each simulated script run as [startMs, endMs], for the parent's measure of the agents' own time. */
const runs = [];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** What the agent's Deployer keys a run on: the content, not the id alone, so a changed deployment runs again. */
const contentKey = (d) => createHash('sha256').update(JSON.stringify([d.group, d.config, d.inputs, d.options])).digest('hex');

/** Runs the deployments of a revision not yet run with this content; the results go in the ack, as deployer.ts reports them. */
async function runDeployments(done, deployments) {
  const results = [];
  for (const d of deployments) {
    const key = contentKey(d);
    if (done.get(d.id) === key) continue;
    const startMs = Date.now();
    if (scriptMs > 0) await sleep(scriptMs);
    const endMs = Date.now();
    runs.push([startMs, endMs]);
    const stdoutTail = `${d.name} ok\n`;
    results.push({
      id: d.id, name: d.name, status: 'succeeded', exitCode: 0, durationMs: endMs - startMs, stdoutTail, stderrTail: '',
      outputs: { deploy_stdout: stdoutTail, deploy_stderr: '', deploy_status_code: '0' },
    });
    done.set(d.id, key);
  }
  return results;
}
let open = 0;
const agents = creds.map((c) => {
  let applied = 0;
  const done = new Map();
  const t = new AgentTransport({
    cfg: { server: c.server, ca: c.ca, node: c.node, token: c.token },
    log: silentLogger(),
    appliedRevision: () => applied,
    onStreamOpen: () => {
      if (++open === creds.length) process.send({ type: 'ready' });
    },
    onAuthRefused: (m) => process.send({ type: 'error', message: m }),
    onRevision: async (cfg) => {
      applied = cfg.revision;
      const deployments = mode === 'deploy' ? await runDeployments(done, cfg.deployments) : [];
      const ok = await t.ack({ revision: cfg.revision, status: 'succeeded', configHash: '', startedAt: '', finishedAt: '', phases: [], deployments });
      if (ok) acks.push({ node: c.node, revision: cfg.revision, ackedAtMs: Date.now(), ran: deployments.length });
    },
  }, { 'grpc.use_local_subchannel_pool': 1 });
  return t;
});

// The os-collect-config model: no stream, a poll every intervalMs from a random phase.
function startPolling(intervalMs) {
  for (const [i, c] of creds.entries()) {
    const t = agents[i];
    let applied = 0;
    const tick = () => t.client.pollConfig({ appliedRevision: applied }, t.md(), (e, r) => {
      if (!e && r.revision) {
        applied = Number(r.revision.revision);
        const rev = applied;
        t.client.ackRevision({ revision: rev, status: 'succeeded', configHash: '', startedAt: '', finishedAt: '', phases: [], deployments: [] }, t.md(),
          (err) => err || acks.push({ node: c.node, revision: rev, ackedAtMs: Date.now() }));
      }
    });
    setTimeout(() => {
      tick();
      setInterval(tick, intervalMs).unref();
    }, Math.random() * intervalMs).unref();
  }
  process.send({ type: 'ready', pollIntervalMs: intervalMs });
}

if (mode === 'poll') startPolling(pollIntervalMs);
else for (const a of agents) a.start();

process.on('message', (m) => {
  if (m.type === 'report') process.send({ type: 'acks', acks, runs, rssBytes: process.memoryUsage().rss });
  if (m.type === 'stop') {
    for (const a of agents) a.stop();
    process.exit(0);
  }
});
