// Reference decoders for tests: run the Go `dnstap` CLI (package
// golang-github-dnstap-golang-dnstap-cli 0.4.0, miekg/dns 1.1.50 inside) and
// `dnstap-ldns` on a Frame Streams file and turn their output into plain
// objects, so Snowtap's own decoder and CSV can be compared with code we did
// not write. Test-only; not on any hot path.
//
// How `dnstap -y -r FILE` prints (checked on every fixture and on hand-made
// frames; test/interop/peers-edge.test.ts pins these rules):
// - One YAML document per data frame, each ending in a `---` line, in file order.
//   `identity`/`version` are Go strconv.Quote'd: printable UTF-8 kept, `\"` `\\`
//   `\n` `\t` `\a` `\v`, other bytes `\xNN` (an invalid UTF-8 byte 0xff becomes
//   `\xff`, which YAML reads back as U+00FF: compare bytes via latin1 there).
// - Times: `query_time: !!timestamp 2026-11-22 03:07:55.175869437`, UTC, trailing
//   zeros of the fraction trimmed (`.0000001` = 100 ns), no fraction when nsec
//   is 0. A time is printed only when both sec and nsec are set.
// - Enums by name (`CLIENT_QUERY`, `INET6`, `DOT`, `DOH`), unknown values as the
//   number. Addresses via Go net.IP: 4 bytes dotted, 16 bytes RFC 5952 (`::1`)
//   EXCEPT IPv4-mapped (::ffff:a.b.c.d prints `a.b.c.d`), other lengths `?hex`.
//   Absent fields are not printed; `query_zone` is a quoted presentation name.
// - query_message/response_message: a literal block with dig-like text from
//   miekg/dns Msg.String():
//     ;; opcode: QUERY, status: NOERROR, id: 8103
//     ;; flags: qr aa rd; QUERY: 1, ANSWER: 1, AUTHORITY: 0, ADDITIONAL: 1
//     ;; OPT PSEUDOSECTION: / ; EDNS: version 0; flags: do; udp: 1232 / ; SUBNET: ...
//     ;; QUESTION SECTION:
//     ;www.tap.test.<TAB>IN<TAB><SPACE>A
//   UPDATE messages print the zone as the QUESTION SECTION (QUERY: 1), not
//   ZONE. `status` is the rcode including the EDNS extended bits (16 prints
//   BADSIG); an rcode or opcode without a mnemonic prints EMPTY (`status: ,`).
//   qtype: mnemonic, `TYPE65534` when unknown, `None` for 0; qclass: IN CH HS
//   NONE, else `CLASS255` (also for 255). A message with QDCOUNT 0 has no
//   question section. ANSWER SECTION lines: `name.<TAB>ttl<TAB>IN<TAB>TYPE<TAB>rdata`, rdata
//   in miekg's presentation (names absolute, case kept; TXT strings quoted with \" \\ \DDD).
// - Names: case kept as on the wire, absolute with a trailing dot, the root is
//   `.`; inside labels `.` space `'` `@` `;` `(` `)` `"` `\` are escaped as
//   `\` + char, bytes < 0x20 or > 0x7e as `\DDD` (decimal; UTF-8 per byte:
//   `\195\169`); `$` `,` `_` `-` `*` and other printable ASCII are left alone.
// - A DNS message miekg cannot unpack is not printed; a comment takes its place:
//   `  # query_message: parse failed: dns: overflow unpacking uint16` (an empty
//   message gives the same). Trailing bytes after a valid message are ignored.
// - A frame that is not valid protobuf stops the CLI: stderr gets
//   `proto.Unmarshal() failed, returning`, the exit status is still 0, and no
//   later frame is printed. A Dnstap of type MESSAGE without its `message`
//   field crashes it (Go nil-pointer panic, exit status 2). goDnstapFrames()
//   turns both into errors carrying the count of frames printed before.
import { execFile } from 'node:child_process';
import { parse as parseYaml, type ScalarTag } from 'yaml';

