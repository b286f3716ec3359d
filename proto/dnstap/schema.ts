// The reference decoder: a protobufjs reflection Root loaded from the vendored upstream
// schema (dnstap.proto). Off the hot path only (tests, tools, debugging): it builds an
// object graph per frame, about an order of magnitude slower than decoder.ts (README.md).
// Not re-exported from index.ts, so loading the hot path never loads protobufjs.

import fs from 'node:fs';
import path from 'node:path';
import { loadSync, type Root, type Type } from 'protobufjs';

export const DNSTAP_PROTO_FILE = 'dnstap.proto';

/**
 * Where dnstap.proto is: next to the compiled module (the build copies it to
 * dist/proto/dnstap/), else in the source tree when running from dist/ without that copy.
 */
export function dnstapProtoPath(): string {
  const beside = path.join(__dirname, DNSTAP_PROTO_FILE);
  if (fs.existsSync(beside)) return beside;
  const source = path.resolve(__dirname, '../../../proto/dnstap', DNSTAP_PROTO_FILE);
  if (fs.existsSync(source)) return source;
  throw new Error(`dnstap schema not found: looked for ${beside} and ${source}`);
}

/** The schema, resolved (every type reference checked) at load. */
export const dnstapRoot: Root = loadSync(dnstapProtoPath());
dnstapRoot.resolveAll();

/** dnstap.Dnstap: `Dnstap.decode(buf)` is the reference decode of one payload. */
export const Dnstap: Type = dnstapRoot.lookupType('dnstap.Dnstap');
/** dnstap.Message, the nested payload. */
export const DnstapMessage: Type = dnstapRoot.lookupType('dnstap.Message');
