// ChunkSink's writeback hints (WRITEBACK_HINT_BYTES): a chunk written that far past its last
// sync gets store.writeback() beside the write loop; the commit waits for it; a failed hint
// fails the sink and nothing is published after it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type ChunkFile, ChunkSink, WRITEBACK_HINT_BYTES } from '../../enricher/output/chunk-sink';
import type { ChunkStore } from '../../enricher/output/store';

const BLOCK = 1024 * 1024;

class FakeStore implements ChunkStore {
  readonly location = 'fake';
  readonly syncCounts = true;
  readonly maxBlocks = Number.MAX_SAFE_INTEGER;
  readonly log: string[] = [];
  written = 0;
  /** Settles the writeback hint in flight. */
  finishHint: ((err?: Error) => void) | null = null;

  async append(_chunk: ChunkFile, block: Buffer): Promise<void> {
    this.written += block.length;
    this.log.push(`append ${this.written}`);
  }
  async sync(): Promise<void> {
    this.log.push('sync');
  }
  writeback(): Promise<void> {
    this.log.push(`writeback ${this.written}`);
    return new Promise((resolve, reject) => {
      this.finishHint = (err) => (err === undefined ? resolve() : reject(err));
    });
  }
  async publish(chunk: ChunkFile): Promise<string> {
    this.log.push('publish');
    return chunk.name;
  }
  abandon(): void {
    this.log.push('abandon');
  }
}

function chunkFile(): ChunkFile {
  return {
    name: 'c.csv',
    partialPath: '/nowhere/c.csv.partial',
    hourDir: '2026/12/07/07',
    openedAt: 0,
    rows: 0,
    bytes: 0,
    fileBytes: 0,
    fh: null,
    entrySynced: false,
    blocks: 0,
    hintedBytes: 0,
    writeback: null,
  };
}

function setup(): { sink: ChunkSink; store: FakeStore; chunk: ChunkFile } {
  const store = new FakeStore();
  const sink = new ChunkSink({
    outputDir: '/nowhere',
    compress: null,
    compressConcurrency: 1,
    blockBytes: BLOCK,
    store,
  });
  return { sink, store, chunk: chunkFile() };
}

async function writeBlocks(sink: ChunkSink, chunk: ChunkFile, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    sink.writeBlock(chunk, sink.takeBuffer(), BLOCK, 1);
    await sink.whenDrained();
  }
  await new Promise((resolve) => setImmediate(resolve));
}

test('a chunk gets one writeback hint per WRITEBACK_HINT_BYTES written, and its commit waits for it', async () => {
  const { sink, store, chunk } = setup();
  const blocks = WRITEBACK_HINT_BYTES / BLOCK;
  await writeBlocks(sink, chunk, blocks - 1);
  assert.deepEqual(
    store.log.filter((l) => l.startsWith('writeback')),
    [],
  );
  await writeBlocks(sink, chunk, 1);
  assert.deepEqual(
    store.log.filter((l) => l.startsWith('writeback')),
    [`writeback ${WRITEBACK_HINT_BYTES}`],
  );
  // While the hint runs, writes go on but no second hint starts.
  await writeBlocks(sink, chunk, blocks + 1);
  assert.equal(store.log.filter((l) => l.startsWith('writeback')).length, 1);
  assert.equal(store.written, (2 * blocks + 1) * BLOCK);
  const committed = sink.commit(chunk);
  await new Promise((resolve) => setImmediate(resolve));
  assert.ok(!store.log.includes('publish'), 'publish waits for the hint in flight');
  store.finishHint!();
  await committed;
  assert.equal(store.log.at(-1), 'publish');
  assert.equal(sink.chunksCommitted, 1);
});

test('a failed writeback hint fails the sink: the chunk is not published', async () => {
  const { sink, store, chunk } = setup();
  await writeBlocks(sink, chunk, WRITEBACK_HINT_BYTES / BLOCK);
  const committed = sink.commit(chunk);
  store.finishHint!(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
  await assert.rejects(committed, /EIO/);
  assert.ok(!store.log.includes('publish'));
  assert.ok(store.log.includes('abandon'));
  assert.notEqual(sink.failure, null);
  assert.throws(() => {
    if (sink.failure !== null) throw sink.failure;
  }, /EIO/);
});
