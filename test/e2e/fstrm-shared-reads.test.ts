// Plain dnstap sockets read into one shared buffer (common/shared-reads.ts): several producers
// at once, frames larger than the shared buffer and frames cut at every read boundary arrive
// byte-exact and in order per connection, and the listener's connection count returns to zero so close() completes.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { FrameStreamServer } from '../../common/framestream-server';
import { silentLogger } from '../../common/log';
import { SHARED_READ_BYTES, sharedReadStats } from '../../common/shared-reads';
import {
  RecordingSink,
  RunRecordingSink,
  type Target,
  TestProducer,
  waitFor,
} from '../support/fstrm-server-helpers';

const dir = mkdtempSync(path.join(tmpdir(), 'fstrm-shared-reads-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Frame i of producer p: its own bytes, sizes from 1 byte to past the shared buffer. */
function frameOf(p: number, i: number): Buffer {
  const size = i % 50 === 49 ? SHARED_READ_BYTES + 1000 + i : 1 + ((i * 7919) % 3000);
  const b = Buffer.alloc(size, (p * 31 + i) & 0xff);
  if (size >= 4) b.writeUInt32BE(i, 0);
  return b;
}

for (const [transport, runs] of [
  ['unix', false],
  ['tcp', false],
  ['unix', true],
] as const) {
  test(`${transport}${runs ? ', a sink taking runs (onFrames)' : ''}: 4 producers at once through the shared read buffer, byte-exact, and close() completes`, async () => {
    const sink = runs ? new RunRecordingSink() : new RecordingSink();
    const unixPath = path.join(dir, `${transport}-${runs}.sock`);
    const server = new FrameStreamServer({
      ...(transport === 'unix' ? { unixPath } : { tcp: { host: '127.0.0.1', port: 0 } }),
      sink,
      log: silentLogger(),
      maxDataFrameSize: 1 << 20,
    });
    const where = await server.listen();
    const target: Target = transport === 'unix' ? unixPath : { host: '127.0.0.1', port: where.tcpPort! };
    const adopted = sharedReadStats.adopted;
    const reads = sharedReadStats.reads;
    const producers = await Promise.all([0, 1, 2, 3].map(() => TestProducer.open(target, true)));
    const N = 400;
    // Odd packer capacities: writes (and so reads) cut frames at many different offsets.
    await Promise.all(
      producers.map((pr, p) =>
        pr.send(
          Array.from({ length: N }, (_, i) => frameOf(p, i)),
          7001 + p * 1013,
        ),
      ),
    );
    await Promise.all(producers.map((pr) => pr.stop()));
    assert.equal(sharedReadStats.adopted - adopted, 4, 'every accepted socket read into the shared buffer');
    assert.equal(sharedReadStats.ordinary, 0);
    // Counted once per read (snowtap_agent_input_reads_total): at least one per connection.
    assert.ok(sharedReadStats.reads - reads >= 4, `${sharedReadStats.reads - reads} reads`);
    await waitFor(() => server.stats.connectionsOpen === 0, 'connections closed');
    // Most frames came in runs; those cut by a read boundary one by one.
    if (sink instanceof RunRecordingSink) assert.ok(sink.runs > 20, `${sink.runs} runs`);
    const conns = [...new Set(sink.frames.map((f) => f.conn))];
    assert.equal(conns.length, 4);
    for (const conn of conns) {
      const got = sink.frames.filter((f) => f.conn === conn).map((f) => f.payload);
      assert.equal(got.length, N);
      const p = [0, 1, 2, 3].find((q) => frameOf(q, 0).equals(got[0]!));
      assert.notEqual(p, undefined, 'first frame is one producer’s');
      for (const [i, b] of got.entries()) assert.ok(b.equals(frameOf(p!, i)), `conn ${conn} frame ${i}`);
    }
    // server.close() waits for the listener's connection count (kept by the adopted sockets).
    const closing = server.close(0);
    const t = setTimeout(() => assert.fail('close() did not complete'), 5000);
    await closing;
    clearTimeout(t);
  });
}
