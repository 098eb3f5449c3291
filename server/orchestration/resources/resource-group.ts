import { isObj } from '../hot/source.js';
import path from 'node:path/posix';
import { followPath } from '../hot/functions.js';
import { ResourceFailure, type NestedStackView, type ResourceContext, type ResourcePlugin } from '../engine/contract.js';

type GroupData = {
  stackId: string;
  /** Member names in index order. */
  members: string[];
  /** Names removed by removal_policies: never used again, as in Heat. */
  removed: string[];
};


function count(p: Record<string, unknown>): number {
  return p.count === undefined ? 1 : Number(p.count);
}

/** Replaces the index variable in every string of a value (keys included, as Heat does). */
function substitute(v: unknown, variable: string, index: string): unknown {
  if (typeof v === 'string') return v.split(variable).join(index);
  if (Array.isArray(v)) return v.map((x) => substitute(x, variable, index));
  if (isObj(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [substitute(k, variable, index) as string, substitute(x, variable, index)]));
  return v;
}

/** The members after removal_policies (entries by member name or by reference) and `count`. */
function members(p: Record<string, unknown>, previous: GroupData | undefined, child: NestedStackView | undefined): { members: string[]; removed: string[] } {
  const removed = new Set(previous?.removed ?? []);
  const current = previous?.members ?? [];
  const byRef = new Map<string, string>();
  for (const [name, r] of child?.resources ?? []) byRef.set(r.reference, name);
  for (const policy of (p.removal_policies as { resource_list?: unknown[] }[] | undefined) ?? []) {
    for (const entry of policy.resource_list ?? []) {
      const name = current.includes(String(entry)) ? String(entry) : byRef.get(String(entry));
      if (name !== undefined) removed.add(name);
    }
  }
  const keep = current.filter((m) => !removed.has(m));
  const n = count(p);
  const out = keep.slice(0, n);
  for (let i = 0; out.length < n; i++) {
    const name = String(i);
    if (!removed.has(name) && !out.includes(name)) out.push(name);
  }
  return { members: out.sort((a, b) => Number(a) - Number(b) || a.localeCompare(b)), removed: [...removed].sort() };
}

async function apply(ctx: ResourceContext, p: Record<string, unknown>, previous: GroupData | undefined): Promise<GroupData> {
  const n = ctx.nested;
  if (!n) throw new ResourceFailure(`resource ${ctx.name}: ResourceGroup needs nested stacks`);
  const child = previous ? await n.get() : undefined;
  const m = members(p, previous, child);
  const def = p.resource_def as Record<string, unknown>;
  const variable = typeof p.index_var === 'string' ? p.index_var : '%index%';
  const resources: Record<string, unknown> = {};
  for (const name of m.members) {
    const r: Record<string, unknown> = { type: def.type };
    if (def.properties !== undefined) r.properties = substitute(def.properties, variable, name);
    if (def.metadata !== undefined) r.metadata = substitute(def.metadata, variable, name);
    resources[name] = r;
  }
  const text = JSON.stringify({ heat_template_version: '2016-10-14', resources });
  // Beside the parent template, so a member type given as a relative file name resolves as it would there.
  const at = path.join(path.dirname(n.templatePath), `.${ctx.name}-group.yaml`);
  const view = await n.apply({ text, path: at }, {}, ctx.signal);
  return { stackId: view.id, ...m };
}

function memberAttr(child: NestedStackView | undefined, member: string, attr: string | undefined, rest: (string | number)[]): unknown {
  const r = child?.resources.get(member);
  if (!r) throw new ResourceFailure(`ResourceGroup member ${member} does not exist`);
  if (attr === undefined) return r.reference;
  return r.attributePath ? r.attributePath(attr, rest) : followPath(r.attribute(attr), rest, (msg) => { throw new ResourceFailure(msg); });
}

/**
 * OS::Heat::ResourceGroup: `count` copies of `resource_def` in a nested
 * stack, members named 0, 1, …; the nested stack's update leaves unchanged
 * members alone, so scaling touches only the members added or removed.
 */
export const resourceGroupResource: ResourcePlugin<GroupData> = {
  type: 'OS::Heat::ResourceGroup',
  attributes: 'any',
  replaceOn: [],
  createIdempotent: true,
  validate(p) {
    const problems: string[] = [];
    const n = count(p);
    if (!Number.isInteger(n) || n < 0) problems.push(`property 'count': ${JSON.stringify(p.count)}: expected an integer ≥ 0`);
    const def = p.resource_def;
    if (!isObj(def) || typeof def.type !== 'string') problems.push(`property 'resource_def': ${JSON.stringify(def)}: expected a mapping with a 'type'`);
    else if (def.properties !== undefined && !isObj(def.properties)) problems.push(`property 'resource_def.properties': ${JSON.stringify(def.properties)}: expected a mapping`);
    if (p.index_var !== undefined && (typeof p.index_var !== 'string' || p.index_var === '')) problems.push(`property 'index_var': ${JSON.stringify(p.index_var)}: expected a non-empty string`);
    const rp = p.removal_policies;
    if (rp !== undefined && (!Array.isArray(rp) || rp.some((x) => !isObj(x) || (x.resource_list !== undefined && !Array.isArray(x.resource_list))))) {
      problems.push(`property 'removal_policies': ${JSON.stringify(rp)}: expected a list of {resource_list: [names or indexes]}`);
    }
    return problems;
  },
  create: (ctx, p) => apply(ctx, p, undefined),
  update: (ctx, data, p) => apply(ctx, p, data),
  async delete(ctx) {
    await ctx.nested?.remove(ctx.signal);
  },
  async check(ctx) {
    if (!ctx.nested) throw new ResourceFailure(`resource ${ctx.name}: ResourceGroup needs nested stacks`);
    await ctx.nested.check(ctx.signal);
  },
  reference: (d) => d.stackId,
  attribute: () => undefined,
  nestedAttribute(d, name, attrPath, child) {
    const refs = () => d.members.map((m) => memberAttr(child, m, undefined, []));
    if (name === undefined) return { refs: refs(), refs_map: Object.fromEntries(d.members.map((m) => [m, memberAttr(child, m, undefined, [])])), removed_rsrc_list: d.removed };
    if (name === 'refs') return followPath(refs(), attrPath, (m) => { throw new ResourceFailure(m); });
    if (name === 'refs_map') return followPath(Object.fromEntries(d.members.map((m) => [m, memberAttr(child, m, undefined, [])])), attrPath, (m) => { throw new ResourceFailure(m); });
    if (name === 'removed_rsrc_list') return d.removed;
    if (name === 'attributes') {
      const [attr, ...rest] = attrPath;
      return Object.fromEntries(d.members.map((m) => [m, memberAttr(child, m, String(attr), rest)]));
    }
    const m = /^resource\.([^.]+)(?:\.(.+))?$/.exec(name);
    if (m) {
      const [, member, attr] = m;
      if (attr !== undefined) return memberAttr(child, member, attr, attrPath);
      const [a, ...rest] = attrPath;
      return memberAttr(child, member, a === undefined ? undefined : String(a), rest);
    }
    return d.members.map((member) => memberAttr(child, member, name, attrPath));
  },
};
