import { Command, Option } from 'commander';
import { TelemetryServiceClient, type MetricSample, type MqttUser, type NodeInventory } from '../../proto/gen/osp/v1/telemetry.js';
import { renderList, renderOne, UsageError, type Column } from '../output.js';
import { positiveInt, repeatable, withOutput, type Ctx, type OutputOpts } from '../command-kit.js';
import type { ServiceError } from '@grpc/grpc-js';

const USER_COLUMNS: Column<MqttUser>[] = [
  { key: 'name', label: 'Name', get: (u) => u.name },
  { key: 'role', label: 'Role', get: (u) => u.role },
  { key: 'created_at', label: 'Created At', get: (u) => u.createdAt },
];

const SAMPLE_COLUMNS: Column<MetricSample>[] = [
  { key: 'node', label: 'Node', get: (s) => s.nodeName },
  { key: 'time', label: 'Time', get: (s) => new Date(s.tsMs).toISOString() },
  { key: 'ts_ms', label: 'TS (ms)', get: (s) => s.tsMs },
  { key: 'resolution', label: 'Resolution', get: (s) => s.resolution },
  { key: 'values', label: 'Values', get: (s) => s.values },
];

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `--since`: a duration back from now (90s, 15m, 1h, 7d) or an ISO 8601 time. */
export function parseSince(v: string, nowMs = Date.now()): number {
  const m = /^(\d+)([smhd])$/.exec(v);
  if (m) return nowMs - Number(m[1]) * UNIT_MS[m[2]];
  const t = Date.parse(v);
  if (/^\d{4}-\d{2}-\d{2}/.test(v) && Number.isFinite(t)) return t;
  throw new UsageError(`--since ${v}: expected a duration such as 90s, 15m, 1h, 7d, or an ISO 8601 time`);
}

function telemetryClient(ctx: Ctx) {
  return async () => {
    const c = await ctx.connect();
    return { c, t: c.client(TelemetryServiceClient) };
  };
}

function mqttCommand(ctx: Ctx): Command {
  const client = telemetryClient(ctx);
  const mqtt = new Command('mqtt').description('the embedded MQTT broker');
  const user = mqtt.command('user').description('MQTT consumer accounts (mosquitto_sub, Telegraf, Home Assistant)');
  withOutput(user.command('create').description('create an account; the generated password is shown once'))
    .argument('<name>', 'account name (letters, digits, _ . -)')
    .addOption(new Option('--role <role>', 'what the account may do').choices(['reader']).default('reader'))
    .action(async (name: string, o: OutputOpts & { role: string }) => {
      const { c, t } = await client();
      const r = await c.call(t, t.createMqttUser, { name, role: o.role });
      const row = { ...r.user!, password: r.password };
      const cols: Column<typeof row>[] = [...USER_COLUMNS, { key: 'password', label: 'Password', get: (u) => u.password }];
      ctx.out(renderOne(row, cols, o.format, o.column));
      if (o.format === 'table') process.stderr.write('ospctl: the password is not stored in clear and cannot be shown again\n');
    });
  user.command('delete').description('delete an account; its clients cannot log in any more')
    .argument('<name>', 'account name')
    .action(async (name: string) => {
      const { c, t } = await client();
      await c.call(t, t.deleteMqttUser, { name });
      ctx.out(`Deleted MQTT user ${name}\n`);
    });
  withOutput(user.command('list').description('list accounts'))
    .action(async (o: OutputOpts) => {
      const { c, t } = await client();
      ctx.out(renderList((await c.call(t, t.listMqttUsers, {})).users, USER_COLUMNS, o.format, o.column));
    });
  return mqtt;
}

function metricsCommand(ctx: Ctx): Command {
  const client = telemetryClient(ctx);
  const metrics = new Command('metrics').description('node metrics reported by agents');
  withOutput(metrics.command('show').description('stored samples of a node, oldest first (per-minute averages beyond the raw window)'))
    .argument('<node>', 'uuid or name')
    .option('--since <when>', 'duration back from now (90s, 15m, 1h, 7d) or ISO 8601 time', '1h')
    .option('--name <metric>', 'only this metric key (repeatable)', repeatable, [])
    .option('--limit <n>', 'at most this many samples, the newest', positiveInt('--limit'))
    .action(async (id: string, o: OutputOpts & { since: string; name: string[]; limit?: number }) => {
      const sinceMs = parseSince(o.since);
      const { c, t } = await client();
      const r = await c.call(t, t.queryMetrics, { id, sinceMs, names: o.name, limit: o.limit ?? 0 });
      ctx.out(renderList(r.samples, SAMPLE_COLUMNS, o.format, o.column));
    });
  metrics.command('watch').description('live samples as ospd ingests them (Ctrl-C to stop)')
    .argument('[node]', 'uuid or name (default: every node)')
    .option('--name <metric>', 'only this metric key (repeatable)', repeatable, [])
    .option('--count <n>', 'stop after this many samples', positiveInt('--count'))
    .addOption(new Option('-f, --format <format>', 'one line per sample').choices(['text', 'json']).default('text'))
    .action(async (id: string | undefined, o: { name: string[]; count?: number; format: string }) => {
      const { c, t } = await client();
      const stream = t.watchMetrics({ id: id ?? '', names: o.name }, c.metadata());
      let seen = 0;
      await new Promise<void>((resolve, reject) => {
        const stop = () => {
          stream.cancel();
          resolve();
        };
        process.once('SIGINT', stop);
        stream.on('data', (s: MetricSample) => {
          const time = new Date(s.tsMs).toISOString();
          ctx.out(o.format === 'json'
            ? `${JSON.stringify({ node: s.nodeName, time, ts_ms: s.tsMs, values: s.values })}\n`
            : `${time} ${s.nodeName} ${Object.entries(s.values).map(([k, v]) => `${k}=${v}`).join(' ')}\n`);
          if (o.count && ++seen >= o.count) stop();
        });
        stream.on('error', (e: ServiceError) => (e.code === 1 ? resolve() : reject(c.explain(e))));
        stream.on('end', () => resolve());
      });
    });
  return metrics;
}

/** ospctl's telemetry commands: `mqtt user …` and `metrics show|watch`. */
export function telemetryCommands(ctx: Ctx): Command[] {
  return [mqttCommand(ctx), metricsCommand(ctx)];
}

/** Adds `ospctl node inventory NODE` (the agent's latest facts). */
export function addInventoryCommand(node: Command, ctx: Ctx): void {
  const client = telemetryClient(ctx);
  withOutput(node.command('inventory').description("a node's hardware facts as its agent last reported them, and its availability"))
    .argument('<node>', 'uuid or name')
    .action(async (id: string, o: OutputOpts) => {
      const { c, t } = await client();
      const inv = await c.call(t, t.getNodeInventory, { id });
      const facts = inv.factsJson ? (JSON.parse(inv.factsJson) as Record<string, unknown>) : {};
      const cols: Column<NodeInventory>[] = [
        { key: 'node', label: 'node', get: (i) => i.nodeName },
        { key: 'availability', label: 'availability', get: (i) => i.availability },
        { key: 'availability_changed_at', label: 'availability_changed_at', get: (i) => i.availabilityChangedAt },
        { key: 'updated_at', label: 'updated_at', get: (i) => i.updatedAt },
      ];
      if (o.format === 'table') {
        // One row per inventory section reads better than one huge facts cell.
        cols.push(...Object.keys(facts).map((k) => ({ key: k, label: k, get: () => facts[k] })));
      } else {
        cols.push({ key: 'facts', label: 'facts', get: () => facts });
      }
      ctx.out(renderOne(inv, cols, o.format, o.column));
    });
}
