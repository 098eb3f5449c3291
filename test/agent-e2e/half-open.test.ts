/**
 * A config stream whose path goes silent without a FIN or RST (a cable pulled,
 * a firewall dropping state) must be found by keepalive, not by waiting on a
 * socket that will never error. A TCP relay in this file plays the broken
 * network: when frozen it keeps every socket open and forwards nothing. ospd,
 * TLS, HTTP/2 and the agent's transport are all real.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import path from 'node:path';
import YAML from 'yaml';
import { OspdProcess } from '../harness/ospd.js';
import { waitFor } from '../harness/wait.js';
import { AgentTransport } from '../../agent/transport/client.js';
import type { AgentConfig } from '../../agent/transport/agent-config.js';
import { createLogger } from '../../common/logging.js';

/** Forwards to target until frozen; a frozen relay swallows bytes both ways and closes nothing. */
class BlackHoleRelay {
  frozen = false;
  private server?: Server;
  private readonly sockets = new Set<Socket>();

  constructor(private readonly targetPort: number) {}

  async start(): Promise<number> {
    this.server = createServer((client) => {
      const upstream = connect(this.targetPort, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('error', () => undefined);
        s.on('close', () => this.sockets.delete(s));
      }
      // Decided per chunk, so freezing silences connections that are already open.
      client.on('data', (d) => { if (!this.frozen) upstream.write(d); });
      upstream.on('data', (d) => { if (!this.frozen) client.write(d); });
      client.on('end', () => { if (!this.frozen) upstream.end(); });
      upstream.on('end', () => { if (!this.frozen) client.end(); });
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    return (this.server.address() as { port: number }).port;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}

describe('agent transport over a path that goes silent', () => {
  const ospd = new OspdProcess();
  let relay: BlackHoleRelay;
  let transport: AgentTransport | undefined;
  const received: number[] = [];
  const warnings: string[] = [];
  let streamsOpened = 0;

  const setMetadata = async (m: object): Promise<number> => {
    const f = path.join(ospd.dataDir, `meta-${Date.now()}.json`);
    writeFileSync(f, JSON.stringify(m));
    const r = await ospd.ctl(['node', 'config', 'set', 'edge-0', '--metadata', f, '-f', 'json']);
    expect(r.stderr).toBe('');
    return JSON.parse(r.stdout).revision as number;
  };

  beforeAll(async () => {
    await ospd.start();
    expect((await ospd.ctl(['node', 'create', '--name', 'edge-0', '--driver', 'fake'])).code).toBe(0);
    const issued = await ospd.ctl(['node', 'agent-config', 'edge-0']);
    expect(issued.code).toBe(0);
    relay = new BlackHoleRelay(ospd.port);
    const relayPort = await relay.start();
    const cfg = { ...(YAML.parse(issued.stdout) as AgentConfig), server: `127.0.0.1:${relayPort}` };
    const log = createLogger({ name: 'half-open-test', level: 'warn', destination: { write: (line: string) => { warnings.push(line); } } });
    transport = new AgentTransport({
      cfg, log,
      onRevision: async (c) => { received.push(c.revision); },
      onAuthRefused: (m) => { throw new Error(`unexpected refusal: ${m}`); },
      appliedRevision: () => 0,
      onStreamOpen: () => { streamsOpened++; },
      keepaliveTimeMs: 1_000,
      keepaliveTimeoutMs: 1_000,
      minBackoffMs: 200,
      maxBackoffMs: 1_000,
      callTimeoutMs: 1_500,
    });
  }, 60_000);

  afterAll(async () => {
    transport?.stop();
    await relay?.stop();
    await ospd.dispose();
  });

  it('detects the dead stream by keepalive, falls back to polling, and resumes with what was committed meanwhile', async () => {
    const first = await setMetadata({ step: 1 });
    transport!.start();
    await waitFor('first revision over the stream', () => received.includes(first), { timeoutMs: 20_000, retryErrors: true });
    expect(streamsOpened).toBe(1);

    relay.frozen = true;
    const missed = await setMetadata({ step: 2 });
    await waitFor('keepalive declares the stream lost', () => warnings.some((w) => w.includes('config stream lost')), { timeoutMs: 20_000, retryErrors: true });
    expect(received).not.toContain(missed);

    relay.frozen = false;
    await waitFor('revision committed during the outage arrives', () => received.includes(missed), { timeoutMs: 20_000, retryErrors: true });
    expect(received).toEqual([first, missed]);
    await waitFor('stream reopened', () => streamsOpened >= 2, { timeoutMs: 20_000, retryErrors: true });
    const live = await setMetadata({ step: 3 });
    await waitFor('live push on the new stream', () => received.includes(live), { timeoutMs: 20_000, retryErrors: true });
  });
});
