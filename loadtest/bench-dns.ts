// Benchmark of the DNS message parser: parses/s over every DNS message in the fixture
// captures (repeated to ~2M parses), then the same for hostile input (random garbage and
// truncated messages, every one malformed) through both entry points: parseDnsMessage
// (throws DnsParseError) and tryParseDnsMessage (returns the code). Run:
// node dist/loadtest/bench-dns.js [totalParses]. Prints one JSON line per scenario.

import { DnsView, parseDnsMessage, qtypeBytes, tryParseDnsMessage, writeEcsText } from '../proto/dns';
import { allFixtureMessages } from '../test/support/fixture-messages';
import { prng } from './prng';

interface Sample {
  buf: Buffer;
  start: number;
  end: number;
}

const DEFAULT_TOTAL = 2_000_000;

/** Parses one message; false when it is malformed. */
type Parse = (buf: Buffer, start: number, end: number, out: DnsView) => boolean;

const viaThrow: Parse = (buf, start, end, out) => {
  try {
    parseDnsMessage(buf, start, end, out);
    return true;
  } catch {
    return false;
  }
};

const viaCode: Parse = (buf, start, end, out) => tryParseDnsMessage(buf, start, end, out) === null;

function run(name: string, samples: Sample[], total: number, parse: Parse): void {
  const view = new DnsView();
  const scratch = Buffer.alloc(64);
  const rounds = Math.max(1, Math.ceil(total / samples.length));
  // Warm-up so the timing measures optimized code.
  for (let i = 0; i < Math.min(samples.length, 50_000); i++) {
    const s = samples[i];
    parse(s.buf, s.start, s.end, view);
  }
  let errors = 0;
  let sink = 0;
  let bytes = 0;
  const t0 = process.hrtime.bigint();
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < samples.length; i++) {
      const s = samples[i];
      bytes += s.end - s.start;
      if (!parse(s.buf, s.start, s.end, view)) {
        errors++;
        continue;
      }
      // What the CSV writer does with the result, so the work cannot be optimized away.
      sink += view.nameLen + qtypeBytes(view.qtype).length;
      if (view.hasEcs) sink += writeEcsText(view, scratch, 0);
    }
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const parses = rounds * samples.length;
  console.log(
    JSON.stringify({
      scenario: name,
      messages: samples.length,
      parses,
      errors,
      seconds: Number(seconds.toFixed(3)),
      parsesPerSecond: Math.round(parses / seconds),
      nsPerParse: Number(((seconds * 1e9) / parses).toFixed(1)),
      megabytesPerSecond: Number((bytes / seconds / 1e6).toFixed(1)),
      sink: sink >= 0,
    }),
  );
}

function main(): void {
  const total = Number(process.argv[2] ?? DEFAULT_TOTAL);
  const messages = allFixtureMessages();
  const wire: Sample[] = messages.map((m) => ({ buf: m.wire, start: 0, end: m.wire.length }));
  const queries = wire.filter((_, i) => messages[i].field === 'query_message');
  const responses = wire.filter((_, i) => messages[i].field === 'response_message');
  // Messages embedded in a larger buffer, as the dnstap decoder hands them over.
  const embedded = messages.map((m) => {
    const buf = Buffer.concat([Buffer.alloc(37, 0xaa), m.wire, Buffer.alloc(11, 0xbb)]);
    return { buf, start: 37, end: 37 + m.wire.length };
  });
  const rnd = prng(7);
  const garbage: Sample[] = [];
  for (let i = 0; i < 20_000; i++) {
    const buf = Buffer.alloc(12 + Math.floor(rnd() * 200));
    for (let j = 0; j < buf.length; j++) buf[j] = Math.floor(rnd() * 256);
    garbage.push({ buf, start: 0, end: buf.length });
  }
  const truncated = wire
    .filter((s) => s.end > 14)
    .map((s) => ({ buf: s.buf, start: 0, end: 13 + Math.floor(rnd() * (s.end - 14)) }));

  run('fixtures-all', wire, total, viaThrow);
  run('fixtures-all-try', wire, total, viaCode);
  run('fixtures-queries', queries, total, viaThrow);
  run('fixtures-responses', responses, total, viaThrow);
  run('fixtures-embedded', embedded, total, viaThrow);
  run('hostile-random-garbage-throw', garbage, total / 4, viaThrow);
  run('hostile-random-garbage-try', garbage, total, viaCode);
  run('hostile-truncated-throw', truncated, total / 4, viaThrow);
  run('hostile-truncated-try', truncated, total, viaCode);
}

main();
