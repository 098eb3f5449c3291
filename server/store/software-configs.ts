import type { Queryable } from './db.js';

/** One declared input of a software config, in Heat's shape. */
export interface ConfigInput {
  name: string;
  type: string;
  default?: unknown;
  description?: string;
}

/** One declared output; `error_output` makes a non-empty value fail the deployment, as in Heat. */
export interface ConfigOutput {
  name: string;
  type?: string;
  description?: string;
  error_output?: boolean;
}

export interface SoftwareConfigRow {
  id: string;
  stackId: string;
  resourceName: string;
  type: string;
  /** The group as the template wrote it (`script`, `apply-config`, `Heat::Ungrouped`, …). */
  group: string;
  /** Text for SoftwareConfig, a mapping for StructuredConfig. */
  config: unknown;
  inputs: ConfigInput[];
  outputs: ConfigOutput[];
  options: Record<string, unknown> | null;
  createdAt: string;
}

interface RawConfig {
  id: string;
  stack_id: string;
  resource_name: string;
  type: string;
  grp: string;
  config: string;
  inputs: string;
  outputs: string;
  options: string | null;
  created_at: string;
}

/** All SQL about software configs. */
export const softwareConfigStore = {
  async insert(q: Queryable, r: SoftwareConfigRow): Promise<void> {
    await q.run('INSERT INTO software_configs (id, stack_id, resource_name, type, grp, config, inputs, outputs, options, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)', [
      r.id, r.stackId, r.resourceName, r.type, r.group, JSON.stringify(r.config), JSON.stringify(r.inputs), JSON.stringify(r.outputs),
      r.options === null ? null : JSON.stringify(r.options), r.createdAt,
    ]);
  },

  async get(q: Queryable, id: string): Promise<SoftwareConfigRow | undefined> {
    const r = await q.get<RawConfig>('SELECT * FROM software_configs WHERE id = ?', [id]);
    return r && {
      id: r.id, stackId: r.stack_id, resourceName: r.resource_name, type: r.type, group: r.grp, config: JSON.parse(r.config),
      inputs: JSON.parse(r.inputs), outputs: JSON.parse(r.outputs), options: r.options === null ? null : JSON.parse(r.options), createdAt: r.created_at,
    };
  },

  async delete(q: Queryable, id: string): Promise<boolean> {
    return (await q.run('DELETE FROM software_configs WHERE id = ?', [id])).changes > 0;
  },
};
