/**
 * The provisioning interface's address is found even without carrier (a
 * bridge no machine is plugged into yet: the lab's situation when ospd
 * starts). Runs the compiled module inside a namespace this test creates and
 * removes, since the interface must be in the process's own namespace.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { REPO, runProgram } from '../harness/ospd.js';
import { LabNet } from './lab-net.js';

const MODULE = join(REPO, 'dist', 'server', 'pxe', 'interface-address.js');
const lab = new LabNet();

async function lookUp(name: string): Promise<unknown> {
  const code = `const m = await import(${JSON.stringify(MODULE)}); console.log(JSON.stringify(m.interfaceIpv4(${JSON.stringify(name)})));`;
  const r = await runProgram('ip', ['netns', 'exec', lab.ns, process.execPath, '--input-type=module', '-e', code], { timeoutMs: 20_000 });
  if (r.code !== 0) throw new Error(`lookup failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout);
}

describe('interfaceIpv4', () => {
  beforeAll(() => {
    if (!existsSync(MODULE)) throw new Error(`${MODULE} is missing: run 'npm run build' first`);
    lab.start();
    // A tap with no QEMU behind it has no carrier, and so then has the bridge it is in.
    lab.addTap(0);
  });
  afterAll(() => lab.destroy());

  it('finds the address and netmask of a bridge that has no carrier (Node\'s own list leaves it out)', async () => {
    const state = await runProgram('ip', ['-n', lab.ns, '-o', 'link', 'show', lab.bridge]);
    expect(state.stdout).toContain('NO-CARRIER');
    expect(await lookUp(lab.bridge)).toEqual({ address: lab.serverIp, netmask: '255.255.255.0' });
  });

  it('answers null for an interface that does not exist', async () => {
    expect(await lookUp('nosuchif0')).toBeNull();
  });
});
