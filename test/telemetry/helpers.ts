import type { MqttClient } from 'mqtt';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TelemetrySink } from '../../server/telemetry/ingest.js';
import { waitFor } from '../harness/wait.js';

export function tempDir(prefix: string): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), `osp-${prefix}-`));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export interface TestPki {
  caPem: string;
  certPem: string;
  keyPem: string;
  caFile: string;
}

/** A throwaway CA and a server certificate for 127.0.0.1, made by the openssl CLI. */
export function makePki(dir: string): TestPki {
  const f = (n: string) => join(dir, n);
  const ssl = (args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  ssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=osp test CA', '-keyout', f('ca.key'), '-out', f('ca.pem')]);
  ssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', f('server.key'), '-out', f('server.csr')]);
  writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n');
  ssl(['x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '1', '-extfile', f('ext.cnf'), '-out', f('server.pem')]);
  return { caPem: readFileSync(f('ca.pem'), 'utf8'), certPem: readFileSync(f('server.pem'), 'utf8'), keyPem: readFileSync(f('server.key'), 'utf8'), caFile: f('ca.pem') };
}

export interface SubProcess {
  lines: string[];
  proc: ChildProcess;
  waitFor(pred: (lines: string[]) => boolean, timeoutMs: number): Promise<void>;
  stop(): void;
}

/**
 * Runs mosquitto_sub (the real Eclipse client). The password goes into its
 * options file under XDG_CONFIG_HOME, never on the command line.
 */
export function mosquittoSub(dir: string, opts: { port: number; username: string; password: string; topic: string; caFile?: string; clientId?: string }): SubProcess {
  const cfgHome = join(dir, `xdg-${Math.random().toString(36).slice(2)}`);
  mkdirSync(cfgHome, { recursive: true });
  writeFileSync(join(cfgHome, 'mosquitto_sub'), `-P ${opts.password}\n`, { mode: 0o600 });
  const args = ['-h', '127.0.0.1', '-p', String(opts.port), '-u', opts.username, '-t', opts.topic, '-v', '-q', '1', '-i', opts.clientId ?? `sub${process.pid}${Math.floor(Math.random() * 1e6)}`];
  if (opts.caFile) args.push('--cafile', opts.caFile);
  const proc = spawn('mosquitto_sub', args, { env: { ...process.env, XDG_CONFIG_HOME: cfgHome }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let buf = '';
  proc.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    const parts = buf.split('\n');
    buf = parts.pop() ?? '';
    lines.push(...parts);
  });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return {
    lines,
    proc,
    waitFor: async (pred, timeoutMs) => {
      const context = () => `exit ${proc.exitCode}; stderr: ${stderr}; lines: ${lines.slice(-5).join(' | ')}`;
      await waitFor('mosquitto_sub output to match', () => {
        if (pred(lines)) return true;
        if (proc.exitCode !== null) throw new Error(`mosquitto_sub exited before its output matched (${context()})`);
        return false;
      }, { timeoutMs, intervalMs: 50, detail: context });
    },
    stop: () => {
      if (proc.exitCode === null) proc.kill('SIGTERM');
    },
  };
}

/** Records what ingest hands to the store. */
export class RecordingSink implements TelemetrySink {
  facts = new Map<string, Record<string, unknown>>();
  metrics: { node: string; tsMs: number; values: Record<string, number>; atMs: number }[] = [];
  availability: { node: string; online: boolean }[] = [];
  async saveFacts(node: string, facts: Record<string, unknown>): Promise<void> {
    this.facts.set(node, facts);
  }
  async saveMetrics(node: string, tsMs: number, values: Record<string, number>): Promise<void> {
    this.metrics.push({ node, tsMs, values, atMs: Date.now() });
  }
  async setAvailability(node: string, online: boolean): Promise<void> {
    this.availability.push({ node, online });
  }
}

/** Granted QoS of one subscription; mqtt.js turns a 128 into an error carrying the SUBACK. */
export function grantedQos(c: MqttClient, filter: string): Promise<number> {
  return new Promise((resolve, reject) => {
    c.subscribe(filter, { qos: 1 }, (err, granted) => {
      const fromErr = (err as { packet?: { granted?: number[] } } | null)?.packet?.granted?.[0];
      if (fromErr !== undefined) resolve(fromErr);
      else if (!err && granted?.[0]) resolve(granted[0].qos);
      else reject(err ?? new Error(`no SUBACK for ${filter}`));
    });
  });
}
