/**
 * The stack engine end to end (issue 12, Acceptance): the real bin/ospd
 * process, three fake-driver nodes already `active`, each with a real
 * dist/osp-agent on its own --root, driven only with the real ospctl. A
 * ResourceGroup of three members, each a nested template holding a
 * SoftwareDeploymentGroup on its node; the script writes a file under its
 * agent's root and counts its runs there, which is how the tests see what ran.
 * bin/ospd and bin/ospctl run dist/: `npm run build` first.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AgentProcess } from '../harness/agent.js';
import { OspdProcess } from '../harness/ospd.js';
import { waitFor } from '../harness/wait.js';
import { ensureAgentBinary } from '../agent/helpers.js';
import { Database } from '../../server/store/db.js';

const NODES = ['stk-0', 'stk-1', 'stk-2'];
const STACK = 'web';

// The script runs in <root>/var/lib/osp-agent/deployments/<id>: five levels below the agent's root.
// A message starting with "fail" fails with exit 3; one starting with "sleep" sleeps first (the SIGKILL case).
const SCRIPT = `#!/bin/sh
root=$(cd ../../../../.. && pwd)
mkdir -p "$root/etc/stack"
runs=$(( $(cat "$root/etc/stack/runs" 2>/dev/null || echo 0) + 1 ))
echo "$runs" > "$root/etc/stack/runs"
case "$message" in
  fail*) echo "motd: cannot write $message: read-only file system" >&2; exit 3 ;;
  sleep*) touch "$root/etc/stack/sleeping"; sleep 6 ;;
esac
printf '%s\\n' "$message" > "$root/etc/stack/motd"
printf '%s' "$root/etc/stack/motd" > "$heat_outputs_path.written"
echo "member $member wrote $message (run $runs)"
`;

const TOP = `heat_template_version: 2018-08-31
description: three deployment groups, one per node
parameters:
  servers: {type: comma_delimited_list}
  messages: {type: json, description: member index -> the message it writes}
resources:
  motd_config:
    type: OS::Heat::SoftwareConfig
    properties:
      group: script
      inputs: [{name: member}, {name: message}]
      outputs: [{name: written}]
      config: {get_file: motd.sh}
  members:
    type: OS::Heat::ResourceGroup
    properties:
      count: 3
      resource_def:
        type: member.yaml
        properties:
          index: "%index%"
          config: {get_resource: motd_config}
          servers: {get_param: servers}
          messages: {get_param: messages}
outputs:
  stdouts:
    description: each member's deploy_stdout
    value: {get_attr: [members, deploy_stdout]}
`;

const MEMBER = `heat_template_version: 2018-08-31
parameters:
  index: {type: string}
  config: {type: string}
  servers: {type: comma_delimited_list}
  messages: {type: json}
resources:
  deployment:
    type: OS::Heat::SoftwareDeploymentGroup
    properties:
      config: {get_param: config}
      servers:
        node: {get_param: [servers, {get_param: index}]}
      input_values:
        member: {get_param: index}
        message: {get_param: [messages, {get_param: index}]}
outputs:
  deploy_stdout:
    value: {get_attr: [deployment, deploy_stdouts, node]}
`;

const ospd = new OspdProcess();
const agents: AgentProcess[] = [];
const roots: string[] = [];
const dir = mkdtempSync(path.join(os.tmpdir(), 'osp-stack-agents-'));
const top = path.join(dir, 'top.yaml');

const runsOf = (i: number) => Number(readFileSync(path.join(roots[i], 'etc/stack/runs'), 'utf8'));
const motd = (i: number) => path.join(roots[i], 'etc/stack/motd');
const messages = (m: string[]) => `messages=${JSON.stringify(Object.fromEntries(m.map((v, i) => [String(i), v])))}`;
const stackArgs = (m: string[]) => ['-t', top, '--parameter', `servers=${NODES.join(',')}`, '--parameter', messages(m)];
const tail = () => `ospd:\n${ospd.log().slice(-3000)}\nagents:\n${agents.map((a) => a.log().slice(-1500)).join('\n')}`;

interface StackJson { status: string; status_reason: string; resources: string }
const show = (name = STACK) => ospd.json<StackJson>(['stack', 'show', name]);

async function ctl(args: string[], timeoutMs = 60_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return ospd.ctl(args, { timeoutMs });
}

const latestRevision = async (node: string) => (await ospd.json<{ latest_revision: number }>(['node', 'config', 'status', node])).latest_revision;

/** The deployment names in each node's latest config revision. */
async function deploymentsOn(node: string): Promise<string[]> {
  const rev = await ospd.json<{ deployments: { name: string }[] }>(['node', 'config', 'show', node]);
  return rev.deployments.map((d) => d.name);
}

