// The privacy scan's material (issue 9 step 1): dnstap frames with client addresses in every
// place a row can carry one (query_address of client-side types, IPv4-mapped IPv6 sockets,
// ECS, a policy CLIENT_IP value), and every textual form an address can take, to search for.
// Used by the enricher-side unit scan (test/unit/privacy-mask.test.ts), the agent's in-place
// masking (test/unit/agent-edge-mask.test.ts) and the pipeline scan (test/e2e/privacy-scan.test.ts).
import type { FrameSpec } from './chunk-builder';
import { ecsOption } from './dns-builder';

export const V4 = [192, 0, 2, 77];
export const V4_OTHER = [203, 0, 113, 201];
export const V6 = [
  0x20, 0x01, 0x0d, 0xb8, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x11, 0x22, 0x33, 0x44,
];
export const MAPPED = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...V4_OTHER];
export const RESOLVER = [10, 99, 98, 97]; // the resolver's own address (RESOLVER_* query_address): kept
export const SERVER = [10, 53, 53, 53];

/** Every textual form a 4- or 16-byte address can take in a CSV (and its raw hex). */
export function forms(a: readonly number[]): string[] {
  const hex = Buffer.from(a).toString('hex');
  if (a.length === 4) {
    const dotted = a.join('.');
    const h = (i: number) => ((a[i]! << 8) | a[i + 1]!).toString(16);
    return [dotted, `::ffff:${dotted}`, `::ffff:${h(0)}:${h(2)}`, `0:0:0:0:0:ffff:${h(0)}:${h(2)}`, hex];
  }
  const groups = Array.from({ length: 8 }, (_, i) => ((a[2 * i]! << 8) | a[2 * i + 1]!).toString(16));
  const expanded = groups.map((g) => g.padStart(4, '0')).join(':');
  const out = [groups.join(':'), expanded, hex];
  if (a.slice(0, 10).every((x) => x === 0) && a[10] === 0xff && a[11] === 0xff)
    out.push(...forms(a.slice(12)));
  // The low 64 bits alone would identify the host too.
  out.push(groups.slice(4).join(':'));
  return out;
}

export function frames(): FrameSpec[] {
  const out: FrameSpec[] = [];
  for (const type of [5, 6, 1, 2, 9, 11, 13]) {
    out.push({
      type,
      family: 1,
      queryAddress: Buffer.from(V4),
      responseAddress: Buffer.from(SERVER),
      qname: ['a'],
    });
    out.push({
      type,
      family: 2,
      queryAddress: Buffer.from(V6),
      responseAddress: Buffer.from(SERVER),
      qname: ['b'],
    });
    out.push({ type, family: 2, queryAddress: Buffer.from(MAPPED), qname: ['c'] });
  }
  for (const type of [3, 4, 7, 8])
    out.push({
      type,
      family: 1,
      queryAddress: Buffer.from(RESOLVER),
      responseAddress: Buffer.from(SERVER),
      qname: ['r'],
    });
  out.push({ type: 3, qname: ['e'], ecs: ecsOption(1, 32, 0, V4) });
  out.push({ type: 3, qname: ['f'], ecs: ecsOption(2, 128, 0, V6) });
  out.push({ type: 5, qname: ['g'], ecs: ecsOption(2, 128, 0, MAPPED) });
  out.push({ type: 6, qname: ['p'], policy: { type: 'RPZ', match: 2, value: Buffer.from(V4), action: 1 } });
  out.push({ type: 6, qname: ['p'], policy: { type: 'RPZ', match: 2, value: Buffer.from(V6), action: 1 } });
  out.push({
    type: 6,
    qname: ['p'],
    policy: { type: 'RPZ', match: 2, value: Buffer.from(V4.slice(0, 3)), action: 1 },
  });
  return out;
}
