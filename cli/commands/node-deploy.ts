import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { ServerError, type Connection } from '../client.js';
import { ProvisionServiceClient } from '../../proto/gen/osp/v1/provision.js';
import { NodeServiceClient, type Node } from '../../proto/gen/osp/v1/node.js';
import { renderOne, UsageError } from '../output.js';
import { withOutput, type Ctx, type OutputOpts } from '../command-kit.js';
import { COLUMNS, DEFAULT_MAX_WAIT_MS, maxWait, waitWhile } from './node-inspect.js';

const DEPLOY_BUSY = ['deploying', 'wait call-back'];
const UNDEPLOY_BUSY = ['deleting', 'cleaning', 'clean wait'];

interface DriveOpts extends OutputOpts {
  hostname?: string;
  userData?: string;
  sshKey: string[];
  metadata?: string;
  wait?: boolean;
  maxWait?: number;
}

async function readInput(flag: string, file: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (e) {
    throw new UsageError(`${flag} ${file}: cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** The config drive's inputs, read from the operator's files. */
async function driveInput(o: DriveOpts) {
  const keys: string[] = [];
  for (const f of o.sshKey) {
    keys.push(...(await readInput('--ssh-key', f)).toString('utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#')));
  }
  return {
    hostname: o.hostname ?? '', userData: o.userData ? await readInput('--user-data', o.userData) : Buffer.alloc(0),
    sshKeys: keys, metadataJson: o.metadata ?? '',
  };
}

function withDriveOptions(cmd: Command): Command {
  return cmd
    .option('--hostname <name>', "the deployed system's host name (default: the node's name)")
    .option('--user-data <file>', 'cloud-init user data')
    .option('--ssh-key <file>', 'OpenSSH public keys, one a line (repeatable)', (v: string, all: string[]) => [...all, v], [])
    .option('--metadata <json>', 'a JSON object of strings (meta_data.json "meta")');
}

function waitOptions(cmd: Command): Command {
  return cmd
    .option('--wait', 'wait until the operation ends; exit 1 unless the node reached its goal')
    .option('--max-wait <seconds>', 'give up waiting after this many seconds (default 3600)', maxWait);
}

/**
 * While waiting, one line per new state change or agent progress report, on
 * stderr (stdout keeps the answer, e.g. `-f json`); on a terminal the line is
 * rewritten in place.
 */
function progressPrinter(c: Connection): (n: Node) => Promise<void> {
  const nodes = c.client(NodeServiceClient);
  const tty = process.stderr.isTTY === true;
  let lastId = -1;
  return async (n) => {
    const events = (await c.call(nodes, nodes.listNodeEvents, { id: n.uuid, limit: 20 })).events;
    const fresh = events.filter((e) => e.id > lastId && (e.type === 'provision' || e.type === 'ramdisk-progress')).reverse();
    // The first poll only marks where this wait started.
    if (lastId < 0) {
      lastId = events[0]?.id ?? 0;
      return;
    }
    for (const e of fresh) process.stderr.write(`${tty ? '\r\x1b[K' : ''}${n.name}: ${n.provisionState}: ${e.message}${tty ? '' : '\n'}`);
    if (events.length) lastId = Math.max(lastId, events[0].id);
    if (tty && ![...DEPLOY_BUSY, ...UNDEPLOY_BUSY].includes(n.provisionState)) process.stderr.write('\n');
  };
}

async function settle(c: Connection, n: Node, busy: string[], goal: string, what: string, o: { wait?: boolean; maxWait?: number }): Promise<Node> {
  if (!o.wait) return n;
  const end = await waitWhile(c, n.uuid, busy, o.maxWait ?? DEFAULT_MAX_WAIT_MS, progressPrinter(c));
  if (end.provisionState !== goal) throw new ServerError(`node ${end.name}: ${what} ended in '${end.provisionState}': ${end.lastError}`, 'NODE_STATE_INVALID');
  return end;
}

/** Adds deploy, rebuild and undeploy to `ospctl node`. */
export function addNodeDeployCommands(node: Command, ctx: Ctx): void {
  const client = async () => {
    const c = await ctx.connect();
    return { c, prov: c.client(ProvisionServiceClient) };
  };

  waitOptions(withDriveOptions(withOutput(node.command('deploy')
    .description('write an image to the node through the ramdisk, with a config drive: available → deploying → wait call-back → active'))
    .argument('<node>', 'uuid or name')
    .requiredOption('--image <name>', 'a stored image (ospctl image list)')))
    .action(async (id: string, o: DriveOpts & { image: string }) => {
      const { c, prov } = await client();
      const r = await c.call(prov, prov.deployNode, { node: id, image: o.image, ...(await driveInput(o)) });
      ctx.out(renderOne(await settle(c, r.node!, DEPLOY_BUSY, 'active', 'deploy', o), COLUMNS, o.format, o.column));
    });

  waitOptions(withDriveOptions(withOutput(node.command('rebuild')
    .description('write the image again (or another), with a new config drive and node token'))
    .argument('<node>', 'uuid or name')
    .option('--image <name>', 'another stored image (default: the one deployed)')))
    .action(async (id: string, o: DriveOpts & { image?: string }) => {
      const { c, prov } = await client();
      const r = await c.call(prov, prov.rebuildNode, { node: id, image: o.image ?? '', ...(await driveInput(o)) });
      ctx.out(renderOne(await settle(c, r.node!, DEPLOY_BUSY, 'active', 'rebuild', o), COLUMNS, o.format, o.column));
    });

  waitOptions(withOutput(node.command('undeploy')
    .description("power off, revoke the deployed system's token, clean through the ramdisk: active → deleting → cleaning → available"))
    .argument('<node>', 'uuid or name'))
    .action(async (id: string, o: OutputOpts & { wait?: boolean; maxWait?: number }) => {
      const { c, prov } = await client();
      const r = await c.call(prov, prov.undeployNode, { node: id });
      ctx.out(renderOne(await settle(c, r.node!, UNDEPLOY_BUSY, 'available', 'undeploy', o), COLUMNS, o.format, o.column));
    });
}
