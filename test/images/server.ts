import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { silentLogger } from '../../common/logging.js';
import { resolveConfig } from '../../server/config.js';
import { buildOspd, type Ospd } from '../../server/ospd.js';
import type { ImageRuntime } from '../../server/images/runtime.js';
import { OSPCTL, runProgram, type RunResult } from '../harness/ospd.js';

/** ospd in this process (gRPC and HTTP on loopback, ephemeral ports) so a test can reach its store; ospctl runs as a real process. */
export class ImageServer {
  ospd?: Ospd;
  readonly dataDir = mkdtempSync(path.join(os.tmpdir(), 'ospd-images-'));

  async start(extra: Record<string, string> = {}): Promise<void> {
    const cfg = resolveConfig({}, {
      'data-dir': this.dataDir, 'grpc-listen': '127.0.0.1:0', 'http-listen': '127.0.0.1:0',
      'mqtt-listen': 'off', 'mqtt-plain-listen': 'off', 'tftp-listen': 'off', 'dhcp-listen': 'off',
      'power-sync-interval-ms': '0', 'shutdown-grace-ms': '1000', ...extra,
    });
    this.ospd = await buildOspd(cfg, { log: silentLogger() });
    await this.ospd.start();
  }

  get images(): ImageRuntime {
    return this.ospd!.parts.find((p) => p.name === 'images')!.service as ImageRuntime;
  }

  get httpPort(): number {
    return this.ospd!.core.pxe.services!.http!.address().port;
  }

  ctl(args: string[], timeoutMs = 60_000): Promise<RunResult> {
    return runProgram(process.execPath, [OSPCTL, ...args], { env: { OSPCTL_CONFIG: path.join(this.dataDir, 'admin.yaml') }, timeoutMs });
  }

  async stop(): Promise<void> {
    await this.ospd?.stop();
  }
}
