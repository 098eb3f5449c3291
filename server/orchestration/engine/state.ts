import { createHash } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import type { Logger } from '../../../common/logging.js';
import type { Database, Queryable } from '../../store/db.js';
import { stackStore, type ResourceRow, type StackRow } from '../../store/stacks.js';
import { makeBundle, type Bundle } from '../hot/bundle.js';
import { followPath, resolve } from '../hot/functions.js';
import { problemAt, templateInvalid } from '../hot/problems.js';
import { loadNestedStack, stackContext, validateStack, type LoadedResource, type LoadedStack, type StackOptions } from '../hot/stack.js';
import { loadTemplate } from '../hot/template.js';
import { ResourceFailure, type HeatStatus, type NestedStackView, type ResourceData, type ResourcePlugin, type StackEvent } from './contract.js';
import type { PluginRegistry } from './registry.js';
import { secretStrings, type StackSealer } from './sealing.js';

/** A stack's request as stored (sealed): what re-evaluates it after an update or a restart. */
export interface StoredRequest {
  template: string;
  /** A generated template (ResourceGroup's members), placed at `template` in the bundle. */
  text?: string;
  environments: string[];
  parameters: Record<string, unknown>;
}

/** A resource's get_resource/get_attr asked before it has data (a dry run, an output of a failed stack). */
export class NotReady extends Error {
  constructor(readonly resource: string, status: string) {
    super(`resource ${resource} is ${status}`);
  }
}

/** A nested stack as the engine sees it: the contract's view plus the secret strings inside it, for masking. */
export interface LiveView extends NestedStackView {
  secrets: Set<string>;
}

interface LiveEntry {
  row: ResourceRow;
  plugin: ResourcePlugin;
  data?: ResourceData;
  child?: LiveView;
}

/** Resource data read for evaluation: get_resource and get_attr answered from it. */
export class Live {
  /** Hidden parameter values and secret data met while resolving: a value holding one is sealed and masked. */
  readonly secrets = new Set<string>();
  constructor(readonly entries: Map<string, LiveEntry>) {}

  private entry(name: string): LiveEntry & { data: ResourceData } {
    const e = this.entries.get(name);
    if (!e || e.data === undefined || !e.row.status.endsWith('_COMPLETE') || e.row.status === 'INIT_COMPLETE' || e.row.status === 'DELETE_COMPLETE') {
      throw new NotReady(name, e?.row.status ?? 'not created');
    }
    return e as LiveEntry & { data: ResourceData };
  }

  ref(name: string): string {
    const e = this.entry(name);
    return e.plugin.reference(e.data);
  }

  attr(name: string, attribute: string | undefined, path: (string | number)[]): unknown {
    const e = this.entry(name);
    if (e.plugin.nestedAttribute) return e.plugin.nestedAttribute(e.data, attribute, path, e.child);
    const v = attribute === undefined ? allAttributes(e.plugin, e.data) : e.plugin.attribute(e.data, attribute);
    return followPath(v, path, (m) => { throw templateInvalid([problemAt(undefined, '', `get_attr ${name} ${attribute}: ${m}`)]); });
  }
}

export function allAttributes(plugin: ResourcePlugin, data: ResourceData): Record<string, unknown> {
  if (plugin.attributes === 'any') return {};
  return Object.fromEntries(plugin.attributes.map((a) => [a, plugin.attribute(data, a)]));
}

export const jsonClone = <T>(v: T): T => (v === undefined ? v : JSON.parse(JSON.stringify(v)) as T);
export const sameJson = (a: unknown, b: unknown): boolean => isDeepStrictEqual(jsonClone(a), jsonClone(b));

/**
 * What every part of the engine shares: the store, the sealer, the plug-ins,
 * evaluated stacks (cached by request version) and event delivery.
 */
export class StackState {
  private readonly loadedCache = new Map<string, { version: number; stack: LoadedStack }>();
  readonly listeners = new Set<(e: StackEvent) => void>();

  constructor(
    readonly db: Database,
    readonly sealer: StackSealer,
    readonly registry: PluginRegistry,
    readonly templatePlugin: ResourcePlugin,
    readonly log: Logger,
  ) {}

  stackOptions(stackName: string): StackOptions {
    return { knownTypes: this.registry.knownTypes(), attributesOf: this.registry.attributesOf, stackName };
  }

  pluginFor(type: string): ResourcePlugin {
    const p = this.registry.get(type);
    if (p) return p;
    if (type.includes('/') || /\.(ya?ml|template)$/.test(type)) return this.templatePlugin;
    throw new ResourceFailure(`resource type ${type} is not implemented by this ospd`);
  }

