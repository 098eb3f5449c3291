#!/usr/bin/env node
// Deploy benchmark (issue 11), JSON on stdout, peers measured in the same run:
//  1. write throughput of the agent's writer (dist/agent/provision/writer.js) to a
//     file-backed loop device vs `qemu-img convert -n -O raw` of the same image to the
//     same device (goal ≥ 0.9×);
//  2. bytes fetched over the network for a sparse image vs a plain raw stream of its
//     virtual size, as Ironic/Tinkerbell send it (goal ≤ 0.3×);
//  3. 8 writers fetching from one HTTP server on loopback vs 8 parallel `curl`
//     downloads of the same raw file from the same server: aggregate MB/s and the
//     server's CPU.
// The HTTP server is ospd's own /images/<name>/raw handler (server/images/http-route.js:
// bearer check, Range, ETag) with its two lookups (image record, deploy token) answered
// from memory instead of SQLite, in a child process of its own so its CPU is measured alone.
// Needs root (losetup), qemu-img, curl, and `npm run build` first.
//
//   node test/bench/deploy-bench.mjs [--virtual-gib 4] [--data-gib 1] [--reps 2]
//        [--concurrent 8] [--concurrent-virtual-gib 1] [--dir /tmp]
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchArgs } from './bench-args.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.resolve(here, '..', '..', 'dist');
const GIB = 1024 ** 3;
const MIB = 1024 ** 2;

const { arg: flag, intArg } = benchArgs('deploy-bench');
const run = (cmd, args) => execFileSync(cmd, args, { encoding: 'utf8', timeout: 600_000, maxBuffer: 64 * MIB });
const timed = (fn) => { const t0 = process.hrtime.bigint(); const r = fn(); return { r, seconds: Number(process.hrtime.bigint() - t0) / 1e9 }; };
async function timedAsync(fn) { const t0 = process.hrtime.bigint(); const r = await fn(); return { r, seconds: Number(process.hrtime.bigint() - t0) / 1e9 }; }
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
const round = (x, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

// --- child modes --------------------------------------------------------------

/** `--serve FILE TOKEN RAWSHA256`: the image server; prints its port, serves until killed. */
async function serve(file, token, rawSha256) {
  const { imageRoute } = await import(path.join(dist, 'server/images/http-route.js'));
  const images = { get: async () => ({ rawSha256 }), rawPath: () => file };
  const tokens = { check: async (_name, t) => t === token };
  const route = imageRoute(images, tokens, 'bench');
  const srv = http.createServer((req, res) => { route(req, res).catch(() => res.destroy()); });
  srv.listen(0, '127.0.0.1', () => process.stdout.write(`${srv.address().port}\n`));
}

/** `--writer JSON`: one writeImage run; prints its result as JSON. */
async function writer(json) {
  const { writeImage } = await import(path.join(dist, 'agent/provision/writer.js'));
  const o = JSON.parse(json);
  const { r, seconds } = await timedAsync(() => writeImage(o));
  process.stdout.write(JSON.stringify({ ...r, seconds }));
}

// --- helpers ------------------------------------------------------------------

function cpuSeconds(pid) {
  // /proc/PID/stat fields 14 and 15: utime and stime in clock ticks (USER_HZ, 100 on Linux).
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

async function startServer(file, token, rawSha256) {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--serve', file, token, rawSha256], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('image server did not print its port within 10 s')), 10_000);
    child.stdout.once('data', (b) => { clearTimeout(t); resolve(Number(String(b).trim())); });
    child.once('exit', (c) => reject(new Error(`image server exited with ${c}`)));
  });
  const url = `http://127.0.0.1:${port}/images/bench/raw`;
  run('curl', ['-sf', '-I', '-H', `Authorization: Bearer ${token}`, '--max-time', '300', url]);
  return { child, url, stop: () => child.kill() };
}

