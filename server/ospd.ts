import { promises as fs } from 'node:fs';
import path from 'node:path';
import { createLogger, type Logger } from '../common/logging.js';
import { writeFileAtomic } from '../common/files.js';
import { advertiseProblems, hostPort, listenerHost, machineFacingHost } from './advertise.js';
import { certificateNames, type OspdConfig } from './config.js';
import type { Service } from './lifecycle.js';
import { Database } from './store/db.js';
import { migrate } from './store/migrations.js';
import { SecretBox } from './security/secrets.js';
import { ensureServerTls, type TlsMaterial } from './security/pki.js';
import { ensureAdminCredentials, rotateAdminToken } from './security/admin.js';
import { NodeRegistry } from './nodes/registry.js';
import { BmcControl } from './nodes/bmc-control.js';
import { NodeConfigs } from './agents/configs.js';
import { MetricsRegistry, PROMETHEUS_CONTENT_TYPE } from './telemetry/prometheus.js';
import { MqttNodeEvents } from './telemetry/node-events.js';
import { TelemetryRuntime } from './telemetry/runtime.js';
import { registerOspdMetrics } from './telemetry/ospd-metrics.js';
import { PxeRuntime } from './pxe/runtime.js';
import { InspectionRuntime } from './inspection/runtime.js';
import { BootLogHistory } from './inspection/boot-steps.js';
import { RuleStore } from './inspection/rule-store.js';
import { InspectionPreview } from './inspection/preview.js';
import { GrpcApi, type GrpcService } from './api/server.js';
import { adminAuthenticator } from './api/admin-auth.js';
import { adminService } from './api/admin-service.js';
import { nodeService } from './api/node-service.js';
import { bmcService } from './api/bmc-service.js';
import { configService } from './api/config-service.js';
import { AgentApi, agentAuthenticator } from './api/agent-service.js';
import { TelemetryApi } from './api/telemetry-service.js';
import { pxeService } from './api/pxe-service.js';
import { ruleService } from './api/rule-service.js';
import { inspectionService, ramdiskService } from './api/ramdisk-service.js';
import { imageService } from './api/image-service.js';
import { ImageRuntime } from './images/runtime.js';
import { DeployFlow } from './provision/deploy-flow.js';
import { provisionService } from './api/provision-service.js';
import { agentConfigYaml } from '../common/agent-config-yaml.js';
import { StackEngine } from './orchestration/engine/engine.js';
import { softwarePlugins } from './orchestration/resources/software-deployment.js';
import { serverPlugins } from './orchestration/resources/server.js';
import { stackService } from './api/stack-service.js';
import { MqttStackEvents } from './telemetry/stack-events.js';

/**
 * One entry of ospd: a part with a life (started in list order, stopped in
 * reverse) and the gRPC services it registers. A new feature plugs in by
 * adding one entry to the list in buildOspd.
 */
export interface OspdPart {
  name: string;
  service?: Service;
  grpc?: GrpcService[];
}

/** What ospd actually bound, written to `<data-dir>/listeners.json` once it is ready (port 0 means "pick one"). */
export interface BoundListeners {
  pid: number;
  grpc: string;
  mqtt: Record<string, number>;
  pxe: Record<string, string>;
}

export const LISTENERS_FILE = 'listeners.json';

/** The parts tests and tools may reach into; built once, shared by every service. */
export interface OspdCore {
  db: Database;
  secrets: SecretBox;
  tls: TlsMaterial;
  registry: NodeRegistry;
  bmc: BmcControl;
  configs: NodeConfigs;
  telemetry: TelemetryRuntime;
  pxe: PxeRuntime;
  inspection: InspectionRuntime;
  rules: RuleStore;
  metrics: MetricsRegistry;
  deploy: DeployFlow;
  stacks: StackEngine;
}

export class Ospd {
  private started: OspdPart[] = [];

  constructor(
    readonly cfg: OspdConfig,
    readonly log: Logger,
    readonly core: OspdCore,
    readonly parts: OspdPart[],
    private readonly api: GrpcApi,
    /** Why machines may not reach the advertised address (server/advertise.ts), warned about at start. */
    private readonly advertiseProblems: () => string[],
  ) {}

