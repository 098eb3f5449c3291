import { randomUUID } from 'node:crypto';
import { OspError, type Problem } from '../../common/errors.js';
import type { Logger } from '../../common/logging.js';
import type { Database, Queryable } from '../store/db.js';
import { nodeStore, type NodeEventRow } from '../store/nodes.js';
import { MASK, SecretBox, isSecretKey, maskSecrets } from '../security/secrets.js';
import { DELETABLE_STATES, type NodeInput, type NodeRecord } from './model.js';
import { asProblem, validateNode } from './validate.js';
import { parseNodeFile } from './import-file.js';
import { applyPatch, type PatchOp } from './patch.js';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const DEFAULT_PAGE = 1000;
export const MAX_PAGE = 5000;

export interface ListOptions {
  provisionState?: string;
  profile?: string;
  maintenance?: boolean;
  driver?: string;
  limit?: number;
  marker?: string;
}

export interface ImportResult {
  created: NodeRecord[];
  updated: NodeRecord[];
  unchanged: NodeRecord[];
}

/** The node registry: every create, change and delete of a node record goes through here. */
export class NodeRegistry {
  constructor(
    private readonly db: Database,
    private readonly secrets: SecretBox,
    private readonly log: Logger,
  ) {}

  /** A copy safe to show anyone: secret driver_info values replaced by the mask. */
  present(n: NodeRecord): NodeRecord {
    return { ...n, driverInfo: maskSecrets(n.driverInfo) };
  }

  /** driver_info with secrets decrypted, for BMC drivers only. Never log the result. */
  revealDriverInfo(n: NodeRecord): Record<string, string> {
    return Object.fromEntries(Object.entries(n.driverInfo).map(([k, v]) => [k, SecretBox.isSealed(v) ? this.secrets.decrypt(v) : v]));
  }

  private seal(info: Record<string, string>, previous?: Record<string, string>): Record<string, string> {
    return Object.fromEntries(Object.entries(info).map(([k, v]) => {
      if (!isSecretKey(k)) return [k, v];
      // The mask coming back (e.g. from a show → edit → set round trip) keeps the stored secret.
      if (v === MASK && previous?.[k]) return [k, previous[k]];
      return [k, SecretBox.isSealed(v) ? v : this.secrets.encrypt(v)];
    }));
  }

  async get(id: string, q: Queryable = this.db): Promise<NodeRecord> {
    const n = UUID_RE.test(id) ? await nodeStore.getByUuid(q, id.toLowerCase()) : await nodeStore.getByName(q, id);
    if (!n) throw new OspError('NODE_NOT_FOUND', `node '${id}' not found`, { node: id });
    return n;
  }

  async list(o: ListOptions): Promise<{ nodes: NodeRecord[]; nextMarker: string }> {
    const limit = Math.min(o.limit || DEFAULT_PAGE, MAX_PAGE);
    let afterName: string | undefined;
    if (o.marker) afterName = (await this.get(o.marker)).name;
    const nodes = await nodeStore.list(this.db, { ...o, afterName, limit: limit + 1 });
    const more = nodes.length > limit;
    if (more) nodes.pop();
    return { nodes, nextMarker: more ? nodes[nodes.length - 1].uuid : '' };
  }

  async events(id: string, limit = 100): Promise<NodeEventRow[]> {
    const n = await this.get(id);
    return nodeStore.listEvents(this.db, n.uuid, Math.min(limit || 100, 1000));
  }

  private invalid(problems: Problem[], code: 'NODE_INVALID' | 'NODE_IMPORT_INVALID' = 'NODE_INVALID'): never {
    throw new OspError(code, problems.map((p) => p.description).join('\n'), { problems });
  }

  private refuseClash(clash: Problem[]): never {
    throw new OspError(clash.some((c) => c.field === 'name') ? 'NODE_NAME_IN_USE' : 'PORT_IN_USE', clash.map((c) => c.description).join('\n'), { problems: clash });
  }

  /**
   * Every clash between this node and the others in the store. `at` is the
   * entry's path in an import (`nodes[1]`), whose MACs come from its `mac` field.
   */
  private async conflicts(q: Queryable, input: NodeInput, selfUuid: string | undefined, where = '', at = ''): Promise<Problem[]> {
    const out: Problem[] = [];
    const byName = await nodeStore.getByName(q, input.name);
    if (byName && byName.uuid !== selfUuid) {
      out.push({ field: at ? `${at}.name` : 'name', description: `${where}name: ${JSON.stringify(input.name)}: already used by node ${byName.uuid}` });
    }
    for (const [mac, owner] of await nodeStore.portOwners(q, input.ports)) {
      if (owner !== selfUuid) out.push({ field: at ? `${at}.mac` : 'ports', description: `${where}mac: ${JSON.stringify(mac)}: already belongs to node ${owner}` });
    }
    return out;
  }

  private fresh(input: NodeInput): NodeRecord {
    const now = new Date().toISOString();
    return {
      uuid: randomUUID(), ...input, driverInfo: this.seal(input.driverInfo), provisionState: 'enroll', powerState: 'unknown',
      maintenance: false, maintenanceReason: '', lastError: '', currentStep: '', createdAt: now, updatedAt: now,
    };
  }

