import { randomUUID } from 'node:crypto';
import { OspError } from '../../common/errors.js';
import type { Logger } from '../../common/logging.js';
import type { Database } from '../store/db.js';
import { nodeStore } from '../store/nodes.js';
import type { NodeRecord } from '../nodes/model.js';
import { MAX_PAGE, type NodeRegistry } from '../nodes/registry.js';
import { generateToken, hashToken, tokenMatches } from '../security/tokens.js';
import { configStore, type AckRow, type DeploymentDoc, type RevisionRow } from '../store/configs.js';
import { contentHash } from './canonical.js';

export type RevisionListener = (rev: RevisionRow, node: NodeRecord) => void;

export interface NodeConfigStatus {
  node: NodeRecord;
  latestRevision: number;
  appliedRevision: number;
  lastAck?: AckRow;
  connected: boolean;
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const GROUP_RE = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

function invalid(field: string, value: unknown, expected: string): never {
  const shown = typeof value === 'string' && value.length > 60 ? `${value.slice(0, 60)}…` : value;
  throw new OspError('INVALID_ARGUMENT', `${field}: ${JSON.stringify(shown)}: expected ${expected}`, { field });
}

export function parseJsonObject(field: string, text: string): Record<string, unknown> {
  if (text.length > MAX_CONFIG_BYTES) invalid(field, `${text.length} bytes`, `at most ${MAX_CONFIG_BYTES} bytes`);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    invalid(field, text, `a JSON object (${(e as Error).message})`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) invalid(field, text, 'a JSON object');
  return v as Record<string, unknown>;
}

/**
 * Per-node configuration documents (metadata + software deployments) as
 * monotonic revisions, pushed to agents the moment they commit, and the
 * agents' tokens and acknowledgements. The single source of "which node has
 * applied what".
 */
export class NodeConfigs {
  private readonly listeners = new Map<string, Set<RevisionListener>>();
  /** Live streams per node, ended when the node's token is revoked. */
  private readonly kicks = new Map<string, Set<() => void>>();
  private readonly authObservers = new Set<(nodeUuid: string) => void>();
  private readonly ackObservers = new Set<(nodeUuid: string, ack: AckRow) => void>();

  constructor(
    private readonly db: Database,
    private readonly nodes: NodeRegistry,
    private readonly log: Logger,
  ) {}

  /** Called with every revision committed for the node; returns the unsubscribe function. */
  subscribe(nodeUuid: string, fn: RevisionListener, onRevoked: () => void = () => undefined): () => void {
    let set = this.listeners.get(nodeUuid);
    if (!set) this.listeners.set(nodeUuid, (set = new Set()));
    set.add(fn);
    let kicks = this.kicks.get(nodeUuid);
    if (!kicks) this.kicks.set(nodeUuid, (kicks = new Set()));
    kicks.add(onRevoked);
    return () => {
      set!.delete(fn);
      kicks!.delete(onRevoked);
      if (set!.size === 0) this.listeners.delete(nodeUuid);
      if (kicks!.size === 0) this.kicks.delete(nodeUuid);
    };
  }

  connectedCount(): number {
    let n = 0;
    for (const s of this.listeners.values()) n += s.size;
    return n;
  }

  private async commit(id: string, actor: string, change: (cur: { metadata: Record<string, unknown>; deployments: DeploymentDoc[] }) => { metadata: Record<string, unknown>; deployments: DeploymentDoc[] }): Promise<RevisionRow> {
    let node!: NodeRecord;
    let fresh = false;
    const rev = await this.db.transaction(async (tx) => {
      node = await this.nodes.get(id, tx);
      const cur = await configStore.latest(tx, node.uuid);
      const next = change({ metadata: cur?.metadata ?? {}, deployments: cur?.deployments ?? [] });
      const hash = contentHash(next);
      if (cur && cur.contentHash === hash) return cur;
      const row: RevisionRow = { nodeUuid: node.uuid, revision: (cur?.revision ?? 0) + 1, contentHash: hash, ...next, actor, createdAt: new Date().toISOString() };
      await configStore.insert(tx, row);
      await nodeStore.appendEvent(tx, { nodeUuid: node.uuid, type: 'config', actor, message: `config revision ${row.revision} committed`, data: { revision: row.revision, hash } });
      fresh = true;
      return row;
    });
    if (fresh) {
      this.log.info({ node: node.name, revision: rev.revision, actor }, 'config revision committed');
      for (const fn of this.listeners.get(node.uuid) ?? []) fn(rev, node);
    }
    return rev;
  }

