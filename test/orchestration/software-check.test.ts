import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { dedent } from './hot-helpers.js';
import { silentLogger } from '../../common/logging.js';
import { StackEngine } from '../../server/orchestration/engine/engine.js';
import { SecretBox } from '../../server/security/secrets.js';
import { settle } from './engine-helpers.js';
import { context, world, type World } from './software-helpers.js';

let w: World | undefined;
let engine: StackEngine | undefined;
afterEach(async () => {
  await engine?.stop();
  engine = undefined;
  await w?.close();
  w = undefined;
});

const SD = 'OS::Heat::SoftwareDeployment';

const template = dedent(`
  heat_template_version: wallaby
  resources:
    cfg: {type: OS::Heat::SoftwareConfig, properties: {group: script, config: "#!/bin/sh\\necho ok\\n"}}
    deploy: {type: OS::Heat::SoftwareDeployment, properties: {config: {get_resource: cfg}, server: n1}}
`);

describe('CHECK of software configs and deployments', () => {
  it('a stack whose deployment ran is CHECK_COMPLETE; removed from the node behind the engine its check fails naming the node', async () => {
    w = await world(1);
    w.agents[0].follow();
    engine = new StackEngine({ db: w.db, secrets: SecretBox.fromKey(randomBytes(32)), plugins: [...w.plugins.values()], log: silentLogger() });
    await engine.create({ name: 'sw', files: { 'top.yaml': template }, template: 'top.yaml', environments: [], parameters: {}, actor: 'test' });
    expect(await settle(engine, 'sw')).toBe('CREATE_COMPLETE');

    await engine.check('sw', 'test');
    expect(await settle(engine, 'sw')).toBe('CHECK_COMPLETE');
    const statuses = Object.fromEntries((await engine.resources('sw', 0)).map((r) => [r.name, r.status]));
    expect(statuses).toEqual({ cfg: 'CHECK_COMPLETE', deploy: 'CHECK_COMPLETE' });

    const name = (await w.configs.get(w.nodes[0].uuid)).rev!.deployments[0].name;
    await w.configs.removeDeployment(w.nodes[0].uuid, name, 'someone-else');
    const revisions = (await w.configs.get(w.nodes[0].uuid)).rev!.revision;
    await engine.check('sw', 'test');
    expect(await settle(engine, 'sw')).toBe('CHECK_FAILED');
    const deploy = (await engine.resources('sw', 0)).find((r) => r.name === 'deploy')!;
    expect(deploy).toMatchObject({ status: 'CHECK_FAILED', statusReason: `deployment ${name} is no longer in the configuration of node n1` });
    expect((await engine.get('sw')).statusReason).toBe(`Resource CHECK failed: deploy: deployment ${name} is no longer in the configuration of node n1`);
    // The check put nothing back: the node's document is as the other actor left it.
    expect((await w.configs.get(w.nodes[0].uuid)).rev!.revision).toBe(revisions);
  });

  it("a deployment still in the document fails its check until the node's latest ack covering it says it ran", async () => {
    w = await world(1);
    const cfgPlugin = w.plugins.get('OS::Heat::SoftwareConfig')!;
    const cfg = await cfgPlugin.create(context('Config'), { group: 'script', config: '#!/bin/sh\ntrue\n' });
    const p = w.plugins.get(SD)!;
    const data = await p.create(context('Deploy'), { config: cfgPlugin.reference(cfg), server: 'n1' });
    await expect(p.check!(context('Deploy'), data)).rejects.toThrow(/node n1 has not acknowledged config revision 1 or later/);

    await w.agents[0].applyLatest();
    await expect(p.check!(context('Deploy'), data)).resolves.toBeUndefined();

    // A later run of the same revision reports ours failed: the latest ack is what counts.
    const { rev } = await w.configs.get(w.nodes[0].uuid);
    const mine = rev!.deployments[0];
    await w.configs.ack(w.nodes[0], {
      revision: rev!.revision, status: 'failed', configHash: rev!.contentHash, receivedAt: new Date().toISOString(),
      result: { phases: [], deployments: [{ id: mine.id, name: mine.name, status: 'failed', exitCode: 4, stdoutTail: '', stderrTail: 'gone' }] },
    });
    await expect(p.check!(context('Deploy'), data)).rejects.toThrow(`deployment ${mine.name}: node n1's latest ack (revision 1) says it failed with status 4`);
  });

  it("a software config's check fails when its stored row is gone", async () => {
    w = await world(1);
    const cfgPlugin = w.plugins.get('OS::Heat::SoftwareConfig')!;
    const cfg = await cfgPlugin.create(context('Config'), { group: 'script', config: '#!/bin/sh\ntrue\n' });
    await expect(cfgPlugin.check!(context('Config'), cfg)).resolves.toBeUndefined();
    await w.db.run('DELETE FROM software_configs WHERE id = ?', [String(cfg.id)]);
    await expect(cfgPlugin.check!(context('Config'), cfg)).rejects.toThrow(`software config ${String(cfg.id)} is missing from the store`);
  });
});
