// Child process of mqtt-bench.mjs: one external MQTT subscriber over TCP, in
// its own process so no broker shares an event loop with it or with the load
// generator. The same script reads from mosquitto and from ospd (as a reader
// account, BENCH_USERNAME/BENCH_PASSWORD), so both deliver to the same peer.
import mqtt from 'mqtt';

let received = 0;
let latencies = [];
const login = process.env.BENCH_USERNAME ? { username: process.env.BENCH_USERNAME, password: process.env.BENCH_PASSWORD } : {};
const sub = await mqtt.connectAsync(`mqtt://127.0.0.1:${process.env.BENCH_PORT}`, { clientId: 'bench-sub', reconnectPeriod: 0, ...login });
sub.on('message', (_t, p) => {
  received++;
  const v = JSON.parse(p.toString());
  if (v.sent_ms) latencies.push(Date.now() - v.sent_ms);
});
const granted = await sub.subscribeAsync(process.env.BENCH_FILTER ?? 'osp/nodes/+/metrics', { qos: 0 });
if (granted.some((g) => g.qos === 128)) {
  console.error(`mqtt-bench-subscriber: subscription to ${granted[0].topic} refused by the broker; expected it granted`);
  process.exit(1);
}
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
