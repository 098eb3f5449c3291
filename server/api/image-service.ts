import type { ServerReadableStream } from '@grpc/grpc-js';
import { PassThrough } from 'node:stream';
import { OspError } from '../../common/errors.js';
import type { Logger } from '../../common/logging.js';
import {
  ImageFormat, ImageServiceService, type Image, type ImageServiceServer, type UploadImageHeader, type UploadImageRequest, type UploadImageResponse,
} from '../../proto/gen/osp/v1/image.js';
import type { ImageRecord, ImageStore } from '../images/image-store.js';
import type { DiskFormat } from '../images/qemu.js';
import { clientStream, unary, type Authenticator } from './call.js';

const FORMATS: Record<DiskFormat, ImageFormat> = { raw: ImageFormat.IMAGE_FORMAT_RAW, qcow2: ImageFormat.IMAGE_FORMAT_QCOW2 };

function fromProtoFormat(f: ImageFormat): DiskFormat | null {
  if (f === ImageFormat.IMAGE_FORMAT_RAW) return 'raw';
  if (f === ImageFormat.IMAGE_FORMAT_QCOW2) return 'qcow2';
  return null;
}

export function toProtoImage(r: ImageRecord, usedBy: string[], withExtents: boolean): Image {
  return {
    name: r.name, format: FORMATS[r.format], sizeBytes: r.sizeBytes, sha256: r.sha256, sha512: r.sha512,
    virtualSizeBytes: r.virtualSizeBytes, allocatedBytes: r.allocatedBytes, rawSha256: r.rawSha256, dataSha256: r.dataSha256,
    extents: withExtents ? r.extents.map((e) => ({ startBytes: e.start, lengthBytes: e.length, data: e.data })) : [],
    manifestJson: r.manifest ? JSON.stringify(r.manifest) : '', createdAt: r.createdAt, usedBy,
  };
}

/**
 * Splits an upload call into its header and a byte stream of its chunks,
 * with backpressure; a client that cancels or goes away ends the byte stream
 * with an error, so the store removes what it had written.
 */
function splitUpload(call: ServerReadableStream<UploadImageRequest, UploadImageResponse>, headerTimeoutMs: number): Promise<{ header: UploadImageHeader; body: PassThrough }> {
  return new Promise((resolve, reject) => {
    let body: PassThrough | undefined;
    const fail = (e: Error) => {
      clearTimeout(timer);
      if (body) body.destroy(e);
      else reject(e);
    };
    const timer = setTimeout(() => fail(new OspError('DEADLINE_EXCEEDED', `upload: no header received in ${headerTimeoutMs} ms`)), headerTimeoutMs);
    call.on('cancelled', () => fail(new OspError('CANCELLED', 'upload cancelled by the client')));
    call.on('error', (e: Error) => fail(e));
    call.on('end', () => {
      if (body) body.end();
      else fail(new OspError('IMAGE_INVALID', 'upload: the stream ended before its header', { field: 'header', expected: 'a header as the first message' }));
    });
    call.on('data', (m: UploadImageRequest) => {
      if (!body) {
        clearTimeout(timer);
        if (!m.header) return fail(new OspError('IMAGE_INVALID', 'header: the first message must be the header', { field: 'header', expected: 'a header as the first message' }));
        body = new PassThrough({ highWaterMark: 4 << 20 });
        body.on('drain', () => call.resume());
        // The reader sees a failure through its iterator; one that comes after the reader gave up has nobody to tell.
        body.on('error', () => undefined);
        resolve({ header: m.header, body });
        return;
      }
      if (body.destroyed) return;
      if (!m.chunk) return fail(new OspError('IMAGE_INVALID', 'chunk: only the first message may be a header', { field: 'chunk', expected: 'chunks after the header' }));
      if (!body.write(m.chunk)) call.pause();
    });
  });
}

/** ImageService: upload, show, list and delete images. */
export function imageService(images: ImageStore, auth: Authenticator, log: Logger) {
  const show = async (r: ImageRecord, withExtents: boolean) => toProtoImage(r, await images.usedBy(r.name), withExtents);
  const impl: ImageServiceServer = {
    uploadImage: clientStream(log, 'UploadImage', auth, async (call, ctx) => {
      const { header, body } = await splitUpload(call, 60_000);
      const r = await images.upload({ name: header.name, format: fromProtoFormat(header.format), sizeBytes: header.sizeBytes, manifestJson: header.manifestJson }, body);
      ctx.log.info({ image: r.image.name, unchanged: r.unchanged }, r.unchanged ? 'image upload: same content already stored' : 'image uploaded');
      return { image: await show(r.image, true), unchanged: r.unchanged };
    }),
    getImage: unary(log, 'GetImage', auth, async (req) => ({ image: await show(await images.get(req.image), true) })),
    listImages: unary(log, 'ListImages', auth, async (req) => {
      const page = await images.list(req.limit, req.marker);
      return { images: await Promise.all(page.images.map((i) => show(i, false))), nextMarker: page.nextMarker };
    }),
    deleteImage: unary(log, 'DeleteImage', auth, async (req, ctx) => {
      await images.delete(req.image);
      ctx.log.info({ image: req.image }, 'image deleted');
      return { image: req.image };
    }),
  };
  return { definition: ImageServiceService, impl };
}
