import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ResourceFailure, type ResourcePlugin } from '../../server/orchestration/engine/contract.js';
import { configStore } from '../../server/store/configs.js';
import { until } from './engine-helpers.js';
import { context, createReady, world, type World } from './software-helpers.js';

let w: World | undefined;
afterEach(async () => {
  await w?.close();
  w = undefined;
});

const SD = 'OS::Heat::SoftwareDeployment';

async function scriptConfig(w: World, script: string, extra: Record<string, unknown> = {}): Promise<string> {
  const p = w.plugins.get('OS::Heat::SoftwareConfig')!;
  return p.reference(await p.create(context('Config'), { group: 'script', config: script, ...extra }));
}

async function deployments(w: World, node = 0) {
  return (await w.configs.get(w.nodes[node].uuid)).rev?.deployments ?? [];
}

describe('OS::Heat::SoftwareDeployment', () => {
  it('runs on the node with Heat inputs as env vars and completes with stdout, status code and declared outputs', async () => {
    w = await world(1);
    w.agents[0].follow();
    const config = await scriptConfig(w, '#!/bin/sh\necho "hello $greeting $foo $deploy_action $deploy_signal_transport"\nprintf %s "$deploy_server_id" > "$heat_outputs_path.server"\n', {
      inputs: [{ name: 'greeting', default: 'hi' }, { name: 'foo', default: 'unset' }],
      outputs: [{ name: 'server' }],
    });
    const p = w.plugins.get(SD)!;
    const ctx = context('Deploy');
    const created = await p.create(ctx, { config, server: 'n1', input_values: { foo: 'bar' } });
    // What must survive a restart is returned before any waiting.
    expect(created.members).toMatchObject({ '': { node: w.nodes[0].uuid, nodeName: 'n1', revision: 1 } });
    const data = await p.ready!(ctx, created);
    expect(p.attribute(data, 'deploy_stdout')).toBe('hello hi bar CREATE NO_SIGNAL\n');
    expect(p.attribute(data, 'deploy_status_code')).toBe(0);
    expect(p.attribute(data, 'deploy_stderr')).toBe('');
    expect(p.attribute(data, 'server')).toBe(w.nodes[0].uuid);
    const [doc] = await deployments(w);
    expect(p.reference(data)).toBe(doc.id);
    expect(doc.inputs).toEqual([
      { name: 'greeting', value: 'hi' }, { name: 'foo', value: 'bar' },
      { name: 'deploy_server_id', value: w.nodes[0].uuid }, { name: 'deploy_action', value: 'CREATE' },
      { name: 'deploy_stack_id', value: 'overcloud/6f0c1d5e-0000-4000-8000-000000000001' }, { name: 'deploy_resource_name', value: 'Deploy' },
      { name: 'deploy_signal_transport', value: 'NO_SIGNAL' },
    ]);
    expect(ctx.progressLines[0]).toMatch(/^waiting for n1 to apply config revision 1/);
  });

  it('fails with the exit code and the last stderr line, details for `stack failures`', async () => {
    w = await world(1);
    w.agents[0].follow();
    const config = await scriptConfig(w, '#!/bin/sh\necho "starting" >&2\necho "disk full on /var" >&2\nexit 3\n');
    const p = w.plugins.get(SD)!;
    const err = await createReady(p, context('Deploy'), { config, server: 'n1' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ResourceFailure);
    const f = err as ResourceFailure;
    expect(f.message).toMatch(/^deployment overcloud\.Deploy\.[0-9a-f]{10} on node n1 failed with status 3: disk full on \/var$/);
    expect(f.details).toMatchObject({ node: 'n1', config: 'Config', configId: config, statusCode: 3, stderrTail: 'starting\ndisk full on /var\n' });
  });

  it('without UPDATE in actions an update does not re-run; without CREATE a create does nothing', async () => {
    w = await world(1);
    w.agents[0].follow();
    const log = path.join(w.dir, 'runs.log');
    const config = await scriptConfig(w, `#!/bin/sh\necho "$deploy_action $n" >> ${log}\n`, { inputs: [{ name: 'n' }] });
    const p = w.plugins.get(SD)!;
    const ctx = context('Deploy');
    const props = { config, server: 'n1', actions: ['CREATE'], input_values: { n: 1 } };
    const data = await createReady(p, ctx, props);
    const next = { ...props, input_values: { n: 2 } };
    const updated = await p.ready!(ctx, await p.update(ctx, data, next, props));
    expect(updated).toEqual(data);
    await w.agents[0].idle();
    expect(await readFile(log, 'utf8')).toBe('CREATE 1\n');
    expect((await w.configs.get('n1')).rev?.revision).toBe(1);

    // UPDATE only: the create places nothing; the first update runs it.
    const q = w.plugins.get(SD)!;
    const ctx2 = context('Late');
    const lateProps = { config, server: 'n1', actions: ['UPDATE'], input_values: { n: 7 } };
    const late = await createReady(q, ctx2, lateProps);
    expect(q.attribute(late, 'deploy_status_code')).toBeUndefined();
    expect((await deployments(w)).map((d) => d.name)).toHaveLength(1);
    const ran = await q.ready!(ctx2, await q.update(ctx2, late, { ...lateProps, input_values: { n: 8 } }, lateProps));
    expect(q.attribute(ran, 'deploy_status_code')).toBe(0);
    await w.agents[0].idle();
    expect(await readFile(log, 'utf8')).toBe('CREATE 1\nUPDATE 8\n');
  });

  it('an update with UPDATE re-runs with deploy_action UPDATE; one that only renames completes from the earlier run', async () => {
    w = await world(1);
    w.agents[0].follow();
    const config = await scriptConfig(w, '#!/bin/sh\necho "$deploy_action $n"\n', { inputs: [{ name: 'n' }] });
    const p = w.plugins.get(SD)!;
    const ctx = context('Deploy');
    const v1 = { config, server: 'n1', input_values: { n: 1 } };
    const d1 = await createReady(p, ctx, v1);
    const v2 = { ...v1, input_values: { n: 2 } };
    const d2 = await p.ready!(ctx, await p.update(ctx, d1, v2, v1));
    expect(p.attribute(d2, 'deploy_stdout')).toBe('UPDATE 2\n');
    expect(p.reference(d2)).toBe(p.reference(d1));
    // Another deployment moves the node on; its ack does not list ours.
    await createReady(p, context('Other'), { config, server: 'n1', input_values: { n: 9 } });
    const v3 = { ...v2, name: 'renamed' };
    const d3 = await p.ready!(ctx, await p.update(ctx, d2, v3, v2));
    // Same content: the agent skipped it, so the ack that completed it does not list it.
    const acks = await configStore.acksSince(w.db, w.nodes[0].uuid, (d3.members as Record<string, { revision: number }>)[''].revision);
    expect(acks.length).toBeGreaterThan(0);
    for (const a of acks) expect((a.result.deployments as { id: string }[]).map((d) => d.id)).not.toContain(p.reference(d3));
    expect(p.attribute(d3, 'deploy_stdout')).toBe('UPDATE 2\n');
    expect(p.attribute(d3, 'deploy_status_code')).toBe(0);
  });

  it('a restarted ospd re-observes from stored acks, and from acks that arrive later', async () => {
    w = await world(1);
    const config = await scriptConfig(w, '#!/bin/sh\necho done\n');
    const ctx = context('Deploy');
    const data = await w.plugins.get(SD)!.create(ctx, { config, server: 'n1' });
    await w.agents[0].applyLatest();
    // "Restart": new plug-ins over the same store, handed the stored data.
    const fresh = w.freshPlugins().get(SD)!;
    const stored = JSON.parse(JSON.stringify(data)) as Record<string, unknown>;
    const seen = await fresh.ready!(context('Deploy'), stored);
    expect(fresh.attribute(seen, 'deploy_stdout')).toBe('done\n');

    const other = await w.plugins.get(SD)!.create(context('Second'), { config, server: 'n1' });
    const again = w.freshPlugins().get(SD)!;
    const waiting = again.ready!(context('Second'), other);
    await new Promise((r) => setTimeout(r, 50));
    await w.agents[0].applyLatest();
    expect(again.attribute(await waiting, 'deploy_stdout')).toBe('done\n');
  });

  it('stops waiting when the signal aborts, with its reason', async () => {
    w = await world(1);
    const config = await scriptConfig(w, '#!/bin/sh\ntrue\n');
    const p = w.plugins.get(SD)!;
    const ctx = context('Deploy');
    const data = await p.create(ctx, { config, server: 'n1' });
    const waiting = p.ready!(ctx, data);
    setTimeout(() => ctx.abort.abort(new Error('stack timeout after 1 minute')), 50);
    await expect(waiting).rejects.toThrow('stack timeout after 1 minute');
    // An ack after the abort must not reach the finished waiter (nor throw in NodeConfigs.ack).
    await w.agents[0].applyLatest();
  });

  it('delete removes the deployment from the node document, idempotently', async () => {
    w = await world(1);
    w.agents[0].follow();
    const config = await scriptConfig(w, '#!/bin/sh\ntrue\n');
    const p = w.plugins.get(SD)!;
    const keep = await createReady(p, context('Keep'), { config, server: 'n1' });
    const data = await createReady(p, context('Deploy'), { config, server: 'n1' });
    expect(await deployments(w)).toHaveLength(2);
    await p.delete(context('Deploy'), data);
    expect((await deployments(w)).map((d) => d.id)).toEqual([p.reference(keep)]);
    await p.delete(context('Deploy'), data);
    await p.delete(context('Deploy'), undefined);
    await expect(p.check!(context('Keep'), keep)).resolves.toBeUndefined();
    await expect(p.check!(context('Deploy'), data)).rejects.toThrow(/no longer in the configuration of node n1/);
  });

  it('delete is fine when the node is gone', async () => {
    w = await world(1);
    const config = await scriptConfig(w, '#!/bin/sh\ntrue\n');
    const p = w.plugins.get(SD)!;
    const data = await p.create(context('Deploy'), { config, server: 'n1' });
    await w.registry.delete('n1', 'test');
    await expect(p.delete(context('Deploy'), data)).resolves.toBeUndefined();
  });

  it('refuses a missing config or node with the field named', async () => {
    w = await world(1);
    const p = w.plugins.get(SD)!;
    expect(p.validate!({ server: 'n1' })).toEqual([`property 'config': undefined: expected the id of a software config (get_resource of an OS::Heat::SoftwareConfig)`]);
    expect(p.validate!({ config: 'x', server: 'n1', actions: ['CREATE', 'REBOOT'] })).toEqual([`property 'actions[1]': "REBOOT": expected one of CREATE, UPDATE, DELETE, SUSPEND, RESUME`]);
    await expect(p.create(context('D'), { config: 'no-such-id', server: 'n1' })).rejects.toThrow(`property 'config': "no-such-id": no software config with this id`);
    const config = await scriptConfig(w, '#!/bin/sh\ntrue\n');
    await expect(p.create(context('D'), { config, server: 'ghost' })).rejects.toMatchObject({ code: 'NODE_NOT_FOUND' });
  });
});

describe('OS::Heat::StructuredDeployment', () => {
  it('substitutes get_input from input_values and Heat inputs into an apply-config deployment', async () => {
    w = await world(1);
    w.agents[0].follow();
    const c = w.plugins.get('OS::Heat::StructuredConfig')!;
    const config = c.reference(await c.create(context('Cfg'), { group: 'os-apply-config', config: { svc: { port: { get_input: 'port' }, host: { get_input: 'deploy_server_id' } } } }));
    const p = w.plugins.get('OS::Heat::StructuredDeployment')!;
    const data = await createReady(p, context('Deploy'), { config, server: 'n1', input_values: { port: 8080 } });
    expect(p.attribute(data, 'deploy_status_code')).toBe(0);
    const [doc] = await deployments(w);
    expect(doc.group).toBe('apply-config');
    expect(JSON.parse(doc.config)).toEqual({ svc: { port: 8080, host: w.nodes[0].uuid } });
  });
});

describe('OS::Heat::SoftwareDeploymentGroup', () => {
  async function group(w: World): Promise<{ p: ResourcePlugin; config: string }> {
    const config = await scriptConfig(w, '#!/bin/sh\necho "on $deploy_server_id"\n[ "$fail_on" = "$deploy_server_id" ] && { echo "no luck" >&2; exit 5; }\nexit 0\n', { inputs: [{ name: 'fail_on', default: 'none' }] });
    return { p: w.plugins.get('OS::Heat::SoftwareDeploymentGroup')!, config };
  }

  it('fans out to every node in parallel and maps outputs by server key', async () => {
    w = await world(3);
    for (const a of w.agents) a.follow();
    const { p, config } = await group(w);
    const data = await createReady(p, context('Deploy'), { config, servers: { a: 'n1', b: 'n2', c: 'n3' } });
    const [n1, n2, n3] = w.nodes.map((n) => n.uuid);
    expect(p.attribute(data, 'deploy_stdouts')).toEqual({ a: `on ${n1}\n`, b: `on ${n2}\n`, c: `on ${n3}\n` });
    expect(p.attribute(data, 'deploy_status_codes')).toEqual({ a: 0, b: 0, c: 0 });
    expect(p.attribute(data, 'deploy_stderrs')).toEqual({ a: '', b: '', c: '' });
    for (let n = 0; n < 3; n++) expect(await deployments(w, n)).toHaveLength(1);

    // Shrinking the map removes the member from its node only.
    const ctx = context('Deploy');
    const smaller = await p.ready!(ctx, await p.update(ctx, data, { config, servers: { a: 'n1', b: 'n2' }, actions: ['CREATE'] }, {}));
    expect(Object.keys(smaller.members as object)).toEqual(['a', 'b']);
    expect(await deployments(w, 2)).toHaveLength(0);
    expect(await deployments(w, 0)).toHaveLength(1);
    await p.delete(ctx, smaller);
    for (let n = 0; n < 3; n++) expect(await deployments(w, n)).toHaveLength(0);
  });

  it('fails naming the node whose script failed', async () => {
    w = await world(3);
    for (const a of w.agents) a.follow();
    const { p, config } = await group(w);
    const err = await createReady(p, context('Deploy'), { config, servers: { a: 'n1', b: 'n2', c: 'n3' }, input_values: { fail_on: w.nodes[1].uuid } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ResourceFailure);
    expect((err as ResourceFailure).message).toMatch(/^deployment overcloud\.Deploy\.b\.[0-9a-f]{10} on node n2 failed with status 5: no luck$/);
    expect((err as ResourceFailure).details).toMatchObject({ node: 'n2', statusCode: 5 });
  });

  it('places on every node or none: an unknown node rolls the others back', async () => {
    w = await world(2);
    const { p, config } = await group(w);
    await expect(p.create(context('Deploy'), { config, servers: { a: 'n1', b: 'ghost', c: 'n2' } })).rejects.toMatchObject({ code: 'NODE_NOT_FOUND' });
    expect(await deployments(w, 0)).toHaveLength(0);
    expect(await deployments(w, 1)).toHaveLength(0);
  });
});

describe('waiting on acks', () => {
  it('keeps waiting through a run whose hooks failed (the agent retries), then completes', async () => {
    w = await world(1);
    const config = await scriptConfig(w, '#!/bin/sh\necho fine\n');
    const p = w.plugins.get(SD)!;
    const ctx = context('Deploy');
    const data = await p.create(ctx, { config, server: 'n1' });
    const waiting = p.ready!(ctx, data);
    await w.configs.ack(w.nodes[0], {
      revision: 1, status: 'failed', configHash: 'x', receivedAt: new Date().toISOString(),
      result: { phases: [{ name: 'apply', status: 'succeeded', exitCode: 0 }, { name: 'configure.d', status: 'failed', exitCode: 2 }], deployments: [] },
    });
    // The first line is the "waiting for" one; the second is what the failed ack says.
    await until(() => ctx.progressLines.length >= 2);
    expect(ctx.progressLines.at(-1)).toBe('n1: revision 1 failed before deployments ran (phase configure.d, exit 2); the agent retries');
    await w.agents[0].applyLatest();
    expect(p.attribute(await waiting, 'deploy_stdout')).toBe('fine\n');
  });

  it('fails a deployment whose declared error_output is not empty', async () => {
    w = await world(1);
    w.agents[0].follow();
    const config = await scriptConfig(w, '#!/bin/sh\necho "bad things" > "$heat_outputs_path.errors"\n', { outputs: [{ name: 'errors', error_output: true }] });
    const err = await createReady(w.plugins.get(SD)!, context('Deploy'), { config, server: 'n1' }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/on node n1 reported an error in output 'errors': bad things$/);
  });
});