  setMetadata(id: string, metadataJson: string, actor: string): Promise<RevisionRow> {
    const metadata = parseJsonObject('metadata', metadataJson);
    return this.commit(id, actor, (cur) => ({ ...cur, metadata }));
  }

  addDeployment(id: string, d: Omit<DeploymentDoc, 'id'>, actor: string): Promise<RevisionRow> {
    if (!NAME_RE.test(d.name)) invalid('deployment.name', d.name, 'letters, digits, _ . - (1-128 characters)');
    if (!GROUP_RE.test(d.group)) invalid('deployment.group', d.group, 'a group name such as script or apply-config');
    if (!d.config) invalid('deployment.config', d.config, 'a non-empty config body');
    if (d.config.length > MAX_CONFIG_BYTES) invalid('deployment.config', `${d.config.length} bytes`, `at most ${MAX_CONFIG_BYTES} bytes`);
    if (d.group === 'apply-config') parseJsonObject('deployment.config', d.config);
    for (const i of d.inputs) if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(i.name)) invalid('deployment.inputs', i.name, 'an input name usable as an environment variable');
    return this.commit(id, actor, (cur) => {
      const prev = cur.deployments.find((x) => x.name === d.name);
      const rest = cur.deployments.filter((x) => x.name !== d.name);
      return { ...cur, deployments: [...rest, { ...d, id: prev?.id ?? randomUUID() }] };
    });
  }

  removeDeployment(id: string, name: string, actor: string): Promise<RevisionRow> {
    return this.commit(id, actor, (cur) => {
      if (!cur.deployments.some((d) => d.name === name)) throw new OspError('NOT_FOUND', `deployment '${name}' not found on node '${id}'`);
      return { ...cur, deployments: cur.deployments.filter((d) => d.name !== name) };
    });
  }

  async get(id: string, revision = 0): Promise<{ node: NodeRecord; rev?: RevisionRow }> {
    const node = await this.nodes.get(id);
    const rev = revision ? await configStore.at(this.db, node.uuid, revision) : await configStore.latest(this.db, node.uuid);
    if (revision && !rev) throw new OspError('CONFIG_REVISION_NOT_FOUND', `node ${node.name} has no config revision ${revision}`);
    return { node, rev };
  }

  async status(id?: string): Promise<NodeConfigStatus[]> {
    let nodes: NodeRecord[];
    if (id) nodes = [await this.nodes.get(id)];
    else {
      nodes = [];
      // Every node, page by page: the fleet may be larger than one page.
      for (let marker: string | undefined, page = 0; page < 100_000; page++) {
        const r = await this.nodes.list({ limit: MAX_PAGE, marker });
        nodes.push(...r.nodes);
        if (!r.nextMarker) break;
        marker = r.nextMarker;
      }
    }
    const summaries = await configStore.summaries(this.db, id ? nodes[0].uuid : undefined);
    return nodes.map((node) => ({
      node,
      latestRevision: 0,
      appliedRevision: 0,
      ...summaries.get(node.uuid),
      connected: (this.listeners.get(node.uuid)?.size ?? 0) > 0,
    }));
  }

  /** A fresh token replaces any earlier one; only its hash is kept. */
  async issueToken(id: string, actor: string): Promise<{ node: NodeRecord; token: string }> {
    const token = generateToken('agent');
    const node = await this.db.transaction(async (tx) => {
      const n = await this.nodes.get(id, tx);
      await configStore.setToken(tx, n.uuid, hashToken(token), new Date().toISOString());
      await nodeStore.appendEvent(tx, { nodeUuid: n.uuid, type: 'agent-token', actor, message: 'agent token issued' });
      return n;
    });
    this.log.info({ node: node.name, actor }, 'agent token issued');
    return { node, token };
  }

