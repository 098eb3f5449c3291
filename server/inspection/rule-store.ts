import { OspError } from '../../common/errors.js';
import type { Database } from '../store/db.js';
import { ruleStore, type RuleRow } from '../store/rules.js';
import { MASK, SecretBox, isSecretKey } from '../security/secrets.js';
import { runOrder } from './rules/engine.js';
import { hasSecretValues, maskIronicRule } from './rules/ironic-format.js';
import { isIronicRule, type Action, type InspectorRule, type IronicRule, type IronicStep, type Rule } from './rules/types.js';

/**
 * `body` of an Ironic-format rule; the rule-level columns (uuid, description,
 * scope = '') are shared with inspector rules, so no migration was needed.
 * `sealedActions` replaces `actions` when they hold values to keep secret.
 */
interface IronicBody {
  format: 'ironic';
  priority: number;
  phase: 'main';
  sensitive: boolean;
  conditions: IronicStep[];
  actions?: IronicStep[];
  sealedActions?: string;
}

export type StoredRule = Rule & { createdAt: string };

export interface RuleImportResult {
  created: StoredRule[];
  unchanged: StoredRule[];
}

function secretAction(a: Action): boolean {
  return a.action === 'set-attribute' && isSecretKey(a.path.split('/').pop() ?? '') && typeof a.value === 'string' && a.value !== '';
}

function sameRule(a: Rule, b: Rule): boolean {
  const norm = (r: Rule) => (isIronicRule(r)
    ? JSON.stringify({ f: r.format, d: r.description, p: r.priority, ph: r.phase, se: r.sensitive, c: r.conditions, a: r.actions })
    : JSON.stringify({ d: r.description, s: r.scope, c: r.conditions, a: r.actions }));
  return norm(a) === norm(b);
}

/** Inspection rules in the store; secret values sealed at rest and masked when shown. */
export class RuleStore {
  constructor(
    private readonly db: Database,
    private readonly secrets: SecretBox,
  ) {}

  private fromRow(r: RuleRow): StoredRule {
    const parsed = JSON.parse(r.body) as Pick<InspectorRule, 'conditions' | 'actions'> | IronicBody;
    if ('format' in parsed && parsed.format === 'ironic') {
      const actions = parsed.sealedActions ? (JSON.parse(this.secrets.decrypt(parsed.sealedActions)) as IronicStep[]) : parsed.actions ?? [];
      return {
        format: 'ironic', uuid: r.uuid, description: r.description, priority: parsed.priority, phase: parsed.phase, sensitive: parsed.sensitive,
        conditions: parsed.conditions, actions, createdAt: r.created_at,
      };
    }
    const body = parsed as Pick<InspectorRule, 'conditions' | 'actions'>;
    const actions = body.actions.map((a) => (a.action === 'set-attribute' && typeof a.value === 'string' && SecretBox.isSealed(a.value) ? { ...a, value: this.secrets.decrypt(a.value) } : a));
    return { uuid: r.uuid, description: r.description, scope: r.scope, conditions: body.conditions, actions, createdAt: r.created_at };
  }

  /** A copy safe to show: secret attribute values, and every action value of a sensitive rule, replaced by the mask. */
  present(r: StoredRule): StoredRule {
    if (isIronicRule(r)) return { ...maskIronicRule(r), createdAt: r.createdAt };
    return { ...r, actions: r.actions.map((a) => (secretAction(a) ? { ...a, value: MASK } : a)) };
  }

  /** Every rule in the order they run (priority, then import order). */
  async list(): Promise<StoredRule[]> {
    return runOrder((await ruleStore.list(this.db)).map((r) => this.fromRow(r)));
  }

  private body(rule: Rule): string {
    if (!isIronicRule(rule)) {
      const actions = rule.actions.map((a) => (secretAction(a) && a.action === 'set-attribute' ? { ...a, value: this.secrets.encrypt(a.value as string) } : a));
      return JSON.stringify({ conditions: rule.conditions, actions });
    }
    const { format, priority, phase, sensitive, conditions, actions }: IronicRule = rule;
    const sealed = hasSecretValues(rule) ? { sealedActions: this.secrets.encrypt(JSON.stringify(actions)) } : { actions };
    return JSON.stringify({ format, priority, phase, sensitive, conditions, ...sealed } satisfies IronicBody);
  }

  async get(uuid: string): Promise<StoredRule> {
    const row = await ruleStore.get(this.db, uuid.toLowerCase());
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
      let position = (await ruleStore.maxPosition(tx)) + 1;
      const now = new Date().toISOString();
      for (const [i, rule] of rules.entries()) {
        const row = await ruleStore.get(tx, rule.uuid);
        if (row) {
          const cur = this.fromRow(row);
          if (sameRule(cur, rule)) res.unchanged.push(cur);
          else clashes.push(`rules[${i}].uuid: ${JSON.stringify(rule.uuid)}: expected a uuid not already used by a different stored rule (delete it first)`);
          continue;
        }
        await ruleStore.insert(tx, {
          uuid: rule.uuid, position: position++, description: rule.description, scope: isIronicRule(rule) ? '' : rule.scope, body: this.body(rule), created_at: now,
        });
        res.created.push({ ...rule, createdAt: now });
      }
      if (clashes.length) throw new OspError('RULE_EXISTS', clashes.join('\n'), { problems: clashes });
      return res;
    });
  }

  async delete(uuid: string): Promise<string> {
    if (!(await ruleStore.delete(this.db, uuid.toLowerCase()))) throw new OspError('RULE_NOT_FOUND', `inspection rule '${uuid}' not found`, { rule: uuid });
    return uuid.toLowerCase();
  }
}
