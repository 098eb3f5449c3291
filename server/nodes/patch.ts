import { OspError } from '../../common/errors.js';
import { PROPERTY_NAMES, isNumericProperty, propertyField } from '../../common/node-properties.js';
import type { NodeInput, NodeRecord, DriverName } from './model.js';
import { MAC_EXPECTED, normaliseMac } from '../../common/mac.js';
import { DRIVER_ALIASES, canonicalInfoKey } from './validate.js';

/** One RFC 6902-style operation, as Ironic's PATCH takes them. */
export interface PatchOp {
  op: string;
  path: string;
  value: string;
}

function bad(path: string, value: string, expected: string): never {
  throw new OspError('NODE_INVALID', `${path}: ${JSON.stringify(value)}: expected ${expected}`, { field: path });
}

/**
 * Applies operations to a copy of the node. Validation of the result is the
 * caller's (the same validateNode as for create), so a patch can never store
 * what create would refuse.
 */
export function applyPatch(cur: NodeRecord, ops: PatchOp[]): {
  input: NodeInput; maintenance: boolean; maintenanceReason: string; changed: string[];
} {
  if (ops.length === 0) throw new OspError('INVALID_ARGUMENT', 'patch: no changes given');
  const input: NodeInput = {
    name: cur.name, ports: [...cur.ports], driver: cur.driver, driverInfo: { ...cur.driverInfo },
    properties: { ...cur.properties }, capabilities: { ...cur.capabilities }, rootDevice: { ...cur.rootDevice },
  };
  let maintenance = cur.maintenance;
  let maintenanceReason = cur.maintenanceReason;
  const changed: string[] = [];
  for (const { op, path, value } of ops) {
    if (!['add', 'replace', 'remove'].includes(op)) bad('op', op, 'add, replace or remove');
    const remove = op === 'remove';
    const [, top, key, extra] = path.split('/');
    if (extra !== undefined || !top) bad('path', path, 'a path like /name or /driver_info/address');
    changed.push(path);
    switch (top) {
      case 'name':
        if (remove) bad(path, value, 'a name (it cannot be removed)');
        input.name = value;
        break;
      case 'driver': {
        const d = DRIVER_ALIASES[value.toLowerCase()] as DriverName | undefined;
        if (remove || !d) bad(path, value, `one of ${Object.keys(DRIVER_ALIASES).join(', ')}`);
        input.driver = d;
        break;
      }
      case 'ports': {
        const macs = value.split(',').map((s) => s.trim()).filter(Boolean).map((m) => normaliseMac(m) ?? bad(path, m, MAC_EXPECTED));
        if (op === 'replace') input.ports = [...new Set(macs)];
        else if (op === 'add') input.ports = [...new Set([...input.ports, ...macs])];
        else input.ports = macs.length ? input.ports.filter((p) => !macs.includes(p)) : [];
        break;
      }
      case 'maintenance':
        if (!remove && value !== 'true' && value !== 'false') bad(path, value, "'true' or 'false'");
        maintenance = !remove && value === 'true';
        if (!maintenance) maintenanceReason = '';
        break;
      case 'maintenance_reason':
        maintenanceReason = remove ? '' : value;
        break;
      case 'driver_info': {
        if (!key) bad('path', path, '/driver_info/<key>');
        const k = canonicalInfoKey(input.driver, key);
        if (remove) delete input.driverInfo[k];
        else input.driverInfo[k] = value;
        break;
      }
      case 'properties': {
        const p = propertyField(key);
        if (!p) bad('path', path, `/properties/<${PROPERTY_NAMES.join('|')}>`);
        if (remove) delete input.properties[p];
        else if (!isNumericProperty(p)) input.properties[p] = value;
        else if (!/^\d+$/.test(value)) bad(path, value, 'a whole number');
        else input.properties[p] = Number(value);
        break;
      }
      case 'capabilities':
      case 'root_device': {
        if (!key) bad('path', path, `/${top}/<key>`);
        const m = top === 'capabilities' ? input.capabilities : input.rootDevice;
        if (remove) delete m[key];
        else m[key] = value;
        break;
      }
      default:
        bad('path', path, 'one of /name, /driver, /ports, /maintenance, /maintenance_reason, /driver_info/<k>, /properties/<k>, /capabilities/<k>, /root_device/<k>');
    }
  }
  return { input, maintenance, maintenanceReason, changed };
}
