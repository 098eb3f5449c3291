import { Command } from 'commander';
import { PxeServiceClient, type BootLogEntry, type DhcpLease, type PxeServiceState } from '../../proto/gen/osp/v1/pxe.js';
import { renderList, renderOne, type Column } from '../output.js';
import { positiveInt, withOutput, type Ctx, type OutputOpts } from '../command-kit.js';

const SERVICE_COLUMNS: Column<PxeServiceState>[] = [
  { key: 'service', label: 'Service', get: (s) => s.service },
  { key: 'running', label: 'Running', get: (s) => s.running },
  { key: 'listen', label: 'Listen', get: (s) => s.listen },
  { key: 'detail', label: 'Detail', get: (s) => JSON.parse(s.detailJson || '{}') },
  { key: 'counters', label: 'Counters', get: (s) => s.counters },
];
const LEASE_COLUMNS: Column<DhcpLease>[] = [
  { key: 'mac', label: 'MAC', get: (l) => l.mac },
  { key: 'ipv4_address', label: 'Address', get: (l) => l.ipv4Address },
  { key: 'node', label: 'Node', get: (l) => l.nodeName },
  { key: 'hostname', label: 'Hostname', get: (l) => l.hostname },
  { key: 'expires_at', label: 'Expires At', get: (l) => l.expiresAt },
];
const BOOT_COLUMNS: Column<BootLogEntry>[] = [
  { key: 'time', label: 'Time', get: (e) => e.time },
  { key: 'mac', label: 'MAC', get: (e) => e.mac },
  { key: 'service', label: 'Service', get: (e) => e.service },
  { key: 'event', label: 'Event', get: (e) => e.event },
  { key: 'detail', label: 'Detail', get: (e) => JSON.parse(e.detailJson || '{}') },
];

/** `ospctl pxe status|leases`. */
export function pxeCommand(ctx: Ctx): Command {
  const pxe = new Command('pxe').description('network boot services: DHCP, TFTP, HTTP boot');
  const client = async () => {
    const c = await ctx.connect();
    return { c, p: c.client(PxeServiceClient) };
  };
  withOutput(pxe.command('status').description('services, interface, mode, counters, and whether a ramdisk is in place'))
    .action(async (o: OutputOpts) => {
      const { c, p } = await client();
      const s = await c.call(p, p.getPxeStatus, {});
      if (o.format === 'table' && !o.column.length) {
        const r = s.ramdisk!;
        ctx.out(renderList(s.services, SERVICE_COLUMNS, o.format, []));
        ctx.out(`discovery: ${s.discovery ? 'on' : 'off'}; boot scripts at ${s.httpBaseUrl || '(http off)'}/boot.ipxe; agents reach ${s.serverAddress}\n`);
        ctx.out(`ramdisk: ${r.kernelPresent && r.initramfsPresent ? 'in place' : 'MISSING'} (${r.kernelPath}${r.kernelPresent ? '' : ' missing'}, ${r.initramfsPath}${r.initramfsPresent ? '' : ' missing'})\n`);
        for (const w of s.warnings) ctx.out(`WARNING: ${w}\n`);
        return;
      }
      ctx.out(renderOne(s, [
        { key: 'services', label: 'Services', get: (x) => x.services.map((v) => ({ service: v.service, running: v.running, listen: v.listen, counters: v.counters, ...JSON.parse(v.detailJson || '{}') })) },
        { key: 'ramdisk', label: 'Ramdisk', get: (x) => ({ kernel_path: x.ramdisk?.kernelPath, initramfs_path: x.ramdisk?.initramfsPath, kernel_present: x.ramdisk?.kernelPresent, initramfs_present: x.ramdisk?.initramfsPresent }) },
        { key: 'discovery', label: 'Discovery', get: (x) => x.discovery },
        { key: 'http_base_url', label: 'HTTP Base URL', get: (x) => x.httpBaseUrl },
        { key: 'server_address', label: 'Server Address', get: (x) => x.serverAddress },
        { key: 'warnings', label: 'Warnings', get: (x) => x.warnings },
      ], o.format, o.column));
    });
  withOutput(pxe.command('leases').description('DHCP leases (full mode)'))
    .action(async (o: OutputOpts) => {
      const { c, p } = await client();
      ctx.out(renderList((await c.call(p, p.listLeases, {})).leases, LEASE_COLUMNS, o.format, o.column));
    });
  return pxe;
}

/** `ospctl node boot-log NODE`: DHCP/TFTP/HTTP steps seen for the node's MACs, newest first. */
export function addBootLogCommand(node: Command, ctx: Ctx): void {
  withOutput(node.command('boot-log').description("DHCP, TFTP and HTTP steps seen for the node's MACs, newest first"))
    .argument('<node>', 'uuid or name')
    .option('--limit <n>', 'at most this many entries (default 200)', positiveInt('--limit'))
    .action(async (id: string, o: OutputOpts & { limit?: number }) => {
      const c = await ctx.connect();
      const p = c.client(PxeServiceClient);
      ctx.out(renderList((await c.call(p, p.getBootLog, { id, limit: o.limit ?? 200 })).entries, BOOT_COLUMNS, o.format, o.column));
    });
}
