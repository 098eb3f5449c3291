import { OspError } from '../../../common/errors.js';
import type { Logger } from '../../../common/logging.js';
import { canonicalJson } from '../../agents/canonical.js';
import type { NodeConfigs } from '../../agents/configs.js';
import type { Database } from '../../store/db.js';
import { configStore, type DeploymentDoc } from '../../store/configs.js';
import { softwareConfigStore, type ConfigOutput, type SoftwareConfigRow } from '../../store/software-configs.js';
import { ResourceFailure, type ResourceContext, type ResourcePlugin } from '../engine/contract.js';
import { AckWatch, judge, type AgentDeploymentResult } from './deployment-acks.js';
import { deploymentDoc, deploymentName } from './deployment-doc.js';
import {
  deploymentProblems, isGroup, parseDeploymentProps, SOFTWARE_DEPLOYMENT, SOFTWARE_DEPLOYMENT_GROUP, STRUCTURED_DEPLOYMENT,
  STRUCTURED_DEPLOYMENT_GROUP, type DeploymentProps,
} from './deployment-properties.js';
import { softwareConfigPlugins } from './software-config.js';

/**
 * OS::Heat::SoftwareDeployment, StructuredDeployment and their *Group forms.
 * A deployment is an entry in the target node's configuration document; it
 * is complete when the node's agent acknowledges a revision that holds it
 * (deployment-acks.ts). A single deployment is a group of one, keyed ''.
 *
 * The `name` property (Heat's derived-config name, used there to order a
 * server's configs) is kept in the data but does not order anything: the
 * agent runs deployments in document order.
 */

export interface Member {
  [key: string]: unknown;
  /** The `server` value as the template gave it. */
  server: string;
  node?: string;
  nodeName?: string;
  /** The deployment's name in the node document. */
  name: string;
  id?: string;
  /** The revision that holds this member's content. */
  revision?: number;
  /** Not placed on the node: its action was not in `actions`. */
  skipped?: boolean;
  complete?: boolean;
  outputs?: Record<string, string>;
  statusCode?: number;
}

export interface DeploymentData {
  [key: string]: unknown;
  ref: string;
  config: string;
  configName: string;
  declaredOutputs: ConfigOutput[];
  name?: string;
  members: Record<string, Member>;
}

export interface SoftwareDeps {
  configs: NodeConfigs;
  db: Database;
  log: Logger;
}

const SINGLE = '';
const REPORTED = ['deploy_stdout', 'deploy_stderr', 'deploy_status_code'];
const GROUP_ATTRS: Record<string, string> = { deploy_stdouts: 'deploy_stdout', deploy_stderrs: 'deploy_stderr', deploy_status_codes: 'deploy_status_code' };

class Deployments {
  constructor(private readonly deps: SoftwareDeps, private readonly watch: AckWatch) {}

  async loadConfig(id: string): Promise<SoftwareConfigRow> {
    const row = await softwareConfigStore.get(this.deps.db, id);
    if (!row) throw new ResourceFailure(`property 'config': ${JSON.stringify(id)}: no software config with this id (deleted, or not a SoftwareConfig's get_resource)`, { config: id });
    return row;
  }

  /** Puts the member's content into its node's document. */
  async place(ctx: ResourceContext, type: string, key: string, server: string, action: 'CREATE' | 'UPDATE', props: DeploymentProps, cfg: SoftwareConfigRow): Promise<Member> {
    const { node } = await this.deps.configs.get(server);
    const name = deploymentName(ctx.stack.path, ctx.name, isGroup(type) ? key : undefined);
    const heat = { serverId: node.uuid, action, stackId: `${ctx.stack.name}/${ctx.stack.id}`, resourceName: ctx.name };
    const doc = deploymentDoc(name, cfg, props.inputValues, heat, props.structured);
    const rev = await this.deps.configs.addDeployment(node.uuid, doc, ctx.actor);
    const id = rev.deployments.find((d) => d.name === name)?.id;
    if (!id) throw new Error(`deployment ${name} missing from revision ${rev.revision} of node ${node.name} just after it was committed`);
    return { server, node: node.uuid, nodeName: node.name, name, id, revision: rev.revision };
  }

  /**
   * A group member that stays on its node keeps its placed deployment when its own
   * content (config, inputs, options) is what it was: a group updated for
   * another member (one added or removed) must not re-run it, as Heat's
   * per-member deployments are not updated then. deploy_action alone is not
   * a change (CREATE becoming UPDATE would re-run every member).
   */
  async unchanged(ctx: ResourceContext, prev: Member, props: DeploymentProps, cfg: SoftwareConfigRow): Promise<boolean> {
    if (!prev.complete || prev.skipped || !prev.node || !prev.id) return false;
    const { node, rev } = await this.deps.configs.get(prev.server);
    const placed = rev?.deployments.find((x) => x.name === prev.name && x.id === prev.id);
    if (!placed || node.uuid !== prev.node) return false;
    const action = placed.inputs.find((i) => i.name === 'deploy_action')?.value === 'CREATE' ? 'CREATE' : 'UPDATE';
    const heat = { serverId: node.uuid, action, stackId: `${ctx.stack.name}/${ctx.stack.id}`, resourceName: ctx.name } as const;
    const doc = deploymentDoc(prev.name, cfg, props.inputValues, heat, props.structured);
    const content = (d: Omit<DeploymentDoc, 'id'>) => canonicalJson({ g: d.group, c: d.config, i: d.inputs, o: d.options ?? null });
    return content(doc) === content(placed);
  }

