// Interoperability with libfstrm's own tools (Debian fstrm-bin): fstrm_dump reads our
// capture files, fstrm_capture accepts our bidirectional sender over a unix socket, and
// our receiver serves fstrm_replay. Skipped with a reason when the tools are absent,
// unless SNOWTAP_REQUIRE_INTEROP=1, which turns their absence into a failure.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, type TestContext, test } from 'node:test';
import { FrameDecoder } from '../../proto/framestream/decoder';
import { FramePacker } from '../../proto/framestream/encoder';
import { readFrameStreamFile } from '../../proto/framestream/file';
import { ReaderSession } from '../../proto/framestream/reader';
import { FrameFileWriter, WriterSession } from '../../proto/framestream/writer';
import { CT_DNSTAP } from '../support/fstrm-builder';
import { interopMissing } from '../support/interop';

const FIXTURES = path.resolve(__dirname, '../../../test/fixtures');
// Overridable so the skip/fail path itself can be exercised.
const BIN = process.env['SNOWTAP_FSTRM_BIN_DIR'] ?? '/usr/bin';
const dir = mkdtempSync(path.join(tmpdir(), 'fstrm-interop-'));
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** Returns the tool path, or null after skipping (or fails when interop is required). */
function tool(t: TestContext, name: string): string | null {
  const p = path.join(BIN, name);
  if (existsSync(p)) return p;
  interopMissing(t, `${p} not installed (apt-get install fstrm-bin)`);
  return null;
}

function run(cmd: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const payload = (i: number) => Buffer.from(`payload ${i} ${'p'.repeat(i % 50)}`);

test('fstrm_dump reads a file written by FrameFileWriter with the right frame count', {
  timeout: 20_000,
}, async (t) => {
  const dump = tool(t, 'fstrm_dump');
  if (!dump) return;
  const file = path.join(dir, 'ours.fstrm');
  const parts: Buffer[] = [];
  const writer = new FrameFileWriter((b) => parts.push(b), { capacity: 4096 });
  for (let i = 0; i < 2500; i++) writer.write(payload(i));
  writer.close();
  writeFileSync(file, Buffer.concat(parts));
  const { code, stderr } = await run(dump, [file]);
  assert.equal(code, 0, stderr.slice(0, 500));
  assert.equal(stderr.match(/^Data frame/gm)?.length, 2500);
  assert.match(stderr, /^FSTRM_CONTROL_START\.\nFSTRM_CONTROL_FIELD_CONTENT_TYPE \(22 bytes\)\./m);
  assert.match(stderr, /FSTRM_CONTROL_STOP\.\s*$/);
});

test('fstrm_capture accepts our bidirectional writer over a unix socket', { timeout: 20_000 }, async (t) => {
  const capture = tool(t, 'fstrm_capture');
  if (!capture) return;
  const sock = path.join(dir, 'capture.sock');
  const out = path.join(dir, 'captured.fstrm');
  const child = spawn(capture, ['-t', CT_DNSTAP, '-u', sock, '-w', out], { stdio: 'ignore' });
  children.push(child);
  const exited = new Promise((resolve) => child.on('exit', resolve));
  for (let i = 0; i < 100 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 50));

  const session = new WriterSession();
  const conn = net.connect(sock);
  const finished = new Promise<void>((resolve, reject) => {
    const decoder = new FrameDecoder({
      onData: () => reject(new Error('fstrm_capture sent a data frame')),
      onControl: (f) => {
        const reply = session.onControl(f);
        if (reply) {
          // ACCEPT arrived: START, then all data, then STOP, in packed writes.
          conn.write(reply);
          const packer = new FramePacker({ capacity: 8192 });
          for (let i = 0; i < 3000; i++) {
            if (!packer.append(payload(i))) {
              conn.write(packer.take());
              packer.append(payload(i));
            }
          }
          conn.write(packer.take());
          conn.write(session.stop());
        }
        if (session.state === 'finished') resolve();
      },
    });
    conn.on('data', (d) => decoder.write(d));
    conn.on('error', reject);
  });
  conn.on('connect', () => conn.write(session.open()));
  await finished;
  conn.end();
  child.kill('SIGTERM');
  await exited;

  const got: string[] = [];
  const result = await readFrameStreamFile(out, (b, s, e) => got.push(b.toString('latin1', s, e)));
  assert.equal(result.frames, 3000);
  assert.equal(got[2999], payload(2999).toString('latin1'));
});

test('fstrm_replay sends a fixture to our receiver: READY/ACCEPT, 628 frames, STOP/FINISH', {
  timeout: 20_000,
}, async (t) => {
  const replay = tool(t, 'fstrm_replay');
  if (!replay) return;
  const sock = path.join(dir, 'replay.sock');
  let frames = 0;
  let clean = false;
  const server = net.createServer((conn) => {
    const session = new ReaderSession();
    const decoder = new FrameDecoder({
      onData: () => {
        session.onData();
        frames++;
      },
      onControl: (f) => {
        const reply = session.onControl(f);
        if (reply) conn.write(reply);
      },
    });
    conn.on('data', (d) => decoder.write(d));
    conn.on('end', () => {
      decoder.end();
      clean = session.end() && session.bidirectional === true;
      conn.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(sock, resolve));
  t.after(() => server.close());
  const fixture = path.join(FIXTURES, 'unbound-local-unix.fstrm');
  const { code, stderr } = await run(replay, ['-t', CT_DNSTAP, '-u', sock, '-r', fixture]);
  assert.equal(code, 0, stderr);
  for (let i = 0; i < 100 && !clean; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(frames, 628);
  assert.ok(clean, 'stream ended with STOP after a READY handshake');
});