function runChild(args) {
  return new Promise((resolve, reject) => {
    const c = spawn(args[0], args.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const t = setTimeout(() => c.kill('SIGKILL'), 600_000);
    c.stdout.on('data', (b) => { out += b; });
    c.stderr.on('data', (b) => { err += b; });
    c.on('exit', (code) => {
      clearTimeout(t);
      if (code === 0) resolve(out);
      else reject(new Error(`${args.slice(0, 3).join(' ')} exited ${code}: ${err.slice(-500)}`));
    });
  });
}

/** A sparse raw file with dataBytes of random data in 16 MiB runs spread evenly, then qcow2 from it. */
function makeImage(dir, name, virtualBytes, dataBytes) {
  const src = path.join(dir, `${name}.src.raw`);
  run('truncate', ['-s', String(virtualBytes), src]);
  const chunk = 16 * MIB;
  const n = Math.max(1, Math.round(dataBytes / chunk));
  const stride = Math.floor(virtualBytes / n / MIB) * MIB;
  for (let i = 0; i < n; i++) {
    run('dd', ['if=/dev/urandom', `of=${src}`, 'bs=1M', `count=${chunk}`, `seek=${i * stride + (i % 3) * MIB}`, 'iflag=count_bytes,fullblock', 'oflag=seek_bytes', 'conv=notrunc', 'status=none']);
  }
  const qcow = path.join(dir, `${name}.qcow2`);
  run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', src, qcow]);
  rmSync(src);
  return qcow;
}

/** What ospd keeps at upload: the sparse raw, its extent map and its digests (computed by ospd's own code). */
async function prepare(dir, qcow) {
  const { extentsFromQemuMap, dataBytes } = await import(path.join(dist, 'common/extents.js'));
  const { rawDigests } = await import(path.join(dist, 'server/images/image-store.js'));
  const raw = qcow.replace(/\.qcow2$/, '.raw');
  run('qemu-img', ['convert', '-O', 'raw', qcow, raw]);
  const virtualSizeBytes = JSON.parse(run('qemu-img', ['info', '--output=json', qcow]))['virtual-size'];
  const extents = extentsFromQemuMap(run('qemu-img', ['map', '--output=json', '-f', 'raw', raw]), virtualSizeBytes);
  const { rawSha256, dataSha256 } = await rawDigests(raw, extents);
  return { qcow, raw, virtualSizeBytes, extents, rawSha256, dataSha256, dataBytes: dataBytes(extents) };
}

/** A fresh backing file and loop device per run, so every run starts from the same allocation state. */
function freshLoop(dir, bytes) {
  const backing = path.join(dir, 'loop-backing');
  rmSync(backing, { force: true });
  run('fallocate', ['-l', String(bytes), backing]);
  const dev = run('losetup', ['-f', '--show', backing]).trim();
  return { dev, detach: () => { run('losetup', ['-d', dev]); rmSync(backing, { force: true }); } };
}

// --- benchmark ----------------------------------------------------------------

async function main() {
  const virtualGib = Number(flag('virtual-gib', '4'));
  const dataGib = Number(flag('data-gib', '1'));
  const reps = intArg('reps', '2', 1, 100);
  const concurrent = intArg('concurrent', '8', 1, 64);
  const concVirtualGib = Number(flag('concurrent-virtual-gib', '1'));
  const dir = mkdtempSync(path.join(flag('dir', '/tmp'), 'osp-deploy-bench-'));
  const token = createHash('sha256').update(String(Math.random())).digest('hex');
  const out = { bench: 'deploy', dir, server: 'ospd server/images/http-route.js imageRoute (image record and token lookups from memory), own process', host: { cpus: run('nproc', []).trim() } };
  const loops = [];
  let server = null;
  try {
    const img = await prepare(dir, makeImage(dir, 'big', virtualGib * GIB, dataGib * GIB));
    out.image = { virtualSizeBytes: img.virtualSizeBytes, dataBytes: img.dataBytes, extents: img.extents.length };
    server = await startServer(img.raw, token, img.rawSha256);

    // 1. throughput to a loop device
    const ours = [];
    const qemu = [];
    const qemuUnsafe = [];
    const qemuDirect = [];
    let last = null;
    // Every timed run starts on a fresh device after `sync`, so no run pays for another's writeback; the order alternates.
    const settle = () => run('sync', []);
    const runOurs = async () => {
      const l = freshLoop(dir, img.virtualSizeBytes); loops.push(l); settle();
      const opts = { url: server.url, token, extents: img.extents, virtualSizeBytes: img.virtualSizeBytes, rawSha256: img.rawSha256, dataSha256: img.dataSha256, device: l.dev };
      last = JSON.parse(await runChild([process.execPath, fileURLToPath(import.meta.url), '--writer', JSON.stringify(opts)]));
      ours.push(last.seconds);
      l.detach(); loops.pop();
    };
    const runQemu = (args, into) => {
      const l = freshLoop(dir, img.virtualSizeBytes); loops.push(l); settle();
      into.push(timed(() => run('qemu-img', [...args, img.qcow, l.dev])).seconds);
      l.detach(); loops.pop();
    };
    for (let i = 0; i < reps; i++) {
      if (i % 2 === 0) await runOurs();
      // -t writeback: the flush at the end is honoured, as the writer's fsync is (qemu-img's default, unsafe, skips it).
      runQemu(['convert', '-n', '-O', 'raw', '-t', 'writeback'], qemu);
      runQemu(['convert', '-n', '-O', 'raw'], qemuUnsafe);
      // -t none: O_DIRECT and a flush at the end, as the writer does on a block device.
      runQemu(['convert', '-n', '-O', 'raw', '-t', 'none'], qemuDirect);
      if (i % 2 === 1) await runOurs();
    }
    const mbps = (s) => round(img.virtualSizeBytes / 1e6 / s, 1);
    out.throughput = {
      what: 'virtual bytes written per second to a fresh file-backed loop device, incl. final flush; median of reps',
      reps, writer: { seconds: round(median(ours)), runs: ours.map((x) => round(x)), mbPerSec: mbps(median(ours)), zeroMethod: last.zeroMethod, directIo: last.directIo, verified: 'sha256 of the data extents (holes zeroed by the writer)' },
      qemuImgWriteback: { cmd: 'qemu-img convert -n -O raw -t writeback IMAGE.qcow2 /dev/loopN', seconds: round(median(qemu)), runs: qemu.map((x) => round(x)), mbPerSec: mbps(median(qemu)) },
      qemuImgDirect: { cmd: 'qemu-img convert -n -O raw -t none IMAGE.qcow2 /dev/loopN', seconds: round(median(qemuDirect)), runs: qemuDirect.map((x) => round(x)), mbPerSec: mbps(median(qemuDirect)) },
      qemuImgDefaultNoFlush: { cmd: 'qemu-img convert -n -O raw IMAGE.qcow2 /dev/loopN', seconds: round(median(qemuUnsafe)), mbPerSec: mbps(median(qemuUnsafe)) },
      ratio: round(median(qemu) / median(ours)), ratioVsDirect: round(median(qemuDirect) / median(ours)), ratioVsNoFlush: round(median(qemuUnsafe) / median(ours)), goal: '>= 0.9',
    };

    // 2. network bytes
    const plain = JSON.parse(run('curl', ['-sf', '-o', '/dev/null', '-w', '{"bytes":%{size_download}}', '-H', `Authorization: Bearer ${token}`, server.url]));
    out.network = {
      writerBytes: last.networkBytes, writerRequests: last.requests, plainStreamBytes: plain.bytes,
      ratio: round(last.networkBytes / plain.bytes, 3), goal: '<= 0.3',
    };
    server.stop(); server = null;

    // 3. concurrent writers vs curl, on a smaller image (8 targets must fit in /dev/shm)
    const small = await prepare(dir, makeImage(dir, 'small', concVirtualGib * GIB, (concVirtualGib * GIB) / 4));
    server = await startServer(small.raw, token, small.rawSha256);
    const targets = Array.from({ length: concurrent }, (_, i) => path.join('/dev/shm', `${path.basename(dir)}-t${i}`));
    for (const t of targets) run('truncate', ['-s', String(small.virtualSizeBytes), t]);
    try {
      let cpu0 = cpuSeconds(server.child.pid);
      let t = await timedAsync(() => Promise.all(targets.map((device) => runChild([process.execPath, fileURLToPath(import.meta.url), '--writer',
        JSON.stringify({ url: server.url, token, extents: small.extents, virtualSizeBytes: small.virtualSizeBytes, rawSha256: small.rawSha256, dataSha256: small.dataSha256, device })]))));
      const writerCpu = cpuSeconds(server.child.pid) - cpu0;
      const results = t.r.map((s) => JSON.parse(s));
      const writerSeconds = t.seconds;
      cpu0 = cpuSeconds(server.child.pid);
      t = await timedAsync(() => Promise.all(targets.map(() => runChild(['curl', '-sf', '-o', '/dev/null', '-w', '%{size_download}', '-H', `Authorization: Bearer ${token}`, server.url]))));
      const curlCpu = cpuSeconds(server.child.pid) - cpu0;
      const curlBytes = t.r.reduce((s, b) => s + Number(b), 0);
      const deployed = concurrent * small.virtualSizeBytes;
      out.concurrent = {
        what: `${concurrent} writers (separate processes, sparse-file targets in /dev/shm) vs ${concurrent} curl -o /dev/null of the whole raw file; image ${small.virtualSizeBytes} bytes virtual, ${small.dataBytes} data`,
        writers: { perWriterSeconds: results.map((r) => round(r.seconds)), seconds: round(writerSeconds), deployedMBPerSec: round(deployed / 1e6 / writerSeconds, 1), networkMBPerSec: round(results.reduce((s, r) => s + r.networkBytes, 0) / 1e6 / writerSeconds, 1), serverCpuSeconds: round(writerCpu) },
        curl: { perCurlBytes: t.r.map(Number), seconds: round(t.seconds), deployedMBPerSec: round(deployed / 1e6 / t.seconds, 1), networkMBPerSec: round(curlBytes / 1e6 / t.seconds, 1), serverCpuSeconds: round(curlCpu) },
        timeRatio: round(writerSeconds / t.seconds), serverCpuRatio: round(writerCpu / Math.max(0.01, curlCpu)),
      };
    } finally {
      for (const t of targets) rmSync(t, { force: true });
    }
  } finally {
    server?.stop();
    for (const l of loops) { try { l.detach(); } catch { /* already detached */ } }
    rmSync(dir, { recursive: true, force: true });
  }
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
}

if (process.argv[2] === '--serve') await serve(process.argv[3], process.argv[4], process.argv[5]);
else if (process.argv[2] === '--writer') await writer(process.argv[3]);
else await main();