export interface GoDnsMessage {
  opcode: string; // '' when miekg has no mnemonic
  rcode: string; // `status`, extended rcode included; '' when no mnemonic
  id: number;
  flags: string[]; // e.g. ['qr', 'aa', 'rd']
  counts: [qd: number, an: number, ns: number, ar: number];
  qname?: string; // first question, exactly as printed (see the header)
  qclass?: string;
  qtype?: string;
  questions: number; // question lines printed
  edns?: string; // the `; EDNS: ...` line without `; EDNS: `
  ecs?: string; // the `; SUBNET: ...` value when present
  /** ANSWER (PREREQUISITE for UPDATE) section RRs in order: type mnemonic and RDATA text as printed. */
  answers: { type: string; rdata: string }[];
}

export interface GoFrame {
  index: number; // position among the file's data frames, from 0
  identity?: string;
  version?: string;
  type?: string; // dnstap Message.type, e.g. CLIENT_QUERY; undefined without a message
  socketFamily?: string;
  socketProtocol?: string;
  queryAddress?: string;
  responseAddress?: string;
  queryPort?: number;
  responsePort?: number;
  queryTime?: string; // as printed
  queryTimeSec?: number;
  queryTimeNsec?: number;
  responseTime?: string;
  responseTimeSec?: number;
  responseTimeNsec?: number;
  queryZone?: string;
  queryMessage?: GoDnsMessage;
  responseMessage?: GoDnsMessage;
  queryMessageError?: string; // `parse failed: ...` text when the CLI could not unpack it
  responseMessageError?: string;
  // The message the CSV contract takes its DNS columns from: the response for
  // *_RESPONSE types, else the query, else whichever is present.
  dnsFrom?: 'query' | 'response';
  dnsError?: string;
  qname?: string;
  qtype?: string;
  qclass?: string;
  rcode?: string;
  opcode?: string;
  id?: number;
}

export type ReferenceDecoderErrorCode = 'REF_TOOL_FAILED' | 'REF_TOOL_STOPPED' | 'REF_BAD_OUTPUT';

export class ReferenceDecoderError extends Error {
  override readonly name = 'ReferenceDecoderError';
  constructor(
    readonly code: ReferenceDecoderErrorCode,
    message: string,
    readonly partial?: number,
  ) {
    super(message);
  }
}

/** Go CLI binary: $DNSTAP_BIN or `dnstap` on PATH. */
export function goDnstapBin(): string {
  return process.env.DNSTAP_BIN || 'dnstap';
}

const MAX_OUTPUT = 512 * 1024 * 1024; // YAML of the bulk fixture is ~10 MB

function run(cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { maxBuffer: MAX_OUTPUT, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      if (err && typeof err.code !== 'number') {
        reject(new ReferenceDecoderError('REF_TOOL_FAILED', `${cmd}: ${err.message}`));
        return;
      }
      resolve({ code, stdout, stderr });
    });
  });
}

/** All frames of FILE as decoded by `dnstap -y -r FILE`. */
export async function goDnstapFrames(file: string): Promise<GoFrame[]> {
  const bin = goDnstapBin();
  const { code, stdout, stderr } = await run(bin, ['-y', '-r', file]);
  const frames = parseGoDnstapYaml(stdout);
  const complaints = stderr.split('\n').filter((l) => l !== '' && !l.includes('opened input file'));
  if (code !== 0) {
    const msg = `${bin} exited ${code} after ${frames.length} frames: ${complaints.slice(0, 2).join('; ')}`;
    throw new ReferenceDecoderError('REF_TOOL_FAILED', msg, frames.length);
  }
  if (complaints.length > 0) {
    const msg = `${bin} stopped after ${frames.length} frames: ${complaints.join('; ')}`;
    throw new ReferenceDecoderError('REF_TOOL_STOPPED', msg, frames.length);
  }
  return frames;
}

/** Data frames printed by `dnstap-ldns -r FILE` (one line each); throws if it fails midway. */
export async function dnstapLdnsCount(file: string): Promise<number> {
  const { code, stdout, stderr } = await run('dnstap-ldns', ['-r', file]);
  let n = 0;
  for (let i = stdout.indexOf('\n'); i !== -1; i = stdout.indexOf('\n', i + 1)) n++;
  if (code !== 0) {
    const msg = `dnstap-ldns exited ${code} after ${n} frames: ${stderr.trim()}`;
    throw new ReferenceDecoderError('REF_TOOL_FAILED', msg, n);
  }
  return n;
}

