import type { Logger } from '../common/logging.js';
import { OspError } from '../common/errors.js';
import type { DebCache } from './deb-cache.js';
import type { PhaseRunner } from './phases.js';

export interface DiskImageOptions {
  root: string;
  work: string;
  output: string;
  type: 'raw' | 'qcow2';
  sizeGiB: number;
  logger: Logger;
  debs: DebCache;
  cacheDir: string;
}

/** Whole-disk output: partitions a file, copies the root in, bootloader via the vm element. */
export class DiskImageWriter {
  constructor(private readonly opts: DiskImageOptions) {}

  async attachTo(_runner: PhaseRunner): Promise<void> {
    throw new OspError('UNIMPLEMENTED', `type: '${this.opts.type}' whole-disk images are not implemented yet, expected 'ramdisk'`, { field: 'type', value: this.opts.type });
  }

  async finish(): Promise<string> {
    return this.opts.output;
  }

  async stop(): Promise<void> {
    return;
  }
}
