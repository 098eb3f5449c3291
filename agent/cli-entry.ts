import { main } from './main.js';
// Registers `run --config agent.yaml` (the gRPC transport) with the CLI.
import './transport/run.js';
// Registers `ramdisk` (inspection and cleaning in osp's ramdisk).
import './ramdisk/command.js';

// Entry for bin/osp-agent and the single-executable bundle; main.ts stays importable.
void main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
