import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, rmSync, chmodSync, existsSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '../harness/wait.js';

/** Whether a /proc/net/udp table lists a socket bound to port (the local address's hex port). */
export function udpPortBound(table: string, port: number): boolean {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  return table.split('\n').some((l) => l.trim().split(/\s+/)[1]?.endsWith(`:${hex}`));
}

/** A free UDP port on loopback (bind to 0, read, release). */
export async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/**
 * Runs OpenIPMI's ipmi_sim (the real peer) with a generated lan.conf. Power
 * and boot device go through `chassis_control`, a script that keeps them in
 * files; power-off lands late on purpose so the driver's polling is needed.
 */
export class IpmiSimInstance {
  readonly dir = mkdtempSync(join(tmpdir(), 'osp-ipmisim-'));
  port = 0;
  private proc?: ChildProcess;

  constructor(readonly username: string, readonly password: string, readonly offDelayS = 0.3) {}

  async start(): Promise<void> {
    this.port = await freeUdpPort();
    const serialPort = 20000 + Math.floor(Math.random() * 20000);
    const cc = join(this.dir, 'chassis-control.sh');
    writeFileSync(cc, `#!/bin/sh
d='${this.dir}'
echo "$*" >> "$d/calls.log"
op=$1; shift
if [ "$op" = set ]; then
  while [ $# -ge 2 ]; do
    case "$1:$2" in
      power:0|shutdown:1) (sleep ${this.offDelayS}; echo 0 > "$d/st.power") >/dev/null 2>&1 & ;;
      *) echo "$2" > "$d/st.$1" ;;
    esac
    shift 2
  done
  exit 0
fi
for p in "$@"; do v=$(cat "$d/st.$p" 2>/dev/null || echo 0); echo "$p:$v"; done
`);
    chmodSync(cc, 0o700);
    writeFileSync(join(this.dir, 'lan.conf'), `name "osp-test"
set_working_mc 0x20
  startlan 1
    addr 127.0.0.1 ${this.port}
    priv_limit admin
    allowed_auths_callback md5 straight
    allowed_auths_user md5 straight
    allowed_auths_operator md5 straight
    allowed_auths_admin md5 straight
    guid a123456789abcdefa123456789abcdef
  endlan
  serial 15 127.0.0.1 ${serialPort} codec VM
  chassis_control "${cc}"
  user 2 true "${this.username}" "${this.password}" admin 10 md5 straight
`);
    writeFileSync(join(this.dir, 'emu.cmds'), 'mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\nmc_enable 0x20\n');
    this.proc = spawn('ipmi_sim', ['-c', join(this.dir, 'lan.conf'), '-f', join(this.dir, 'emu.cmds'), '-s', join(this.dir, 'state'), '-n'], { stdio: 'ignore' });
    const proc = this.proc;
    await waitFor(`ipmi_sim listening on udp ${this.port}`, () => {
      if (proc.exitCode !== null) throw new Error(`ipmi_sim exited with ${proc.exitCode}`);
      return udpPortBound(readFileSync('/proc/net/udp', 'utf8'), this.port);
    }, { timeoutMs: 10_000, intervalMs: 20 });
  }

  state(name: string): string | undefined {
    const f = join(this.dir, `st.${name}`);
    return existsSync(f) ? readFileSync(f, 'utf8').trim() : undefined;
  }

  calls(): string[] {
    const f = join(this.dir, 'calls.log');
    return existsSync(f) ? readFileSync(f, 'utf8').trim().split('\n') : [];
  }

  async stop(): Promise<void> {
    if (this.proc && this.proc.exitCode === null) {
      const exited = new Promise((r) => this.proc!.once('exit', r));
      this.proc.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 2000))]);
      if (this.proc.exitCode === null) this.proc.kill('SIGKILL');
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
