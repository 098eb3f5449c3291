import { Command } from 'commander';
import path from 'node:path';
import { NodeServiceClient, type Node, type NodeEvent, type PatchOperation } from '../../proto/gen/osp/v1/node.js';
import { renderList, renderOne, UsageError, type Column } from '../output.js';
import { PROPERTY_NAMES, isNumericProperty, propertyField } from '../../common/node-properties.js';
import { NODE_COLUMNS, nodeColumns } from './node-columns.js';
import { keyValues, positiveInt, readInputFile, repeatable, withOutput, type Ctx, type OutputOpts } from '../command-kit.js';
import { addNodePowerCommands } from './node-power.js';
import { addConfigCommands } from './node-config.js';
import { addInventoryCommand } from './telemetry.js';
import { addNodeInspectCommands } from './node-inspect.js';
import { addNodeDeployCommands } from './node-deploy.js';
import { addBootLogCommand } from './pxe.js';

const col = nodeColumns;
const LIST_COLUMNS = col('uuid', 'name', 'power_state', 'provision_state', 'maintenance');
const LONG_COLUMNS = col('uuid', 'name', 'power_state', 'provision_state', 'maintenance', 'driver', 'ports', 'profile', 'properties', 'last_error', 'updated_at');
const SHOW_COLUMNS = NODE_COLUMNS.filter((c) => c.key !== 'profile');

const EVENT_COLUMNS: Column<NodeEvent>[] = [
  { key: 'time', label: 'Time', get: (e) => e.time },
  { key: 'type', label: 'Type', get: (e) => e.type },
  { key: 'actor', label: 'Actor', get: (e) => e.actor },
  { key: 'message', label: 'Message', get: (e) => e.message },
  { key: 'data', label: 'Data', get: (e) => JSON.parse(e.data || '{}') },
];

interface SpecOpts {
  driverInfo?: string[];
  property?: string[];
  capability?: string[];
  rootDevice?: string[];
  port?: string[];
}

function specFlags(cmd: Command): Command {
  return cmd
    .option('--driver-info <key=value>', 'BMC setting: address, port, username, password, cipher_suite, system_id, verify_ca (repeatable)', repeatable)
    .option('--property <key=value>', `${PROPERTY_NAMES.join(', ')} (repeatable)`, repeatable)
    .option('--capability <key=value>', 'capability such as profile=compute (repeatable)', repeatable)
    .option('--root-device <key=value>', 'root device hint such as serial=S123 (repeatable)', repeatable)
    .option('--port <mac>', 'MAC address of a NIC (repeatable)', repeatable);
}

function numericProperty(k: string, v: string): number {
  if (!/^\d+$/.test(v)) throw new UsageError(`--property ${k}=${v}: expected a whole number`);
  return Number(v);
}

