// Test-only access to the DNS messages inside the fixture captures, independent of the
// production Frame Streams and dnstap decoders: a minimal Frame Streams file walker and a
// protobufjs reflection schema holding just the dnstap fields we need (protobufjs skips
// the unknown ones). Reusable by any test or benchmark that needs real DNS messages.

import fs from 'node:fs';
import path from 'node:path';
import protobuf from 'protobufjs';

/** test/fixtures, from dist/test/support (or dist/loadtest) after compilation. */
export const FIXTURE_DIR = path.resolve(__dirname, '../../../test/fixtures');

const FSTRM_CONTROL_START = 2;
const FSTRM_CONTROL_STOP = 3;

/**
 * The data frames of a Frame Streams file (START, data..., STOP), as views into `file`.
 * Throws on anything that is not a well-formed file: the fixtures are known to be good.
 */
export function frameStreamDataFrames(file: Buffer): Buffer[] {
  const frames: Buffer[] = [];
  let pos = 0;
  let started = false;
  while (pos < file.length) {
    if (file.length - pos < 4) throw new Error(`truncated frame length at ${pos}`);
    const len = file.readUInt32BE(pos);
    pos += 4;
    if (len === 0) {
      // Control frame: escape, control length, control type, fields.
      const clen = file.readUInt32BE(pos);
      const ctype = file.readUInt32BE(pos + 4);
      pos += 4 + clen;
      if (ctype === FSTRM_CONTROL_START) started = true;
      else if (ctype === FSTRM_CONTROL_STOP) return frames;
      continue;
    }
    if (!started) throw new Error(`data frame before START at ${pos - 4}`);
    if (pos + len > file.length) throw new Error(`truncated data frame at ${pos - 4}`);
    frames.push(file.subarray(pos, pos + len));
    pos += len;
  }
  throw new Error('Frame Streams file ended without STOP');
}

// dnstap.proto, reduced to the fields these tests read.
const root = protobuf.Root.fromJSON({
  nested: {
    dnstap: {
      nested: {
        Dnstap: {
          fields: {
            message: { type: 'Message', id: 14 },
            type: { type: 'int32', id: 15 },
          },
        },
        Message: {
          fields: {
            type: { type: 'int32', id: 1 },
            query_message: { type: 'bytes', id: 10 },
            response_message: { type: 'bytes', id: 14 },
          },
        },
      },
    },
  },
});
const DnstapType = root.lookupType('dnstap.Dnstap');

interface DecodedDnstap {
  message?: { type?: number; query_message?: Uint8Array; response_message?: Uint8Array };
}

export interface FixtureMessage {
  /** Fixture file name, e.g. "bind-auth-unix.fstrm". */
  file: string;
  /** Index of the data frame within the file. */
  frame: number;
  /** Which dnstap field carried the message. */
  field: 'query_message' | 'response_message';
  /** dnstap Message.type (1..14). */
  messageType: number;
  /** The wire-format DNS message (a copy, safe to mutate). */
  wire: Buffer;
}

/** Every DNS message in one capture file. */
export function fixtureMessagesOf(filePath: string): FixtureMessage[] {
  const out: FixtureMessage[] = [];
  const file = path.basename(filePath);
  const frames = frameStreamDataFrames(fs.readFileSync(filePath));
  frames.forEach((frame, index) => {
    const d = DnstapType.decode(frame) as unknown as DecodedDnstap;
    const m = d.message;
    if (!m) return;
    const messageType = m.type ?? 0;
    for (const field of ['query_message', 'response_message'] as const) {
      const bytes = m[field];
      if (bytes && bytes.length > 0) {
        out.push({ file, frame: index, field, messageType, wire: Buffer.from(bytes) });
      }
    }
  });
  return out;
}

/** The fixture file paths (sorted, so test order is stable). */
export function fixtureFiles(dir: string = FIXTURE_DIR): string[] {
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.fstrm'))
    .sort()
    .map((f) => path.join(dir, f));
}

/** Every DNS message in every fixture. */
export function allFixtureMessages(dir: string = FIXTURE_DIR): FixtureMessage[] {
  return fixtureFiles(dir).flatMap((f) => fixtureMessagesOf(f));
}
