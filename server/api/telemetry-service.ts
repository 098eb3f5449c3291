import type { ServerWritableStream } from '@grpc/grpc-js';
import type { Logger } from '../../common/logging.js';
import { OspError } from '../../common/errors.js';
import {
  TelemetryServiceService, type MetricSample, type TelemetryServiceServer, type WatchMetricsRequest,
} from '../../proto/gen/osp/v1/telemetry.js';
import type { NodeRegistry } from '../nodes/registry.js';
import type { MqttAccounts } from '../telemetry/accounts.js';
import type { SqliteTelemetrySink, StoredSample } from '../telemetry/sqlite-sink.js';
import { serverStream, unary, type Authenticator } from './call.js';

const MAX_QUERY_LIMIT = 100_000;

function toProtoSample(s: StoredSample, names: string[]): MetricSample {
  const values = names.length ? Object.fromEntries(names.filter((n) => n in s.values).map((n) => [n, s.values[n]])) : s.values;
  return { nodeName: s.nodeName, tsMs: s.tsMs, values, resolution: s.resolution };
}

/** Operator calls on telemetry: MQTT consumer accounts, inventories, stored and live metrics. */
export class TelemetryApi {
  private readonly watches = new Set<ServerWritableStream<WatchMetricsRequest, MetricSample>>();

  constructor(
    private readonly accounts: MqttAccounts,
    private readonly sink: SqliteTelemetrySink,
    private readonly nodes: NodeRegistry,
    private readonly log: Logger,
  ) {}

  service(auth: Authenticator) {
    const log = this.log;
    const impl: TelemetryServiceServer = {
      createMqttUser: unary(log, 'CreateMqttUser', auth, async (req, ctx) => {
        const { user, password } = await this.accounts.create(req.name, req.role || 'reader', ctx.caller.name);
        return { user, password };
      }),
      deleteMqttUser: unary(log, 'DeleteMqttUser', auth, async (req, ctx) => {
        const deleted = await this.accounts.delete(req.name, ctx.caller.name);
        if (!deleted) throw new OspError('NOT_FOUND', `mqtt user ${JSON.stringify(req.name)} not found`, { field: 'name' });
        return { deleted };
      }),
      listMqttUsers: unary(log, 'ListMqttUsers', auth, async () => ({ users: await this.accounts.list() })),
      getNodeInventory: unary(log, 'GetNodeInventory', auth, async (req) => {
        const node = await this.nodes.get(req.id);
        const s = await this.sink.state(node.uuid);
        return {
          nodeUuid: node.uuid, nodeName: node.name, factsJson: s.facts ? JSON.stringify(s.facts) : '', updatedAt: s.factsUpdatedAt ?? '',
          availability: s.availability, availabilityChangedAt: s.availabilityChangedAt ?? '',
        };
      }),
      queryMetrics: unary(log, 'QueryMetrics', auth, async (req) => {
        if (req.sinceMs < 0) throw new OspError('INVALID_ARGUMENT', `since_ms: ${req.sinceMs}: expected Unix milliseconds, 0 or more`, { field: 'since_ms' });
        if (req.limit < 0 || req.limit > MAX_QUERY_LIMIT) throw new OspError('INVALID_ARGUMENT', `limit: ${req.limit}: expected 0 to ${MAX_QUERY_LIMIT}`, { field: 'limit' });
        const node = await this.nodes.get(req.id);
        const samples = await this.sink.query(node, req.sinceMs, req.names, req.limit || undefined);
        return { samples: samples.map((s) => toProtoSample(s, [])) };
      }),
      watchMetrics: serverStream(log, 'WatchMetrics', auth, (call) => this.watch(call)),
    };
    return { definition: TelemetryServiceService, impl, closeStreams: () => this.closeAll() };
  }

  private async watch(call: ServerWritableStream<WatchMetricsRequest, MetricSample>): Promise<void> {
    const only = call.request.id ? (await this.nodes.get(call.request.id)).name : null;
    const names = call.request.names;
    this.watches.add(call);
    const off = this.sink.onSample((s) => {
      if (only && s.nodeName !== only) return;
      // A client that stops reading loses samples instead of growing our buffer.
      if (call.writableLength > 1024 * 1024) return;
      call.write(toProtoSample(s, names));
    });
    await new Promise<void>((resolve) => {
      const done = () => resolve();
      call.on('cancelled', done);
      call.on('close', done);
      call.on('finish', done);
      call.on('error', done);
    });
    off();
    this.watches.delete(call);
  }

  /** Streams never finish on their own: end them so a graceful stop does not wait for them. */
  closeAll(): void {
    for (const c of this.watches) c.end();
    this.watches.clear();
  }
}
