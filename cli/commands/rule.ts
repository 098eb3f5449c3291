import { Command } from 'commander';
import path from 'node:path';
import { RuleServiceClient, type InspectionRule, type NodeProfile, type RulePreview } from '../../proto/gen/osp/v1/rules.js';
import { renderList, renderOne, type Column } from '../output.js';
import { withOutput, type Ctx, type OutputOpts, readInputFile } from '../command-kit.js';

const RULE_COLUMNS: Column<InspectionRule>[] = [
  { key: 'uuid', label: 'UUID', get: (r) => r.uuid },
  { key: 'description', label: 'Description', get: (r) => r.description },
  { key: 'scope', label: 'Scope', get: (r) => r.scope },
  { key: 'format', label: 'Format', get: (r) => r.format },
  { key: 'priority', label: 'Priority', get: (r) => r.priority },
  { key: 'sensitive', label: 'Sensitive', get: (r) => r.sensitive },
  { key: 'conditions', label: 'Conditions', get: (r) => r.conditionCount },
  { key: 'actions', label: 'Actions', get: (r) => r.actionCount },
];

const PREVIEW_COLUMNS: Column<RulePreview>[] = [
  { key: 'node', label: 'Node', get: (p) => p.nodeName },
  { key: 'uuid', label: 'Node UUID', get: (p) => p.nodeUuid },
  { key: 'state', label: 'State', get: (p) => p.provisionState },
  { key: 'matched_rules', label: 'Matched Rules', get: (p) => p.matchedRules },
  { key: 'changes', label: 'Would Change', get: (p) => p.changes.join('; ') },
  { key: 'logs', label: 'Would Log', get: (p) => p.logs.join('; ') },
  { key: 'failure', label: 'Would Fail', get: (p) => p.failure },
];

const PROFILE_COLUMNS: Column<NodeProfile>[] = [
  { key: 'uuid', label: 'Node UUID', get: (p) => p.nodeUuid },
  { key: 'name', label: 'Node Name', get: (p) => p.nodeName },
  { key: 'state', label: 'Provision State', get: (p) => p.provisionState },
  { key: 'profile', label: 'Current Profile', get: (p) => p.profile },
  { key: 'possible_profiles', label: 'Possible Profiles', get: (p) => p.possibleProfiles },
];

function client(ctx: Ctx) {
  return async () => {
    const c = await ctx.connect();
    return { c, rules: c.client(RuleServiceClient) };
  };
}

/** `rule show` of an Ironic-format rule: Ironic's own keys, so `-f json` reads like Ironic's answer. */
function ironicShowColumns(body: Record<string, unknown>, format: string): Column<InspectionRule>[] {
  const steps = (k: string) => (format === 'table' ? (body[k] as unknown[]).map((x) => JSON.stringify(x)) : body[k]);
  return [
    { key: 'uuid', label: 'UUID', get: (x) => x.uuid },
    { key: 'description', label: 'Description', get: (x) => x.description },
    ...(format === 'table' ? [{ key: 'format', label: 'Format', get: (x: InspectionRule) => x.format }] : []),
    { key: 'priority', label: 'Priority', get: (x) => x.priority },
    { key: 'phase', label: 'Phase', get: (x) => x.phase },
    { key: 'sensitive', label: 'Sensitive', get: (x) => x.sensitive },
    { key: 'conditions', label: 'Conditions', get: () => steps('conditions') },
    { key: 'actions', label: 'Actions', get: () => steps('actions') },
    { key: 'created_at', label: 'Created At', get: (x) => x.createdAt },
  ];
}

/** `ospctl rule …`: inspection rules in ironic-inspector's v1 format or Ironic's newer one. */
export function ruleCommand(ctx: Ctx): Command {
  const connect = client(ctx);
  const rule = new Command('rule').description("inspection rules (ironic-inspector v1 or Ironic's inspection-rule format, JSON/YAML): conditions on the inventory, actions on the node");

  withOutput(rule.command('import').description('add rules from a JSON or YAML file (one rule or a list); all or nothing'))
    .argument('<file>', 'rules file')
    .action(async (file: string, o: OutputOpts) => {
      const content = await readInputFile(file);
      const { c, rules } = await connect();
      const r = await c.call(rules, rules.importRules, { content, source: path.basename(file) });
      const rows = [...r.created.map((x) => ({ x, result: 'created' })), ...r.unchanged.map((x) => ({ x, result: 'unchanged' }))];
      ctx.out(renderList(rows, [
        ...RULE_COLUMNS.map((col) => ({ key: col.key, label: col.label, get: (row: (typeof rows)[number]) => col.get(row.x) })),
        { key: 'result', label: 'Result', get: (row) => row.result },
      ], o.format, o.column));
    });

  withOutput(rule.command('list').description('every rule, in the order they run'))
    .action(async (o: OutputOpts) => {
      const { c, rules } = await connect();
      ctx.out(renderList((await c.call(rules, rules.listRules, {})).rules, RULE_COLUMNS, o.format, o.column));
    });

  withOutput(rule.command('show').description('one rule with its conditions and actions'))
    .argument('<rule>', 'rule uuid')
    .action(async (uuid: string, o: OutputOpts) => {
      const { c, rules } = await connect();
      const r = await c.call(rules, rules.getRule, { uuid });
      const body = JSON.parse(r.ruleJson) as { conditions: unknown[]; actions: unknown[] };
      if (r.format === 'ironic') {
        ctx.out(renderOne(r, ironicShowColumns(body, o.format), o.format, o.column));
        return;
      }
      ctx.out(renderOne(r, [
        ...RULE_COLUMNS.filter((col) => !['conditions', 'actions', 'priority', 'sensitive'].includes(col.key)),
        { key: 'created_at', label: 'Created At', get: (x) => x.createdAt },
        { key: 'conditions', label: 'Conditions', get: () => (o.format === 'table' ? body.conditions.map((x) => JSON.stringify(x)) : body.conditions) },
        { key: 'actions', label: 'Actions', get: () => (o.format === 'table' ? body.actions.map((x) => JSON.stringify(x)) : body.actions) },
      ], o.format, o.column));
    });

  rule.command('delete').description('remove a rule')
    .argument('<rule>', 'rule uuid')
    .action(async (uuid: string) => {
      const { c, rules } = await connect();
      const r = await c.call(rules, rules.deleteRule, { uuid });
      ctx.out(`Deleted rule ${r.uuid}\n`);
    });

  withOutput(rule.command('preview').description('dry run: for every node with an inventory, which rules match and what they would change (changes nothing)'))
    .argument('[rule]', 'only this rule (default: all rules, in order)')
    .action(async (uuid: string | undefined, o: OutputOpts) => {
      const { c, rules } = await connect();
      const r = await c.call(rules, rules.previewRules, { uuid: uuid ?? '' });
      ctx.out(renderList(r.nodes, PREVIEW_COLUMNS, o.format, o.column));
    });
  return rule;
}

/** `ospctl profile list`: TripleO's "overcloud profiles list". */
export function profileCommand(ctx: Ctx): Command {
  const connect = client(ctx);
  const profile = new Command('profile').description('node profiles (the profile capability) and the profiles rules would assign');
  withOutput(profile.command('list').description('every node: state, current profile, possible profiles from the rules'))
    .action(async (o: OutputOpts) => {
      const { c, rules } = await connect();
      ctx.out(renderList((await c.call(rules, rules.listProfiles, {})).nodes, PROFILE_COLUMNS, o.format, o.column));
    });
  return profile;
}
