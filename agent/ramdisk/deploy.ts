import path from 'node:path';
import type { Logger } from '../../common/logging.js';
import type { DeployCommand } from '../../proto/gen/osp/v1/ramdisk.js';
import { writeImage } from '../provision/writer.js';
import { writeConfigDrive } from '../provision/config-drive-partition.js';

const MB = 1e6;
// Progress reports are events in ospd's store: one per 5 % is enough to draw a bar.
const REPORT_STEP_PERCENT = 5;

/**
 * The ramdisk's deploy command: the image streamed to the disk (checked
 * against raw_sha256 as it is written), then the config drive as a new last
 * partition. With --root (tests) `/dev/x` is the file `<root>/dev/x`.
 */
export async function runDeploy(d: DeployCommand, root: string, log: Logger, progress: (percent: number, message: string) => void): Promise<string> {
  const device = root === '/' ? d.device : path.join(root, d.device);
  let last = -REPORT_STEP_PERCENT;
  const r = await writeImage({
    url: d.imageUrl, token: d.token, virtualSizeBytes: d.virtualSizeBytes, rawSha256: d.rawSha256, dataSha256: d.dataSha256 || undefined, device,
    extents: d.extents.map((e) => ({ start: e.startBytes, length: e.lengthBytes, data: e.data })),
    onProgress: (p) => {
      // The config drive follows; 99 is the most the image alone may claim.
      const pct = Math.min(99, Math.floor(p.percent));
      if (pct < last + REPORT_STEP_PERCENT) return;
      last = pct;
      progress(pct, `writing image to ${d.device}: ${(p.doneBytes / MB).toFixed(0)} of ${(p.totalBytes / MB).toFixed(0)} MB, ${p.mbPerSec.toFixed(1)} MB/s`);
    },
  });
  log.info({ device: d.device, dataBytes: r.dataBytes, zeroedBytes: r.zeroedBytes, networkBytes: r.networkBytes, durationMs: r.durationMs }, 'image written and verified');
  const part = await writeConfigDrive({ device, imageBytes: d.virtualSizeBytes, driveBytes: Buffer.from(d.configDrive) });
  return `image written to ${d.device} (sha256 ${r.sha256}, ${(r.networkBytes / MB).toFixed(1)} MB fetched); config drive on partition ${part.partitionNumber} (${part.table})`;
}
