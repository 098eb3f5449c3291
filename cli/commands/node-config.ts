import { Command } from 'commander';
import { agentConfigYaml } from '../../common/agent-config-yaml.js';
import { ConfigServiceClient, type ConfigRevision, type NodeConfigStatus } from '../../proto/gen/osp/v1/config.js';
import { renderList, renderOne, type Column } from '../output.js';
import { keyValues, positiveInt, readInputFile, repeatable, withOutput, type Ctx, type OutputOpts } from '../command-kit.js';

const REVISION_COLUMNS: Column<ConfigRevision>[] = [
  { key: 'node', label: 'Node', get: (r) => r.nodeName },
  { key: 'revision', label: 'Revision', get: (r) => r.revision },
  { key: 'content_hash', label: 'Content Hash', get: (r) => r.contentHash },
  { key: 'created_at', label: 'Created At', get: (r) => r.createdAt },
  { key: 'metadata', label: 'Metadata', get: (r) => JSON.parse(r.metadataJson || '{}') },
  {
    key: 'deployments', label: 'Deployments', get: (r) => r.deployments.map((d) => ({
      id: d.id, name: d.name, group: d.group, config: d.config,
      inputs: Object.fromEntries(d.inputs.map((i) => [i.name, JSON.parse(i.valueJson || '""')])),
    })),
  },
];

const STATUS_COLUMNS: Column<NodeConfigStatus>[] = [
  { key: 'node', label: 'Node', get: (s) => s.nodeName },
  { key: 'latest_revision', label: 'Latest', get: (s) => s.latestRevision },
  { key: 'applied_revision', label: 'Applied', get: (s) => s.appliedRevision },
  { key: 'acked_revision', label: 'Acked', get: (s) => s.ackedRevision },
  { key: 'status', label: 'Status', get: (s) => s.status },
  { key: 'acked_at', label: 'Acked At', get: (s) => s.ackedAt },
  { key: 'connected', label: 'Connected', get: (s) => s.connected },
];
const STATUS_DETAIL: Column<NodeConfigStatus>[] = [
  ...STATUS_COLUMNS,
  { key: 'phases', label: 'Phases', get: (s) => s.phases.map((p) => ({ name: p.name, status: p.status, exit_code: p.exitCode, duration_ms: p.durationMs, stderr_tail: p.stderrTail, failed_script: p.failedScript })) },
  {
    key: 'deployments', label: 'Deployments', get: (s) => s.deployments.map((d) => ({
      name: d.name, status: d.status, exit_code: d.exitCode, duration_ms: d.durationMs, outputs: d.outputs,
      stdout_tail: d.stdoutTail, stderr_tail: d.stderrTail,
    })),
  },
];

const readText = (flag: string, file: string) => readInputFile(file, flag);

/** Adds `config`, `deployment`, `agent-config` and `agent-token` under `ospctl node`. */
export function addConfigCommands(node: Command, ctx: Ctx): void {
  const client = async () => {
    const c = await ctx.connect();
    return { c, cfg: c.client(ConfigServiceClient) };
  };

  const config = node.command('config').description("a node's configuration: metadata, revisions, what its agent applied");
  withOutput(config.command('set').description('replace the metadata (collected config) with a JSON object'))
    .argument('<node>', 'uuid or name')
    .requiredOption('--metadata <file>', 'JSON file holding one object')
    .action(async (id: string, o: OutputOpts & { metadata: string }) => {
      const text = await readText('--metadata', o.metadata);
      const { c, cfg } = await client();
      ctx.out(renderOne(await c.call(cfg, cfg.setMetadata, { id, metadataJson: text }), REVISION_COLUMNS.slice(0, 4), o.format, o.column));
    });
  withOutput(config.command('show').description('show a configuration revision (default: the latest)'))
    .argument('<node>', 'uuid or name')
    .option('--revision <n>', 'revision number', positiveInt('--revision'))
    .action(async (id: string, o: OutputOpts & { revision?: number }) => {
      const { c, cfg } = await client();
      ctx.out(renderOne(await c.call(cfg, cfg.getConfig, { id, revision: o.revision ?? 0 }), REVISION_COLUMNS, o.format, o.column));
    });
  withOutput(config.command('status').description('per node: latest revision, applied revision, result, when'))
    .argument('[node]', 'uuid or name (default: every node)')
    .action(async (id: string | undefined, o: OutputOpts) => {
      const { c, cfg } = await client();
      const r = await c.call(cfg, cfg.listConfigStatus, { id: id ?? '' });
      ctx.out(id ? renderOne(r.nodes[0], STATUS_DETAIL, o.format, o.column) : renderList(r.nodes, STATUS_COLUMNS, o.format, o.column));
    });

  const dep = node.command('deployment').description('software deployments (Heat SoftwareDeployment style) on a node');
  withOutput(dep.command('add').description('add or replace (by name) a deployment; makes a new revision'))
    .argument('<node>', 'uuid or name')
    .requiredOption('--name <name>', 'deployment name')
    .requiredOption('--group <group>', 'script or apply-config')
    .requiredOption('--config <file>', 'script body, or JSON object for apply-config')
    .option('--input <key=value>', 'input (value taken as JSON when it parses, else as a string; repeatable)', repeatable)
    .action(async (id: string, o: OutputOpts & { name: string; group: string; config: string; input?: string[] }) => {
      const body = await readText('--config', o.config);
      const inputs = keyValues('--input', o.input).map(([name, v]) => {
        let value: unknown = v;
        try {
          value = JSON.parse(v);
        } catch { /* a plain string */ }
        return { name, valueJson: JSON.stringify(value) };
      });
      const { c, cfg } = await client();
      const r = await c.call(cfg, cfg.addDeployment, { id, deployment: { id: '', name: o.name, group: o.group, config: body, inputs, optionsJson: '' } });
      ctx.out(renderOne(r, REVISION_COLUMNS.slice(0, 4), o.format, o.column));
    });
  withOutput(dep.command('remove').description('remove a deployment by name; makes a new revision'))
    .argument('<node>', 'uuid or name')
    .requiredOption('--name <name>', 'deployment name')
    .action(async (id: string, o: OutputOpts & { name: string }) => {
      const { c, cfg } = await client();
      ctx.out(renderOne(await c.call(cfg, cfg.removeDeployment, { id, name: o.name }), REVISION_COLUMNS.slice(0, 4), o.format, o.column));
    });

  node.command('agent-config').description("issue a node token and print the agent's config (agent.yaml); replaces any earlier token")
    .argument('<node>', 'uuid or name')
    .action(async (id: string) => {
      const { c, cfg } = await client();
      const r = await c.call(cfg, cfg.issueAgentToken, { id });
      ctx.out(agentConfigYaml({ server: r.server, caPem: r.caPem, caSha256: r.caSha256, node: r.node, token: r.token, mqttUrl: r.mqttUrl }));
    });
  const tok = node.command('agent-token').description("a node's agent token");
  tok.command('revoke').description('revoke the token: the agent is refused from now on')
    .argument('<node>', 'uuid or name')
    .action(async (id: string) => {
      const { c, cfg } = await client();
      const r = await c.call(cfg, cfg.revokeAgentToken, { id });
      ctx.out(r.revoked ? `Revoked the agent token of ${id}\n` : `${id} had no agent token\n`);
    });
}
