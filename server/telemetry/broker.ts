import { createServer as createTcpServer, type AddressInfo, type Server as NetServer } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { Aedes, type AedesPublishPacket, type AuthenticateError, type Client, type ConnectPacket } from 'aedes';
import type { Logger } from '../../common/logging.js';
import { silentLogger } from '../../common/logging.js';
import { OspError } from '../../common/errors.js';
import { SERVER_STATUS_TOPIC, nodeTopic } from '../../common/topics.js';
import type { MqttAuthenticator, MqttIdentity } from './auth.js';
import { DEFAULT_TOPIC_LIMITS, identifierProblem, mayPublish, mayReceive, maySubscribe, topicProblem, type TopicLimits } from './acl.js';
import type { MetricsRegistry } from './prometheus.js';
import type { RetainedStore } from './retained-store.js';
import { createMqttWebSocketListener, type MqttWebSocketListener } from './websocket.js';
import { guardMqttStream } from './frame-guard.js';
import { isLoopbackHost, type ListenAddress } from '../config.js';

/** Per-connection bound on what one packet may make the broker buffer. */
const FRAME_LIMIT_FLOOR_BYTES = 1024 * 1024;

export interface TelemetryBrokerOptions {
  authenticator: MqttAuthenticator;
  /** `--mqtt-listen`: TLS with the server's certificate (same CA as gRPC). */
  tls?: ListenAddress & { certPem: string | Buffer; keyPem: string | Buffer; caPem?: string | Buffer };
  /** `--mqtt-plain-listen`: refused unless the host is a loopback address. */
  plain?: ListenAddress;
  /** `--mqtt-ws-listen`: MQTT over WebSocket, TLS only (WSS), at /mqtt; same certificate as `tls`. */
  ws?: ListenAddress & { certPem: string | Buffer; keyPem: string | Buffer; caPem?: string | Buffer };
  retained?: RetainedStore;
  maxPayloadBytes?: number;
  topicLimits?: TopicLimits;
  /** A subscriber whose socket stays backed up this long is disconnected. */
  drainTimeoutMs?: number;
  /**
   * Outgoing bytes queued on a subscriber's socket beyond which deliveries to
   * it are dropped (and counted) instead of making the broker wait for it.
   */
  slowConsumerBytes?: number;
  registry?: MetricsRegistry;
  logger?: Logger;
}

/** In-process publish/subscribe, used by ingest and by the server's own event publishers. */
export interface InProcessBus {
  subscribe(filter: string, handler: (topic: string, payload: Buffer) => void): Promise<() => Promise<void>>;
  publish(topic: string, payload: Buffer | string, opts?: { qos?: 0 | 1; retain?: boolean }): Promise<void>;
}

function authError(returnCode: number, message: string): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError;
}

/**
 * The embedded MQTT broker: aedes with per-node ACLs applied at connect,
 * publish, subscribe and delivery, retained state kept across restarts, and
 * `osp/server/status` maintained.
 */
export class TelemetryBroker implements InProcessBus {
  private aedes: Aedes | null = null;
  private readonly servers: { name: string; server: NetServer }[] = [];
  private webSocket: MqttWebSocketListener | null = null;
  private readonly identities = new WeakMap<Client, MqttIdentity>();
  private readonly connectPackets = new WeakMap<Client, ConnectPacket>();
  private readonly log: Logger;
  private readonly maxPayloadBytes: number;
  /** The largest MQTT packet a client needs: a PUBLISH (or a CONNECT with a will) at the payload and topic limits. */
  private readonly maxPacketBytes: number;
  private readonly limits: TopicLimits;
  private restoring = false;
  private readonly connectedAgents = new Map<Client, string>();
  private readonly slowSince = new WeakMap<Client, number>();
  private readonly slowConsumerBytes: number;
  private readonly drainTimeoutMs: number;
  private readonly counters;