beforeAll(async () => {
  const bin = await ensureAgentBinary();
  await ospd.start();
  for (const n of NODES) expect((await ctl(['node', 'create', '--name', n, '--driver', 'fake'])).code).toBe(0);
  // Nodes already deployed: a real deploy is another test's subject (test/provision), so the state is put in the
  // store while ospd is stopped, as deploy-sigkill puts a disk there.
  expect(await ospd.stop()).toBe(0);
  const db = await Database.open(path.join(ospd.dataDir, 'ospd.sqlite'));
  await db.run(`UPDATE nodes SET provision_state = 'active' WHERE name IN (${NODES.map(() => '?').join(',')})`, NODES);
  await db.close();
  await ospd.start();
  for (const n of NODES) expect((await ospd.json<{ provision_state: string }>(['node', 'show', n])).provision_state).toBe('active');

  for (const n of NODES) {
    const root = mkdtempSync(path.join(dir, `${n}-root-`));
    roots.push(root);
    const cfg = await ctl(['node', 'agent-config', n]);
    expect(cfg.code).toBe(0);
    writeFileSync(`${root}.agent.yaml`, cfg.stdout, { mode: 0o600 });
    const a = new AgentProcess(bin, root, `${root}.agent.yaml`, `${root}.agent.log`);
    a.start();
    agents.push(a);
  }
  for (const n of NODES) {
    await waitFor(`${n}'s agent stream`, async () => (await ospd.json<{ connected: boolean }>(['node', 'config', 'status', n])).connected, { timeoutMs: 20_000, retryErrors: true });
  }
  writeFileSync(top, TOP);
  writeFileSync(path.join(dir, 'member.yaml'), MEMBER);
  writeFileSync(path.join(dir, 'motd.sh'), SCRIPT);
}, 120_000);

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  await ospd.dispose();
  rmSync(dir, { recursive: true, force: true });
});

