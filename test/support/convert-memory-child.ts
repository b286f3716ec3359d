// Child process for the bounded-memory convert test: converts one capture with the default
// output options (but the compression) and prints its peak RSS, so that the figure is the
// conversion's own.
// argv: capture outputDir compression
import { silentLogger } from '../../common/log';
import { convertFiles } from '../../enricher/convert';
import type { Compression } from '../../enricher/output/index';

const [capture, outputDir, compression] = process.argv.slice(2);

async function main(): Promise<void> {
  const s = await convertFiles({
    files: [capture!],
    output: { outputDir: outputDir!, enricherId: 'mem', compression: compression as Compression },
    policy: null,
    log: silentLogger(),
  });
  // resourceUsage().maxRSS is in KiB (getrusage).
  const maxRssBytes = process.resourceUsage().maxRSS * 1024;
  process.stdout.write(`${JSON.stringify({ frames: s.frames, rows: s.rows, maxRssBytes })}\n`);
}

main().catch((err) => {
  process.stderr.write(`${String(err)}\n`);
  process.exit(1);
});