  constructor(private readonly opts: TelemetryBrokerOptions) {
    this.log = opts.logger ?? silentLogger();
    this.maxPayloadBytes = opts.maxPayloadBytes ?? 256 * 1024;
    this.limits = opts.topicLimits ?? DEFAULT_TOPIC_LIMITS;
    // Headroom over payload and topic: fixed and variable headers, MQTT 5
    // properties, and a CONNECT's client id, username and password (256 bytes each at most).
    this.maxPacketBytes = this.maxPayloadBytes + this.limits.maxTopicBytes + 4096;
    this.slowConsumerBytes = opts.slowConsumerBytes ?? 512 * 1024;
    this.drainTimeoutMs = opts.drainTimeoutMs ?? 10_000;
    if (opts.plain && !isLoopbackHost(opts.plain.host)) {
      throw new OspError('CONFIG_INVALID', `mqtt plain listener host ${JSON.stringify(opts.plain.host)} is not a loopback address; expected 127.0.0.0/8, ::1 or localhost (use the TLS listener elsewhere)`, { field: 'mqtt-plain-listen', value: opts.plain.host });
    }
    const r = opts.registry;
    this.counters = r
      ? {
          clients: r.gauge('ospd_mqtt_clients', 'Connected MQTT clients'),
          messages: r.counter('ospd_mqtt_messages_received_total', 'MQTT PUBLISH packets accepted from clients'),
          denied: r.counter('ospd_mqtt_denied_total', 'MQTT operations refused by authentication or ACL'),
          slowDrops: r.counter('ospd_mqtt_slow_consumer_drops_total', 'Deliveries dropped because the subscriber was not reading'),
        }
      : null;
  }

