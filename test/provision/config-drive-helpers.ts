import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ConfigDriveInput } from '../../server/provision/config-drive.js';
import { waitFor } from '../harness/wait.js';

export const NODE_UUID = '1b4e28ba-2fa1-41d2-883f-0016d3cca427';
export const PORTS = ['52:54:00:aa:00:01', '52:54:00:aa:00:02'];
export const SSH_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl op@example';
/** Debian's interpreter: cloud-init's modules are installed for it, not for any other python3 on PATH. */
export const DEBIAN_PYTHON = '/usr/bin/python3';

export function sampleInput(workDir: string, over: Partial<ConfigDriveInput> = {}): ConfigDriveInput {
  return {
    node: { uuid: NODE_UUID, name: 'compute-0', ports: PORTS, properties: {} },
    hostname: 'compute-0.example.internal',
    sshKeys: [SSH_KEY],
    userData: '#cloud-config\nruncmd:\n  - [touch, /var/tmp/osp-user-data-ran]\n',
    metadata: { role: 'compute', rack: 'r12' },
    dhcp: { prefixLength: 24, router: '10.88.0.1', dns: ['10.88.0.1', '10.88.0.2'] },
    agentYaml: 'server: 10.88.0.1:6385\nnode: compute-0\ntoken: osp-node-token-for-test\n',
    workDir,
    ...over,
  };
}

/** Runs a program to completion (bounded), returning stdout; a non-zero exit throws with its stderr. */
export function sh(cmd: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { timeout: opts.timeoutMs ?? 30_000, env: { ...process.env, MTOOLS_SKIP_CHECK: '1', ...opts.env } }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${String(stderr).trim() || err.message}`));
      else resolve(stdout);
    });
    // A program that exits without reading its stdin must not fail the run with EPIPE.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(opts.input ?? '');
  });
}

/** Like sh, but never throws: the caller inspects the exit code. */
export function shCode(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { timeout: 30_000, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout: String(stdout), stderr: String(stderr) });
    });
    child.stdin?.end();
  });
}

export async function loopAttach(file: string, partitions = false): Promise<string> {
  return (await sh('losetup', ['-f', '--show', ...(partitions ? ['-P'] : []), file])).trim();
}

export async function loopDetach(dev: string): Promise<void> {
  await shCode('losetup', ['-d', dev]);
}

/** Partition nodes of a loop device appear asynchronously; bounded wait, then partx adds them itself. */
export async function partitionNode(dev: string, n: number, timeoutMs = 5_000): Promise<string> {
  const node = `${dev}p${n}`;
  return waitFor(`${node} to appear`, async () => {
    if (existsSync(node)) return node;
    await shCode('partx', ['-a', dev]);
    return existsSync(node) ? node : undefined;
  }, { timeoutMs });
}

/**
 * Whether this kernel can mount vfat (loaded, or a module it could load). Some
 * CI kernels are built without it; the deployed system's Debian kernel has it.
 */
export const KERNEL_VFAT = /\bvfat\b/.test(readFileSync('/proc/filesystems', 'utf8'))
  || existsSync(`/lib/modules/${os.release()}/kernel/fs/fat/vfat.ko`) || existsSync(`/lib/modules/${os.release()}/kernel/fs/fat/vfat.ko.xz`);
export const TREE_SOURCE = KERNEL_VFAT ? 'the kernel vfat mount' : "a copy made by mtools (this kernel has no vfat)";

/**
 * Gives fn the drive's files as a directory: the drive loop-mounted read-only
 * (always unmounted and detached), or, on a kernel without vfat, the tree
 * copied out by mtools (a FAT reader osp did not write either).
 */
export async function withDriveTree<T>(driveFile: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'osp-cd-tree-'));
  try {
    if (!KERNEL_VFAT) {
      await sh('mcopy', ['-s', '-n', '-i', driveFile, '::/openstack', dir]);
      return await fn(dir);
    }
    const dev = await loopAttach(driveFile);
    try {
      await sh('mount', ['-o', 'ro', dev, dir]);
      try {
        return await fn(dir);
      } finally {
        await shCode('umount', [dir]);
      }
    } finally {
      await loopDetach(dev);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface CloudInitView {
  metadata: Record<string, unknown>;
  userdata: string;
  networkdata: Record<string, unknown>;
  /** cloud-init's own network config v1, converted from network_data.json. */
  netconfig: { config: Record<string, unknown>[] };
  sshKeys: string[];
}

/**
 * Runs cloud-init's ConfigDrive datasource reader (the code its ConfigDrive
 * datasource runs on the mounted drive) and its network_data converter.
 */
export async function readWithCloudInit(mountpoint: string, macs: Record<string, string>): Promise<CloudInitView> {
  const py = `
import json, sys
from cloudinit import sources
from cloudinit.sources import DataSourceConfigDrive as ds
from cloudinit.sources.helpers import openstack
r = ds.read_config_drive(sys.argv[1])
md = r["metadata"]
net = openstack.convert_net_json(r.get("networkdata"), known_macs=json.loads(sys.argv[2]))
keys = sources.normalize_pubkey_data(md.get("public_keys"))
ud = r.get("userdata") or b""
print(json.dumps({"metadata": md, "userdata": ud.decode() if isinstance(ud, bytes) else ud,
  "networkdata": r.get("networkdata"), "netconfig": net, "sshKeys": keys}, default=str))
`;
  return JSON.parse(await sh(DEBIAN_PYTHON, ['-c', py, mountpoint, JSON.stringify(macs)])) as CloudInitView;
}

/** cloud-init's device discovery: the devices its ConfigDrive datasource would try, by label and filesystem. */
export async function cloudInitCandidates(): Promise<string[]> {
  const py = 'import json; from cloudinit.sources import DataSourceConfigDrive as ds; print(json.dumps(ds.find_candidate_devs(probe_optical=False)))';
  return JSON.parse(await sh(DEBIAN_PYTHON, ['-c', py])) as string[];
}
