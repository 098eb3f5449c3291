import { Command, Option } from 'commander';
import type { ServiceError } from '@grpc/grpc-js';
import { createReadStream, existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { once } from 'node:events';
import {
  ImageFormat, ImageServiceClient, type Image, type UploadImageRequest, type UploadImageResponse,
} from '../../proto/gen/osp/v1/image.js';
import { renderList, renderOne, UsageError, type Column } from '../output.js';
import { readInputFile, withOutput, type Ctx, type OutputOpts } from '../command-kit.js';
import type { Connection } from '../client.js';

const CHUNK_BYTES = 1 << 20;

const FORMAT_NAMES: Record<number, string> = { [ImageFormat.IMAGE_FORMAT_RAW]: 'raw', [ImageFormat.IMAGE_FORMAT_QCOW2]: 'qcow2' };

const IMAGE_COLUMNS: Column<Image>[] = [
  { key: 'name', label: 'Name', get: (i) => i.name },
  { key: 'format', label: 'Format', get: (i) => FORMAT_NAMES[i.format] ?? '' },
  { key: 'size_bytes', label: 'Size Bytes', get: (i) => i.sizeBytes },
  { key: 'virtual_size_bytes', label: 'Virtual Size Bytes', get: (i) => i.virtualSizeBytes },
  { key: 'allocated_bytes', label: 'Allocated Bytes', get: (i) => i.allocatedBytes },
  { key: 'sha256', label: 'SHA256', get: (i) => i.sha256 },
  { key: 'used_by', label: 'Used By', get: (i) => i.usedBy },
  { key: 'created_at', label: 'Created At', get: (i) => i.createdAt },
];

function showColumns(format: string): Column<Image>[] {
  return [
    ...IMAGE_COLUMNS,
    { key: 'sha512', label: 'SHA512', get: (i) => i.sha512 },
    { key: 'raw_sha256', label: 'Raw SHA256', get: (i) => i.rawSha256 },
    { key: 'data_sha256', label: 'Data SHA256', get: (i) => i.dataSha256 },
    {
      key: 'extents', label: 'Extents',
      get: (i) => (format === 'table' || format === 'value'
        ? i.extents.map((e) => `${e.startBytes}+${e.lengthBytes} ${e.data ? 'data' : 'zero'}`)
        : i.extents.map((e) => ({ start_bytes: e.startBytes, length_bytes: e.lengthBytes, data: e.data }))),
    },
    { key: 'manifest', label: 'Manifest', get: (i) => (i.manifestJson ? (format === 'table' ? i.manifestJson : JSON.parse(i.manifestJson)) : null) },
  ];
}

function mib(n: number): string {
  return `${(n / 1048576).toFixed(1)} MiB`;
}

/** A bar redrawn in place on a terminal; otherwise a plain line at every 10 %. */
function progress(total: number): { update(sent: number): void; done(): void } {
  const tty = process.stderr.isTTY === true;
  let lastStep = -1;
  const started = Date.now();
  return {
    update(sent) {
      const pct = total ? Math.floor((sent * 100) / total) : 100;
      const rate = sent / 1048576 / Math.max(0.001, (Date.now() - started) / 1000);
      if (tty) {
        const width = 30;
        const full = Math.round((pct / 100) * width);
        process.stderr.write(`\r[${'#'.repeat(full)}${'.'.repeat(width - full)}] ${String(pct).padStart(3)}% ${mib(sent)} of ${mib(total)} ${rate.toFixed(1)} MiB/s`);
        return;
      }
      const step = Math.floor(pct / 10);
      if (step === lastStep) return;
      lastStep = step;
      process.stderr.write(`uploaded ${pct}% (${sent} of ${total} bytes)\n`);
    },
    done() {
      if (tty) process.stderr.write('\n');
      process.stderr.write('upload sent; ospd is checking and converting the image\n');
    },
  };
}

async function upload(conn: Connection, file: string, header: { name: string; format: ImageFormat; manifestJson: string }): Promise<UploadImageResponse> {
  let sizeBytes: number;
  try {
    const st = await stat(file);
    if (!st.isFile()) throw new UsageError(`${file}: not a regular file`);
    sizeBytes = st.size;
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(`${file}: cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const client = conn.client(ImageServiceClient);
  let settle!: { resolve: (r: UploadImageResponse) => void; reject: (e: Error) => void };
  const answer = new Promise<UploadImageResponse>((resolve, reject) => (settle = { resolve, reject }));
  // No deadline: an upload takes as long as the file needs; ospd cuts off a stalled one.
  const call = client.uploadImage(conn.metadata(), (e: ServiceError | null, r?: UploadImageResponse) => (e ? settle.reject(conn.explain(e)) : settle.resolve(r!)));
  const bar = progress(sizeBytes);
  const send = async () => {
    const write = async (m: UploadImageRequest) => {
      if (!call.write(m)) await Promise.race([once(call, 'drain'), answer.then(() => undefined)]);
    };
    await write({ header: { ...header, sizeBytes } });
    let sent = 0;
    for await (const chunk of createReadStream(file, { highWaterMark: CHUNK_BYTES })) {
      await write({ chunk: chunk as Buffer });
      sent += (chunk as Buffer).length;
      bar.update(sent);
    }
    if (sizeBytes === 0) bar.update(0);
    call.end();
    bar.done();
  };
  // A refusal ends the call early (a format mismatch is seen in the first chunk): the answer wins.
  await Promise.race([send(), answer]);
  return answer;
}

/** `ospctl image …`: images machines are deployed with. */
export function imageCommand(ctx: Ctx): Command {
  const image = new Command('image').description('images in ospd: upload (qcow2 or raw), list, show, delete');
  const connect = async () => {
    const c = await ctx.connect();
    return { c, images: c.client(ImageServiceClient) };
  };

  // No -f/-c here: --format names the file's format, as the issue and Glance spell it; `image show` renders the result.
  image.command('upload').description('stream an image file to ospd; it checks the format, converts it once to sparse raw and records its digests')
    .argument('<name>', "image name: lowercase letters, digits and '-'")
    .argument('<file>', 'qcow2 or raw image file')
    .addOption(new Option('--format <format>', 'what the file is; ospd refuses a file whose header says otherwise (default: detected)').choices(['qcow2', 'raw']))
    .option('--manifest <file>', 'the osp-image manifest (default: FILE.manifest.json when it exists)')
    .action(async (name: string, file: string, o: { format?: string; manifest?: string }) => {
      const beside = `${file}.manifest.json`;
      const manifestFile = o.manifest ?? (existsSync(beside) ? beside : undefined);
      const manifestJson = manifestFile ? await readInputFile(manifestFile, '--manifest') : '';
      if (manifestJson) {
        try {
          JSON.parse(manifestJson);
        } catch (e) {
          throw new UsageError(`--manifest ${manifestFile}: not JSON: ${(e as Error).message}`);
        }
      }
      const claimed = o.format === 'qcow2' ? ImageFormat.IMAGE_FORMAT_QCOW2 : o.format === 'raw' ? ImageFormat.IMAGE_FORMAT_RAW : ImageFormat.IMAGE_FORMAT_UNSPECIFIED;
      const r = await upload(await ctx.connect(), file, { name, format: claimed, manifestJson });
      if (r.unchanged) process.stderr.write(`image ${name}: the same content is already stored; nothing changed\n`);
      ctx.out(renderOne(r.image!, IMAGE_COLUMNS, 'table', []));
    });

  withOutput(image.command('list').description('stored images'))
    .action(async (o: OutputOpts) => {
      const { c, images } = await connect();
      const all: Image[] = [];
      let marker = '';
      // Bounded: at most 1000 pages of 1000.
      for (let page = 0; page < 1000; page++) {
        const r = await c.call(images, images.listImages, { limit: 1000, marker });
        all.push(...r.images);
        if (!r.nextMarker) break;
        marker = r.nextMarker;
      }
      ctx.out(renderList(all, IMAGE_COLUMNS, o.format, o.column));
    });

  withOutput(image.command('show').description('one image: digests, sizes, extent map, manifest'))
    .argument('<name>', 'image name')
    .action(async (name: string, o: OutputOpts) => {
      const { c, images } = await connect();
      const r = await c.call(images, images.getImage, { image: name });
      ctx.out(renderOne(r.image!, showColumns(o.format), o.format, o.column));
    });

  image.command('delete').description('remove an image (refused while a node in a deploy state uses it)')
    .argument('<name>', 'image name')
    .action(async (name: string) => {
      const { c, images } = await connect();
      const r = await c.call(images, images.deleteImage, { image: name });
      ctx.out(`Deleted image ${r.image}\n`);
    });
  return image;
}
