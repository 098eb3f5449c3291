import { Command } from 'commander';
import type { StackServiceClient, Stack, StackPlan, StackResource } from '../../proto/gen/osp/v1/stack.js';
import { isOspError } from '../../common/errors.js';
import { renderList, renderOne, UsageError, type Column } from '../output.js';
import { positiveInt, repeatable, withOutput, type Ctx, type OutputOpts } from '../command-kit.js';
import { ServerError, type Connection } from '../client.js';
import { statusName, waitForStack } from '../stack-wait.js';
import { MINUTE_MS, PLAN_COLUMNS, STACK_COLUMNS } from './stack.js';
import { allStackResources, connectStacks } from '../stack-client.js';
import { overcloudBundle, type OvercloudBundle } from '../overcloud/bundle.js';
import { checkCapacity } from '../overcloud/capacity.js';
import { overcloudProgress } from '../overcloud/progress.js';
import { removalsFor, stepOfResource, toServer, type OvercloudServer } from '../overcloud/nodes.js';

const DEFAULT_STACK = 'overcloud';

interface SourceOpts extends OutputOpts {
  templates?: string;
  environment: string[];
  rolesFile?: string;
  stack: string;
  timeout?: number;
  wait?: boolean;
  dryRun?: boolean;
}

function withSources(cmd: Command): Command {
  return withOutput(cmd)
    .option('--templates <dir>', 'the template collection (default: the deploy/ folder shipped with osp)')
    .option('-e, --environment <file>', 'environment file, merged in order after the resource registry (repeatable)', repeatable, [])
    .option('-r, --roles-file <file>', 'roles file (default: roles_data.yaml of the templates)')
    .option('--stack <name>', 'the overcloud stack', DEFAULT_STACK)
    .option('--timeout <minutes>', "stack timeout in minutes (default: ospd's)", positiveInt('--timeout'))
    .option('--wait', 'follow the progress until the stack is no longer in progress; exit 1 when it failed');
}

/** Local refusals (bad roles, services, environments) are usage errors: nothing was sent. */
async function bundleOrRefuse(o: SourceOpts): Promise<OvercloudBundle> {
  try {
    return await overcloudBundle({ templatesDir: o.templates, rolesFile: o.rolesFile, environments: o.environment });
  } catch (e) {
    if (isOspError(e)) throw new UsageError(e.message);
    throw e;
  }
}

async function existing(c: Connection, stacks: StackServiceClient, name: string): Promise<Stack | undefined> {
  try {
    return (await c.call(stacks, stacks.getStack, { stack: name })).stack;
  } catch (e) {
    if (e instanceof ServerError && e.code === 'STACK_NOT_FOUND') return undefined;
    throw e;
  }
}

const changes = (p: StackPlan) => p.create.length + p.update.length + p.replace.length + p.delete.length;

/** The step barriers complete: how far the deployment got. */
function stepsDone(resources: StackResource[], name: string): number {
  let done = 0;
  for (const x of resources) {
    const m = x.stackPath === name ? /^OvercloudStep(\d)$/.exec(x.name) : null;
    if (m && statusName(x.status).endsWith('_COMPLETE')) done = Math.max(done, Number(m[1]));
  }
  return done;
}

/** The servers among the stack's resources (nested depth 1). */
async function servers(c: Connection, stacks: StackServiceClient, resources: StackResource[]): Promise<OvercloudServer[]> {
  const out: OvercloudServer[] = [];
  for (const x of resources) {
    if (!toServer(x)) continue;
    // Attributes (host name, node name) are only in GetStackResource.
    const full = (await c.call(stacks, stacks.getStackResource, { stack: x.stackPath, resource: x.name })).resource!;
    out.push(toServer(full)!);
  }
  return out;
}

async function send(c: Connection, stacks: StackServiceClient, o: SourceOpts, b: OvercloudBundle, parameters: Record<string, string>, out: (s: string) => void): Promise<void> {
  const req = { stack: o.stack, files: b.files, template: b.template, environments: b.environments, parameters, timeoutMs: (o.timeout ?? 0) * MINUTE_MS };
  const current = await existing(c, stacks, o.stack);
  await checkCapacity(c, stacks, o.stack, current !== undefined, b, parameters);
  const op = current ? stacks.updateStack : stacks.createStack;
  const plan = (await c.call(stacks, op, { ...req, dryRun: true })).plan!;
  if (o.dryRun) return out(renderOne(plan, PLAN_COLUMNS, o.format, o.column));
  if (current && changes(plan) === 0 && statusName(current.status).endsWith('_COMPLETE')) {
    out(`overcloud ${o.stack}: nothing changed (${plan.unchanged.length} resources up to date); nothing re-run\n`);
    return;
  }
  const r = await c.call(stacks, op, { ...req, dryRun: false });
  const end = o.wait ? await waitForStack(c, stacks, o.stack, { progress: () => overcloudProgress(c, stacks, o.stack) }) : r.stack!;
  out(renderOne(end!, STACK_COLUMNS, o.format, o.column));
}

const FAILURE_COLUMNS: Column<{ node: string; role: string; step: string; service: string; exitCode: number; stderrTail: string; reason: string }>[] = [
  { key: 'node', label: 'Node', get: (f) => f.node },
  { key: 'role', label: 'Role', get: (f) => f.role },
  { key: 'step', label: 'Step', get: (f) => f.step },
  { key: 'service', label: 'Service', get: (f) => f.service },
  { key: 'exit_code', label: 'Exit Code', get: (f) => f.exitCode },
  { key: 'stderr_tail', label: 'Stderr (tail)', get: (f) => f.stderrTail },
  { key: 'status_reason', label: 'Status Reason', get: (f) => f.reason },
];

