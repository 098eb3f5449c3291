// Child process of mqtt-bench.mjs: hosts ospd's telemetry path (broker + ACL
// + ingest + an in-memory sink standing in for the SQLite store) so its RSS
// and event loop are measured apart from the load generator.
import { InMemoryAuthenticator } from '../../dist/server/telemetry/auth.js';
import { TelemetryBroker } from '../../dist/server/telemetry/broker.js';
import { TelemetryIngest } from '../../dist/server/telemetry/ingest.js';

const agents = Number(process.env.BENCH_AGENTS);
const password = process.env.BENCH_PASSWORD;
const auth = new InMemoryAuthenticator().addReader('bench-reader', password);
for (let i = 0; i < agents; i++) auth.addAgent(`n${i}`, password);

let received = 0;
let latencies = [];
const sink = {
  async saveFacts() {},
  async setAvailability() {},
  async saveMetrics(_node, _ts, values) {
    received++;
    if (values.sent_ms) latencies.push(Date.now() - values.sent_ms);
  },
};
const broker = new TelemetryBroker({ authenticator: auth, plain: { host: '127.0.0.1', port: 0 } });
await broker.start();
const ingest = new TelemetryIngest({ bus: broker, sink });
await ingest.start();
process.send({ port: broker.ports().plain });
process.on('message', async (m) => {
  if (m.cmd === 'reset') {
    received = 0;
    latencies = [];
    process.send({ ok: true });
  } else if (m.cmd === 'stats') {
    process.send({ received, latencies, rssBytes: process.memoryUsage().rss, clients: broker.connectedClients });
  } else if (m.cmd === 'stop') {
    await ingest.stop();
    await broker.stop();
    process.exit(0);
  }
});