describe('stacks through a real ospd and real agents', () => {
  it('creates a ResourceGroup of three deployment groups: a file under each agent root, deploy_stdout in the outputs', async () => {
    const r = await ctl(['stack', 'create', STACK, ...stackArgs(['hello-0', 'hello-1', 'hello-2']), '--wait', '-f', 'json'], 90_000);
    expect(r.code, `${r.stderr}\n${tail()}`).toBe(0);
    expect(JSON.parse(r.stdout).status).toBe('CREATE_COMPLETE');
    for (let i = 0; i < 3; i++) {
      expect(readFileSync(motd(i), 'utf8')).toBe(`hello-${i}\n`);
      expect(runsOf(i)).toBe(1);
    }
    const out = await ospd.json<{ output_value: string[] }>(['stack', 'output', 'show', STACK, 'stdouts']);
    expect(out.output_value).toEqual([0, 1, 2].map((i) => `member ${i} wrote hello-${i} (run 1)\n`));

    const resources = await ospd.json<{ resource_name: string; stack_path: string; resource_type: string; resource_status: string }[]>(
      ['stack', 'resource', 'list', STACK, '--nested-depth', '2']);
    const byPath = resources.map((x) => `${x.stack_path}:${x.resource_name}:${x.resource_type}:${x.resource_status}`).sort();
    expect(byPath).toEqual([
      `${STACK}/members/0:deployment:OS::Heat::SoftwareDeploymentGroup:CREATE_COMPLETE`,
      `${STACK}/members/1:deployment:OS::Heat::SoftwareDeploymentGroup:CREATE_COMPLETE`,
      `${STACK}/members/2:deployment:OS::Heat::SoftwareDeploymentGroup:CREATE_COMPLETE`,
      `${STACK}/members:0:member.yaml:CREATE_COMPLETE`,
      `${STACK}/members:1:member.yaml:CREATE_COMPLETE`,
      `${STACK}/members:2:member.yaml:CREATE_COMPLETE`,
      `${STACK}:members:OS::Heat::ResourceGroup:CREATE_COMPLETE`,
      `${STACK}:motd_config:OS::Heat::SoftwareConfig:CREATE_COMPLETE`,
    ]);
    for (const n of NODES) expect(await deploymentsOn(n)).toHaveLength(1);
    // One resource of a nested stack, named by the stack's path as `resource list` shows it.
    const one = await ospd.json<{ resource_status: string; properties: { servers: object; input_values: object } }>(
      ['stack', 'resource', 'show', `${STACK}/members/2`, 'deployment']);
    expect(one.resource_status).toBe('CREATE_COMPLETE');
    expect(one.properties).toMatchObject({ servers: { node: 'stk-2' }, input_values: { member: '2', message: 'hello-2' } });
  }, 120_000);

  it("an update of one member's input re-runs only that deployment", async () => {
    const before = [0, 1, 2].map((i) => statSync(motd(i)).mtimeMs);
    const revisions = await Promise.all(NODES.map(latestRevision));
    const eventsBefore = (await ospd.json<unknown[]>(['stack', 'event', 'list', STACK])).length;
    const r = await ctl(['stack', 'update', STACK, ...stackArgs(['hello-0', 'changed-1', 'hello-2']), '--wait', '-f', 'json'], 90_000);
    expect(r.code, `${r.stderr}\n${tail()}`).toBe(0);
    expect(JSON.parse(r.stdout).status).toBe('UPDATE_COMPLETE');
    expect(readFileSync(motd(1), 'utf8')).toBe('changed-1\n');
    expect([runsOf(0), runsOf(1), runsOf(2)]).toEqual([1, 2, 1]);
    expect([statSync(motd(0)).mtimeMs, statSync(motd(2)).mtimeMs]).toEqual([before[0], before[2]]);
    // Only stk-1's document changed: the others got no new revision at all.
    expect(await Promise.all(NODES.map(latestRevision))).toEqual([revisions[0], revisions[1] + 1, revisions[2]]);
    const out = await ospd.json<{ output_value: string[] }>(['stack', 'output', 'show', STACK, 'stdouts']);
    expect(out.output_value).toEqual(['member 0 wrote hello-0 (run 1)\n', 'member 1 wrote changed-1 (run 2)\n', 'member 2 wrote hello-2 (run 1)\n']);
    // Every member gets the whole map, so each member stack is updated; only member 1's deployment changed and ran.
    const events = (await ospd.json<{ stack_path: string; resource_name: string; resource_status: string }[]>(['stack', 'event', 'list', STACK])).slice(eventsBefore);
    const deploymentEvents = events.filter((e) => e.resource_name === 'deployment');
    expect([...new Set(deploymentEvents.map((e) => e.stack_path))]).toEqual([`${STACK}/members/1`]);
    expect(deploymentEvents.at(-1)?.resource_status).toBe('UPDATE_COMPLETE');
  }, 120_000);

  /** Kills ospd while member 2's script sleeps in an update; `ackWhileDown`: the script ends (and its ack waits) before ospd is back. */
  async function killMidUpdate(message: string, ackWhileDown: boolean): Promise<void> {
    const runs = [runsOf(0), runsOf(1), runsOf(2)];
    const marker = path.join(roots[2], 'etc/stack/sleeping');
    rmSync(marker, { force: true });
    const r = await ctl(['stack', 'update', STACK, ...stackArgs(['hello-0', 'changed-1', message]), '-f', 'json']);
    expect(r.code, r.stderr).toBe(0);
    await waitFor('member 2 script sleeping', () => existsSync(marker), { timeoutMs: 30_000, detail: tail });
    const revisions = await Promise.all(NODES.map(latestRevision));
    expect(await ospd.stop('SIGKILL')).toBeNull();
    if (ackWhileDown) await waitFor('member 2 script done', () => readFileSync(motd(2), 'utf8') === `${message}\n`, { timeoutMs: 20_000, detail: tail });
    else expect(readFileSync(motd(2), 'utf8')).not.toBe(`${message}\n`);
    await ospd.start();
    const end = await waitFor('the update to settle', async () => {
      const s = await show();
      return s.status.endsWith('_IN_PROGRESS') ? undefined : s;
    }, { timeoutMs: 60_000, intervalMs: 250, retryErrors: true, detail: tail });
    expect(end.status, end.status_reason).toBe('UPDATE_COMPLETE');
    expect(readFileSync(motd(2), 'utf8')).toBe(`${message}\n`);
    // The script ran once for the update; the others not at all.
    expect([runsOf(0), runsOf(1), runsOf(2)]).toEqual([runs[0], runs[1], runs[2] + 1]);
    // Nor did the resumed engine place anything again: no node has a revision newer than at the kill.
    expect(await Promise.all(NODES.map(latestRevision))).toEqual(revisions);
    const out = await ospd.json<{ output_value: string[] }>(['stack', 'output', 'show', STACK, 'stdouts']);
    expect(out.output_value[2]).toBe(`member 2 wrote ${message} (run ${runs[2] + 1})\n`);
  }

  it('SIGKILL of ospd while a member script runs mid-update, restarted at once: the update completes and nothing done is redone', async () => {
    await killMidUpdate('sleep-then-2', false);
  }, 120_000);

  it('SIGKILL mid-update, the script ends while ospd is down: restarted, the ack it missed completes the update', async () => {
    await killMidUpdate('sleep-again-2', true);
  }, 120_000);

  it('delete removes the deployments from the nodes and the stack is gone', async () => {
    const r = await ctl(['stack', 'delete', STACK, '--wait'], 60_000);
    expect(r.code, `${r.stderr}\n${tail()}`).toBe(0);
    for (const n of NODES) expect(await deploymentsOn(n)).toEqual([]);
    const gone = await ctl(['stack', 'show', STACK]);
    expect(gone.code).not.toBe(0);
    expect(gone.stderr).toMatch(/not found/i);
    expect(await ospd.json<unknown[]>(['stack', 'list'])).toEqual([]);
  }, 90_000);

  it("delete of a stack stuck mid-create on a node whose agent is down cancels the create and removes what it placed", async () => {
    await agents[2].stop();
    const r = await ctl(['stack', 'create', 'stuck', ...stackArgs(['a-0', 'a-1', 'a-2']), '-f', 'json']);
    expect(r.code, r.stderr).toBe(0);
    await waitFor('stk-2 awaited', async () => {
      const d = await ospd.json<{ resource_status_reason: string }>(['stack', 'resource', 'show', 'stuck/members/2', 'deployment']);
      return /waiting for stk-2 to apply/.test(d.resource_status_reason);
    }, { timeoutMs: 20_000, retryErrors: true, detail: tail });
    expect(await deploymentsOn('stk-2')).toHaveLength(1);
    const d = await ctl(['stack', 'delete', 'stuck', '--wait'], 30_000);
    expect(d.code, `${d.stderr}\n${tail()}`).toBe(0);
    for (const n of NODES) expect(await deploymentsOn(n)).toEqual([]);
    const events = ospd.log();
    expect(events).toMatch(/stack operation cancelled by a delete/);
    agents[2].start();
    await waitFor("stk-2's agent back", async () => (await ospd.json<{ connected: boolean }>(['node', 'config', 'status', 'stk-2'])).connected, { timeoutMs: 20_000, retryErrors: true });
  }, 90_000);

  it('a failing script → CREATE_FAILED; stack failures names the node, config, exit code and stderr tail; the next update fixes it', async () => {
    const r = await ctl(['stack', 'create', 'broken', ...stackArgs(['fine-0', 'fail-1', 'fine-2']), '--wait', '-f', 'json'], 90_000);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/stack broken: CREATE_FAILED/);
    expect((await show('broken')).status).toBe('CREATE_FAILED');
    const failures = await ospd.json<{ node: string; config: string; status_code: number; stderr_tail: string; stack_path: string; resource: string }[]>(['stack', 'failures', 'broken']);
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatchObject({ node: 'stk-1', config: 'motd_config', status_code: 3, stack_path: 'broken/members/1', resource: 'deployment' });
    expect(failures[0].stderr_tail).toContain('motd: cannot write fail-1: read-only file system');
    // The operator's table shows the same.
    const table = await ctl(['stack', 'failures', 'broken']);
    for (const text of ['stk-1', 'motd_config', 'read-only file system']) expect(table.stdout).toContain(text);

    // The next update redoes the failed deployment with the fixed input; the others stay as they are.
    const fixed = await ctl(['stack', 'update', 'broken', ...stackArgs(['fine-0', 'fixed-1', 'fine-2']), '--wait', '-f', 'json'], 90_000);
    expect(fixed.code, `${fixed.stderr}\n${tail()}`).toBe(0);
    expect(JSON.parse(fixed.stdout).status).toBe('UPDATE_COMPLETE');
    expect(readFileSync(motd(1), 'utf8')).toBe('fixed-1\n');
    expect(await ospd.json<unknown[]>(['stack', 'failures', 'broken'])).toEqual([]);
    const d = await ctl(['stack', 'delete', 'broken', '--wait'], 60_000);
    expect(d.code, d.stderr).toBe(0);
    for (const n of NODES) expect(await deploymentsOn(n)).toEqual([]);
  }, 120_000);
});
