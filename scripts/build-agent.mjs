#!/usr/bin/env node
// Builds dist/osp-agent: agent/cli-entry.ts bundled by esbuild into one CJS
// file, then injected into a copy of this Node binary as a single executable
// application (Node SEA + postject; works offline, unlike pkg).
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const work = path.join(repo, 'dist', 'agent-sea');
const bundle = path.join(work, 'osp-agent.cjs');
const blob = path.join(work, 'osp-agent.blob');
const seaConfig = path.join(work, 'sea-config.json');
const output = path.join(repo, 'dist', 'osp-agent');
// The fuse string Node's SEA loader looks for (documented in Node's single-executable-applications guide).
const FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

function step(name, fn) {
  const t0 = Date.now();
  fn();
  process.stderr.write(`build-agent: ${name} (${Date.now() - t0} ms)\n`);
}

// Optional packages some dependencies probe for inside try/catch (debug → supports-color,
// ws → bufferutil, utf-8-validate). In a SEA, require() of anything but a built-in prints a
// warning on stderr; resolving them to a module that throws "not found" keeps the fallbacks
// those packages already have, silently.
const OPTIONAL = /^(supports-color|bufferutil|utf-8-validate)$/;
const absentOptionalModules = {
  name: 'absent-optional-modules',
  setup(b) {
    b.onResolve({ filter: OPTIONAL }, (a) => ({ path: a.path, namespace: 'absent' }));
    b.onLoad({ filter: /.*/, namespace: 'absent' }, (a) => ({
      contents: `const e = new Error("Cannot find module '${a.path}' (not bundled)"); e.code = 'MODULE_NOT_FOUND'; throw e;`,
      loader: 'js',
    }));
  },
};

rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });

await build({
  entryPoints: [path.join(repo, 'agent', 'cli-entry.ts')],
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  outfile: bundle,
  // Native addons cannot live in a SEA blob; the agent must not pull them in.
  external: ['sqlite3'],
  logLevel: 'warning',
  legalComments: 'none',
  plugins: [absentOptionalModules],
});
process.stderr.write(`build-agent: bundled ${statSync(bundle).size} bytes\n`);

writeFileSync(seaConfig, JSON.stringify({ main: bundle, output: blob, disableExperimentalSEAWarning: true, useCodeCache: false }));
step('sea blob', () => execFileSync(process.execPath, ['--experimental-sea-config', seaConfig], { stdio: 'inherit' }));

rmSync(output, { force: true });
copyFileSync(process.execPath, output);
chmodSync(output, 0o755);
// Debug info is most of an unstripped Node binary; stripping before injection keeps the SEA valid.
step('strip', () => {
  try {
    execFileSync('strip', ['--strip-all', output], { stdio: 'inherit' });
  } catch {
    process.stderr.write('build-agent: strip unavailable, keeping an unstripped binary\n');
  }
});
const postject = path.join(repo, 'node_modules', 'postject', 'dist', 'cli.js');
step('postject', () =>
  // LIEF (inside postject) warns about unnamed .note sections: harmless noise; a failure still throws with its stderr.
  execFileSync(process.execPath, [postject, output, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', FUSE], { stdio: 'pipe' }),
);
process.stderr.write(`build-agent: ${output} ${statSync(output).size} bytes\n`);
