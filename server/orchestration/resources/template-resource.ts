import { followPath } from '../hot/functions.js';
import { ResourceFailure, type ResourcePlugin } from '../engine/contract.js';

/**
 * A template used as a resource type: a nested stack whose parameters are
 * the resource's properties and whose outputs are its attributes (with
 * `OS::stack_id`, the child's id, which is also its reference).
 */
export const templateResource: ResourcePlugin<{ stackId: string }> = {
  type: '(template)',
  attributes: 'any',
  replaceOn: [],
  createIdempotent: true,
  async create(ctx, p) {
    const n = ctx.nested;
    if (!n?.typeTemplate) throw new ResourceFailure(`resource ${ctx.name}: no nested template`);
    return { stackId: (await n.apply({ path: n.typeTemplate }, p, ctx.signal)).id };
  },
  async update(ctx, _data, p) {
    return templateResource.create(ctx, p);
  },
  async delete(ctx) {
    await ctx.nested?.remove(ctx.signal);
  },
  async check(ctx) {
    if (!ctx.nested) throw new ResourceFailure(`resource ${ctx.name}: no nested stack`);
    await ctx.nested.check(ctx.signal);
  },
  reference: (d) => d.stackId,
  attribute: () => undefined,
  nestedAttribute(d, name, path, child) {
    if (name === 'OS::stack_id') return d.stackId;
    const outputs = child?.outputs ?? {};
    if (name === undefined) return { ...outputs, 'OS::stack_id': d.stackId };
    if (!Object.hasOwn(outputs, name)) throw new ResourceFailure(`nested stack ${child?.path ?? d.stackId} has no output ${name}`);
    return followPath(outputs[name], path, (m) => { throw new ResourceFailure(`get_attr ${name}: ${m}`); });
  },
};