  /** Makes a token issued earlier (kept as its hash until now) the node's token, replacing any other: a deploy's new system takes over from its ramdisk. */
  async adoptTokenHash(id: string, tokenHash: string, actor: string): Promise<void> {
    await this.db.transaction(async (tx) => {
      const n = await this.nodes.get(id, tx);
      await configStore.setToken(tx, n.uuid, tokenHash, new Date().toISOString());
      await nodeStore.appendEvent(tx, { nodeUuid: n.uuid, type: 'agent-token', actor, message: "agent token of the deployed system installed (the ramdisk's is revoked)" });
    });
    for (const kick of [...(this.kicks.get((await this.nodes.get(id)).uuid) ?? [])]) kick();
  }

  async revokeToken(id: string, actor: string): Promise<boolean> {
    const { revoked, uuid } = await this.db.transaction(async (tx) => {
      const n = await this.nodes.get(id, tx);
      const gone = await configStore.deleteToken(tx, n.uuid);
      if (gone) await nodeStore.appendEvent(tx, { nodeUuid: n.uuid, type: 'agent-token', actor, message: 'agent token revoked' });
      return { revoked: gone, uuid: n.uuid };
    });
    this.log.info({ node: id, actor, revoked }, 'agent token revoke');
    for (const kick of [...(this.kicks.get(uuid) ?? [])]) kick();
    return revoked;
  }

  /** The node whose token this is; constant-time comparison against the stored hash. */
  async authenticate(nodeName: string, token: string): Promise<NodeRecord> {
    const node = nodeName ? await this.nodes.get(nodeName).catch(() => undefined) : undefined;
    const hash = node ? await configStore.tokenHash(this.db, node.uuid) : undefined;
    // Compare even when there is nothing to compare with, so timing does not tell a known node from an unknown one.
    const ok = tokenMatches(token, hash ?? '0'.repeat(64));
    if (!node || !hash || !ok) throw new OspError('AGENT_TOKEN_INVALID');
    for (const fn of this.authObservers) fn(node.uuid);
    return node;
  }

  /** Told of each call a node's token authenticated: the deploy's boot watch learns the deployed agent is up. */
  onAuthenticated(fn: (nodeUuid: string) => void): () => void {
    this.authObservers.add(fn);
    return () => this.authObservers.delete(fn);
  }

  async ack(node: NodeRecord, a: AckRow): Promise<void> {
    if (!(await configStore.at(this.db, node.uuid, a.revision))) {
      throw new OspError('CONFIG_REVISION_NOT_FOUND', `node ${node.name} has no config revision ${a.revision}`);
    }
    if (a.status !== 'succeeded' && a.status !== 'failed') invalid('status', a.status, "'succeeded' or 'failed'");
    await this.db.transaction(async (tx) => {
      await configStore.putAck(tx, node.uuid, a);
      await nodeStore.appendEvent(tx, { nodeUuid: node.uuid, type: 'config-ack', actor: 'agent', message: `config revision ${a.revision} ${a.status}`, data: { revision: a.revision, status: a.status } });
    });
    this.log.info({ node: node.name, revision: a.revision, status: a.status }, 'config revision acknowledged');
    for (const fn of this.ackObservers) {
      // An observer's bug must not turn the agent's committed ack into an error answer.
      try {
        fn(node.uuid, a);
      } catch (e) {
        this.log.warn({ node: node.name, err: e }, 'config ack observer failed');
      }
    }
  }

  /** Told of each acknowledgement after it is committed (software deployments wait on these); returns the unsubscribe function. */
  onAck(fn: (nodeUuid: string, ack: AckRow) => void): () => void {
    this.ackObservers.add(fn);
    return () => this.ackObservers.delete(fn);
  }
}