export function nodeCommand(ctx: Ctx): Command {
  const node = new Command('node').description('register and manage bare-metal nodes');
  const client = async () => {
    const c = await ctx.connect();
    return { c, nodes: c.client(NodeServiceClient) };
  };

  specFlags(withOutput(node.command('create').description('register one node')))
    .requiredOption('--name <name>', 'node name (a DNS label)')
    .requiredOption('--driver <driver>', 'ipmi, redfish or fake')
    .action(async (o: SpecOpts & OutputOpts & { name: string; driver: string }) => {
      const { c, nodes } = await client();
      const properties: Record<string, unknown> = {};
      for (const [k, v] of keyValues('--property', o.property)) {
        const f = propertyField(k);
        if (!f) throw new UsageError(`--property ${k}: expected one of ${PROPERTY_NAMES.join(', ')}`);
        properties[f] = isNumericProperty(f) ? numericProperty(k, v) : v;
      }
      const n = await c.call(nodes, nodes.createNode, {
        spec: {
          name: o.name, driver: o.driver, ports: o.port ?? [], driverInfo: Object.fromEntries(keyValues('--driver-info', o.driverInfo)),
          properties, capabilities: Object.fromEntries(keyValues('--capability', o.capability)),
          rootDevice: Object.fromEntries(keyValues('--root-device', o.rootDevice)),
        },
      });
      ctx.out(renderOne(n, SHOW_COLUMNS, o.format, o.column));
    });

  withOutput(node.command('import').description("register nodes from a TripleO/Ironic node file (JSON or YAML); all or nothing"))
    .argument('<file>', 'instackenv.json / nodes.yaml')
    .action(async (file: string, o: OutputOpts) => {
      const content = await readInputFile(file);
      const { c, nodes } = await client();
      const r = await c.call(nodes, nodes.importNodes, { content, source: path.basename(file) }, 120_000);
      const rows = [
        ...r.created.map((n) => ({ n, result: 'created' })),
        ...r.updated.map((n) => ({ n, result: 'updated' })),
        ...r.unchanged.map((n) => ({ n, result: 'unchanged' })),
      ];
      ctx.out(renderList(rows, [
        { key: 'uuid', label: 'UUID', get: (x) => x.n.uuid },
        { key: 'name', label: 'Name', get: (x) => x.n.name },
        { key: 'result', label: 'Result', get: (x) => x.result },
      ], o.format, o.column));
    });

  withOutput(node.command('list').description('list nodes'), { long: true })
    .option('--provision-state <state>', 'only nodes in this provision state')
    .option('--profile <profile>', 'only nodes with this profile capability')
    .option('--maintenance', 'only nodes in maintenance')
    .option('--no-maintenance', 'only nodes not in maintenance')
    .option('--driver <driver>', 'only nodes with this driver')
    .option('--limit <n>', 'at most this many nodes (default: all, fetched in pages)', positiveInt('--limit'))
    .option('--marker <node>', 'start after this node (uuid or name)')
    .action(async (o: OutputOpts & { provisionState?: string; profile?: string; maintenance?: boolean; driver?: string; limit?: number; marker?: string }) => {
      const { c, nodes } = await client();
      const all: Node[] = [];
      let marker = o.marker ?? '';
      for (let page = 0; page < 10_000; page++) {
        const want = o.limit ? o.limit - all.length : 0;
        const r = await c.call(nodes, nodes.listNodes, {
          provisionState: o.provisionState ?? '', profile: o.profile ?? '', maintenance: o.maintenance, driver: o.driver ?? '', limit: want, marker,
        });
        all.push(...r.nodes);
        marker = r.nextMarker;
        if (!marker || (o.limit && all.length >= o.limit)) break;
      }
      // -c may name any node field, as with `openstack baremetal node list --fields`.
      ctx.out(renderList(all, o.column.length ? NODE_COLUMNS : o.long ? LONG_COLUMNS : LIST_COLUMNS, o.format, o.column));
    });

  withOutput(node.command('show').description('show one node'))
    .argument('<node>', 'uuid or name')
    .action(async (id: string, o: OutputOpts) => {
      const { c, nodes } = await client();
      ctx.out(renderOne(await c.call(nodes, nodes.getNode, { id }), SHOW_COLUMNS, o.format, o.column));
    });

  const patchFlags = (cmd: Command) => specFlags(cmd).option('--name <name>', 'new name').option('--driver <driver>', 'new driver');
  patchFlags(withOutput(node.command('set').description('change fields of a node')))
    .argument('<node>', 'uuid or name')
    .action(async (id: string, o: SpecOpts & OutputOpts & { name?: string; driver?: string }) => {
      const ops: PatchOperation[] = [];
      if (o.name) ops.push({ op: 'replace', path: '/name', value: o.name });
      if (o.driver) ops.push({ op: 'replace', path: '/driver', value: o.driver });
      for (const [flag, prefix, list] of [['--driver-info', 'driver_info', o.driverInfo], ['--property', 'properties', o.property],
        ['--capability', 'capabilities', o.capability], ['--root-device', 'root_device', o.rootDevice]] as const) {
        for (const [k, v] of keyValues(flag, list as string[] | undefined)) ops.push({ op: 'add', path: `/${prefix}/${k}`, value: v });
      }
      if (o.port?.length) ops.push({ op: 'add', path: '/ports', value: o.port.join(',') });
      if (!ops.length) throw new UsageError('node set: nothing to change (see ospctl node set --help)');
      const { c, nodes } = await client();
      ctx.out(renderOne(await c.call(nodes, nodes.updateNode, { id, patch: ops }), SHOW_COLUMNS, o.format, o.column));
    });

  withOutput(node.command('unset').description('remove fields of a node'))
    .argument('<node>', 'uuid or name')
    .option('--driver-info <key>', 'driver_info key to remove (repeatable)', repeatable)
    .option('--property <key>', 'property to remove (repeatable)', repeatable)
    .option('--capability <key>', 'capability to remove (repeatable)', repeatable)
    .option('--root-device <key>', 'root device hint to remove (repeatable)', repeatable)
    .option('--port <mac>', 'MAC address to remove (repeatable)', repeatable)
    .action(async (id: string, o: SpecOpts & OutputOpts) => {
      const ops: PatchOperation[] = [];
      for (const [prefix, list] of [['driver_info', o.driverInfo], ['properties', o.property], ['capabilities', o.capability], ['root_device', o.rootDevice]] as const) {
        for (const k of list ?? []) ops.push({ op: 'remove', path: `/${prefix}/${k}`, value: '' });
      }
      if (o.port?.length) ops.push({ op: 'remove', path: '/ports', value: o.port.join(',') });
      if (!ops.length) throw new UsageError('node unset: nothing to remove (see ospctl node unset --help)');
      const { c, nodes } = await client();
      ctx.out(renderOne(await c.call(nodes, nodes.updateNode, { id, patch: ops }), SHOW_COLUMNS, o.format, o.column));
    });

  node.command('delete').description('delete nodes (not while active or mid-operation)')
    .argument('<node...>', 'uuids or names')
    .action(async (ids: string[]) => {
      const { c, nodes } = await client();
      for (const id of ids) {
        const r = await c.call(nodes, nodes.deleteNode, { id });
        ctx.out(`Deleted node ${id} (${r.uuid})\n`);
      }
    });

  withOutput(node.command('history').description("a node's events, newest first"))
    .argument('<node>', 'uuid or name')
    .option('--limit <n>', 'at most this many events (default 100)', positiveInt('--limit'))
    .action(async (id: string, o: OutputOpts & { limit?: number }) => {
      const { c, nodes } = await client();
      const r = await c.call(nodes, nodes.listNodeEvents, { id, limit: o.limit ?? 100 });
      ctx.out(renderList(r.events, EVENT_COLUMNS, o.format, o.column));
    });

  addConfigCommands(node, ctx);
  addBootLogCommand(node, ctx);
  addInventoryCommand(node, ctx);
  addNodePowerCommands(node, ctx);
  addNodeInspectCommands(node, ctx);
  addNodeDeployCommands(node, ctx);
  return node;
}
