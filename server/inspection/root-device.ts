/**
 * Root device selection with Ironic's root device hints
 * (https://docs.openstack.org/ironic/latest/install/advanced.html#specifying-the-disk-for-deployment-root-device-hints).
 * A hint is a plain value (== for size, s== for strings) or an operator
 * expression: ==, !=, >=, <=, >, <, s==, s!=, s>=, s<=, s>, s<, <in>, <or>.
 * Every given hint must match; the first disk in inventory order wins.
 */

export interface InventoryDisk {
  name?: string;
  size?: number;
  model?: string | null;
  vendor?: string | null;
  serial?: string | null;
  wwn?: string | null;
  wwn_with_extension?: string | null;
  wwn_vendor_extension?: string | null;
  hctl?: string | null;
  by_path?: string | null;
  rotational?: boolean;
}

export const GIB = 1024 ** 3;
/** IPA ignores disks smaller than this when guessing the root device. */
export const MIN_ROOT_DISK_BYTES = 4 * GIB;

const HINT_KEYS = ['size', 'wwn', 'serial', 'name', 'model', 'vendor', 'hctl', 'by_path', 'rotational', 'wwn_with_extension', 'wwn_vendor_extension'] as const;
const OP_RE = /^\s*(s==|s!=|s>=|s<=|s>|s<|==|!=|>=|<=|<in>|<or>|>|<)\s*(.*)$/s;

export class HintError extends Error {}

function parseBool(field: string, v: string): boolean {
  const t = v.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(t)) return true;
  if (['false', '0', 'no', 'off'].includes(t)) return false;
  throw new HintError(`root_device.${field}: ${JSON.stringify(v)}: expected true or false`);
}

function normaliseName(v: string): string {
  return v.startsWith('/dev/') ? v : `/dev/${v}`;
}

/** Does the disk's value satisfy one hint expression? */
function matchExpr(field: string, expr: string, actual: string | number | null | undefined): boolean {
  if (actual === null || actual === undefined || actual === '') return false;
  const m = OP_RE.exec(expr);
  const numeric = field === 'size';
  const op = m ? m[1] : numeric ? '==' : 's==';
  const rhs = (m ? m[2] : expr).trim();
  if (op === '<or>') {
    // "<or> 100 <or> 200": any alternative (each may carry its own operator).
    return expr.split('<or>').map((s) => s.trim()).filter(Boolean).some((alt) => matchExpr(field, alt, actual));
  }
  if (numeric) {
    if (op.startsWith('s') || op === '<in>') throw new HintError(`root_device.size: ${JSON.stringify(expr)}: expected a whole number of GiB with ==, !=, >=, <=, > or <`);
    if (!/^\d+$/.test(rhs)) throw new HintError(`root_device.size: ${JSON.stringify(expr)}: expected a whole number of GiB, optionally after ==, !=, >=, <=, > or <`);
    const a = Number(actual);
    const b = Number(rhs);
    return { '==': a === b, '!=': a !== b, '>=': a >= b, '<=': a <= b, '>': a > b, '<': a < b }[op] ?? false;
  }
  // Identifiers (wwn, serial, vendor) differ in case between tools; compare case-insensitively.
  let a = String(actual).toLowerCase();
  let b = rhs.toLowerCase();
  if (field === 'name') {
    a = normaliseName(a);
    if (op !== '<in>') b = normaliseName(b);
  }
  switch (op) {
    case 's==': case '==': return a === b;
    case 's!=': case '!=': return a !== b;
    case 's>=': case '>=': return a >= b;
    case 's<=': case '<=': return a <= b;
    case 's>': case '>': return a > b;
    case 's<': case '<': return a < b;
    case '<in>': return a.includes(b);
  }
  return false;
}

/** Checks the hints themselves; throws a HintError naming the bad one. */
export function checkHints(hints: Record<string, string>): void {
  for (const [k, v] of Object.entries(hints)) {
    if (!(HINT_KEYS as readonly string[]).includes(k)) throw new HintError(`root_device.${k}: ${JSON.stringify(v)}: expected a root device hint (${HINT_KEYS.join(', ')})`);
    if (k === 'rotational') parseBool(k, v);
    if (k === 'size') matchExpr('size', v, 0);
  }
}

export function diskMatches(d: InventoryDisk, hints: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(hints)) {
    if (k === 'rotational') {
      if (d.rotational === undefined || d.rotational !== parseBool(k, v)) return false;
    } else if (k === 'size') {
      if (typeof d.size !== 'number' || !matchExpr(k, v, Math.floor(d.size / GIB))) return false;
    } else if (!matchExpr(k, v, d[k as keyof InventoryDisk] as string | null | undefined)) {
      return false;
    }
  }
  return true;
}

/**
 * The disk the OS goes on: the first matching the hints, or without hints
 * IPA's default, the smallest disk of at least 4 GiB. Null when none fits.
 */
export function chooseRootDisk(disks: InventoryDisk[], hints: Record<string, string>): InventoryDisk | null {
  checkHints(hints);
  if (Object.keys(hints).length) return disks.find((d) => diskMatches(d, hints)) ?? null;
  const big = disks.filter((d) => typeof d.size === 'number' && d.size >= MIN_ROOT_DISK_BYTES);
  big.sort((a, b) => (a.size ?? 0) - (b.size ?? 0));
  return big[0] ?? null;
}
