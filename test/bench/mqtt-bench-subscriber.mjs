// Child process of mqtt-bench.mjs: the plain subscriber for the mosquitto
// side, in its own process like ospd's ingest, so neither side shares an
// event loop with the load generator.
import mqtt from 'mqtt';

let received = 0;
let latencies = [];
const sub = await mqtt.connectAsync(`mqtt://127.0.0.1:${process.env.BENCH_PORT}`, { clientId: 'plain-sub', reconnectPeriod: 0 });
sub.on('message', (_t, p) => {
  received++;
  const v = JSON.parse(p.toString());
  if (v.sent_ms) latencies.push(Date.now() - v.sent_ms);
});
await sub.subscribeAsync('osp/#', { qos: 0 });
process.send({ ready: true });
process.on('message', async (m) => {
  if (m.cmd === 'reset') {
    received = 0;
    latencies = [];
    process.send({ ok: true });
  } else if (m.cmd === 'stats') {
    process.send({ received, latencies });
  } else if (m.cmd === 'stop') {
    await sub.endAsync(true);
    process.exit(0);
  }
});
