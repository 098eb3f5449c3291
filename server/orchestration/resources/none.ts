import type { ResourcePlugin } from '../engine/contract.js';

/** OS::Heat::None: takes any properties and does nothing (resource_registry maps types to it to switch them off). */
export const noneResource: ResourcePlugin<Record<string, never>> = {
  type: 'OS::Heat::None',
  attributes: 'any',
  replaceOn: [],
  createIdempotent: true,
  async create() { return {}; },
  async update() { return {}; },
  async delete() { /* nothing exists */ },
  reference: () => '',
  attribute: () => undefined,
};
