import { chmodSync, copyFileSync, existsSync, mkdirSync, openSync, readSync, closeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { OspError } from '../common/errors.js';
import { runCommand } from './run-command.js';

/** True when the file starts with the ELF magic; scripts and data are left alone. */
export function isElf(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(4);
    return readSync(fd, b, 0, 4, 0) === 4 && b.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
  } finally {
    closeSync(fd);
  }
}

/** True when a 64-bit little-endian ELF has a PT_INTERP program header (it is dynamically linked). */
export function hasInterpreter(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const h = Buffer.alloc(64);
    if (readSync(fd, h, 0, 64, 0) < 64 || h[4] !== 2 || h[5] !== 1) return false;
    const phoff = Number(h.readBigUInt64LE(0x20));
    const phentsize = h.readUInt16LE(0x36);
    const phnum = h.readUInt16LE(0x38);
    const ph = Buffer.alloc(phentsize * phnum);
    readSync(fd, ph, 0, ph.length, phoff);
    for (let i = 0; i < phnum; i++) if (ph.readUInt32LE(i * phentsize) === 3) return true;
    return false;
  } finally {
    closeSync(fd);
  }
}

/**
 * The shared objects a dynamic ELF binary loads, loader included, as absolute host
 * paths. Uses ldd itself (glibc's own resolver, honouring ld.so.cache and RUNPATH),
 * so the answer is exactly what the loader would do on this build host.
 */
export async function sharedLibraries(binary: string): Promise<string[]> {
  const r = await runCommand(['ldd', binary]);
  const out = r.stdout + r.stderr;
  if (/not a dynamic executable|statically linked/.test(out)) {
    // ldd also says this for a dynamic binary the loader rejects (e.g. a mangled dynamic
    // section): that binary would fail at boot, so refuse it here.
    if (hasInterpreter(binary)) {
      throw new OspError('IMAGE_BUILD_FAILED', `${binary} names a program interpreter but the loader rejects it: ${out.trim()}`, { binary });
    }
    return [];
  }
  if (r.exitCode !== 0) {
    throw new OspError('IMAGE_BUILD_FAILED', `ldd ${binary} failed (exit ${r.exitCode}): ${out.trim()}`, { binary });
  }
  const libs: string[] = [];
  for (const line of out.split('\n')) {
    const missing = /^\s*(\S+) => not found/.exec(line);
    if (missing) {
      throw new OspError('IMAGE_TOOL_MISSING', `${binary} needs ${missing[1]}, which the build host cannot resolve`, { binary, library: missing[1] });
    }
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(0x/.exec(line);
    if (m) libs.push(m[1]);
  }
  return libs;
}

/** Copies each file to the same absolute path under root, dereferencing symlinks. */
export function copyIntoRoot(root: string, hostPaths: string[]): void {
  for (const p of hostPaths) {
    const dest = join(root, p);
    if (existsSync(dest)) continue;
    mkdirSync(dirname(dest), { recursive: true });
    copyFileSync(p, dest);
    chmodSync(dest, 0o755);
  }
}

/** Copies a host binary and everything it links against into root. */
export async function installBinaryWithLibraries(root: string, hostBinary: string, destPath = hostBinary): Promise<string[]> {
  const libs = await sharedLibraries(hostBinary);
  const dest = join(root, destPath);
  mkdirSync(dirname(dest), { recursive: true });
  copyFileSync(hostBinary, dest);
  chmodSync(dest, 0o755);
  copyIntoRoot(root, libs);
  return libs;
}

