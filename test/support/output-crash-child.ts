// Child process for the crash-recovery test: appends rows, reports after each flush() how many
// rows are durable ("durable N" on stdout), then keeps appending without flushing until the
// parent kills it with SIGKILL.
// argv: outputDir enricherId compression(none|gzip|zstd) [outputUrl (az:// or s3://; credentials from env) [maxRows]]
import { ChunkWriter } from '../../enricher/output/chunk-writer';
import type { Compression } from '../../enricher/output/compression';
import { row } from './output-rows';

const [outputDir, enricherId, compression, outputUrl, maxRows] = process.argv.slice(2);
const FLUSHED_ROUNDS = 5;
const ROWS_PER_ROUND = 300;

async function main(): Promise<void> {
  const w = new ChunkWriter({
    outputDir: outputDir!,
    enricherId: enricherId!,
    compression: compression as Compression,
    blockBytes: 16 * 1024,
    maxRows: maxRows === undefined ? 1_000_000_000 : Number(maxRows),
    ...(outputUrl ? { outputUrl } : {}),
  });
  let i = 0;
  const burst = (n: number): boolean => {
    let below = true;
    for (const end = i + n; i < end; i++) {
      const r = row(i);
      below = w.appendRow(r, 0, r.length);
    }
    return below;
  };
  for (let round = 0; round < FLUSHED_ROUNDS; round++) {
    burst(ROWS_PER_ROUND);
    await w.flush();
    process.stdout.write(`durable ${i}\n`);
  }
  // Unflushed writing until killed: blocks keep being sealed and written mid-stream.
  for (;;) {
    if (!burst(97)) await w.whenDrained();
    await new Promise((resolve) => setImmediate(resolve));
  }
}

main().catch((err) => {
  process.stderr.write(`${String(err)}\n`);
  process.exit(1);
});
