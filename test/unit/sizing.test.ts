// The README's "Sizing" tables are the output of `npm run sizing` (loadtest/sizing.ts) for the
// default deployment, and the model's arithmetic is the one the README explains.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import {
  DEFAULT_INPUTS,
  DEFAULT_PARAMS,
  parseArgs,
  renderMarkdown,
  type SizingInputs,
  size,
} from '../../loadtest/sizing';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const inputs = JSON.parse(readFileSync(DEFAULT_INPUTS, 'utf8')) as SizingInputs;

test('the README sizing tables are exactly what npm run sizing prints', () => {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const m = /<!-- sizing:begin -->\n([\s\S]*?)\n<!-- sizing:end -->/.exec(readme);
  assert.ok(m, 'README.md has no sizing:begin/end block');
  assert.equal(m[1], renderMarkdown(inputs, size(inputs, DEFAULT_PARAMS)));
});

test('every measured input names the command that measured it', () => {
  const measured = [
    inputs.recordsPerCoreSec,
    inputs.enricherPeakRssMiB,
    inputs.agentCpuUsPerFrame,
    inputs.agentPeakRssMiB,
    inputs.agentBufferFullRssMiB,
    inputs.bytesPerRow.none,
    inputs.bytesPerRow.gzip,
    inputs.bytesPerRow.zstd,
    inputs.aggregateRowBytes,
  ];
  for (const m of measured) {
    assert.ok(m.value > 0);
    assert.match(m.command, /npm run|node dist|snowtap/);
  }
});

const fixed: SizingInputs = {
  ...inputs,
  recordsPerCoreSec: { value: 500_000, command: 'x' },
  bytesPerRow: {
    none: { value: 200, command: 'x' },
    gzip: { value: 20, command: 'x' },
    zstd: { value: 10, command: 'x' },
  },
};

test('pods: the rate over one pod capacity at the target utilisation, rounded up', () => {
  const r = size(fixed, { ...DEFAULT_PARAMS, rate: 3_000_000, podCpu: 1, targetUtilisation: 0.6 });
  assert.equal(r.podCapacity, 500_000);
  assert.equal(r.pods, 10);
  assert.equal(size(fixed, { ...DEFAULT_PARAMS, rate: 3_000_001, targetUtilisation: 0.6 }).pods, 11);
  assert.equal(
    size(fixed, { ...DEFAULT_PARAMS, rate: 3_000_000, podCpu: 2, targetUtilisation: 0.6 }).pods,
    5,
  );
});

test('Snowpipe credits follow uncompressed bytes, whatever the compression', () => {
  const p = { ...DEFAULT_PARAMS, rate: 1_000_000 };
  const a = size(fixed, { ...p, compression: 'none' });
  const b = size(fixed, { ...p, compression: 'zstd' });
  // 1 M rows/s × 200 B × 86,400 s = 17,280 GB a day.
  assert.equal(a.bytesPerDay.none, 17_280e9);
  assert.ok(Math.abs(a.snowpipeCreditsPerDay - 17_280 * 0.0037) < 1e-6);
  assert.equal(a.snowpipeCreditsPerDay, b.snowpipeCreditsPerDay);
  assert.equal(b.bytesPerDay.zstd, 864e9);
});

test('chunks close at the age bound unless the size bound comes first', () => {
  const slow = size(fixed, { ...DEFAULT_PARAMS, rate: 10_000, rotateMaxAgeSec: 60 });
  assert.equal(slow.chunkSeconds, 60);
  assert.equal(slow.filesPerMinute, slow.pods);
  const fast = size(fixed, { ...DEFAULT_PARAMS, rate: 3_000_000, rotateMaxBytes: 100e6 });
  // 300 k rows/s per pod × 200 B = 60 MB/s: 100 MB fill in 1.67 s.
  assert.ok(Math.abs(fast.chunkSeconds - 100e6 / 60e6) < 1e-9);
  const tenants = size(fixed, { ...DEFAULT_PARAMS, rate: 10_000, tenants: 5 });
  assert.equal(tenants.filesPerMinute, 5 * tenants.pods);
});

test('connections: agents × stripes per switch interval; conntrack adds TIME_WAIT', () => {
  const r = size(fixed, {
    ...DEFAULT_PARAMS,
    agents: 600,
    activeConnections: 2,
    switchIntervalSec: 30,
    timeWaitSec: 120,
  });
  assert.equal(r.newConnectionsPerSec, 40);
  assert.equal(r.conntrackEntries, 600 * 2 * 2 + 40 * 120);
});

test('object-store requests: one PUT per chunk on S3; on Azure staged blocks, a commit per chunk and heartbeats', () => {
  const r = size(fixed, { ...DEFAULT_PARAMS, rate: 10_000, rotateMaxAgeSec: 60, azureAckIntervalSec: 0.25 });
  assert.equal(r.s3PutsPerPodPerDay, 1440);
  // Light load: a block per ack flush (4/s), a commit per chunk, a heartbeat every 5 s.
  assert.equal(r.azureWritesPerPodPerDay, 4 * 86_400 + 1440 + 86_400 / 5);
  // Heavy load: blocks fill first (300 k rows/s × 200 B over 512 KiB blocks).
  const heavy = size(fixed, { ...DEFAULT_PARAMS, rate: 3_000_000, blockBytes: 512 * 1024 });
  assert.ok(Math.abs(heavy.azureBlocksPerSecond - (300_000 * 200) / (512 * 1024)) < 1e-9);
  assert.ok(Math.abs(r.s3UsdPerDay - ((1440 * r.pods) / 1000) * 0.005) < 1e-9);
});

test('hourly aggregates: one row per group per pod-hour', () => {
  const r = size(
    { ...fixed, aggregateRowBytes: { value: 5000, command: 'x' } },
    { ...DEFAULT_PARAMS, rate: 3_000_000, groups: 10 },
  );
  assert.equal(r.aggregateBytesPerDay, r.pods * 10 * 24 * 5000);
});

test('bad options are named', () => {
  assert.throws(() => parseArgs(['--rate', '-1']), /--rate: a positive number/);
  assert.throws(() => parseArgs(['--compression', 'lz4']), /--compression: none, gzip or zstd/);
  assert.throws(() => parseArgs(['--bogus']), /unknown option --bogus/);
  assert.equal(parseArgs(['--tenants', '20']).params.tenants, 20);
});
