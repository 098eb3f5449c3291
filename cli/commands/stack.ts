import { Command, Option } from 'commander';
import { status as grpcStatus, type ServiceError } from '@grpc/grpc-js';
import {
  SignalStatus, type StackServiceClient, type DeploymentFailure, type Stack, type StackEvent, type StackOutput, type StackPlan, type StackResource,
} from '../../proto/gen/osp/v1/stack.js';
import { renderList, renderOne, UsageError, type Column, type Format } from '../output.js';
import { keyValues, positiveInt, repeatable, withOutput, type Ctx, type OutputOpts } from '../command-kit.js';
import type { Connection } from '../client.js';
import { collectStackBundle } from '../stack-bundle.js';
import { statusName, waitForStack } from '../stack-wait.js';
import { allPages, allStackResources, connectStacks } from '../stack-client.js';
export const MINUTE_MS = 60_000;

const json = (text: string): unknown => (text === '' ? null : JSON.parse(text));
const jsonValues = (m: Record<string, string>) => Object.fromEntries(Object.entries(m).map(([k, v]) => [k, json(v)]));

export const STACK_COLUMNS: Column<Stack>[] = [
  { key: 'name', label: 'Name', get: (s) => s.name },
  { key: 'id', label: 'ID', get: (s) => s.id },
  { key: 'status', label: 'Status', get: (s) => statusName(s.status) },
  { key: 'status_reason', label: 'Status Reason', get: (s) => s.statusReason },
  { key: 'resources', label: 'Resources', get: (s) => `${s.resourcesComplete}/${s.resourcesTotal}` },
  { key: 'created_at', label: 'Created At', get: (s) => s.createdAt },
  { key: 'updated_at', label: 'Updated At', get: (s) => s.updatedAt },
];

const SHOW_COLUMNS: Column<Stack>[] = [
  ...STACK_COLUMNS,
  { key: 'timeout_mins', label: 'Timeout Mins', get: (s) => s.timeoutMs / MINUTE_MS },
  { key: 'description', label: 'Description', get: (s) => s.description },
  { key: 'parameters', label: 'Parameters', get: (s) => jsonValues(s.parametersJson) },
  { key: 'outputs', label: 'Outputs', get: (s) => s.outputs.map((o) => o.name) },
];

export const PLAN_COLUMNS: Column<StackPlan>[] = (['create', 'update', 'replace', 'delete', 'unchanged'] as const)
  .map((k) => ({ key: k, label: k, get: (p: StackPlan) => p[k] }));

const RESOURCE_COLUMNS: Column<StackResource>[] = [
  { key: 'resource_name', label: 'Resource Name', get: (r) => r.name },
  { key: 'stack_path', label: 'Stack', get: (r) => r.stackPath },
  { key: 'physical_resource_id', label: 'Physical ID', get: (r) => r.physicalId },
  { key: 'resource_type', label: 'Type', get: (r) => r.type },
  { key: 'resource_status', label: 'Status', get: (r) => statusName(r.status) },
  { key: 'updated_time', label: 'Updated At', get: (r) => r.updatedAt },
];

const RESOURCE_SHOW_COLUMNS: Column<StackResource>[] = [
  ...RESOURCE_COLUMNS,
  { key: 'resource_status_reason', label: 'Status Reason', get: (r) => r.statusReason },
  { key: 'required_by', label: 'Required By', get: (r) => r.requiredBy },
  { key: 'properties', label: 'Properties', get: (r) => jsonValues(r.propertiesJson) },
  { key: 'attributes', label: 'Attributes', get: (r) => jsonValues(r.attributesJson) },
];

const EVENT_COLUMNS: Column<StackEvent>[] = [
  { key: 'id', label: 'ID', get: (e) => e.id },
  { key: 'event_time', label: 'Time', get: (e) => e.occurredAt },
  { key: 'stack_path', label: 'Stack', get: (e) => e.stackPath },
  { key: 'resource_name', label: 'Resource', get: (e) => e.resource },
  { key: 'resource_status', label: 'Status', get: (e) => statusName(e.status) },
  { key: 'resource_status_reason', label: 'Status Reason', get: (e) => e.statusReason },
];