  async start(): Promise<void> {
    const aedes = new Aedes({
      drainTimeout: this.drainTimeoutMs,
      maxTopicLevels: Math.min(this.limits.maxTopicLevels, 100),
      maxClientsIdLength: 256,
      preConnect: (client, packet, cb) => {
        this.connectPackets.set(client, packet);
        cb(null, true);
      },
      authenticate: (client, username, password, done) => {
        this.authenticate(client, username, password).then(
          (err) => done(err, err === null),
          (e: unknown) => {
            this.log.error({ err: e }, 'mqtt authenticator failed');
            done(authError(3, 'server unavailable'), false);
          },
        );
      },
      authorizePublish: (client, packet, cb) => {
        if (!client) return cb(null);
        const identity = this.identities.get(client);
        const problem = identity ? this.publishProblem(identity, packet.topic, packet.payload) : 'not authenticated';
        if (problem) {
          this.deny(client, 'publish', packet.topic, problem);
          return cb(new Error(problem));
        }
        this.counters?.messages.inc();
        cb(null);
      },
      authorizeSubscribe: (client, sub, cb) => {
        const identity = this.identities.get(client);
        const problem = topicProblem(sub.topic, this.limits, true)
          ?? (identity && maySubscribe(identity, sub.topic) ? null : 'not allowed by ACL');
        if (problem) {
          this.deny(client, 'subscribe', sub.topic, problem);
          return cb(null, null);
        }
        cb(null, sub);
      },
      authorizeForward: (client, packet) => {
        // Delivery-time check: retained messages and restored sessions pass here too.
        const identity = this.identities.get(client);
        if (!identity) return null;
        if (packet.topic.startsWith('$') && identity.kind !== 'server') return null;
        if (!mayReceive(identity, packet.topic)) return null;
        return this.slowConsumer(client) ? null : packet;
      },
    });
    this.aedes = aedes;
    await aedes.listen();
    aedes.on('clientReady', (client) => {
      this.counters?.clients.inc();
      const id = this.identities.get(client);
      if (id?.kind === 'agent') this.connectedAgents.set(client, id.node);
    });
    aedes.on('clientDisconnect', (client) => {
      this.counters?.clients.dec();
      this.connectedAgents.delete(client);
    });
    aedes.on('clientError', (client, err) => this.log.debug({ clientId: client.id, err: err.message }, 'mqtt client error'));
    aedes.on('connectionError', (_client, err) => this.log.debug({ err: err.message }, 'mqtt connection error'));
    aedes.on('publish', (packet: AedesPublishPacket) => {
      if (packet.retain && !this.restoring && !packet.topic.startsWith('$') && this.opts.retained) {
        this.opts.retained.save({ topic: packet.topic, payload: Buffer.from(packet.payload), qos: packet.qos as 0 | 1 | 2 });
      }
    });

    if (this.opts.retained) {
      this.restoring = true;
      try {
        for (const m of await this.opts.retained.load()) await this.publish(m.topic, m.payload, { qos: m.qos === 0 ? 0 : 1, retain: true });
      } finally {
        this.restoring = false;
      }
    }
    await this.publish(SERVER_STATUS_TOPIC, 'online', { qos: 1, retain: true });

    try {
      // The high water mark sits above slowConsumerBytes; see slowConsumer().
      const highWaterMark = this.slowConsumerBytes * 2;
      // Every connection, whatever its listener, passes the frame guard before aedes parses a byte.
      // Its limit sits above the payload cap: a PUBLISH just over the cap is still refused by
      // authorizePublish with the connection kept (an agent with an oversized document is told
      // so, not disconnected in a loop); only sizes no client of ours sends close the connection.
      const frameLimitBytes = Math.max(FRAME_LIMIT_FLOOR_BYTES, 2 * this.maxPacketBytes);
      const accept = (stream: Duplex, req?: IncomingMessage): void => {
        const remote = (stream as { remoteAddress?: string }).remoteAddress ?? req?.socket.remoteAddress;
        guardMqttStream(stream, frameLimitBytes, (reason) => {
          this.counters?.denied.inc({ action: 'frame' });
          this.log.warn({ remote, reason }, 'mqtt connection closed: oversized or malformed packet');
        });
        aedes.handle(stream, req);
      };
      if (this.opts.plain) await this.listen('plain', createTcpServer({ highWaterMark }, (s) => accept(s)), this.opts.plain);
      if (this.opts.tls) {
        const t = this.opts.tls;
        await this.listen('tls', createTlsServer({ cert: t.certPem, key: t.keyPem, ca: t.caPem, minVersion: 'TLSv1.2', highWaterMark }, (s) => accept(s)), t);
      }
      if (this.opts.ws) {
        const w = this.opts.ws;
        this.webSocket = createMqttWebSocketListener({
          certPem: w.certPem, keyPem: w.keyPem, caPem: w.caPem, maxMessageBytes: this.maxPacketBytes, highWaterMark,
          handle: accept, log: this.log,
        });
        await this.listen('ws', this.webSocket.server, w);
      }
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  private async listen(name: string, server: NetServer, addr: ListenAddress): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(addr.port, addr.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.servers.push({ name, server });
    this.log.info({ listener: name, host: addr.host, port: (server.address() as AddressInfo).port }, 'mqtt listening');
  }

  /** Bound ports, by listener name (`plain`, `tls`, `ws`): useful with port 0. */
  ports(): Record<string, number> {
    return Object.fromEntries(this.servers.map(({ name, server }) => [name, (server.address() as AddressInfo).port]));
  }

  get connectedClients(): number {
    return this.aedes?.connectedClients ?? 0;
  }

  async stop(): Promise<void> {
    const aedes = this.aedes;
    if (!aedes) return;
    // Agents lose their connection with us; their wills would never fire, so
    // the retained availability (which outlives this process) says offline
    // until they reconnect.
    for (const node of new Set(this.connectedAgents.values())) {
      await this.publish(nodeTopic(node, 'availability'), 'offline', { qos: 1, retain: true }).catch(() => undefined);
    }
    this.connectedAgents.clear();
    await this.publish(SERVER_STATUS_TOPIC, 'offline', { qos: 1, retain: true }).catch(() => undefined);
    for (const { server } of this.servers) server.close();
    this.servers.length = 0;
    // Browsers are told the server is going away (1001) rather than seeing a reset;
    // bounded, so a peer that never answers cannot hold the shutdown.
    await this.webSocket?.closeClients(1000);
    this.webSocket = null;
    await new Promise<void>((resolve) => aedes.close(() => resolve()));
    this.aedes = null;
    await this.opts.retained?.flush();
  }

  async publish(topic: string, payload: Buffer | string, opts: { qos?: 0 | 1; retain?: boolean } = {}): Promise<void> {
    const aedes = this.aedes;
    if (!aedes) throw new OspError('UNAVAILABLE', 'mqtt broker is not running');
    const problem = topicProblem(topic, this.limits, false);
    if (problem) throw new OspError('INVALID_ARGUMENT', `topic ${JSON.stringify(topic)}: ${problem}`);
    await new Promise<void>((resolve, reject) =>
      aedes.publish(
        { cmd: 'publish', topic, payload: Buffer.from(payload), qos: opts.qos ?? 0, retain: opts.retain ?? false, dup: false },
        (err) => (err ? reject(err) : resolve()),
      ),
    );
  }

  async subscribe(filter: string, handler: (topic: string, payload: Buffer) => void): Promise<() => Promise<void>> {
    const aedes = this.aedes;
    if (!aedes) throw new OspError('UNAVAILABLE', 'mqtt broker is not running');
    const deliver = (packet: AedesPublishPacket, cb: () => void): void => {
      try {
        handler(packet.topic, Buffer.from(packet.payload));
      } finally {
        cb();
      }
    };
    await new Promise<void>((resolve) => aedes.subscribe(filter, deliver, resolve));
    return () => new Promise<void>((resolve) => (this.aedes ? this.aedes.unsubscribe(filter, deliver, resolve) : resolve()));
  }

  /**
   * A subscriber that stops reading must not hold the others back: aedes
   * waits for 'drain' on a full socket before the next delivery, so once a
   * socket has more than `slowConsumerBytes` queued (below the socket's high
   * water mark, so that wait never starts) its deliveries are dropped, and
   * after `drainTimeoutMs` of that the client is disconnected.
   */
  private slowConsumer(client: Client): boolean {
    const queued = (client.conn as { writableLength?: number }).writableLength ?? 0;
    if (queued <= this.slowConsumerBytes) {
      this.slowSince.delete(client);
      return false;
    }
    const now = Date.now();
    const since = this.slowSince.get(client);
    this.counters?.slowDrops.inc();
    if (since === undefined) {
      this.slowSince.set(client, now);
      // Also when nothing more is published to it: a stuck socket must not stay open, holding its queue.
      setTimeout(() => this.dropIfStillStuck(client), this.drainTimeoutMs + 1).unref();
    } else if (now - since > this.drainTimeoutMs) {
      this.disconnectStuck(client, queued);
    }
    return true;
  }

  private dropIfStillStuck(client: Client): void {
    const since = this.slowSince.get(client);
    if (since === undefined || client.closed) return;
    const queued = (client.conn as { writableLength?: number }).writableLength ?? 0;
    if (queued <= this.slowConsumerBytes) this.slowSince.delete(client);
    else if (Date.now() - since > this.drainTimeoutMs) this.disconnectStuck(client, queued);
  }

  private disconnectStuck(client: Client, queued: number): void {
    this.slowSince.delete(client);
    this.log.warn({ clientId: client.id, queuedBytes: queued }, 'mqtt subscriber not reading; disconnecting');
    client.close();
  }

  private async authenticate(client: Client, username: string | undefined, password: Buffer | undefined): Promise<AuthenticateError | null> {
    const idProblem = identifierProblem('client id', client.id);
    if (idProblem) return this.refuse(client, 2, idProblem);
    if (username === undefined || password === undefined) return this.refuse(client, 4, 'anonymous login refused; expected username and password');
    const userProblem = identifierProblem('username', username);
    if (userProblem) return this.refuse(client, 4, userProblem);
    const identity = await this.opts.authenticator.authenticate(username, Buffer.from(password));
    if (!identity) return this.refuse(client, 4, `bad username or password for ${JSON.stringify(username)}`);
    const will = this.connectPackets.get(client)?.will;
    this.connectPackets.delete(client);
    if (will) {
      const problem = this.publishProblem(identity, will.topic, will.payload);
      if (problem) return this.refuse(client, 5, `last will on ${JSON.stringify(will.topic)} refused: ${problem}`);
    }
    this.identities.set(client, identity);
    return null;
  }

  private publishProblem(identity: MqttIdentity, topic: string, payload: Buffer | string): string | null {
    const tp = topicProblem(topic, this.limits, false);
    if (tp) return tp;
    const size = Buffer.byteLength(payload);
    if (size > this.maxPayloadBytes) return `payload is ${size} bytes; expected at most ${this.maxPayloadBytes}`;
    if (topic.startsWith('$') && identity.kind !== 'server') return 'topics starting with $ are reserved to the broker';
    return mayPublish(identity, topic) ? null : 'not allowed by ACL';
  }

  private refuse(client: Client, returnCode: number, reason: string): AuthenticateError {
    this.deny(client, 'connect', '', reason);
    return authError(returnCode, reason);
  }

  private deny(client: Client, action: string, topic: string, reason: string): void {
    this.counters?.denied.inc({ action });
    this.log.warn({ clientId: client.id, action, topic: topic.slice(0, 200), reason }, 'mqtt request refused');
  }
}
