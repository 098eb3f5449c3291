import type { Command } from 'commander';
import { ServerError } from '../client.js';
import { BmcServiceClient, type PowerStateResponse } from '../../proto/gen/osp/v1/bmc.js';
import { renderOne, UsageError, type Column } from '../output.js';
import { withOutput, type Ctx, type OutputOpts } from '../command-kit.js';
import { nodeColumns } from './node-columns.js';

// A wait lasts as long as the BMC needs (the server bounds it); the CLI's deadline must not cut it first.
const WAIT_DEADLINE_MS = 15 * 60_000;

const POWER_VERBS: Record<string, string> = { on: 'on', off: 'off', reboot: 'reboot', 'soft-off': 'soft off', 'soft-reboot': 'soft reboot' };

const POWER_COLUMNS: Column<PowerStateResponse>[] = [
  { key: 'name', label: 'Name', get: (r) => r.node?.name },
  { key: 'power_state', label: 'Power State', get: (r) => r.powerState },
  { key: 'provision_state', label: 'Provisioning State', get: (r) => r.node?.provisionState },
  { key: 'duration_ms', label: 'BMC Time (ms)', get: (r) => r.durationMs },
];

const STATE_COLUMNS = nodeColumns('uuid', 'name', 'power_state', 'provision_state', 'maintenance', 'maintenance_reason', 'last_error');

/** Adds power, boot-device, manage and maintenance subcommands to `ospctl node`. */
export function addNodePowerCommands(node: Command, ctx: Ctx): void {
  const client = async () => {
    const c = await ctx.connect();
    return { c, bmc: c.client(BmcServiceClient) };
  };
  const deadline = (c: { timeoutMs: number }, wait: boolean | undefined) => (wait ? Math.max(c.timeoutMs, WAIT_DEADLINE_MS) : c.timeoutMs);

  const power = node.command('power').description("drive a node's power through its BMC");
  withOutput(power.command('status').description('read the power state from the BMC now'))
    .argument('<node>', 'uuid or name')
    .action(async (id: string, o: OutputOpts) => {
      const { c, bmc } = await client();
      ctx.out(renderOne(await c.call(bmc, bmc.getPowerState, { id }), POWER_COLUMNS, o.format, o.column));
    });
  for (const [verb, action] of Object.entries(POWER_VERBS)) {
    withOutput(power.command(verb).description(`power ${action}`))
      .argument('<node>', 'uuid or name')
      .option('--wait', 'wait until the BMC reports the target state')
      .action(async (id: string, o: OutputOpts & { wait?: boolean }) => {
        const { c, bmc } = await client();
        const r = await c.call(bmc, bmc.setPowerState, { id, action, wait: !!o.wait }, deadline(c, o.wait));
        ctx.out(renderOne(r, POWER_COLUMNS, o.format, o.column));
      });
  }

  const boot = node.command('boot-device').description("a node's boot device");
  withOutput(boot.command('set').description('set the boot device (next boot only unless --persistent)'))
    .argument('<node>', 'uuid or name')
    .argument('<device>', 'pxe, disk or cdrom')
    .option('--persistent', 'keep it for every boot')
    .option('--mode <mode>', 'uefi or bios')
    .action(async (id: string, device: string, o: OutputOpts & { persistent?: boolean; mode?: string }) => {
      if (!['pxe', 'disk', 'cdrom'].includes(device)) throw new UsageError(`boot-device set: device ${JSON.stringify(device)}: expected pxe, disk or cdrom`);
      if (o.mode !== undefined && o.mode !== 'uefi' && o.mode !== 'bios') throw new UsageError(`--mode ${o.mode}: expected uefi or bios`);
      const { c, bmc } = await client();
      const n = await c.call(bmc, bmc.setBootDevice, { id, device, persistent: !!o.persistent, mode: o.mode ?? '' });
      ctx.out(renderOne(n, STATE_COLUMNS, o.format, o.column));
    });

  withOutput(node.command('manage').description('verify BMC credentials: enroll → verifying → manageable'))
    .argument('<node>', 'uuid or name')
    .option('--wait', 'wait for verification to end; exit 1 if the node went back to enroll')
    .action(async (id: string, o: OutputOpts & { wait?: boolean }) => {
      const { c, bmc } = await client();
      const n = await c.call(bmc, bmc.manageNode, { id, wait: !!o.wait }, deadline(c, o.wait));
      ctx.out(renderOne(n, STATE_COLUMNS, o.format, o.column));
      if (o.wait && n.provisionState === 'enroll') {
        // Exit 1 like any server-side failure, after the node (with last_error) is shown.
        throw new ServerError(`node ${n.name}: credential verification failed: ${n.lastError}`, 'NODE_VERIFICATION_FAILED');
      }
    });

  const maint = node.command('maintenance').description('maintenance mode: power sync and automation leave the node alone');
  withOutput(maint.command('set').description('put a node into maintenance'))
    .argument('<node>', 'uuid or name')
    .option('--reason <text>', 'why (shown as maintenance_reason)', '')
    .action(async (id: string, o: OutputOpts & { reason: string }) => {
      const { c, bmc } = await client();
      ctx.out(renderOne(await c.call(bmc, bmc.setMaintenance, { id, on: true, reason: o.reason }), STATE_COLUMNS, o.format, o.column));
    });
  withOutput(maint.command('unset').description('take a node out of maintenance'))
    .argument('<node>', 'uuid or name')
    .action(async (id: string, o: OutputOpts) => {
      const { c, bmc } = await client();
      ctx.out(renderOne(await c.call(bmc, bmc.setMaintenance, { id, on: false, reason: '' }), STATE_COLUMNS, o.format, o.column));
    });
}