const OUTPUT_COLUMNS: Column<StackOutput>[] = [
  { key: 'output_key', label: 'Output', get: (o) => o.name },
  { key: 'output_value', label: 'Value', get: (o) => json(o.valueJson) },
  { key: 'description', label: 'Description', get: (o) => o.description },
  { key: 'output_error', label: 'Error', get: (o) => o.error },
];

const FAILURE_COLUMNS: Column<DeploymentFailure>[] = [
  { key: 'stack_path', label: 'Stack', get: (f) => f.stackPath },
  { key: 'resource', label: 'Resource', get: (f) => f.resource },
  { key: 'node', label: 'Node', get: (f) => f.node },
  { key: 'config', label: 'Config', get: (f) => f.config },
  { key: 'status_code', label: 'Exit Code', get: (f) => f.statusCode },
  { key: 'stderr_tail', label: 'Stderr (tail)', get: (f) => f.stderrTail },
  { key: 'status_reason', label: 'Status Reason', get: (f) => f.statusReason },
];

interface TemplateOpts extends OutputOpts {
  template: string;
  environment: string[];
  parameter: string[];
  timeout?: number;
  dryRun?: boolean;
  wait?: boolean;
}

function withTemplateOptions(cmd: Command, operation: boolean): Command {
  withOutput(cmd)
    .argument('<name>', 'stack name')
    .requiredOption('-t, --template <file>', 'the HOT template')
    .option('-e, --environment <file>', 'environment file, merged in order (repeatable)', repeatable, [])
    .option('--parameter <key=value>', 'parameter value; wins over the environments (repeatable)', repeatable, []);
  if (operation) {
    cmd.option('--timeout <minutes>', "stack timeout in minutes (default: ospd's)", positiveInt('--timeout'))
      .option('--dry-run', 'show what would be created, updated, replaced and deleted; change nothing')
      .option('--wait', 'follow the progress until the stack is no longer in progress; exit 1 when it failed');
  }
  return cmd;
}

async function request(name: string, o: TemplateOpts) {
  const bundle = await collectStackBundle(o.template, o.environment);
  return {
    stack: name, ...bundle, parameters: Object.fromEntries(keyValues('--parameter', o.parameter)),
    timeoutMs: (o.timeout ?? 0) * MINUTE_MS, dryRun: o.dryRun ?? false,
  };
}

/** Prints the events after `marker`, then each new one, until Ctrl-C or ospd ends the stream. */
async function follow(c: Connection, stacks: StackServiceClient, name: string, format: Format, out: (s: string) => void): Promise<void> {
  const stream = stacks.watchStackEvents({ stack: name, marker: '' }, c.metadata());
  await new Promise<void>((resolve, reject) => {
    const stop = () => {
      stream.cancel();
      resolve();
    };
    process.once('SIGINT', stop);
    stream.on('data', ({ event: e }: { event: StackEvent }) => {
      out(format === 'json'
        ? `${JSON.stringify(Object.fromEntries(EVENT_COLUMNS.map((col) => [col.key, col.get(e)])))}\n`
        : `${e.occurredAt} ${e.stackPath} ${e.resource} ${statusName(e.status)}${e.statusReason ? ` ${e.statusReason}` : ''}\n`);
    });
    stream.on('error', (err: ServiceError) => {
      process.removeListener('SIGINT', stop);
      return err.code === grpcStatus.CANCELLED ? resolve() : reject(c.explain(err));
    });
    stream.on('end', () => {
      process.removeListener('SIGINT', stop);
      resolve();
    });
  });
}