  /** A plug-in, or undefined when the type is no longer implemented (its data stays sealed). */
  maybePlugin(type: string): ResourcePlugin | undefined {
    try { return this.pluginFor(type); } catch { return undefined; }
  }

  openData(row: ResourceRow): ResourceData | undefined {
    return this.sealer.openData(row.data, this.maybePlugin(row.type)?.secretKeys);
  }

  openProperties(row: ResourceRow): Record<string, unknown> {
    return this.sealer.openJson<Record<string, unknown>>(row.properties);
  }

  encodeFiles(files: Record<string, Buffer | string>): string {
    return this.sealer.sealJson(Object.entries(files).map(([p, c]) => (typeof c === 'string' ? [p, 's', c] : [p, 'b', c.toString('base64')])));
  }

  /**
   * What a stack's request amounts to, as one digest: template path,
   * environments, parameters and every file's content. Two requests with the
   * same digest evaluate the same nested stacks.
   */
  requestDigest(req: StoredRequest, files: Map<string, Buffer | string>): string {
    const h = createHash('sha256').update(JSON.stringify([req.template, req.environments, req.parameters, req.text ?? null]));
    for (const p of [...files.keys()].sort()) h.update(`\0${p}\0`).update(files.get(p)!);
    return h.digest('hex');
  }

  /** The digest of a stored stack's request (see requestDigest). */
  storedDigest(row: StackRow): string {
    return this.requestDigest(this.sealer.openJson<StoredRequest>(row.request), this.decodeFiles(row.files).files);
  }

  decodeFiles(sealed: string): Bundle {
    const list = this.sealer.openJson<[string, string, string][]>(sealed);
    return makeBundle(new Map(list.map(([p, kind, c]) => [p, kind === 's' ? c : Buffer.from(c, 'base64')])));
  }

  /** The evaluated template of a stored stack; a nested stack is evaluated through its parents. */
  async loaded(row: StackRow): Promise<LoadedStack> {
    const hit = this.loadedCache.get(row.id);
    if (hit && hit.version === row.request_version) return hit.stack;
    const req = this.sealer.openJson<StoredRequest>(row.request);
    let stack: LoadedStack;
    if (row.parent_id === null) {
      const r = validateStack(this.decodeFiles(row.files), req, this.stackOptions(row.name));
      if (!r.stack) throw templateInvalid(r.problems);
      stack = r.stack;
    } else {
      const parentRow = await stackStore.byId(this.db, row.parent_id);
      if (!parentRow) throw new Error(`stack ${row.path}: parent ${row.parent_id} is gone`);
      stack = this.loadChild(await this.loaded(parentRow), row.parent_resource, req, row.path);
    }
    this.remember(row, stack);
    return stack;
  }

  remember(row: Pick<StackRow, 'id' | 'request_version'>, stack: LoadedStack): void {
    stack.parameters['OS::stack_id'] = row.id;
    this.loadedCache.set(row.id, { version: row.request_version, stack });
  }

  forget(id: string): void {
    this.loadedCache.delete(id);
  }

  /** Evaluates a child stack's template with real parameter values; throws ResourceFailure naming every problem. */
  loadChild(parent: LoadedStack, resourceName: string, req: StoredRequest, path: string): LoadedStack {
    let base = parent;
    let resource: LoadedResource | undefined = parent.resources.get(resourceName);
    if (req.text !== undefined || resource?.nested?.path !== req.template) {
      if (req.text !== undefined) base = { ...parent, bundle: { files: new Map(parent.bundle.files).set(req.template, req.text) } };
      const problems: ReturnType<typeof validateStack>['problems'] = [];
      const template = loadTemplate(base.bundle, req.template, problems);
      if (!template) throw new ResourceFailure(`nested stack ${path}: ${problems.map((p) => `${p.file}:${p.line}:${p.column}: ${p.message}`).join('; ')}`);
      const def = resource?.def ?? { name: resourceName, type: req.template, properties: {}, dependsOn: [], deletionPolicy: 'Delete' as const, at: undefined, typeAt: undefined, refs: { params: [], resources: [], attrs: [], conditions: [], files: [], problems: [] } as never };
      resource = { name: resourceName, def, type: req.template, nested: { path: req.template, template, stack: undefined as never }, dependsOn: new Set() };
    }
    const r = loadNestedStack(base, resource!, req.parameters, this.stackOptions(path));
    if (!r.stack) throw new ResourceFailure(`nested stack ${path}: ${r.problems.map((p) => `${p.file}:${p.line}:${p.column}: ${p.message}`).join('; ')}`);
    return r.stack;
  }

