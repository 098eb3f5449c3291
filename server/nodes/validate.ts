import { isIP } from 'node:net';
import type { Problem } from '../../common/errors.js';
import { MAC_EXPECTED, normaliseMac } from '../../common/mac.js';
import type { NodeProperties } from '../../common/node-properties.js';
import { DRIVERS, type DriverName, type NodeInput } from './model.js';

/** One problem with one field: what the operator must fix. */
export interface FieldProblem {
  field: string;
  value: unknown;
  expected: string;
}

export function describeProblem(p: FieldProblem): string {
  const shown = typeof p.value === 'string' ? JSON.stringify(p.value) : p.value === undefined ? 'missing' : JSON.stringify(p.value);
  return p.value === undefined ? `${p.field}: missing: expected ${p.expected}` : `${p.field}: ${shown}: expected ${p.expected}`;
}

/** The problem as it travels: `at` places the field in a list (`nodes[1]`), `label` names the entry for the operator. */
export function asProblem(p: FieldProblem, at = '', label = at): Problem {
  return { field: at ? `${at}.${p.field}` : p.field, description: `${label ? `${label}: ` : ''}${describeProblem(p)}` };
}

// RFC 1123 §2.1 host name label: letters, digits, hyphens; 1–63 characters;
// no leading or trailing hyphen. Lower case only, so that MQTT topics and
// host names derived from it are stable.
const DNS_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

export function checkName(name: unknown): FieldProblem | null {
  if (typeof name === 'string' && DNS_LABEL.test(name)) return null;
  return { field: 'name', value: name, expected: 'a DNS label: 1-63 lower-case letters, digits or hyphens, not starting or ending with a hyphen' };
}

/** Driver names osp accepts on input (TripleO pm_type, Ironic driver, rules), keyed lower-case. */
export const DRIVER_ALIASES: Record<string, DriverName> = {
  ipmi: 'ipmi', pxe_ipmitool: 'ipmi', ipmitool: 'ipmi',
  // Ironic's idrac hardware type manages iDRACs over Redfish (its WS-Man interfaces are gone).
  redfish: 'redfish', idrac: 'redfish',
  fake: 'fake', 'fake-hardware': 'fake',
};

const COMMON_INFO = ['address', 'port', 'username', 'password'];
export const DRIVER_INFO_KEYS: Record<DriverName, string[]> = {
  ipmi: [...COMMON_INFO, 'cipher_suite', 'priv_level', 'bridging', 'target_address', 'target_channel'],
  redfish: [...COMMON_INFO, 'system_id', 'verify_ca', 'auth_type', 'scheme'],
  fake: [...COMMON_INFO, 'power_delay_ms', 'fail'],
};

/** Ironic's driver-prefixed names, accepted on input and stored generically. */
export function canonicalInfoKey(driver: DriverName, key: string): string {
  const k = key.toLowerCase();
  for (const prefix of ['ipmi_', 'redfish_', 'fake_']) {
    if (k.startsWith(prefix)) return k.slice(prefix.length);
  }
  return driver === 'ipmi' && k === 'ipmi_cipher_suite' ? 'cipher_suite' : k;
}

function checkDriverInfo(driver: DriverName, info: Record<string, string>, out: FieldProblem[]): void {
  const allowed = DRIVER_INFO_KEYS[driver];
  for (const [k, v] of Object.entries(info)) {
    const field = `driver_info.${k}`;
    if (!allowed.includes(k)) {
      out.push({ field, value: v, expected: `a ${driver} driver_info key (${allowed.join(', ')})` });
      continue;
    }
    if (k === 'port' && !(/^\d+$/.test(v) && +v >= 1 && +v <= 65535)) out.push({ field, value: v, expected: 'a port from 1 to 65535' });
    if (k === 'address' && !/^[A-Za-z0-9.:[\]/-]+$/.test(v)) out.push({ field, value: v, expected: 'an IP address, host name or URL' });
    if (k === 'cipher_suite') {
      // IPMI v2.0 §22.15.2: suite 0 authenticates nothing; it is refused here,
      // at registration, not only when a command is about to be sent.
      if (!/^\d+$/.test(v) || +v > 17) out.push({ field, value: v, expected: 'an IPMI cipher suite number from 1 to 17' });
      else if (+v === 0) out.push({ field, value: v, expected: 'a cipher suite other than 0 (suite 0 has no authentication)' });
    }
    if (k === 'verify_ca' && !/^(true|false|\/.+)$/.test(v)) out.push({ field, value: v, expected: "'true', 'false' or an absolute path to a CA bundle" });
  }
  if (driver !== 'fake' && !info.address) out.push({ field: 'driver_info.address', value: undefined, expected: `the ${driver} BMC address` });
}