/** `ospctl stack …`: Heat (HOT) stacks run by ospd. */
export function stackCommand(ctx: Ctx): Command {
  const stack = new Command('stack').description('Heat (HOT) stacks: create, update, delete, inspect');
  const connect = () => connectStacks(ctx);

  for (const op of ['create', 'update'] as const) {
    withTemplateOptions(stack.command(op).description(op === 'create' ? 'create a stack from a template and environments' : 'update a stack to a new template, environments or parameters'), true)
      .action(async (name: string, o: TemplateOpts) => {
        const req = await request(name, o);
        const { c, stacks } = await connect();
        const r = op === 'create' ? await c.call(stacks, stacks.createStack, req) : await c.call(stacks, stacks.updateStack, req);
        if (r.plan) return ctx.out(renderOne(r.plan, PLAN_COLUMNS, o.format, o.column));
        const end = o.wait ? await waitForStack(c, stacks, name) : r.stack!;
        ctx.out(renderOne(end!, STACK_COLUMNS, o.format, o.column));
      });
  }

  withTemplateOptions(stack.command('validate').description('check a template and environments; nothing is stored'), false)
    .action(async (name: string, o: TemplateOpts) => {
      const req = await request(name, o);
      const { c, stacks } = await connect();
      const r = await c.call(stacks, stacks.validateStack, req);
      for (const n of r.notes) process.stderr.write(`note: ${n}\n`);
      ctx.out(renderOne(r, [
        { key: 'resources', label: 'resources', get: (v) => (o.format === 'table' ? v.resources.map((x) => `${x.name} (${x.type})`) : v.resources) },
        { key: 'parameters', label: 'parameters', get: (v) => jsonValues(v.parametersJson) },
        { key: 'notes', label: 'notes', get: (v) => v.notes },
      ], o.format, o.column));
    });

  withOutput(stack.command('delete').description('delete a stack and its resources'))
    .argument('<name>', 'stack name')
    .option('--wait', 'follow the progress until the stack is gone; exit 1 when the deletion failed')
    .action(async (name: string, o: OutputOpts & { wait?: boolean }) => {
      const { c, stacks } = await connect();
      const r = await c.call(stacks, stacks.deleteStack, { stack: name });
      const end = o.wait ? await waitForStack(c, stacks, name, { gone: true }) : r.stack;
      if (end) ctx.out(renderOne(end, STACK_COLUMNS, o.format, o.column));
    });

  withOutput(stack.command('check').description("check every resource of a stack (nested stacks included) against the world, as Heat's stack check; changes nothing"))
    .argument('<name>', 'stack name')
    .option('--wait', 'follow the progress until the check ends; exit 1 when a resource failed its check (see stack resource list)')
    .action(async (name: string, o: OutputOpts & { wait?: boolean }) => {
      const { c, stacks } = await connect();
      const r = await c.call(stacks, stacks.checkStack, { stack: name });
      const end = o.wait ? await waitForStack(c, stacks, name) : r.stack!;
      ctx.out(renderOne(end!, STACK_COLUMNS, o.format, o.column));
    });

  withOutput(stack.command('list').description('stacks'))
    .action(async (o: OutputOpts) => {
      const { c, stacks } = await connect();
      const all = await allPages(async (limit, marker) => {
        const r = await c.call(stacks, stacks.listStacks, { limit, marker });
        return { items: r.stacks, nextMarker: r.nextMarker };
      });
      ctx.out(renderList(all, STACK_COLUMNS, o.format, o.column));
    });

  withOutput(stack.command('show').description('one stack: status, parameters (hidden ones masked), outputs'))
    .argument('<name>', 'stack name')
    .action(async (name: string, o: OutputOpts) => {
      const { c, stacks } = await connect();
      ctx.out(renderOne((await c.call(stacks, stacks.getStack, { stack: name })).stack!, SHOW_COLUMNS, o.format, o.column));
    });

  const resource = stack.command('resource').description("a stack's resources");
  withOutput(resource.command('list').description("the stack's resources"))
    .argument('<name>', 'stack name')
    .option('--nested-depth <n>', 'also list the resources of nested stacks this many levels down', (v) => {
      if (!/^\d+$/.test(v)) throw new UsageError(`--nested-depth ${v}: expected a whole number (0 or more)`);
      return Number(v);
    }, 0)
    .action(async (name: string, o: OutputOpts & { nestedDepth: number }) => {
      const { c, stacks } = await connect();
      ctx.out(renderList(await allStackResources(c, stacks, name, o.nestedDepth), RESOURCE_COLUMNS, o.format, o.column));
    });
  withOutput(resource.command('show').description('one resource: status, properties, attributes (secrets masked)'))
    .argument('<name>', 'stack name, or a nested stack path (top/Compute/0)')
    .argument('<resource>', 'resource name')
    .action(async (name: string, res: string, o: OutputOpts) => {
      const { c, stacks } = await connect();
      ctx.out(renderOne((await c.call(stacks, stacks.getStackResource, { stack: name, resource: res })).resource!, RESOURCE_SHOW_COLUMNS, o.format, o.column));
    });

  const event = stack.command('event').description("a stack's events");
  withOutput(event.command('list').description('status changes of the stack and its resources, oldest first'))
    .argument('<name>', 'stack name')
    .option('--follow', 'then print each new event as it happens (Ctrl-C to stop); one line each, or JSON lines with -f json')
    .action(async (name: string, o: OutputOpts & { follow?: boolean }) => {
      const { c, stacks } = await connect();
      if (o.follow) return follow(c, stacks, name, o.format, ctx.out);
      const all = await allPages(async (limit, marker) => {
        const r = await c.call(stacks, stacks.listStackEvents, { stack: name, limit, marker });
        return { items: r.events, nextMarker: r.nextMarker };
      });
      ctx.out(renderList(all, EVENT_COLUMNS, o.format, o.column));
    });

  const output = stack.command('output').description("a stack's outputs");
  withOutput(output.command('show').description('one output, or all of them with --all'))
    .argument('<name>', 'stack name')
    .argument('[output]', 'output name')
    .option('--all', 'every output')
    .action(async (name: string, wanted: string | undefined, o: OutputOpts & { all?: boolean }) => {
      if (!wanted === !o.all) throw new UsageError('stack output show: name one OUTPUT or give --all (not both)');
      const { c, stacks } = await connect();
      const outputs = (await c.call(stacks, stacks.getStack, { stack: name })).stack!.outputs;
      if (o.all) return ctx.out(renderList(outputs, OUTPUT_COLUMNS, o.format, o.column));
      const one = outputs.find((x) => x.name === wanted);
      if (!one) throw new UsageError(`stack ${name} has no output ${JSON.stringify(wanted)} (outputs: ${outputs.map((x) => x.name).join(', ') || 'none'})`);
      ctx.out(renderOne(one, OUTPUT_COLUMNS, o.format, o.column));
    });

  withOutput(stack.command('failures').description('each failed software deployment: node, config, exit code, stderr tail'))
    .argument('<name>', 'stack name')
    .action(async (name: string, o: OutputOpts) => {
      const { c, stacks } = await connect();
      ctx.out(renderList((await c.call(stacks, stacks.listStackFailures, { stack: name })).failures, FAILURE_COLUMNS, o.format, o.column));
    });

  stack.command('signal').description('signal a WaitConditionHandle, as a server would with curl')
    .argument('<name>', 'stack name, or a nested stack path')
    .argument('<resource>', 'the OS::Heat::WaitConditionHandle resource')
    .option('--data <json>', 'the signal\'s data (JSON)')
    .option('--reason <text>', 'the signal\'s reason', '')
    .option('--id <id>', 'the signal\'s id; a signal with the same id replaces it', '')
    .addOption(new Option('--status <status>', 'the signal\'s status').choices(['SUCCESS', 'FAILURE']).default('SUCCESS'))
    .action(async (name: string, res: string, o: { data?: string; reason: string; id: string; status: string }) => {
      if (o.data !== undefined) {
        try {
          JSON.parse(o.data);
        } catch (e) {
          throw new UsageError(`--data ${o.data}: not JSON: ${(e as Error).message}`);
        }
      }
      const { c, stacks } = await connect();
      const status = o.status === 'FAILURE' ? SignalStatus.SIGNAL_STATUS_FAILURE : SignalStatus.SIGNAL_STATUS_SUCCESS;
      await c.call(stacks, stacks.signalStack, { stack: name, resource: res, status, reason: o.reason, data: o.data ?? '', id: o.id });
      ctx.out(`Signalled ${res} of stack ${name} (${o.status})\n`);
    });
  return stack;
}