  /** Live data of the named resources of a stack (and, for those owning one, their child stack's view). */
  async live(q: Queryable, stack: StackRow, names: Iterable<string>): Promise<Live> {
    const entries = new Map<string, LiveEntry>();
    const live = new Live(entries);
    const wanted = new Set(names);
    const rows = wanted.size > 16 ? (await stackStore.resources(q, stack.id)).filter((r) => wanted.has(r.name))
      : (await Promise.all([...wanted].map((n) => stackStore.resource(q, stack.id, n)))).filter((r): r is ResourceRow => r !== undefined);
    for (const row of rows) {
      const plugin = this.maybePlugin(row.type);
      if (!plugin) continue;
      const data = this.openData(row);
      const e: LiveEntry = { row, plugin, data };
      if (data) for (const k of plugin.secretKeys ?? []) secretStrings(data[k], live.secrets);
      if (plugin.nestedAttribute && data) {
        const child = await stackStore.child(q, stack.id, row.name);
        if (child) { e.child = await this.view(q, child); for (const s of e.child.secrets) live.secrets.add(s); }
      }
      entries.set(row.name, e);
    }
    return live;
  }

  /**
   * Every secret string of a stack tree: the plug-ins' secret data and the
   * hidden parameters of each stack. Views mask them wherever they reappear
   * (another resource's properties or attributes, an output).
   */
  async treeSecrets(q: Queryable, rootId: string): Promise<Set<string>> {
    const out = new Set<string>();
    for (const r of await stackStore.treeResources(q, rootId)) {
      const keys = this.maybePlugin(r.type)?.secretKeys ?? [];
      if (!keys.length || r.data === null) continue;
      const data = this.openData(r);
      for (const k of keys) secretStrings(data?.[k], out);
    }
    for (const s of await stackStore.tree(q, rootId)) {
      const loaded = await this.loaded(s).catch(() => undefined);
      for (const h of loaded?.hiddenParameters ?? []) secretStrings(loaded!.parameters[h], out);
    }
    return out;
  }

  /** Resolves a value of a stack against live data; records the secrets it met. */
  resolveIn(stack: LoadedStack, live: Live, value: unknown): unknown {
    for (const h of stack.hiddenParameters) secretStrings(stack.parameters[h], live.secrets);
    const ctx = stackContext(stack, {
      resourceRef: (name) => live.ref(name),
      attr: (name, attribute, path) => live.attr(name, attribute, path),
    });
    return resolve(value, ctx);
  }

  /** A stored stack as NestedStackView: outputs evaluated, every resource's reference and attributes. */
  async view(q: Queryable, row: StackRow): Promise<LiveView> {
    const loaded = await this.loaded(row);
    const live = await this.live(q, row, (await stackStore.resources(q, row.id)).map((r) => r.name));
    const outputs: Record<string, unknown> = {};
    for (const [name, o] of loaded.outputs) {
      try { outputs[name] = this.resolveIn(loaded, live, o.value); } catch { /* an output of an incomplete resource is absent from the view */ }
    }
    const resources: NestedStackView['resources'] = new Map();
    for (const [name, e] of live.entries) {
      if (e.data === undefined) continue;
      let reference: string;
      try { reference = live.ref(name); } catch { continue; }
      resources.set(name, {
        reference,
        attribute: (a) => live.attr(name, a, []),
        attributePath: (a, path) => live.attr(name, a, path),
      });
    }
    return { id: row.id, path: row.path, outputs, resources, secrets: live.secrets };
  }

  /** Commits a change and its events, then tells the listeners. */
  async commit(fn: (tx: Queryable, emit: (e: Omit<StackEvent, 'id'> & { rootId: string }) => Promise<void>) => Promise<void>): Promise<void> {
    const events: StackEvent[] = [];
    await this.db.transaction(async (tx) => {
      await fn(tx, async (e) => {
        const id = await stackStore.addEvent(tx, { root_id: e.rootId, stack_path: e.stackPath, resource: e.resource, physical_id: e.physicalId, status: e.status, status_reason: e.statusReason, at: e.at });
        events.push({ id, stack: e.stack, stackPath: e.stackPath, resource: e.resource, physicalId: e.physicalId, status: e.status, statusReason: e.statusReason, at: e.at });
      });
    });
    for (const e of events) {
      for (const l of this.listeners) {
        try { l(e); } catch (err) { this.log.warn({ err }, 'stack event listener failed'); }
      }
    }
  }
}

export const isInProgress = (status: string): boolean => status.endsWith('_IN_PROGRESS');
export const heatStatus = (s: string): HeatStatus => s as HeatStatus;