const ROOT_HINTS = ['size', 'wwn', 'serial', 'name', 'model', 'vendor', 'hctl', 'by_path', 'rotational', 'wwn_with_extension', 'wwn_vendor_extension'];
/** A capability name or value: no separators, since capabilities travel as `k:v,k:v`. */
export const CAP_TOKEN = /^[A-Za-z0-9_.-]+$/;
const ARCHES = ['x86_64', 'aarch64', 'ppc64le', 's390x', 'i686', 'riscv64'];

function checkProperties(p: NodeProperties, out: FieldProblem[]): void {
  const whole = (field: string, v: number | undefined, min: number) => {
    if (v !== undefined && (!Number.isInteger(v) || v < min)) out.push({ field, value: v, expected: `a whole number of at least ${min}` });
  };
  whole('properties.cpus', p.cpus, 1);
  whole('properties.memory_mb', p.memoryMb, 1);
  whole('properties.local_gb', p.localGb, 0);
  if (p.ipv4Address !== undefined && isIP(p.ipv4Address) !== 4) out.push({ field: 'properties.ipv4_address', value: p.ipv4Address, expected: 'an IPv4 address' });
  if (p.cpuArch !== undefined && !ARCHES.includes(p.cpuArch)) out.push({ field: 'properties.cpu_arch', value: p.cpuArch, expected: `one of ${ARCHES.join(', ')}` });
}

/** Every problem with a node; empty when it is valid. */
export function validateNode(n: NodeInput): FieldProblem[] {
  const out: FieldProblem[] = [];
  const nameProblem = checkName(n.name);
  if (nameProblem) out.push(nameProblem);
  if (!DRIVERS.includes(n.driver)) out.push({ field: 'driver', value: n.driver, expected: `one of ${DRIVERS.join(', ')}` });
  else checkDriverInfo(n.driver, n.driverInfo, out);
  const seen = new Set<string>();
  for (const p of n.ports) {
    if (normaliseMac(p) !== p) out.push({ field: 'ports', value: p, expected: MAC_EXPECTED });
    else if (seen.has(p)) out.push({ field: 'ports', value: p, expected: 'each MAC address once' });
    seen.add(p);
  }
  checkProperties(n.properties, out);
  for (const [k, v] of Object.entries(n.capabilities)) {
    if (!CAP_TOKEN.test(k) || !CAP_TOKEN.test(v)) out.push({ field: `capabilities.${k}`, value: v, expected: 'a key and value of letters, digits, _ . -' });
  }
  for (const k of Object.keys(n.rootDevice)) {
    if (!ROOT_HINTS.includes(k)) out.push({ field: `root_device.${k}`, value: n.rootDevice[k], expected: `a root device hint (${ROOT_HINTS.join(', ')})` });
  }
  return out;
}

/** "profile:compute,boot_mode:uefi" (Ironic's string form) → a map. */
export function parseCapabilities(v: unknown, field = 'capabilities'): { value: Record<string, string>; problem?: FieldProblem } {
  if (v === undefined || v === null || v === '') return { value: {} };
  if (typeof v === 'object' && !Array.isArray(v)) {
    return { value: Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, String(x)])) };
  }
  if (typeof v !== 'string') return { value: {}, problem: { field, value: v, expected: "'key:value,key:value' or a mapping" } };
  const out: Record<string, string> = {};
  for (const part of v.split(',').map((s) => s.trim()).filter(Boolean)) {
    const i = part.indexOf(':');
    if (i <= 0) return { value: {}, problem: { field, value: v, expected: "'key:value,key:value'" } };
    out[part.slice(0, i)] = part.slice(i + 1);
  }
  return { value: out };
}

export function isIpAddress(v: string): boolean {
  return isIP(v) !== 0;
}
