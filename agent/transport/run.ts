import type { RunCommand } from '../main.js';
import { AgentRunner } from '../runner.js';
import type { RunResult } from '../engine.js';
import type { AckRevisionRequest } from '../../proto/gen/osp/v1/agent.js';
import { AgentConfigError, loadAgentConfig } from './agent-config.js';
import { AgentTransport } from './client.js';
import { startTelemetry } from './telemetry.js';

/** Exit status for a configuration the agent cannot work with (sysexits EX_CONFIG); the systemd unit does not restart on it. */
export const EXIT_CONFIG = 78;

export function toAck(r: RunResult): AckRevisionRequest {
  return {
    revision: r.revision, status: r.status, configHash: r.configHash, startedAt: r.startedAt, finishedAt: r.finishedAt,
    phases: r.phases.map((p) => ({
      name: p.name, status: p.status, exitCode: p.exitCode ?? 0, durationMs: Math.round(p.durationMs ?? 0),
      stdoutTail: p.stdoutTail ?? '', stderrTail: p.stderrTail ?? '', failedScript: p.failedScript ?? '',
    })),
    deployments: r.deployments.map((d) => ({
      id: d.id, name: d.name, status: d.status, exitCode: d.exitCode ?? 0, durationMs: Math.round(d.durationMs ?? 0),
      stdoutTail: d.stdoutTail ?? '', stderrTail: d.stderrTail ?? '', outputs: Object.fromEntries(Object.entries(d.outputs ?? {}).map(([k, v]) => [k, String(v)])),
    })),
  };
}

/** `osp-agent run --config agent.yaml`: stream → cache → engine → acknowledgement, until SIGTERM. */
export const runCommand: RunCommand = async ({ configPath, paths, engine, server, logger }) => {
  let cfg;
  try {
    cfg = await loadAgentConfig(configPath);
  } catch (e) {
    if (e instanceof AgentConfigError) {
      process.stderr.write(`osp-agent: ${e.message}\n`);
      return EXIT_CONFIG;
    }
    throw e;
  }
  const log = logger.child({ node: cfg.node, server: cfg.server });
  // The runner acknowledges through the transport, and the transport feeds the runner.
  const link: { transport?: AgentTransport } = {};
  const runner = new AgentRunner({
    engine, logger: log,
    onResult: async (r) => {
      // A run that changed nothing acknowledges too: the server learns the agent is current.
      if (r.revision > 0 && link.transport) await link.transport.ack(toAck(r));
    },
  });
  let exit: (code: number) => void = () => undefined;
  const finished = new Promise<number>((resolve) => (exit = resolve));
  const transport = new AgentTransport({
    cfg, log,
    appliedRevision: () => server.latest()?.revision ?? 0,
    onRevision: async (c) => {
      await server.update(c);
      runner.notify();
    },
    onAuthRefused: (message) => {
      process.stderr.write(`osp-agent: ${message}\n`);
      exit(EXIT_CONFIG);
    },
  });
  const stop = () => exit(0);
  link.transport = transport;
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  log.info('osp-agent running');
  runner.start();
  transport.start();
  const telemetry = cfg.mqtt ? await startTelemetry(cfg, paths.stateDir, log) : null;
  const code = await finished;
  await telemetry?.stop();
  transport.stop();
  await runner.stop();
  log.info({ code }, 'osp-agent stopped');
  return code;
};
