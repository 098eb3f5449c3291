/**
 * The side of a benchmark child process that counts deliveries and answers
 * its parent: `reset`, `stats` (count, latencies and what `extra` adds),
 * `stop` (runs `stop`, then exits).
 */
export function deliveryCounter({ extra = () => ({}), stop }) {
  const c = {
    received: 0,
    latencies: [],
    /** One delivery; sentMs, when the sender stamped it, gives its latency. */
    record(sentMs) {
      c.received++;
      if (sentMs) c.latencies.push(Date.now() - sentMs);
    },
  };
  process.on('message', async (m) => {
    if (m.cmd === 'reset') {
      c.received = 0;
      c.latencies = [];
      process.send({ ok: true });
    } else if (m.cmd === 'stats') {
      process.send({ received: c.received, latencies: c.latencies, ...extra() });
    } else if (m.cmd === 'stop') {
      await stop();
      process.exit(0);
    }
  });
  return c;
}
