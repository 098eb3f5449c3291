import { OspError } from '../../common/errors.js';
import type { Database } from '../store/db.js';
import { MASK, SecretBox, isSecretKey } from '../security/secrets.js';
import type { Action, Rule } from './rules/types.js';

interface RuleRow { uuid: string; position: number; description: string; scope: string; body: string; created_at: string }

export interface StoredRule extends Rule {
  createdAt: string;
}

export interface RuleImportResult {
  created: StoredRule[];
  unchanged: StoredRule[];
}

function secretAction(a: Action): boolean {
  return a.action === 'set-attribute' && isSecretKey(a.path.split('/').pop() ?? '') && typeof a.value === 'string' && a.value !== '';
}

function sameRule(a: Rule, b: Rule): boolean {
  const norm = (r: Rule) => JSON.stringify({ d: r.description, s: r.scope, c: r.conditions, a: r.actions });
  return norm(a) === norm(b);
}

/** Inspection rules in the store; secret values sealed at rest and masked when shown. */
export class RuleStore {
  constructor(
    private readonly db: Database,
    private readonly secrets: SecretBox,
  ) {}

  private fromRow(r: RuleRow): StoredRule {
    const body = JSON.parse(r.body) as Pick<Rule, 'conditions' | 'actions'>;
    const actions = body.actions.map((a) => (a.action === 'set-attribute' && typeof a.value === 'string' && SecretBox.isSealed(a.value) ? { ...a, value: this.secrets.decrypt(a.value) } : a));
    return { uuid: r.uuid, description: r.description, scope: r.scope, conditions: body.conditions, actions, createdAt: r.created_at };
  }

  /** A copy safe to show: secret attribute values replaced by the mask. */
  present(r: StoredRule): StoredRule {
    return { ...r, actions: r.actions.map((a) => (secretAction(a) ? { ...a, value: MASK } : a)) };
  }

  /** Every rule in the order they run. */
  async list(): Promise<StoredRule[]> {
    return (await this.db.all<RuleRow>('SELECT * FROM inspection_rules ORDER BY position')).map((r) => this.fromRow(r));
  }

  async get(uuid: string): Promise<StoredRule> {
    const row = await this.db.get<RuleRow>('SELECT * FROM inspection_rules WHERE uuid = ?', [uuid.toLowerCase()]);
    if (!row) throw new OspError('RULE_NOT_FOUND', `inspection rule '${uuid}' not found`, { rule: uuid });
    return this.fromRow(row);
  }

  /**
   * Adds the rules after the existing ones, all or none. Re-importing an
   * identical rule is a no-op; a different rule under a stored uuid is
   * refused (delete it first), as inspector answers 409.
   */
  async import(rules: Rule[]): Promise<RuleImportResult> {
    return this.db.transaction(async (tx) => {
      const res: RuleImportResult = { created: [], unchanged: [] };
      const clashes: string[] = [];
      const max = await tx.get<{ p: number | null }>('SELECT MAX(position) AS p FROM inspection_rules');
      let position = (max?.p ?? 0) + 1;
      const now = new Date().toISOString();
      for (const [i, rule] of rules.entries()) {
        const row = await tx.get<RuleRow>('SELECT * FROM inspection_rules WHERE uuid = ?', [rule.uuid]);
        if (row) {
          const cur = this.fromRow(row);
          if (sameRule(cur, rule)) res.unchanged.push(cur);
          else clashes.push(`rules[${i}].uuid: ${JSON.stringify(rule.uuid)}: expected a uuid not already used by a different stored rule (delete it first)`);
          continue;
        }
        const actions = rule.actions.map((a) => (secretAction(a) && a.action === 'set-attribute' ? { ...a, value: this.secrets.encrypt(a.value as string) } : a));
        await tx.run('INSERT INTO inspection_rules (uuid, position, description, scope, body, created_at) VALUES (?, ?, ?, ?, ?, ?)', [
          rule.uuid, position++, rule.description, rule.scope, JSON.stringify({ conditions: rule.conditions, actions }), now,
        ]);
        res.created.push({ ...rule, createdAt: now });
      }
      if (clashes.length) throw new OspError('RULE_EXISTS', clashes.join('\n'), { problems: clashes });
      return res;
    });
  }

  async delete(uuid: string): Promise<string> {
    const r = await this.db.run('DELETE FROM inspection_rules WHERE uuid = ?', [uuid.toLowerCase()]);
    if (r.changes === 0) throw new OspError('RULE_NOT_FOUND', `inspection rule '${uuid}' not found`, { rule: uuid });
    return uuid.toLowerCase();
  }
}
