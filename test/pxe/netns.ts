/**
 * Test network fixtures: a private namespace joined to this (host) namespace
 * by a veth pair, on a 10.213.x.0/24 subnet that exists only between the two
 * ends. Everything created here is removed by destroy(), which the tests call
 * from afterAll so it also runs after failures.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';

export function sh(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): string {
  return execFileSync(cmd, args, { encoding: 'utf8', timeout: opts.timeoutMs ?? 15_000, input: opts.input, stdio: ['pipe', 'pipe', 'pipe'] });
}

/**
 * Runs a command without blocking the event loop: required for any client
 * whose server lives in this process (execFileSync would freeze the server).
 */
export function run(cmd: string, args: string[], opts: { timeoutMs?: number } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: 'utf8', timeout: opts.timeoutMs ?? 30_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

export interface TestLan {
  ns: string;
  /** Host-side veth (the provisioning interface the server uses). */
  hostIf: string;
  /** Namespace-side veth, or the bridge when `bridge` was requested. */
  nsIf: string;
  /** e.g. 10.213.57 — the /24 prefix. */
  prefix: string;
  serverIp: string;
  exec(cmd: string, args: string[], opts?: { input?: string; timeoutMs?: number }): string;
  spawn(cmd: string, args: string[]): ChildProcess;
  destroy(): void;
}

export function createLan(opts: { nsIp?: boolean; bridge?: boolean } = {}): TestLan {
  const id = randomBytes(3).toString('hex');
  const ns = `osppxe-${id}`;
  const hostIf = `opx${id}`;
  const peer = `opy${id}`;
  const prefix = `10.213.${16 + (randomBytes(1)[0] % 200)}`;
  const serverIp = `${prefix}.1`;
  const run = (...a: string[]) => sh('ip', a);
  const lan: TestLan = {
    ns, hostIf, nsIf: peer, prefix, serverIp,
    exec: (cmd, args, o) => sh('ip', ['netns', 'exec', ns, cmd, ...args], o),
    spawn: (cmd, args) => spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] }),
    destroy: () => {
      try { run('netns', 'del', ns); } catch { /* already gone */ }
      try { run('link', 'del', hostIf); } catch { /* removed with the namespace */ }
    },
  };
  try {
    run('netns', 'add', ns);
    run('-n', ns, 'link', 'set', 'lo', 'up');
    run('link', 'add', hostIf, 'type', 'veth', 'peer', 'name', peer);
    run('link', 'set', peer, 'netns', ns);
    run('addr', 'add', `${serverIp}/24`, 'dev', hostIf);
    run('link', 'set', hostIf, 'up');
    if (opts.bridge) {
      const br = `opb${id}`;
      run('-n', ns, 'link', 'add', br, 'type', 'bridge');
      run('-n', ns, 'link', 'set', peer, 'master', br);
      run('-n', ns, 'link', 'set', br, 'up');
      lan.nsIf = br;
    }
    run('-n', ns, 'link', 'set', peer, 'up');
    if (opts.nsIp) run('-n', ns, 'addr', 'add', `${prefix}.2/24`, 'dev', lan.nsIf);
  } catch (e) {
    lan.destroy();
    throw e;
  }
  return lan;
}

/** Adds a veth from the LAN bridge to a new namespace (one more machine on the LAN). */
export function addMachine(lan: TestLan, name: string, mac: string): { ns: string; ifName: string; destroy(): void } {
  const id = randomBytes(3).toString('hex');
  const ns = `osppxe-${name}-${id}`;
  const a = `opm${id}`;
  const b = `eth${id}`;
  sh('ip', ['netns', 'add', ns]);
  const destroy = () => { try { sh('ip', ['netns', 'del', ns]); } catch { /* gone */ } };
  try {
    sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    sh('ip', ['-n', lan.ns, 'link', 'add', a, 'type', 'veth', 'peer', 'name', b]);
    sh('ip', ['-n', lan.ns, 'link', 'set', b, 'netns', ns]);
    sh('ip', ['-n', lan.ns, 'link', 'set', a, 'master', lan.nsIf, 'up']);
    sh('ip', ['-n', ns, 'link', 'set', b, 'address', mac, 'up']);
  } catch (e) {
    destroy();
    throw e;
  }
  return { ns, ifName: b, destroy };
}

export function macOf(ns: string, ifName: string): string {
  return sh('ip', ['-n', ns, '-o', 'link', 'show', ifName]).match(/link\/ether ([0-9a-f:]{17})/)![1];
}

