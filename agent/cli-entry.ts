import { main } from './main.js';
import { ramdiskCommand } from './ramdisk/command.js';
import { runCommand } from './transport/run.js';

// grpc-js passes an IP address as the TLS server name when ospd is addressed
// by IP (the usual case on a provisioning network), and Node warns about it on
// every connection; the certificate is still checked (and its CA pinned).
process.removeAllListeners('warning');
process.on('warning', (w) => {
  if ((w as { code?: string }).code !== 'DEP0123') process.stderr.write(`${w.name}: ${w.message}\n`);
});

// Entry for bin/osp-agent and the single-executable bundle, and the agent's one
// composition root: main.ts stays importable and gets its commands from here.
void main(process.argv.slice(2), { run: runCommand, ramdisk: ramdiskCommand }).then((code) => {
  process.exitCode = code;
});
