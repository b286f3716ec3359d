// Seeded random mutations of the real fixture messages (bit flips, truncations, insertions,
// deletions, pointer and count rewrites, label-type bytes). Properties:
//   1. parseDnsMessage returns or throws DnsParseError, nothing else; tryParseDnsMessage
//      returns the same code without throwing;
//   2. a successful parse leaves a self-consistent view;
//   3. when dns-packet also decodes the whole message, header and question agree.
// Intentional differences (we reject, dns-packet accepts), counted but not failures:
// pointers into the header, OPT/ECS validation (RFC 6891/7871), RDATA that overruns its
// RDLENGTH or the message (dns-packet reads past RDLENGTH), names longer than 255 octets in
// skipped records, and counts the message cannot satisfy. dns-packet also rejects messages
// we accept (it decodes RDATA we skip).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import dnsPacket from 'dns-packet';
import { prng, randInt } from '../../loadtest/prng';
import {
  DnsParseError,
  DnsView,
  NAME_BUF_SIZE,
  nameToString,
  parseDnsMessage,
  qclassName,
  qtypeName,
  tryParseDnsMessage,
} from '../../proto/dns';
import { allFixtureMessages } from '../support/fixture-messages';

// The edit loop's share; `npm run fuzz` runs 1,000,000 DNS cases with coverage (README Fuzzing).
const MUTATIONS = 15_000;
const SEED = 0x5eed;

/** An integer in [0, n) from the shared seeded PRNG. */
function intsFrom(seed: number): (n: number) => number {
  const rand = prng(seed);
  return (n) => randInt(rand, n);
}

type Rand = (n: number) => number;

function mutate(src: Buffer, rand: Rand): Buffer {
  let b = Buffer.from(src);
  const rounds = 1 + rand(3);
  for (let r = 0; r < rounds && b.length > 0; r++) {
    const at = rand(b.length);
    switch (rand(8)) {
      case 0: // bit flips
        for (let i = rand(4); i >= 0; i--) b[rand(b.length)] ^= 1 << rand(8);
        break;
      case 1: // truncation
        b = b.subarray(0, rand(b.length));
        break;
      case 2: // insertion
        b = Buffer.concat([
          b.subarray(0, at),
          Buffer.from(Array.from({ length: 1 + rand(3) }, () => rand(256))),
          b.subarray(at),
        ]);
        break;
      case 3: // deletion
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + rand(3))]);
        break;
      case 4: {
        // pointer rewrite: self, forward, into the header, or anywhere
        const ptrs = [...b.keys()].filter((i) => i >= 12 && (b[i] & 0xc0) === 0xc0 && i + 1 < b.length);
        const p = ptrs.length > 0 ? ptrs[rand(ptrs.length)] : Math.max(12, at);
        if (p + 1 >= b.length) break;
        const target = [p, p + 2 + rand(8), rand(12), rand(b.length), rand(0x4000)][rand(5)];
        b[p] = 0xc0 | ((target >> 8) & 0x3f);
        b[p + 1] = target & 0xff;
        break;
      }
      case 5: // a header count
        if (b.length >= 12) b.writeUInt16BE([0, 1, 2, rand(65536)][rand(4)], 4 + 2 * rand(4));
        break;
      case 6: // a label length or label type byte
        b[at] = [0, 1, 63, 0x40, 0x80, 0xc0, rand(64)][rand(7)];
        break;
      default: // a random byte
        b[at] = rand(256);
    }
  }
  return b;
}

/** dns-packet names fewer types and classes than we do: compare numbers for its unknowns. */
function sameMnemonic(ours: number, oursName: string, theirs: string): boolean {
  return theirs.startsWith('UNKNOWN_') ? Number(theirs.slice(8)) === ours : theirs === oursName;
}

test(`${MUTATIONS} mutated fixture messages: typed errors only, and agreement with dns-packet`, () => {
  const rand = intsFrom(SEED);
  const seeds = allFixtureMessages().map((m) => m.wire);
  const view = new DnsView();
  const codes = new Map<string, number>();
  let ours = 0;
  let both = 0;
  let onlyPacket = 0;
  for (let i = 0; i < MUTATIONS; i++) {
    const msg = mutate(seeds[rand(seeds.length)], rand);
    let thrown: unknown = null;
    try {
      parseDnsMessage(msg, 0, msg.length, view);
    } catch (e) {
      thrown = e;
    }
    if (thrown !== null && !(thrown instanceof DnsParseError)) {
      assert.fail(`mutation ${i} (${msg.toString('hex')}) threw ${String(thrown)}`);
    }
    const code = tryParseDnsMessage(msg, 0, msg.length, view);
    assert.equal(code, thrown === null ? null : (thrown as DnsParseError).code, `mutation ${i}`);
    if (code !== null) codes.set(code, (codes.get(code) ?? 0) + 1);

    let packet: ReturnType<typeof dnsPacket.decode> | null = null;
    try {
      packet = dnsPacket.decode(msg);
    } catch {
      packet = null;
    }
    if (code !== null) {
      if (packet) onlyPacket++;
      continue;
    }
    ours++;
    assert.ok(view.nameLen <= NAME_BUF_SIZE && view.labelCount <= 127);
    for (let l = 1; l < view.labelCount; l++) assert.ok(view.labelStarts[l] > view.labelStarts[l - 1]);
    assert.ok(!view.hasEcs || view.hasOpt);
    assert.equal(view.size, msg.length);
    if (!packet) continue;
    both++;
    const where = `mutation ${i}: ${msg.toString('hex')}`;
    assert.equal(view.id, packet.id, where);
    assert.equal(view.isResponse, packet.type === 'response', where);
    assert.equal(view.opcode, (packet.flags! >> 11) & 0xf, where);
    assert.equal(view.ancount, packet.answers!.length, where);
    assert.equal(view.hasQuestion, packet.questions!.length > 0, where);
    if (view.hasQuestion) {
      const q = packet.questions![0];
      assert.ok(sameMnemonic(view.qtype, qtypeName(view.qtype), q.type as string), where);
      assert.ok(sameMnemonic(view.qclass, qclassName(view.qclass), q.class as string), where);
      const text = nameToString(view);
      if (!text.includes('\\') && /^[A-Za-z0-9_*.-]+$/.test(q.name))
        assert.equal(text, q.name.toLowerCase(), where);
    }
  }
  assert.ok(ours > 2_000 && both > 2_000, `parsed ${ours}, both parsed ${both}`);
  for (const c of [
    'DNS_TRUNCATED_HEADER',
    'DNS_TRUNCATED',
    'DNS_BAD_POINTER',
    'DNS_BAD_LABEL_TYPE',
    'DNS_BAD_OPT',
  ]) {
    assert.ok((codes.get(c) ?? 0) > 0, `no ${c} in ${JSON.stringify([...codes])}`);
  }
  console.log(
    `# fuzz: ok ${ours}, both ok ${both}, only dns-packet ok ${onlyPacket}, errors ${JSON.stringify(Object.fromEntries(codes))}`,
  );
});
