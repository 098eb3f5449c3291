import type { Logger } from '../../common/logging.js';
import { PxeServiceService, type PxeServiceServer } from '../../proto/gen/osp/v1/pxe.js';
import type { NodeRegistry } from '../nodes/registry.js';
import { nodeStore } from '../store/nodes.js';
import type { Database } from '../store/db.js';
import type { PxeRuntime } from '../pxe/runtime.js';
import { unary, type Authenticator } from './call.js';

export function pxeService(pxe: PxeRuntime, db: Database, nodes: NodeRegistry, discovery: boolean, auth: Authenticator, log: Logger, advertiseProblems: () => string[] = () => []) {
  const impl: PxeServiceServer = {
    getPxeStatus: unary(log, 'GetPxeStatus', auth, async () => ({
      services: pxe.status().map(({ service, running, listen, counters, ...detail }) => ({
        service, running, listen: listen ?? '', counters, detailJson: JSON.stringify(detail),
      })),
      ramdisk: pxe.ramdisk(),
      discovery,
      httpBaseUrl: pxe.httpBaseUrl,
      serverAddress: pxe.serverAddress,
      warnings: advertiseProblems(),
    })),
    listLeases: unary(log, 'ListLeases', auth, async () => {
      const leases = await pxe.store.list();
      return {
        leases: await Promise.all(leases.map(async (l) => ({
          mac: l.mac, ipv4Address: l.ipv4Address, expiresAt: new Date(l.expiresAtMs).toISOString(), hostname: l.hostname ?? '',
          nodeName: (await nodeStore.findByMac(db, l.mac))?.name ?? '',
        }))),
      };
    }),
    getBootLog: unary(log, 'GetBootLog', auth, async (req) => {
      const node = await nodes.get(req.id);
      const rows = await pxe.store.bootLog(node.ports, Math.min(req.limit || 200, 5000));
      return { entries: rows.map((r) => ({ time: r.time, mac: r.mac, service: r.service, event: r.event, detailJson: JSON.stringify(r.detail) })) };
    }),
  };
  return { definition: PxeServiceService, impl };
}
