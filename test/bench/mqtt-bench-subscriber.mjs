// Child process of mqtt-bench.mjs: one external MQTT subscriber over TCP, in
// its own process so no broker shares an event loop with it or with the load
// generator. The same script reads from mosquitto and from ospd (as a reader
// account, BENCH_USERNAME/BENCH_PASSWORD), so both deliver to the same peer.
import mqtt from 'mqtt';
import { deliveryCounter } from './bench-child.mjs';

const login = process.env.BENCH_USERNAME ? { username: process.env.BENCH_USERNAME, password: process.env.BENCH_PASSWORD } : {};
const sub = await mqtt.connectAsync(`mqtt://127.0.0.1:${process.env.BENCH_PORT}`, { clientId: 'bench-sub', reconnectPeriod: 0, ...login });
const counter = deliveryCounter({ stop: () => sub.endAsync(true) });
sub.on('message', (_t, p) => counter.record(JSON.parse(p.toString()).sent_ms));
const granted = await sub.subscribeAsync(process.env.BENCH_FILTER ?? 'osp/nodes/+/metrics', { qos: 0 });
if (granted.some((g) => g.qos === 128)) {
  console.error(`mqtt-bench-subscriber: subscription to ${granted[0].topic} refused by the broker; expected it granted`);
  process.exit(1);
}
process.send({ ready: true });