// Keep `!!timestamp` values as the printed text (the default would make a Date
// and lose the nanoseconds).
const timestampAsText: ScalarTag = { tag: 'tag:yaml.org,2002:timestamp', resolve: (s) => s };
const PARSE_FAILED = /^ {2}# (query|response)_message: (parse failed.*)$/gm;

/** Parse the complete `dnstap -y` output text (exported for tests). */
export function parseGoDnstapYaml(text: string): GoFrame[] {
  const docs = text.split(/^---\n/m);
  if (docs[docs.length - 1] !== '')
    throw new ReferenceDecoderError('REF_BAD_OUTPUT', 'output ends mid-frame');
  docs.pop();
  return docs.map((doc, index) => frameFromDoc(doc, index));
}

type Doc = Record<string, unknown> & { message?: Record<string, unknown> };

function frameFromDoc(doc: string, index: number): GoFrame {
  let top: Doc;
  try {
    top = parseYaml(doc, { customTags: [timestampAsText], strict: true, uniqueKeys: true }) as Doc;
  } catch (err) {
    throw new ReferenceDecoderError('REF_BAD_OUTPUT', `frame ${index}: ${(err as Error).message}`);
  }
  const f: GoFrame = { index, identity: str(top.identity), version: str(top.version) };
  const m = top.message;
  if (!m) return dropUndefined(f);
  f.type = str(m.type);
  f.socketFamily = str(m.socket_family);
  f.socketProtocol = str(m.socket_protocol);
  f.queryAddress = str(m.query_address);
  f.responseAddress = str(m.response_address);
  f.queryPort = num(m.query_port);
  f.responsePort = num(m.response_port);
  f.queryZone = str(m.query_zone);
  const qt = goTime(m.query_time, index);
  if (qt) [f.queryTime, f.queryTimeSec, f.queryTimeNsec] = qt;
  const rt = goTime(m.response_time, index);
  if (rt) [f.responseTime, f.responseTimeSec, f.responseTimeNsec] = rt;
  if (typeof m.query_message === 'string') f.queryMessage = parseDigText(m.query_message, index);
  if (typeof m.response_message === 'string') f.responseMessage = parseDigText(m.response_message, index);
  for (const hit of doc.matchAll(PARSE_FAILED)) {
    if (hit[1] === 'query') f.queryMessageError = hit[2];
    else f.responseMessageError = hit[2];
  }
  pickDnsMessage(f);
  return dropUndefined(f);
}

// Absent fields are left out (not set to undefined), so deepStrictEqual against
// an expected object only lists what the CLI printed.
function dropUndefined<T extends object>(o: T): T {
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] === undefined) delete o[k];
  return o;
}

function pickDnsMessage(f: GoFrame): void {
  const hasQuery = f.queryMessage !== undefined || f.queryMessageError !== undefined;
  const hasResponse = f.responseMessage !== undefined || f.responseMessageError !== undefined;
  const first = f.type?.endsWith('_RESPONSE') ? 'response' : 'query';
  const has = first === 'response' ? hasResponse : hasQuery;
  const hasOther = first === 'response' ? hasQuery : hasResponse;
  if (has) f.dnsFrom = first;
  else if (hasOther) f.dnsFrom = first === 'response' ? 'query' : 'response';
  if (!f.dnsFrom) return;
  const msg = f.dnsFrom === 'query' ? f.queryMessage : f.responseMessage;
  f.dnsError = f.dnsFrom === 'query' ? f.queryMessageError : f.responseMessageError;
  if (!msg) return;
  f.qname = msg.qname;
  f.qtype = msg.qtype;
  f.qclass = msg.qclass;
  f.rcode = msg.rcode;
  f.opcode = msg.opcode;
  f.id = msg.id;
}

const HEADER = /^;; opcode: ([^,]*), status: ([^,]*), id: (\d+)$/;
const FLAGS =
  /^;; flags:([^;]*); (?:QUERY|ZONE): (\d+), (?:ANSWER|PREREQ): (\d+), (?:AUTHORITY|UPDATE): (\d+), ADDITIONAL: (\d+)$/;