  /** The gRPC port actually bound (the configured one may be 0). */
  get grpcPort(): number {
    return this.api.boundPort;
  }

  async start(): Promise<void> {
    await fs.rm(path.join(this.cfg.dataDir, LISTENERS_FILE), { force: true });
    for (const p of this.parts) {
      await p.service?.start();
      this.started.push(p);
    }
    for (const warning of this.advertiseProblems()) this.log.warn(warning);
    await writeFileAtomic(path.join(this.cfg.dataDir, LISTENERS_FILE), JSON.stringify(this.listeners(), null, 2) + '\n', 0o644);
    this.log.info({ dataDir: this.cfg.dataDir, caSha256: this.core.tls.caSha256 }, 'ospd started');
  }

  listeners(): BoundListeners {
    return {
      pid: process.pid,
      grpc: hostPort(this.cfg.grpcListen.host, this.api.boundPort),
      mqtt: this.core.telemetry.ports(),
      pxe: Object.fromEntries(this.core.pxe.status().filter((s) => s.listen).map((s) => [s.service, s.listen!])),
    };
  }

  /** Stops what started, in reverse; the store closes last. A failing part does not keep the others running. */
  async stop(): Promise<void> {
    this.log.info('ospd stopping');
    await fs.rm(path.join(this.cfg.dataDir, LISTENERS_FILE), { force: true });
    let failure: unknown;
    for (const p of this.started.reverse()) {
      try {
        await p.service?.stop();
      } catch (e) {
        this.log.error({ err: e, part: p.name }, 'stop failed');
        failure ??= e;
      }
    }
    this.started = [];
    await this.core.db.close();
    this.log.info('ospd stopped');
    if (failure) throw failure;
  }
}

