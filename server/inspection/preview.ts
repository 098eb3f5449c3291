import { pickProperties } from '../../common/node-properties.js';
import type { NodeRecord } from '../nodes/model.js';
import type { Database } from '../store/db.js';
import { nodeStore } from '../store/nodes.js';
import { telemetryStore } from '../store/telemetry.js';
import { deriveProperties } from './derive.js';
import { describeChange, describeLog, evaluateRules } from './rules/engine.js';
import type { Rule, RuleChange } from './rules/types.js';

/** One node's dry run: what the rules would do, nothing changed. */
export interface NodePreview {
  node: NodeRecord;
  matched: string[];
  changes: RuleChange[];
  /** Human-readable lines, secrets masked. */
  described: string[];
  /** What Ironic-format `log` actions would write, "<level>: <message>"; masked for sensitive rules. */
  logs: string[];
  failure?: string;
}

export interface NodeProfile {
  node: NodeRecord;
  profile: string;
  /** Profiles the rules would set, plus TripleO's `<name>_profile` capabilities. */
  possible: string[];
}

const NODE_PAGE = 1000;
const TRUTHY = new Set(['1', 'true', 'yes', 'on']);

/** The node as the rules will see it during inspection: derived properties filled in. */
function prospective(node: NodeRecord, facts: Record<string, unknown>): NodeRecord {
  let d;
  try {
    d = deriveProperties(facts, node.rootDevice);
  } catch {
    return node; // bad hints: processInventory reports them; the preview shows the rules over the node as is
  }
  return {
    ...node, ports: [...new Set([...node.ports, ...d.pxeMacs])],
    properties: { ...node.properties, ...pickProperties(d) },
  };
}

/** Profiles named by capabilities: `profile:X` and TripleO's `X_profile:1`. */
function profilesIn(caps: Record<string, string | null>): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(caps)) {
    if (k === 'profile' && v) out.push(v);
    const m = /^(.+)_profile$/.exec(k);
    if (m && v !== null && TRUTHY.has(v.toLowerCase())) out.push(m[1]);
  }
  return out;
}

/** Dry runs of the rules over stored inventories; reads only. */
export class InspectionPreview {
  constructor(
    private readonly db: Database,
    private readonly rules: { list(): Promise<Rule[]> },
  ) {}

  private async inventories(): Promise<Map<string, Record<string, unknown>>> {
    const all = await telemetryStore.allFacts(this.db);
    return new Map([...all].map(([uuid, facts]) => [uuid, JSON.parse(facts) as Record<string, unknown>]));
  }

  private async allNodes(): Promise<NodeRecord[]> {
    const out: NodeRecord[] = [];
    let afterName: string | undefined;
    for (;;) {
      const page = await nodeStore.list(this.db, { limit: NODE_PAGE, afterName });
      out.push(...page);
      if (page.length < NODE_PAGE) return out;
      afterName = page[page.length - 1].name;
    }
  }

  /** For every node with a stored inventory; `only` narrows to one stored rule. */
  async preview(only?: Rule): Promise<NodePreview[]> {
    const rules = only ? [only] : await this.rules.list();
    const inv = await this.inventories();
    const out: NodePreview[] = [];
    for (const node of await this.allNodes()) {
      const facts = inv.get(node.uuid);
      if (!facts) continue;
      const e = evaluateRules(rules, { inventory: facts, node: prospective(node, facts) });
      out.push({ node, matched: e.matched, changes: e.changes, described: e.changes.map(describeChange), logs: (e.logs ?? []).map(describeLog), failure: e.failure });
    }
    return out;
  }

  /** Every node with its profile and the profiles the rules would give it. */
  async profiles(): Promise<NodeProfile[]> {
    const rules = await this.rules.list();
    const inv = await this.inventories();
    return (await this.allNodes()).map((node) => {
      const possible = new Set(profilesIn(node.capabilities));
      const facts = inv.get(node.uuid);
      if (facts) {
        const e = evaluateRules(rules, { inventory: facts, node: prospective(node, facts) });
        const caps: Record<string, string | null> = {};
        for (const c of e.changes) if (c.kind === 'set-capability') caps[c.name] = c.value;
        for (const p of profilesIn(caps)) possible.add(p);
      }
      return { node, profile: node.capabilities.profile ?? '', possible: [...possible].sort() };
    });
  }
}
