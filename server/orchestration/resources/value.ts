import type { ResourcePlugin } from '../engine/contract.js';

const TYPES = ['string', 'number', 'boolean', 'json', 'comma_delimited_list'];

/** OS::Heat::Value: holds `value` (checked against `type` when given); attribute `value`. */
export const valueResource: ResourcePlugin<{ value: unknown }> = {
  type: 'OS::Heat::Value',
  attributes: ['value'],
  replaceOn: [],
  createIdempotent: true,
  validate(p) {
    if (!('value' in p)) return ["property 'value': missing: expected a value"];
    const t = p.type;
    if (t === undefined) return [];
    if (typeof t !== 'string' || !TYPES.includes(t)) return [`property 'type': ${JSON.stringify(t)}: expected one of ${TYPES.join(', ')}`];
    const v = p.value;
    const ok = t === 'string' ? typeof v === 'string' : t === 'number' ? typeof v === 'number' || (typeof v === 'string' && v.trim() !== '' && !Number.isNaN(Number(v)))
      : t === 'boolean' ? typeof v === 'boolean' || ['true', 'false'].includes(String(v).toLowerCase())
        : t === 'comma_delimited_list' ? Array.isArray(v) || typeof v === 'string' : true;
    return ok ? [] : [`property 'value': ${JSON.stringify(v)}: expected a ${t}`];
  },
  async create(_ctx, p) { return { value: convert(p) }; },
  async update(_ctx, _data, p) { return { value: convert(p) }; },
  async delete() { /* nothing outside ospd */ },
  reference: () => '',
  attribute: (d, name) => (name === 'value' ? d.value : undefined),
};

function convert(p: Record<string, unknown>): unknown {
  const v = p.value;
  switch (p.type) {
    case 'number': return Number(v);
    case 'boolean': return typeof v === 'boolean' ? v : String(v).toLowerCase() === 'true';
    case 'comma_delimited_list': return Array.isArray(v) ? v : String(v).split(',').map((s) => s.trim());
    default: return v;
  }
}
