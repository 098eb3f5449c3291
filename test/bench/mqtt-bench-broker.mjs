// Child process of mqtt-bench.mjs: hosts ospd's telemetry broker (aedes with
// its real plain listener, frame guard, login and ACLs) so its RSS and event
// loop are measured apart from the load generator. BENCH_INGEST=memory (the
// default) adds ingest into an in-memory sink standing in for the SQLite
// store (the "in_process_sink" run); BENCH_INGEST=off leaves the broker alone,
// delivering only to external subscribers (the "fanout" run).
import { InMemoryAuthenticator } from '../../dist/server/telemetry/auth.js';
import { TelemetryBroker } from '../../dist/server/telemetry/broker.js';
import { TelemetryIngest } from '../../dist/server/telemetry/ingest.js';
import { deliveryCounter } from './bench-child.mjs';

const agents = Number(process.env.BENCH_AGENTS);
const password = process.env.BENCH_PASSWORD;
const mode = process.env.BENCH_INGEST ?? 'memory';
if (mode !== 'memory' && mode !== 'off') {
  console.error(`mqtt-bench-broker: BENCH_INGEST is ${JSON.stringify(mode)}; expected memory or off`);
  process.exit(2);
}
const auth = new InMemoryAuthenticator().addReader('bench-reader', password);
for (let i = 0; i < agents; i++) auth.addAgent(`n${i}`, password);

const sink = {
  async saveFacts() {},
  async setAvailability() {},
  async saveMetrics(_node, _ts, values) {
    counter.record(values.sent_ms);
  },
};
const broker = new TelemetryBroker({ authenticator: auth, plain: { host: '127.0.0.1', port: 0 } });
await broker.start();
const ingest = mode === 'memory' ? new TelemetryIngest({ bus: broker, sink }) : null;
await ingest?.start();
const counter = deliveryCounter({
  extra: () => ({ rssBytes: process.memoryUsage().rss, clients: broker.connectedClients }),
  stop: async () => {
    await ingest?.stop();
    await broker.stop();
  },
});
process.send({ port: broker.ports().plain });
