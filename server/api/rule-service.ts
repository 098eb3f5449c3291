import type { Logger } from '../../common/logging.js';
import { RuleServiceService, type InspectionRule, type RuleServiceServer } from '../../proto/gen/osp/v1/rules.js';
import type { RuleStore, StoredRule } from '../inspection/rule-store.js';
import type { InspectionPreview } from '../inspection/preview.js';
import { ironicJson } from '../inspection/rules/ironic-format.js';
import { isIronicRule } from '../inspection/rules/types.js';
import { parseRuleDocument } from '../inspection/rules/validate.js';
import { unary, type Authenticator } from './call.js';

/** rule_json is the rule in the format it was written in, so it can be shown back that way. */
function toProto(r: StoredRule): InspectionRule {
  const common = { uuid: r.uuid, description: r.description, createdAt: r.createdAt, conditionCount: r.conditions.length, actionCount: r.actions.length };
  if (isIronicRule(r)) {
    return { ...common, scope: '', ruleJson: JSON.stringify(ironicJson(r)), format: 'ironic', priority: r.priority, sensitive: r.sensitive, phase: r.phase };
  }
  const { createdAt: _c, ...rule } = r;
  return { ...common, scope: r.scope, ruleJson: JSON.stringify(rule), format: 'inspector', priority: 0, sensitive: false, phase: '' };
}

/** RuleService: inspection rules, their dry run, and the profiles they assign. */
export function ruleService(rules: RuleStore, preview: InspectionPreview, auth: Authenticator, log: Logger) {
  const show = (r: StoredRule) => toProto(rules.present(r));
  const impl: RuleServiceServer = {
    importRules: unary(log, 'ImportRules', auth, async (req, ctx) => {
      const parsed = parseRuleDocument(req.content, req.source || 'rules document');
      const r = await rules.import(parsed);
      ctx.log.info({ created: r.created.length, unchanged: r.unchanged.length, source: req.source }, 'inspection rules imported');
      return { created: r.created.map(show), unchanged: r.unchanged.map(show) };
    }),
    listRules: unary(log, 'ListRules', auth, async () => ({ rules: (await rules.list()).map(show) })),
    getRule: unary(log, 'GetRule', auth, async (req) => show(await rules.get(req.uuid))),
    deleteRule: unary(log, 'DeleteRule', auth, async (req, ctx) => {
      const uuid = await rules.delete(req.uuid);
      ctx.log.info({ rule: uuid }, 'inspection rule deleted');
      return { uuid };
    }),
    previewRules: unary(log, 'PreviewRules', auth, async (req) => {
      const only = req.uuid ? await rules.get(req.uuid) : undefined;
      const nodes = await preview.preview(only);
      return {
        nodes: nodes.map((p) => ({
          nodeUuid: p.node.uuid, nodeName: p.node.name, provisionState: p.node.provisionState,
          matchedRules: p.matched, changes: p.described, logs: p.logs, failure: p.failure ?? '',
        })),
      };
    }),
    listProfiles: unary(log, 'ListProfiles', auth, async () => ({
      nodes: (await preview.profiles()).map((p) => ({
        nodeUuid: p.node.uuid, nodeName: p.node.name, provisionState: p.node.provisionState, profile: p.profile, possibleProfiles: p.possible,
      })),
    })),
  };
  return { definition: RuleServiceService, impl };
}