/** Parse miekg/dns Msg.String() text (exported for tests). */
export function parseDigText(text: string, index = 0): GoDnsMessage {
  const lines = text.split('\n');
  const h = HEADER.exec(lines[0] ?? '');
  const fl = FLAGS.exec(lines[1] ?? '');
  if (!h || !fl)
    throw new ReferenceDecoderError('REF_BAD_OUTPUT', `frame ${index}: unexpected header ${lines[0]}`);
  const msg: GoDnsMessage = {
    opcode: h[1],
    rcode: h[2],
    id: Number(h[3]),
    flags: fl[1].trim() === '' ? [] : fl[1].trim().split(' '),
    counts: [Number(fl[2]), Number(fl[3]), Number(fl[4]), Number(fl[5])],
    questions: 0,
    answers: [],
  };
  let section = '';
  for (const line of lines.slice(2)) {
    if (line.startsWith(';; ') && line.endsWith('SECTION:')) section = line;
    else if (line === '') section = '';
    else if (section === ';; OPT PSEUDOSECTION:' && line.startsWith('; EDNS: ')) msg.edns = line.slice(8);
    else if (section === ';; OPT PSEUDOSECTION:' && line.startsWith('; SUBNET: ')) msg.ecs = line.slice(10);
    else if (section === ';; ANSWER SECTION:' || section === ';; PREREQUISITE SECTION:') {
      // `NAME\tTTL\tCLASS\tTYPE\tRDATA`: tabs inside names are \009, so the first four split safely.
      const parts = line.split('\t');
      if (parts.length < 5)
        throw new ReferenceDecoderError('REF_BAD_OUTPUT', `frame ${index}: bad answer line ${line}`);
      msg.answers.push({ type: parts[3]!, rdata: parts.slice(4).join('\t') });
    } else if (section === ';; QUESTION SECTION:' || section === ';; ZONE SECTION:') {
      // `;NAME\tCLASS\t TYPE`: a tab inside a name is printed as \009, so tabs split safely.
      const parts = line.slice(1).split('\t');
      if (!line.startsWith(';') || parts.length !== 3) {
        throw new ReferenceDecoderError('REF_BAD_OUTPUT', `frame ${index}: bad question line ${line}`);
      }
      if (msg.questions++ === 0) [msg.qname, msg.qclass, msg.qtype] = [parts[0], parts[1], parts[2].trim()];
    }
  }
  return msg;
}

const TIME = /^(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?$/;

function goTime(v: unknown, index: number): [string, number, number] | undefined {
  if (v === undefined) return undefined;
  const t = TIME.exec(String(v));
  if (!t) throw new ReferenceDecoderError('REF_BAD_OUTPUT', `frame ${index}: bad timestamp ${String(v)}`);
  const ms = Date.UTC(+t[1], +t[2] - 1, +t[3], +t[4], +t[5], +t[6]);
  return [String(v), ms / 1000, t[7] ? Number(t[7].padEnd(9, '0')) : 0];
}

function str(v: unknown): string | undefined {
  return v === undefined || v === null ? undefined : String(v);
}

function num(v: unknown): number | undefined {
  return v === undefined || v === null ? undefined : Number(v);
}

/**
 * Labels of a name as the Go CLI prints it, unescaped to bytes (root = []), so a
 * comparison does not depend on which characters each side chooses to escape.
 */
export function goNameLabels(name: string): Buffer[] {
  if (name === '.') return [];
  const labels: Buffer[] = [];
  let cur: number[] = [];
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c === 0x5c) {
      const ddd = /^\d{3}/.exec(name.slice(i + 1, i + 4));
      if (ddd) {
        cur.push(Number(ddd[0]));
        i += 3;
      } else {
        cur.push(name.charCodeAt(++i));
      }
    } else if (c === 0x2e) {
      labels.push(Buffer.from(cur));
      cur = [];
    } else {
      cur.push(c);
    }
  }
  if (cur.length > 0) labels.push(Buffer.from(cur)); // a name printed without its trailing dot
  return labels;
}