  skip(ctx: ResourceContext, type: string, key: string, server: string): Member {
    return { server, name: deploymentName(ctx.stack.path, ctx.name, isGroup(type) ? key : undefined), skipped: true };
  }

  /** Idempotent: a node that is gone, or a document that no longer holds this member (with this id), is fine. */
  async withdraw(ctx: ResourceContext, m: Member): Promise<void> {
    if (!m.node || !m.id) return;
    try {
      const { rev } = await this.deps.configs.get(m.node);
      // A replacement on the same node may have taken the name over; only our own entry is ours to remove.
      if (!rev?.deployments.some((d) => d.name === m.name && d.id === m.id)) return;
      await this.deps.configs.removeDeployment(m.node, m.name, ctx.actor);
    } catch (e) {
      if (e instanceof OspError && (e.code === 'NOT_FOUND' || e.code === 'NODE_NOT_FOUND')) return;
      throw e;
    }
  }

  /**
   * Heat's CHECK: the member is still in its node's document, with its id,
   * and the node's newest ack of a revision that holds it says it ran (or had
   * already run this content).
   */
  async check(m: Member): Promise<void> {
    if (m.skipped || !m.node) return;
    const { node, rev } = await this.deps.configs.get(m.node);
    const details = { node: node.name, deployment: m.name };
    if (!rev?.deployments.some((x) => x.name === m.name && x.id === m.id)) {
      throw new ResourceFailure(`deployment ${m.name} is no longer in the configuration of node ${node.name}`, details);
    }
    const latest = (await configStore.acksSince(this.deps.db, node.uuid, m.revision ?? 0)).at(-1);
    if (!latest) throw new ResourceFailure(`deployment ${m.name}: node ${node.name} has not acknowledged config revision ${m.revision} or later`, details);
    const j = judge(latest, m.id!);
    if (j.kind === 'failed') {
      throw new ResourceFailure(`deployment ${m.name}: node ${node.name}'s latest ack (revision ${latest.revision}) says it failed with status ${j.result.exitCode}`, { ...details, revision: latest.revision });
    }
    if (j.kind === 'pending') throw new ResourceFailure(`deployment ${m.name}: node ${node.name}: ${j.reason ?? `revision ${latest.revision} failed`}`, { ...details, revision: latest.revision });
  }

  /** Places every member or none: a partial fan-out is rolled back before the error is thrown. */
  async placeAll(ctx: ResourceContext, jobs: [string, () => Promise<Member>][], keep: (m: Member) => boolean = () => false): Promise<Record<string, Member>> {
    const settled = await Promise.allSettled(jobs.map(([, job]) => job()));
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) {
      const placed = settled.flatMap((s) => (s.status === 'fulfilled' && !keep(s.value) ? [s.value] : []));
      await Promise.allSettled(placed.map((m) => this.withdraw(ctx, m)));
      throw failed.reason;
    }
    return Object.fromEntries(jobs.map(([key], n) => [key, (settled[n] as PromiseFulfilledResult<Member>).value]));
  }

  /** Waits for every placed member's ack, in parallel; the first failure ends the wait for all. */
  async settle(ctx: ResourceContext, data: DeploymentData): Promise<DeploymentData> {
    const waiting = Object.entries(data.members).filter(([, m]) => !m.skipped && !m.complete);
    if (waiting.length === 0) return data;
    const all = new AbortController();
    const onAbort = () => all.abort(ctx.signal.reason);
    if (ctx.signal.aborted) onAbort();
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    try {
      const done = await Promise.all(waiting.map(async ([key, m]): Promise<[string, Member]> => {
        ctx.progress(`waiting for ${m.nodeName} to apply config revision ${m.revision} (deployment ${m.name})`);
        const target = { nodeUuid: m.node!, nodeName: m.nodeName!, deploymentId: m.id!, revision: m.revision! };
        const s = await this.watch.wait(target, all.signal, (reason) => ctx.progress(`${m.nodeName}: ${reason}`));
        if (s.kind === 'failed') throw failure(data, m, s.result, `failed with status ${s.result.exitCode}`);
        const outputs = s.result?.outputs ?? {};
        for (const o of data.declaredOutputs) {
          if (o.error_output && outputs[o.name]) throw failure(data, m, s.result!, `reported an error in output '${o.name}'`, outputs[o.name]);
        }
        return [key, { ...m, complete: true, outputs, statusCode: s.result?.exitCode ?? 0 }];
      }));
      return { ...data, members: { ...data.members, ...Object.fromEntries(done) } };
    } catch (e) {
      all.abort(e);
      throw e;
    } finally {
      ctx.signal.removeEventListener('abort', onAbort);
    }
  }
}

