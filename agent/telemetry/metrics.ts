import { readFile, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { metricKey } from '../../common/topics.js';

/**
 * Host metrics from /proc, in Prometheus-style names with units. Labelled
 * series are flattened into keys with `metricKey()` (see common/topics.ts),
 * e.g. `filesystem_free_bytes{mount="/"}`. `ts` is Unix milliseconds.
 *
 *   cpu_seconds_total{mode}            /proc/stat, all CPUs summed
 *   load1, load5, load15               /proc/loadavg
 *   memory_total_bytes, memory_available_bytes, memory_free_bytes,
 *   swap_total_bytes, swap_free_bytes  /proc/meminfo
 *   uptime_seconds                     /proc/uptime
 *   network_receive_bytes_total{device}, network_transmit_bytes_total{device},
 *   network_receive_packets_total{device}, network_transmit_packets_total{device}
 *                                      /proc/net/dev (lo excluded)
 *   filesystem_size_bytes{mount}, filesystem_free_bytes{mount},
 *   filesystem_avail_bytes{mount}      statfs() of real filesystems in /proc/mounts
 */

export interface MetricsCollectorOptions {
  /** Prefix for /proc and mount points, for tests against a fake root. */
  root?: string;
  /** Clock ticks per second of /proc/stat (USER_HZ, 100 on Linux). */
  userHz?: number;
  now?: () => number;
}

const CPU_MODES = ['user', 'nice', 'system', 'idle', 'iowait', 'irq', 'softirq', 'steal'];
const REAL_FS = new Set(['ext2', 'ext3', 'ext4', 'xfs', 'btrfs', 'vfat', 'zfs', 'f2fs', 'jfs', 'reiserfs', 'ntfs', 'ntfs3', 'exfat', 'overlay', 'tmpfs']);

async function readText(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return null;
  }
}

export class HostMetricsCollector {
  private readonly root: string;
  private readonly userHz: number;
  private readonly now: () => number;

  constructor(opts: MetricsCollectorOptions = {}) {
    this.root = opts.root ?? '/';
    this.userHz = opts.userHz ?? 100;
    this.now = opts.now ?? Date.now;
  }

  /** Every source is optional: an unreadable file just leaves its metrics out. */
  async collect(): Promise<Record<string, number>> {
    const out: Record<string, number> = { ts: this.now() };
    const p = (f: string) => join(this.root, f);
    const [stat, loadavg, meminfo, uptime, netdev, mounts] = await Promise.all(
      ['proc/stat', 'proc/loadavg', 'proc/meminfo', 'proc/uptime', 'proc/net/dev', 'proc/mounts'].map((f) => readText(p(f))),
    );
    if (stat) {
      const cpu = stat.split('\n').find((l) => l.startsWith('cpu '));
      const fields = cpu?.trim().split(/\s+/).slice(1).map(Number) ?? [];
      CPU_MODES.forEach((mode, i) => {
        if (Number.isFinite(fields[i])) out[metricKey('cpu_seconds_total', { mode })] = fields[i] / this.userHz;
      });
    }
    if (loadavg) {
      const [l1, l5, l15] = loadavg.trim().split(/\s+/).map(Number);
      if (Number.isFinite(l1)) Object.assign(out, { load1: l1, load5: l5, load15: l15 });
    }
    if (meminfo) {
      const kb: Record<string, number> = {};
      for (const line of meminfo.split('\n')) {
        const m = /^(\w+):\s+(\d+)/.exec(line);
        if (m) kb[m[1]] = Number(m[2]) * 1024;
      }
      const map: Record<string, string> = {
        MemTotal: 'memory_total_bytes', MemAvailable: 'memory_available_bytes', MemFree: 'memory_free_bytes',
        SwapTotal: 'swap_total_bytes', SwapFree: 'swap_free_bytes',
      };
      for (const [k, name] of Object.entries(map)) if (k in kb) out[name] = kb[k];
    }
    if (uptime) {
      const u = Number(uptime.trim().split(/\s+/)[0]);
      if (Number.isFinite(u)) out.uptime_seconds = u;
    }
    if (netdev) {
      for (const line of netdev.split('\n').slice(2)) {
        const m = /^\s*([^:]+):\s*(.*)$/.exec(line);
        if (!m || m[1] === 'lo') continue;
        const f = m[2].trim().split(/\s+/).map(Number);
        const device = m[1];
        out[metricKey('network_receive_bytes_total', { device })] = f[0];
        out[metricKey('network_receive_packets_total', { device })] = f[1];
        out[metricKey('network_transmit_bytes_total', { device })] = f[8];
        out[metricKey('network_transmit_packets_total', { device })] = f[9];
      }
    }
    if (mounts) await this.filesystems(mounts, out);
    return out;
  }

  private async filesystems(mounts: string, out: Record<string, number>): Promise<void> {
    const seen = new Set<string>();
    for (const line of mounts.split('\n')) {
      const [, mount, type] = line.split(' ');
      if (!mount || !REAL_FS.has(type) || seen.has(mount)) continue;
      // /proc/mounts escapes spaces etc. as octal (fstab(5)).
      const path = mount.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
      if (type === 'tmpfs' && path !== '/tmp' && path !== '/run') continue;
      seen.add(mount);
      try {
        const s = await statfs(join(this.root, path));
        out[metricKey('filesystem_size_bytes', { mount: path })] = s.blocks * s.bsize;
        out[metricKey('filesystem_free_bytes', { mount: path })] = s.bfree * s.bsize;
        out[metricKey('filesystem_avail_bytes', { mount: path })] = s.bavail * s.bsize;
      } catch {
        // Unreachable mount (stale NFS, permissions): leave it out.
      }
    }
  }
}