/** `ospctl overcloud …`: the default overcloud (deploy/) as one stack. */
export function overcloudCommand(ctx: Ctx): Command {
  const oc = new Command('overcloud').description('deploy, scale, inspect and delete the overcloud (roles, composable services, steps)');
  const connect = () => connectStacks(ctx);

  withSources(oc.command('deploy').description('create or update the overcloud stack from the templates, roles and environments'))
    .option('--dry-run', 'show what would be created, updated, replaced and deleted; change nothing')
    .action(async (o: SourceOpts) => {
      const b = await bundleOrRefuse(o);
      const { c, stacks } = await connect();
      await send(c, stacks, o, b, {}, ctx.out);
    });

  withSources(oc.command('node').command('delete').description('remove exactly the named nodes (host name, node name or uuid): removal policies, count lowered, the rest updated'))
    .argument('<node...>', 'the nodes to remove')
    .option('--dry-run', 'show the plan; change nothing')
    .action(async (wanted: string[], o: SourceOpts) => {
      const b = await bundleOrRefuse(o);
      const { c, stacks } = await connect();
      const current = await existing(c, stacks, o.stack);
      if (!current) throw new UsageError(`overcloud ${o.stack}: no such stack (ospctl stack list)`);
      const all = await servers(c, stacks, await allStackResources(c, stacks, o.stack, 1));
      const { byRole, unknown } = removalsFor(all, wanted);
      if (unknown.length) {
        throw new UsageError(`overcloud ${o.stack}: no server ${unknown.join(', ')}; servers: ${all.map((s) => `${s.hostname || s.member} (${s.role}, node ${s.nodeName || s.nodeUuid})`).join(', ') || 'none'}`);
      }
      const parameters: Record<string, string> = {};
      for (const [role, members] of byRole) {
        const count = Number(JSON.parse(current.parametersJson[`${role}Count`] ?? 'NaN'));
        if (!Number.isInteger(count)) throw new UsageError(`overcloud ${o.stack}: parameter ${role}Count is not on the stack; is it an overcloud deployed with these roles?`);
        parameters[`${role}RemovalPolicies`] = JSON.stringify([{ resource_list: members }]);
        parameters[`${role}Count`] = String(count - members.length);
        process.stderr.write(`overcloud ${o.stack}: ${role}: removing member(s) ${members.join(', ')}; ${role}Count ${count} -> ${count - members.length} (lower it in your environment too)\n`);
      }
      await send(c, stacks, o, b, parameters, ctx.out);
    });

  withOutput(oc.command('status').description('the overcloud stack: status, steps done, nodes per role'))
    .option('--stack <name>', 'the overcloud stack', DEFAULT_STACK)
    .action(async (o: OutputOpts & { stack: string }) => {
      const { c, stacks } = await connect();
      const s = (await c.call(stacks, stacks.getStack, { stack: o.stack })).stack!;
      const resources = await allStackResources(c, stacks, o.stack, 1);
      const steps = stepsDone(resources, o.stack);
      const nodes = await servers(c, stacks, resources);
      const summary = {
        stack: s.name, status: statusName(s.status), reason: s.statusReason, steps: `${steps}/5`,
        resources: `${s.resourcesComplete}/${s.resourcesTotal}`,
        nodes: nodes.map((n) => `${n.role} ${n.hostname} (node ${n.nodeName || n.nodeUuid})`),
      };
      ctx.out(renderOne(summary, Object.keys(summary).map((k) => ({ key: k, label: k, get: (v: typeof summary) => v[k as keyof typeof summary] })), o.format, o.column));
    });

  withOutput(oc.command('failures').description('failed deployments per node: step, service, exit code, stderr tail'))
    .option('--stack <name>', 'the overcloud stack', DEFAULT_STACK)
    .action(async (o: OutputOpts & { stack: string }) => {
      const { c, stacks } = await connect();
      const s = (await c.call(stacks, stacks.getStack, { stack: o.stack })).stack!;
      const roles = Object.keys(s.parametersJson).filter((k) => k.endsWith('Count')).map((k) => k.slice(0, -'Count'.length)).sort((a, b) => b.length - a.length);
      const failures = (await c.call(stacks, stacks.listStackFailures, { stack: o.stack })).failures.map((f) => {
        const at = stepOfResource(f.resource, roles);
        return {
          node: f.node, role: at?.role ?? '', step: at ? String(at.step) : f.resource.endsWith('ConfigSettingsDeployment') ? '0' : '',
          service: at?.service ?? f.resource, exitCode: f.statusCode, stderrTail: f.stderrTail, reason: f.statusReason,
        };
      });
      ctx.out(renderList(failures, FAILURE_COLUMNS, o.format, o.column));
    });

  withOutput(oc.command('delete').description('delete the overcloud: every node undeployed, cleaned and released'))
    .requiredOption('--stack <name>', 'the overcloud stack (named, so a default never deletes by accident)')
    .option('--wait', 'follow the progress until the stack is gone; exit 1 when the deletion failed')
    .action(async (o: OutputOpts & { stack: string; wait?: boolean }) => {
      const { c, stacks } = await connect();
      const r = await c.call(stacks, stacks.deleteStack, { stack: o.stack });
      const end = o.wait ? await waitForStack(c, stacks, o.stack, { gone: true }) : r.stack;
      if (end) ctx.out(renderOne(end, STACK_COLUMNS, o.format, o.column));
    });
  return oc;
}
