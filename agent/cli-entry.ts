import { main } from './main.js';
// Registers `run --config agent.yaml` (the gRPC transport) with the CLI.
import './transport/run.js';
// Registers `ramdisk` (inspection and cleaning in osp's ramdisk).
import './ramdisk/command.js';

// grpc-js passes an IP address as the TLS server name when ospd is addressed
// by IP (the usual case on a provisioning network), and Node warns about it on
// every connection; the certificate is still checked (and its CA pinned).
process.removeAllListeners('warning');
process.on('warning', (w) => {
  if ((w as { code?: string }).code !== 'DEP0123') process.stderr.write(`${w.name}: ${w.message}\n`);
});

// Entry for bin/osp-agent and the single-executable bundle; main.ts stays importable.
void main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
