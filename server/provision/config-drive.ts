import { execFile } from 'node:child_process';
import { access, constants, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import path from 'node:path';
import { OspError } from '../../common/errors.js';
import { MAC_EXPECTED, normaliseMac } from '../../common/mac.js';
import type { NodeRecord } from '../nodes/model.js';
import { buildNetworkData, type DriveDhcp } from './config-drive-network.js';

/**
 * The config drive: a small vfat filesystem labelled `config-2` in the
 * OpenStack layout cloud-init's ConfigDrive datasource reads.
 *
 * vfat rather than ISO 9660: mkfs.vfat (dosfstools) and mtools build it as an
 * ordinary file without mounting anything, unprivileged, with tools already on
 * every osp host (osp-image needs them for EFI system partitions); nova writes
 * the same kind of drive with its `config_drive_format=vfat`.
 */

export const CONFIG_DRIVE_LABEL = 'config-2';
/** cloud-init picks the newest dated directory it knows over `latest`, so both carry the same files. */
export const OPENSTACK_VERSION_DIRS = ['2018-08-27', 'latest'] as const;
export const MAX_USER_DATA_BYTES = 1024 * 1024;
export const MAX_META_ENTRIES = 128;
const TOOL_TIMEOUT_MS = 30_000;

/** Only what the drive needs from a node: no driver_info, so BMC credentials cannot leak into it. */
export type ConfigDriveNode = Pick<NodeRecord, 'uuid' | 'name' | 'ports'> & {
  properties: Pick<NodeRecord['properties'], 'ipv4Address'>;
};

export interface ConfigDriveInput {
  node: ConfigDriveNode;
  hostname: string;
  sshKeys: string[];
  userData?: Buffer | string;
  /** Operator metadata (`meta` in meta_data.json); string values, as nova's `--meta`. */
  metadata?: Record<string, string>;
  dhcp: DriveDhcp;
  /** The MAC the machine booted from; the address goes on it (default: the node's first port). */
  bootMac?: string;
  /** The deployed system's agent.yaml (server, CA, fresh node token), issued by the caller. */
  agentYaml: string;
  /** Parent of the scratch directory (ospd's data dir). */
  workDir: string;
}

function invalid(field: string, value: unknown, expected: string): never {
  const shown = typeof value === 'string' && value.length > 60 ? `${value.slice(0, 60)}…` : value;
  throw new OspError('CONFIG_DRIVE_INVALID', `${field}: ${JSON.stringify(shown)}: expected ${expected}`, { field, value: shown, expected });
}

const HOSTNAME_RE = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const SSH_KEY_RE = /^(ssh-(rsa|dss|ed25519)|ecdsa-sha2-nistp(256|384|521)|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com) [A-Za-z0-9+/]+={0,3}( [^\r\n]*)?$/;

function validate(input: ConfigDriveInput): { bootMac: string; userData?: Buffer } {
  if (!HOSTNAME_RE.test(input.hostname)) invalid('hostname', input.hostname, 'a host name (RFC 1123 labels of letters, digits and hyphens)');
  input.sshKeys.forEach((k, i) => {
    if (!SSH_KEY_RE.test(k.trim())) invalid(`ssh_keys[${i}]`, k, 'one OpenSSH public key line (ssh-ed25519 AAAA… comment)');
  });
  const meta = input.metadata ?? {};
  if (Object.keys(meta).length > MAX_META_ENTRIES) invalid('metadata', `${Object.keys(meta).length} keys`, `at most ${MAX_META_ENTRIES} keys`);
  for (const [k, v] of Object.entries(meta)) {
    if (k.length === 0 || k.length > 255) invalid('metadata', k, 'keys of 1 to 255 characters');
    if (typeof v !== 'string' || v.length > 255) invalid(`metadata.${k}`, v, 'a string of at most 255 characters');
  }
  const userData = input.userData === undefined ? undefined : Buffer.from(input.userData);
  if (userData && userData.length > MAX_USER_DATA_BYTES) invalid('user_data', `${userData.length} bytes`, `at most ${MAX_USER_DATA_BYTES} bytes`);
  if (!input.agentYaml.trim()) invalid('agent_yaml', input.agentYaml, "the deployed system's agent.yaml");
  if (input.node.ports.length === 0) invalid('node.ports', [], 'at least one port (the network data names the NICs by MAC)');
  const ports = input.node.ports.map((p, i) => normaliseMac(p) ?? invalid(`node.ports[${i}]`, p, MAC_EXPECTED));
  const bootMac = input.bootMac === undefined ? ports[0] : normaliseMac(input.bootMac) ?? invalid('boot_mac', input.bootMac, MAC_EXPECTED);
  if (!ports.includes(bootMac)) invalid('boot_mac', bootMac, `one of the node's ports (${ports.join(', ')})`);
  const ip = input.node.properties.ipv4Address;
  if (ip !== undefined && isIP(ip) !== 4) invalid('node.properties.ipv4_address', ip, 'an IPv4 address');
  return { bootMac, userData };
}

/** meta_data.json as nova writes it, minus what osp has no notion of (availability zone, project). */
export function buildMetaData(input: ConfigDriveInput): Record<string, unknown> {
  const publicKeys: Record<string, string> = {};
  input.sshKeys.forEach((k, i) => (publicKeys[`key-${i}`] = k.trim()));
  return {
    uuid: input.node.uuid,
    name: input.node.name,
    hostname: input.hostname,
    public_keys: publicKeys,
    keys: input.sshKeys.map((k, i) => ({ name: `key-${i}`, type: 'ssh', data: k.trim() })),
    launch_index: 0,
    meta: input.metadata ?? {},
  };
}

/** mkfs.vfat lives in /usr/sbin, which an unprivileged ospd's PATH often lacks. */
async function resolveTool(name: string): Promise<string> {
  const dirs = [...(process.env.PATH ?? '').split(':').filter(Boolean), '/usr/sbin', '/sbin'];
  for (const d of dirs) {
    const p = path.join(d, name);
    if (await access(p, constants.X_OK).then(() => true, () => false)) return p;
  }
  return name;
}

async function run(name: string, args: string[], pkg: string): Promise<void> {
  const file = await resolveTool(name);
  return new Promise((resolve, reject) => {
    // mtools refuses images whose geometry looks odd to it unless told not to check.
    execFile(file, args, { timeout: TOOL_TIMEOUT_MS, env: { ...process.env, MTOOLS_SKIP_CHECK: '1' } }, (err, _out, stderr) => {
      if (!err) return resolve();
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        return reject(new OspError('CONFIG_DRIVE_TOOL_MISSING', `config drive: ${file} not found (install Debian package ${pkg})`, { field: 'tool', value: file, expected: `Debian package ${pkg}` }));
      }
      reject(new OspError('INTERNAL', `config drive: ${file} ${args.join(' ')} failed: ${String(stderr).trim() || err.message}`));
    });
  });
}

