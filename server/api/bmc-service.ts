import type { Logger } from '../../common/logging.js';
import { OspError } from '../../common/errors.js';
import { BmcServiceService, type BmcServiceServer } from '../../proto/gen/osp/v1/bmc.js';
import type { NodeRegistry } from '../nodes/registry.js';
import type { NodePower } from '../nodes/power.js';
import type { BootDevice, BootMode } from '../bmc/types.js';
import { toProtoNode } from './mappers.js';
import { unary, type Authenticator } from './call.js';

function required(field: string, v: string): string {
  if (!v) throw new OspError('INVALID_ARGUMENT', `${field}: missing: expected a node uuid or name`, { field });
  return v;
}

/** BmcService: power, boot device, manage and maintenance over the node's BMC driver. */
export function bmcService(registry: NodeRegistry, power: NodePower, auth: Authenticator, log: Logger) {
  const show = toProtoNode;
  const impl: BmcServiceServer = {
    getPowerState: unary(log, 'GetPowerState', auth, async (req, ctx) => {
      const r = await power.powerState(required('id', req.id), ctx.caller.name);
      return { powerState: r.state, node: show(r.node), durationMs: r.durationMs };
    }),
    setPowerState: unary(log, 'SetPowerState', auth, async (req, ctx) => {
      const r = await power.setPower(required('id', req.id), req.action, req.wait, ctx.caller.name);
      return { powerState: r.state, node: show(r.node), durationMs: r.durationMs };
    }),
    setBootDevice: unary(log, 'SetBootDevice', auth, async (req, ctx) => show(await power.setBootDevice(required('id', req.id), {
      device: req.device as BootDevice, persistent: req.persistent, mode: req.mode ? (req.mode as BootMode) : undefined,
    }, ctx.caller.name))),
    manageNode: unary(log, 'ManageNode', auth, async (req, ctx) => show(await power.manage(required('id', req.id), req.wait, ctx.caller.name))),
    setMaintenance: unary(log, 'SetMaintenance', auth, async (req, ctx) =>
      show(await power.setMaintenance(required('id', req.id), req.on, req.reason, ctx.caller.name))),
  };
  return { definition: BmcServiceService, impl };
}
