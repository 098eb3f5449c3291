import type { Queryable } from './db.js';

/** An inspection_rules row as stored: `body` is the rule's JSON, secrets sealed by the caller. */
export interface RuleRow {
  uuid: string;
  position: number;
  description: string;
  scope: string;
  body: string;
  created_at: string;
}

/** All SQL about inspection rules. Every method takes the connection or transaction to use. */
export const ruleStore = {
  /** In import order, which is the order rules run in among equal priorities. */
  async list(q: Queryable): Promise<RuleRow[]> {
    return q.all<RuleRow>('SELECT * FROM inspection_rules ORDER BY position');
  },

  async get(q: Queryable, uuid: string): Promise<RuleRow | undefined> {
    return q.get<RuleRow>('SELECT * FROM inspection_rules WHERE uuid = ?', [uuid]);
  },

  /** The last position used, 0 when there are no rules. */
  async maxPosition(q: Queryable): Promise<number> {
    return (await q.get<{ p: number | null }>('SELECT MAX(position) AS p FROM inspection_rules'))?.p ?? 0;
  },

  async insert(q: Queryable, r: RuleRow): Promise<void> {
    await q.run('INSERT INTO inspection_rules (uuid, position, description, scope, body, created_at) VALUES (?, ?, ?, ?, ?, ?)',
      [r.uuid, r.position, r.description, r.scope, r.body, r.created_at]);
  },

  /** False when there was no such rule. */
  async delete(q: Queryable, uuid: string): Promise<boolean> {
    return (await q.run('DELETE FROM inspection_rules WHERE uuid = ?', [uuid])).changes > 0;
  },
};
