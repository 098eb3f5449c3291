/**
 * Inspection rules, in ironic-inspector's v1 JSON format or in Ironic's newer
 * format (ironic-format.ts): a rule matches when all its conditions hold over
 * the introspection data and the node, and then its actions are turned into
 * changes to the node.
 */

export const CONDITION_OPS = ['eq', 'ne', 'lt', 'gt', 'le', 'ge', 'in-net', 'matches', 'contains', 'is-empty'] as const;
export type ConditionOp = (typeof CONDITION_OPS)[number];

export const MULTIPLE_MODES = ['any', 'all', 'first'] as const;
export type MultipleMode = (typeof MULTIPLE_MODES)[number];

export interface Condition {
  op: ConditionOp;
  /** `data://json.path`, `node://attr.path` or a plain path into the data. */
  field: string;
  value?: unknown;
  invert: boolean;
  multiple: MultipleMode;
}

export const ACTION_NAMES = ['set-attribute', 'set-capability', 'extend-attribute', 'add-trait', 'remove-trait', 'fail'] as const;
export type ActionName = (typeof ACTION_NAMES)[number];

export type Action =
  | { action: 'set-attribute'; path: string; value: unknown }
  | { action: 'set-capability'; name: string; value: unknown }
  | { action: 'extend-attribute'; path: string; value: unknown; unique: boolean }
  | { action: 'add-trait' | 'remove-trait'; name: string }
  | { action: 'fail'; message: string };

export interface InspectorRule {
  format?: undefined;
  uuid: string;
  description: string;
  /** Applies only to nodes whose `inspection_scope` capability equals it; empty = every node. */
  scope: string;
  conditions: Condition[];
  actions: Action[];
}

/**
 * A condition or action in Ironic's format, kept as written so the rule can
 * be shown back the way it was imported: `op` may carry a leading `!`, `args`
 * is positional (list) or keyword (mapping).
 */
export interface IronicStep {
  op: string;
  args: unknown[] | Record<string, unknown>;
  loop?: unknown[] | Record<string, unknown>;
  multiple?: 'any' | 'all' | 'first' | 'last';
}

export interface IronicRule {
  format: 'ironic';
  /** A UUID, or the free-form id Ironic's built-in rules file allows (lower-cased). */
  uuid: string;
  description: string;
  /** 0–9999, higher runs first. */
  priority: number;
  phase: 'main';
  /** Action values are masked wherever the rule or its effects are shown. */
  sensitive: boolean;
  conditions: IronicStep[];
  actions: IronicStep[];
}

export type Rule = InspectorRule | IronicRule;

export function isIronicRule(r: Rule): r is IronicRule {
  return r.format === 'ironic';
}

/** One change a matched rule would make; values already rendered from the data. `sensitive`: from a sensitive rule, value not to be shown. */
export type RuleChange = (
  | { rule: string; kind: 'set-attribute'; path: string; value: string | null }
  | { rule: string; kind: 'set-capability'; name: string; value: string | null }
  | { rule: string; kind: 'extend-attribute'; path: string; value: string; unique: boolean }
  | { rule: string; kind: 'add-trait' | 'remove-trait'; name: string }
) & { sensitive?: boolean };

/** A message an Ironic `log` action writes; already masked when its rule is sensitive. */
export interface RuleLog {
  rule: string;
  level: 'debug' | 'info' | 'warning' | 'error' | 'critical';
  message: string;
}

export interface Evaluation {
  /** uuids of the rules that matched, in evaluation order. */
  matched: string[];
  changes: RuleChange[];
  /** The message of the first matching `fail` action, or why an action could not be applied. */
  failure?: string;
  /** From Ironic `log` actions, and notes on templates a condition could not render. */
  logs?: RuleLog[];
}
