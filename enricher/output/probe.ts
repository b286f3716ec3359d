// Is the output usable again after a failure? Creating a directory entry or checking access
// says little about a full or failing disk: write a probe file of one block, fdatasync it,
// remove it. The enricher only reopens its link once this works, so readiness does not flap
// on a disk with a few free kilobytes or a device that fails every write.
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { io } from './errors';
import { PARTIAL_DIR } from './layout';

const PROBE_FILE = '.write-probe';

/** Writes and syncs `bytes` under outputDir/_partial, then removes them; throws an OutputError. */
export async function probeOutput(outputDir: string, bytes: number): Promise<void> {
  const dir = path.join(outputDir, PARTIAL_DIR);
  const file = path.join(dir, PROBE_FILE);
  await io('mkdir', dir, fsp.mkdir(dir, { recursive: true }));
  const fh = await io('create', file, fsp.open(file, 'w'));
  try {
    const buf = Buffer.alloc(bytes, 0x0a);
    for (let off = 0; off < bytes; ) off += (await io('write', file, fh.write(buf, off))).bytesWritten;
    await io('fsync', file, fh.datasync());
  } finally {
    await fh.close().catch(() => undefined);
    await fsp.rm(file, { force: true }).catch(() => undefined);
  }
}