const MIB = 1024 * 1024;

/** Room for the files plus FAT tables and slack, whole MiB, at least 1 MiB. */
function driveSizeBytes(contentBytes: number): number {
  return Math.max(MIB, Math.ceil((contentBytes * 1.25 + 256 * 1024) / MIB) * MIB);
}

/**
 * Builds the drive and returns its bytes. The scratch directory (it holds the
 * node token) is created 0700 under `workDir` and removed whatever the outcome.
 */
export async function buildConfigDrive(input: ConfigDriveInput): Promise<Buffer> {
  const { bootMac, userData } = validate(input);
  const files: [string, Buffer, number][] = [];
  const metaData = Buffer.from(`${JSON.stringify(buildMetaData(input), null, 2)}\n`);
  const networkData = Buffer.from(`${JSON.stringify(buildNetworkData(input.node, bootMac, input.dhcp), null, 2)}\n`);
  for (const v of OPENSTACK_VERSION_DIRS) {
    files.push([`openstack/${v}/meta_data.json`, metaData, 0o644]);
    files.push([`openstack/${v}/network_data.json`, networkData, 0o644]);
    if (userData) files.push([`openstack/${v}/user_data`, userData, 0o644]);
  }
  files.push(['openstack/latest/osp-agent.yaml', Buffer.from(input.agentYaml), 0o600]);

  await mkdir(input.workDir, { recursive: true });
  const dir = await mkdtemp(path.join(input.workDir, 'config-drive-'));
  try {
    const tree = path.join(dir, 'tree');
    for (const [rel, body, mode] of files) {
      await mkdir(path.dirname(path.join(tree, rel)), { recursive: true, mode: 0o700 });
      await writeFile(path.join(tree, rel), body, { mode });
    }
    const img = path.join(dir, 'drive.img');
    const size = driveSizeBytes(files.reduce((s, [, b]) => s + b.length + 4096, 0));
    // -C creates the file; the block count is in KiB.
    await run('mkfs.vfat', ['-C', '-n', CONFIG_DRIVE_LABEL, img, String(size / 1024)], 'dosfstools');
    await run('mcopy', ['-s', '-Q', '-i', img, path.join(tree, 'openstack'), '::/'], 'mtools');
    return await readFile(img);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