function failure(data: DeploymentData, m: Member, r: AgentDeploymentResult, what: string, text = r.stderrTail): ResourceFailure {
  const lastLine = text.split('\n').map((l) => l.trim()).filter(Boolean).at(-1) ?? '(no stderr)';
  return new ResourceFailure(`deployment ${m.name} on node ${m.nodeName} ${what}: ${lastLine}`, {
    node: m.nodeName, nodeUuid: m.node, deployment: m.name, config: data.configName, configId: data.config, statusCode: r.exitCode, stderrTail: r.stderrTail,
  });
}

function memberAttribute(m: Member | undefined, name: string): unknown {
  if (!m?.complete) return undefined;
  if (name === 'deploy_status_code') return m.statusCode;
  return m.outputs?.[name];
}

function deploymentPlugin(type: string, d: Deployments): ResourcePlugin<DeploymentData> {
  const group = isGroup(type);
  return {
    type,
    // Declared outputs of the config are attributes too, so the set is the template's.
    attributes: 'any',
    replaceOn: group ? [] : ['server'],
    validate: (p) => deploymentProblems(type, p),

    async create(ctx, p) {
      const props = parseDeploymentProps(type, p);
      const cfg = await d.loadConfig(props.config);
      const run = props.actions.includes('CREATE');
      const members = await d.placeAll(ctx, Object.entries(props.servers).map(([key, server]) => [
        key, async () => (run ? d.place(ctx, type, key, server, 'CREATE', props, cfg) : d.skip(ctx, type, key, server)),
      ]));
      const ref = group ? deploymentName(ctx.stack.path, ctx.name) : (members[SINGLE].id ?? members[SINGLE].name);
      return { ref, config: cfg.id, configName: cfg.resourceName, declaredOutputs: cfg.outputs, name: props.name, members };
    },

    ready: (ctx, data) => d.settle(ctx, data),

    async update(ctx, data, p) {
      const props = parseDeploymentProps(type, p);
      const cfg = await d.loadConfig(props.config);
      const old = data.members;
      const jobs: [string, () => Promise<Member>][] = [];
      const retired: Member[] = Object.entries(old).filter(([k]) => !(k in props.servers)).map(([, m]) => m);
      const untouched = new Set<Member>();
      for (const [key, server] of Object.entries(props.servers)) {
        const prev = old[key];
        // A member new to the group (or moved to another node) is created, with CREATE's rules; one that stays re-runs only with UPDATE.
        const fresh = !prev || prev.server !== server;
        if (prev && fresh) retired.push(prev);
        const action = fresh ? 'CREATE' : 'UPDATE';
        if (!props.actions.includes(action)) {
          const kept = fresh ? d.skip(ctx, type, key, server) : prev;
          untouched.add(kept);
          jobs.push([key, async () => kept]);
        } else if (group && !fresh && await d.unchanged(ctx, prev, props, cfg)) {
          untouched.add(prev);
          jobs.push([key, async () => prev]);
        } else jobs.push([key, () => d.place(ctx, type, key, server, action, props, cfg)]);
      }
      const isOld = (m: Member) => untouched.has(m) || Object.values(old).some((o) => o.node === m.node && o.name === m.name);
      const members = await d.placeAll(ctx, jobs, isOld);
      await Promise.all(retired.map((m) => d.withdraw(ctx, m)));
      return { ...data, config: cfg.id, configName: cfg.resourceName, declaredOutputs: cfg.outputs, name: props.name, members };
    },

    async delete(ctx, data) {
      if (data) await Promise.all(Object.values(data.members).map((m) => d.withdraw(ctx, m)));
    },

    async check(_ctx, data) {
      for (const m of Object.values(data.members)) await d.check(m);
    },

    reference: (data) => data.ref,

    attribute(data, name) {
      if (!group) return memberAttribute(data.members[SINGLE], name);
      const per = GROUP_ATTRS[name] ?? (REPORTED.includes(name) ? undefined : name);
      if (per === undefined) return undefined;
      return Object.fromEntries(Object.entries(data.members).map(([k, m]) => [k, memberAttribute(m, per)]));
    },
  };
}

/** Every software config and deployment plug-in, for the engine's registry. */
export function softwarePlugins(deps: SoftwareDeps): ResourcePlugin[] {
  const d = new Deployments(deps, new AckWatch(deps.configs, deps.db));
  const deployments = [SOFTWARE_DEPLOYMENT, STRUCTURED_DEPLOYMENT, SOFTWARE_DEPLOYMENT_GROUP, STRUCTURED_DEPLOYMENT_GROUP].map((t) => deploymentPlugin(t, d));
  return [...softwareConfigPlugins(deps.db), ...deployments] as unknown as ResourcePlugin[];
}