/** A WaitCondition signal's data arrives as the JSON text the client sent; text that is not JSON stays text. */
function signalData(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/**
 * The composition root: the only place that knows every part. bin/ospd and
 * the tests build the server through it.
 */
export async function buildOspd(cfg: OspdConfig, opts: { log?: Logger } = {}): Promise<Ospd> {
  const log = opts.log ?? createLogger({ name: 'ospd', level: cfg.logLevel });
  await fs.mkdir(cfg.dataDir, { recursive: true, mode: 0o700 });
  const db = await Database.open(path.join(cfg.dataDir, 'ospd.sqlite'), log);
  try {
    await migrate(db, undefined, log);
    const secrets = await SecretBox.loadOrCreate(cfg.dataDir);
    const facing = machineFacingHost(cfg);
    const tls = await ensureServerTls(cfg.dataDir, certificateNames(cfg, facing));
    if (tls.issued) log.info({ names: certificateNames(cfg, facing) }, 'server certificate issued');
    return wire(cfg, log, { db, secrets, tls }, facing);
  } catch (e) {
    await db.close();
    throw e;
  }
}

function wire(cfg: OspdConfig, log: Logger, base: Pick<OspdCore, 'db' | 'secrets' | 'tls'>, facing: string): Ospd {
  const { db, secrets, tls } = base;
  const apiLog = log.child({ component: 'api' });
  const metrics = new MetricsRegistry();
  // The admin token is checked against its hash, known once admin.yaml is in place.
  const admin: { hash?: string } = {};
  const auth = adminAuthenticator(() => admin.hash);

  const registry = new NodeRegistry(db, secrets, log.child({ component: 'nodes' }));
  const bmc = new BmcControl(db, registry, secrets, cfg.bmc, log.child({ component: 'bmc' }));
  const configs = new NodeConfigs(db, registry, log.child({ component: 'configs' }));
  const agentApi = new AgentApi(db, registry, configs, log.child({ component: 'agents' }));
  const telemetry = new TelemetryRuntime({
    db, agents: configs, cfg: cfg.telemetry, dataDir: cfg.dataDir, registry: metrics, log,
    tls: { certPem: tls.serverCertPem, keyPem: tls.serverKeyPem, caPem: tls.caCertPem },
  });
  const api: GrpcApi = new GrpcApi({
    listen: cfg.grpcListen,
    observe: registerOspdMetrics(metrics, db, (): ReturnType<PxeRuntime['status']> => pxe.status()),
    // The chain includes the CA: the ramdisk agent pins the CA by sha256 and must see it presented.
    tls: { certPem: tls.serverCertPem + tls.caCertPem, keyPem: tls.serverKeyPem },
    log: apiLog,
  });
  const pxe: PxeRuntime = new PxeRuntime({
    settings: cfg.pxe, discovery: cfg.discovery, advertise: facing, grpcPort: () => api.boundPort,
    caSha256: tls.caSha256, db, log,
  });
  const problems = () => advertiseProblems(cfg, facing, api.boundPort);
  // One live feed for MQTT consumers: every committed state change, as it commits.
  const nodeEvents = new MqttNodeEvents(telemetry.broker, log.child({ component: 'node-events' }));
  bmc.states.observe((n, c) => nodeEvents.publish(n, {
    type: 'provision', state: c.to, message: `${c.action}: ${c.from} → ${c.to}${c.lastError ? `: ${c.lastError}` : ''}`,
    detail: { action: c.action, from: c.from, actor: c.actor, ...(c.lastError ? { last_error: c.lastError } : {}) },
  }));
  const rules = new RuleStore(db, secrets);
  const inspection = new InspectionRuntime({
    db, registry, states: bmc.states, power: bmc.power, configs, inventory: telemetry.sink, rules,
    // Without our own DHCP, "no DHCP request" cannot be told apart from "DHCP served elsewhere";
    // without our own HTTP or TFTP, the boot log has nothing to say at all.
    bootHistory: cfg.pxe.httpListen || cfg.pxe.tftpListen
      ? new BootLogHistory(pxe.store, () => pxe.services?.dhcp !== null && pxe.services?.dhcp !== undefined)
      : undefined,
    advertiseProblems: problems,
    cfg: cfg.inspection, events: nodeEvents, log: log.child({ component: 'inspection' }),
    ramdisk: {
      deployWaitTimeoutMs: cfg.provision.deployWaitTimeoutMs ?? undefined, fastTrack: cfg.provision.fastTrack, fastTrackTimeoutMs: cfg.provision.fastTrackTimeoutMs,
    },
  });
  // The gRPC API as clients and agents reach it (the port actually bound: the configured one may be 0).
  const clientUrl = () => hostPort(listenerHost(cfg.grpcListen, facing), api.boundPort);
  const mqttUrl = () => telemetry.mqttUrl(listenerHost(cfg.telemetry.mqttListen, facing));
  const images = new ImageRuntime({ db, dataDir: cfg.dataDir, maxBytes: cfg.imageMaxBytes, http: () => pxe.services?.http, log: log.child({ component: 'images' }) });
  const deploy = new DeployFlow({
    db, registry, flow: inspection.flow, power: bmc.power, images: images.store, deployTokens: images.tokens, agentTokens: configs,
    agentYaml: (node, token) => agentConfigYaml({ server: clientUrl(), caPem: tls.caCertPem, caSha256: tls.caSha256, node, token, mqttUrl: mqttUrl() }),
    httpBaseUrl: () => {
      const http = pxe.services?.http;
      return http ? `http://${hostPort(facing, http.address().port)}` : '';
    },
    dhcp: () => ({ router: cfg.pxe.dhcpRouter, dns: cfg.pxe.dhcpDns }),
    // The token lives as long as the machine may take to call back and write.
    dataDir: cfg.dataDir, deployTokenTtlMs: (cfg.provision.deployWaitTimeoutMs ?? cfg.inspection.cleanWaitTimeoutMs) + 60 * 60_000, log: log.child({ component: 'deploy' }),
    deployBootTimeoutMs: cfg.provision.deployBootTimeoutMs, events: nodeEvents,
  });
  const stacks = new StackEngine({
    db, secrets, log: log.child({ component: 'stacks' }), concurrency: cfg.stacks.concurrency,
    plugins: [
      ...softwarePlugins({ configs, db, log: log.child({ component: 'software-deployments' }) }),
      ...serverPlugins({
        db, registry, deploy, states: bmc.states, abort: (id, actor) => inspection.flow.abort(id, actor), leases: () => pxe.store.list(), log: log.child({ component: 'servers' }),
      }),
    ],
  });
  const core: OspdCore = { ...base, registry, bmc, configs, telemetry, pxe, inspection, rules, metrics, deploy, stacks };

  const parts: OspdPart[] = [
    { name: 'nodes', grpc: [nodeService(registry, auth, apiLog)] },
    { name: 'bmc', service: bmc, grpc: [bmcService(registry, bmc.power, auth, apiLog)] },
    {
      name: 'agents',
      grpc: [
        configService(configs, auth, apiLog, () => ({ server: clientUrl(), caPem: tls.caCertPem, caSha256: tls.caSha256, mqttUrl: mqttUrl() })),
        agentApi.service(),
      ],
    },
    { name: 'telemetry', service: telemetry, grpc: [new TelemetryApi(telemetry.accounts, telemetry.sink, registry, apiLog).service(auth)] },
    // Before the API: deadlines of nodes left waiting are re-armed, interrupted work is failed.
    {
      name: 'inspection',
      service: inspection,
      grpc: [
        ramdiskService({ flow: inspection.flow, enrolment: inspection.enrolment, channel: inspection.channel, agentAuth: agentAuthenticator(configs), log: apiLog }),
        inspectionService({ flow: inspection.flow, batch: inspection.batch, auth, log: apiLog }),
        ruleService(rules, new InspectionPreview(db, rules), auth, apiLog),
      ],
    },
    // Stopped first of the listeners: in-flight calls finish while everything they use still runs.
    { name: 'api', service: { start: () => api.start(), stop: () => api.stop(cfg.shutdownGraceMs) } },
    // After the API: boot scripts carry its bound port.
    {
      name: 'pxe',
      grpc: [pxeService(pxe, db, registry, cfg.discovery, auth, apiLog, problems)],
      service: {
        start: async () => {
          await pxe.start();
          pxe.services?.http?.addRoute('/metrics', (_req, res) => {
            res.writeHead(200, { 'content-type': PROMETHEUS_CONTENT_TYPE });
            res.end(metrics.render());
          });
        },
        stop: () => pxe.stop(),
      },
    },
    // After pxe: the download route goes on its HTTP listener.
    { name: 'images', service: images, grpc: [imageService(images.store, auth, apiLog)] },
    // The deploy's wait is the inspection part's (started before the API); this adds the operator calls.
    { name: 'provision', service: deploy.bootWatch, grpc: [provisionService(deploy, auth, apiLog)] },
    // After the API: a resumed stack waits on agents, which must be able to call in. Its events go out on MQTT.
    { name: 'stack-events', service: new MqttStackEvents(telemetry.broker, stacks, log.child({ component: 'stack-events' })) },
    {
      name: 'stacks',
      service: stacks,
      grpc: [stackService(stacks, (stack, handle, sig) => stacks.signal(stack, handle, { ...sig, data: signalData(sig.data) }), auth, apiLog)],
    },
    // Last: admin.yaml announces a ready server.
    {
      name: 'admin',
      grpc: [adminService({
        rotate: async () => {
          const r = await rotateAdminToken(cfg.dataDir, clientUrl(), tls.caCertPem);
          admin.hash = r.tokenHash;
          return r;
        },
      }, auth, apiLog)],
      service: {
        start: async () => {
          const a = await ensureAdminCredentials(cfg.dataDir, clientUrl(), tls.caCertPem);
          admin.hash = a.tokenHash;
          if (a.recovered) log.warn({ adminConfig: a.file }, 'admin.yaml held a token newer than the stored hash (a rotation was cut short); that token is now the admin token');
          log.info({ adminConfig: a.file }, 'admin credentials ready');
        },
        stop: async () => {},
      },
    },
  ];
  for (const p of parts) api.register(p.grpc ?? []);
  return new Ospd(cfg, log, core, parts, api, problems);
}
