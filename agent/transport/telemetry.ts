import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../../common/logging.js';
import { collectInventory } from '../inventory/index.js';
import { HostMetricsCollector } from '../telemetry/metrics.js';
import { TelemetryPublisher } from '../telemetry/publisher.js';
import type { AgentConfig } from './agent-config.js';

/**
 * `osp-agent run`'s telemetry: facts and host metrics to the broker named by
 * agent.yaml's `mqtt`, logged in with the node name and token, the server's
 * CA pinned (the one in agent.yaml, not the system store).
 */
export async function startTelemetry(cfg: AgentConfig, stateDir: string, log: Logger): Promise<TelemetryPublisher> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const metrics = new HostMetricsCollector();
  const publisher = new TelemetryPublisher({
    brokerUrl: cfg.mqtt!,
    node: cfg.node,
    token: cfg.token,
    caPem: cfg.ca,
    collectFacts: () => collectInventory(),
    collectMetrics: () => metrics.collect(),
    metricsIntervalMs: cfg.metricsIntervalMs,
    reconnectPeriodMs: 1000,
    spool: { filePath: path.join(stateDir, 'telemetry-spool.jsonl') },
    logger: log.child({ component: 'telemetry', broker: cfg.mqtt }),
  });
  await publisher.start();
  log.info({ broker: cfg.mqtt }, 'telemetry publishing');
  return publisher;
}
