import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../common/logging.js';
import { OspError } from '../common/errors.js';
import { runCommand } from './run-command.js';

/**
 * Debian packages fetched with `apt-get download` (the host's configured mirrors and
 * signatures) and unpacked with `dpkg-deb -x`, both kept under cacheDir so repeated
 * builds do not download again. No maintainer scripts run: callers take the files
 * they need, which is what a ramdisk wants.
 */
export class DebCache {
  constructor(private readonly cacheDir: string, private readonly logger: Logger) {}

  private get debDir(): string {
    return join(this.cacheDir, 'debs');
  }

  /** Path of the cached .deb for a package name, downloading it on first use. */
  async fetch(pkg: string): Promise<string> {
    if (!/^[a-z0-9][a-z0-9+.-]+$/.test(pkg)) {
      throw new OspError('INVALID_ARGUMENT', `package: '${pkg}' is not a Debian package name, expected lowercase letters, digits and + . -`, { field: 'package', value: pkg });
    }
    mkdirSync(this.debDir, { recursive: true });
    const cached = this.find(pkg);
    if (cached) return cached;
    this.logger.info({ pkg }, 'apt-get download');
    const r = await runCommand(['apt-get', 'download', pkg], { cwd: this.debDir });
    const got = this.find(pkg);
    if (r.exitCode !== 0 || !got) {
      throw new OspError('IMAGE_TOOL_MISSING', `apt-get download ${pkg} failed (exit ${r.exitCode}): ${r.stderr.trim().split('\n').slice(-2).join(' ')}`, { pkg });
    }
    return got;
  }

  private find(pkg: string): string | undefined {
    const f = readdirSync(this.debDir).filter((n) => n.startsWith(`${pkg}_`) && n.endsWith('.deb')).sort().pop();
    return f ? join(this.debDir, f) : undefined;
  }

  /** Package names this .deb depends on (first alternative of each), for metapackages. */
  async depends(deb: string): Promise<string[]> {
    const r = await runCommand(['dpkg-deb', '-f', deb, 'Depends']);
    return r.stdout.split(',').map((d) => d.split('|')[0].trim().split(/[\s(]/)[0]).filter((d) => d.length > 0);
  }

  /** Unpacked tree of the package, cached; marker written last so a killed unpack is redone. */
  async extract(pkg: string): Promise<string> {
    const deb = await this.fetch(pkg);
    const dir = join(this.cacheDir, 'unpacked', deb.split('/').pop()!.replace(/\.deb$/, ''));
    const marker = join(dir, '.osp-image-complete');
    if (existsSync(marker)) return dir;
    mkdirSync(dir, { recursive: true });
    const r = await runCommand(['dpkg-deb', '-x', deb, dir]);
    if (r.exitCode !== 0) throw new OspError('IMAGE_BUILD_FAILED', `dpkg-deb -x ${deb} failed: ${r.stderr.trim()}`, { pkg });
    writeFileSync(marker, '');
    return dir;
  }
}
