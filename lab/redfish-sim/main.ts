#!/usr/bin/env node
// Lab entry: node dist/lab/redfish-sim/main.js --mockup DIR [--host H] [--port P]
//   [--username U] [--password-file F] [--reset-delay-ms N] [--power-command ID=CMD ...]
// The password comes from a file so it never shows in `ps`.
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { RedfishSimulator, type PowerCommand } from './simulator.js';

const { values } = parseArgs({
  options: {
    mockup: { type: 'string' }, host: { type: 'string', default: '127.0.0.1' }, port: { type: 'string', default: '0' },
    username: { type: 'string', default: 'admin' }, 'password-file': { type: 'string' },
    'reset-delay-ms': { type: 'string', default: '0' }, 'power-command': { type: 'string', multiple: true },
    'ca-out': { type: 'string' },
  },
});
if (!values.mockup) {
  process.stderr.write('--mockup DIR is required (a DMTF mockup folder)\n');
  process.exit(2);
}
const powerCommands: Record<string, PowerCommand> = {};
for (const spec of values['power-command'] ?? []) {
  const eq = spec.indexOf('=');
  if (eq < 1) { process.stderr.write(`--power-command ${spec}: expected SYSTEM_ID=COMMAND\n`); process.exit(2); }
  const [command, ...args] = spec.slice(eq + 1).split(' ').filter(Boolean);
  powerCommands[spec.slice(0, eq)] = { command, args };
}
const sim = new RedfishSimulator({
  mockupDir: values.mockup, host: values.host, port: Number(values.port), username: values.username,
  password: values['password-file'] ? readFileSync(values['password-file'], 'utf8').trim() : 'password',
  resetDelayMs: Number(values['reset-delay-ms']), powerCommands,
});
await sim.start();
if (values['ca-out']) writeFileSync(values['ca-out'], sim.caPem);
process.stdout.write(`${JSON.stringify({ url: `https://${sim.host}:${sim.port}/redfish/v1`, systems: sim.systemPaths })}\n`);
const shutdown = (): void => { void sim.stop().then(() => process.exit(0)); };
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
