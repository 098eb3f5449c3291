import type { Database } from '../store/db.js';
import type { PxeServiceStatus } from '../pxe/types.js';
import { formatValue, type MetricsRegistry } from './prometheus.js';

const label = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

/**
 * ospd's own series on /metrics, beside the broker's and the nodes': gRPC
 * calls, store transactions, and the PXE services' counters. Returns the
 * observer the gRPC API calls for each finished call.
 */
export function registerOspdMetrics(registry: MetricsRegistry, db: Database, pxeStatus: () => PxeServiceStatus[]) {
  const calls = registry.counter('ospd_grpc_calls_total', 'gRPC calls handled, by method and status code');
  const callSeconds = registry.counter('ospd_grpc_call_seconds_total', 'Time spent in gRPC calls, by method');
  const tx = registry.counter('ospd_store_transactions_total', 'Store transactions, by outcome');
  const txSeconds = registry.counter('ospd_store_transaction_seconds_total', 'Time spent inside store transactions (queueing excluded)');
  db.onTransaction = (seconds, committed) => {
    const outcome = committed ? 'committed' : 'rolled_back';
    tx.inc({ outcome });
    txSeconds.inc({ outcome }, seconds);
  };
  registry.addCollector({
    collect: () => {
      const lines = ['# HELP ospd_pxe_events_total PXE service counters (DHCP messages, TFTP transfers, HTTP requests, drops)', '# TYPE ospd_pxe_events_total counter'];
      for (const s of pxeStatus()) {
        for (const [event, n] of Object.entries(s.counters)) lines.push(`ospd_pxe_events_total{event="${label(event)}",service="${label(s.service)}"} ${formatValue(n)}`);
      }
      return `${lines.join('\n')}\n`;
    },
  });
  return (method: string, code: string, seconds: number) => {
    calls.inc({ code, method });
    callSeconds.inc({ method }, seconds);
  };
}