  async create(input: NodeInput, actor: string): Promise<NodeRecord> {
    const problems = validateNode(input).map((p) => asProblem(p));
    if (problems.length) this.invalid(problems);
    const node = await this.db.transaction(async (tx) => {
      const clash = await this.conflicts(tx, input, undefined);
      if (clash.length) this.refuseClash(clash);
      const n = this.fresh(input);
      await nodeStore.insert(tx, n);
      await nodeStore.appendEvent(tx, { nodeUuid: n.uuid, type: 'create', actor, message: `node ${n.name} created`, data: { driver: n.driver, ports: n.ports } });
      return n;
    });
    this.log.info({ node: node.name, uuid: node.uuid, actor }, 'node created');
    return node;
  }

  async update(id: string, ops: PatchOp[], actor: string): Promise<NodeRecord> {
    const node = await this.db.transaction(async (tx) => {
      const cur = await this.get(id, tx);
      const { input, maintenance, maintenanceReason, changed } = applyPatch(cur, ops);
      const problems = validateNode(input).map((p) => asProblem(p));
      if (problems.length) this.invalid(problems);
      const clash = await this.conflicts(tx, input, cur.uuid);
      if (clash.length) this.refuseClash(clash);
      const next: NodeRecord = {
        ...cur, ...input, driverInfo: this.seal(input.driverInfo, cur.driverInfo), maintenance, maintenanceReason,
        updatedAt: new Date().toISOString(),
      };
      await nodeStore.update(tx, next);
      await nodeStore.appendEvent(tx, { nodeUuid: cur.uuid, type: 'update', actor, message: `changed ${changed.join(', ')}`, data: { fields: changed } });
      return next;
    });
    this.log.info({ node: node.name, actor }, 'node updated');
    return node;
  }

  async delete(id: string, actor: string): Promise<string> {
    const uuid = await this.db.transaction(async (tx) => {
      const n = await this.get(id, tx);
      if (!DELETABLE_STATES.includes(n.provisionState)) {
        throw new OspError('NODE_BUSY', `node ${n.name} is '${n.provisionState}': a node can be deleted only in ${DELETABLE_STATES.join(', ')}; undeploy or abort it first`, { node: n.name });
      }
      await nodeStore.delete(tx, n.uuid);
      await nodeStore.appendEvent(tx, { nodeUuid: n.uuid, type: 'delete', actor, message: `node ${n.name} deleted` });
      return n.uuid;
    });
    this.log.info({ node: id, uuid, actor }, 'node deleted');
    return uuid;
  }

  private sameAs(cur: NodeRecord, input: NodeInput): boolean {
    const revealed = this.revealDriverInfo(cur);
    const norm = (o: object) => JSON.stringify(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));
    return cur.name === input.name && cur.driver === input.driver && norm(revealed) === norm(input.driverInfo)
      && norm(cur.properties) === norm(input.properties) && norm(cur.capabilities) === norm(input.capabilities)
      && norm(cur.rootDevice) === norm(input.rootDevice) && input.ports.every((p) => cur.ports.includes(p));
  }

  /**
   * Validates the whole file, then writes it in one transaction: every node
   * or none. Re-importing is idempotent: entries match existing nodes by
   * name, then by MAC; unchanged ones are left alone.
   */
  async import(content: string, source: string, actor: string): Promise<ImportResult> {
    const parsed = parseNodeFile(content, source);
    if (parsed.problems.length) this.invalid(parsed.problems, 'NODE_IMPORT_INVALID');
    this.log.info({ source, actor, nodes: parsed.nodes.length }, 'node import started');
    const result = await this.db.transaction(async (tx) => {
      const res: ImportResult = { created: [], updated: [], unchanged: [] };
      const problems: Problem[] = [];
      for (const [i, input] of parsed.nodes.entries()) {
        const where = `nodes[${i}] (${input.name}): `;
        let cur = await nodeStore.getByName(tx, input.name);
        if (!cur) for (const m of input.ports) if ((cur = await nodeStore.findByMac(tx, m))) break;
        problems.push(...await this.conflicts(tx, input, cur?.uuid, where, `nodes[${i}]`));
        if (problems.length) continue;
        if (!cur) {
          const n = this.fresh(input);
          await nodeStore.insert(tx, n);
          await nodeStore.appendEvent(tx, { nodeUuid: n.uuid, type: 'import', actor, message: `node ${n.name} imported from ${source}` });
          res.created.push(n);
        } else if (this.sameAs(cur, input)) {
          res.unchanged.push(cur);
        } else {
          const ports = [...new Set([...cur.ports, ...input.ports])];
          const next: NodeRecord = { ...cur, ...input, ports, driverInfo: this.seal(input.driverInfo, cur.driverInfo), updatedAt: new Date().toISOString() };
          await nodeStore.update(tx, next);
          await nodeStore.appendEvent(tx, { nodeUuid: cur.uuid, type: 'import', actor, message: `node ${cur.name} updated from ${source}` });
          res.updated.push(next);
        }
      }
      if (problems.length) this.invalid(problems, 'NODE_IMPORT_INVALID');
      return res;
    });
    this.log.info({ source, actor, created: result.created.length, updated: result.updated.length, unchanged: result.unchanged.length }, 'nodes imported');
    return result;
  }
}
