// Direct mode: each agent orders the ready pods by rendezvous (highest-random-weight)
// hashing on its own id. Every agent gets a different, stable permutation, so:
//  - agents that all see the same sorted list do not all dial the same first pod;
//  - when a pod is added, it comes first for about 1/N of the agents - its fair share of
//    the traffic moves to it at the next switch, and the other agents keep their order;
//  - when a pod goes, only the agents that had it first move, and they spread out.
// The link client then walks the list round-robin from the start at each switch.

import type { ReadyEndpoint } from './endpoints';

/** Returns a new array: `endpoints` in this agent's preference order. */
export function spreadOrder(endpoints: readonly ReadyEndpoint[], agentKey: string): ReadyEndpoint[] {
  const seed = hashString(agentKey, 0x811c9dc5);
  const weighted = endpoints.map((ep) => ({ ep, w: hashString(`${ep.address}|${ep.port}`, seed) }));
  // Ties (a 1 in 2^32 chance) fall back to the input order, which is sorted.
  weighted.sort((a, b) => b.w - a.w);
  return weighted.map((x) => x.ep);
}

/** FNV-1a over UTF-16 code units from `seed`, then a murmur3 finalizer so that close
 * inputs (10.0.0.1 / 10.0.0.2) get unrelated weights. Unsigned 32-bit. */
export function hashString(s: string, seed: number): number {
  let h = seed >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
