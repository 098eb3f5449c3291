import type { Problem } from '../../../common/errors.js';
import { PROPERTY_NAMES, propertyField } from '../../../common/node-properties.js';
import { DRIVER_ALIASES, DRIVER_INFO_KEYS, canonicalInfoKey } from '../../nodes/validate.js';

/**
 * What both rule formats share when checking a rule: the problem-line style
 * ("where: value: expected …") and the node attributes a rule may change,
 * which are osp's node model, not Ironic's.
 */

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ATTRIBUTE_ROOTS = ['name', 'driver', 'driver_info', 'properties', 'capabilities', 'root_device', 'maintenance', 'maintenance_reason'];
const KNOWN_INFO_KEYS = new Set(Object.values(DRIVER_INFO_KEYS).flat());
export const TRAIT = /^[A-Z0-9_]+$/;

/** One per field at fault; `description` is the operator's line, `field` the path a client can point at. */
export type Problems = Problem[];

function show(v: unknown): string {
  return v === undefined ? 'missing' : JSON.stringify(v);
}

export function problem(out: Problems, field: string, value: unknown, expected: string): void {
  out.push({ field, description: `${field}: ${show(value)}: expected ${expected}` });
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Attribute paths osp nodes have, in inspector's spelling (driver_info/ipmi_address or /driver). */
export function checkAttributePath(path: unknown, value: unknown, where: string, out: Problems): string | null {
  if (typeof path !== 'string' || !path.trim()) return problem(out, `${where}.path`, path, 'a node attribute path such as /driver_info/ipmi_username'), null;
  const norm = `/${path.trim().replace(/^\//, '').replace(/\./g, '/')}`;
  const [, top, key, extra] = norm.split('/');
  if (!ATTRIBUTE_ROOTS.includes(top) || extra !== undefined) {
    problem(out, `${where}.path`, path, `a path under ${ATTRIBUTE_ROOTS.map((r) => `/${r}`).join(', ')} (osp nodes have no ${top === 'extra' ? '"extra"' : 'such attribute'})`);
    return null;
  }
  const needsKey = ['driver_info', 'properties', 'capabilities', 'root_device'].includes(top);
  if (needsKey !== (key !== undefined && key !== '')) {
    problem(out, `${where}.path`, path, needsKey ? `/${top}/<key>` : `/${top} with no key below it`);
    return null;
  }
  if (top === 'driver_info' && !KNOWN_INFO_KEYS.has(canonicalInfoKey('ipmi', key))) {
    problem(out, `${where}.path`, path, `a driver_info key osp drivers use (${[...KNOWN_INFO_KEYS].join(', ')}, with or without an ipmi_/redfish_ prefix)`);
    return null;
  }
  if (top === 'properties' && !propertyField(key)) {
    problem(out, `${where}.path`, path, `/properties/<${PROPERTY_NAMES.join('|')}>${key === 'capabilities' ? ' (use set-capability for capabilities)' : ''}`);
    return null;
  }
  const literal = typeof value === 'string' && !value.includes('{');
  if (top === 'driver' && literal && !DRIVER_ALIASES[(value).toLowerCase()]) {
    problem(out, `${where}.value`, value, `a driver osp has (${Object.keys(DRIVER_ALIASES).join(', ')})`);
    return null;
  }
  return norm;
}

