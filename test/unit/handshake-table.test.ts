// The handshake budget both servers share (common/handshake-table.ts): oldest-first eviction,
// the raw socket found again under its TLSSocket, and the gauge kept in step.

import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type net from 'node:net';
import { test } from 'node:test';
import type tls from 'node:tls';
import { HandshakeTable } from '../../common/handshake-table';

class FakeSocket extends EventEmitter {
  destroyed = false;
  constructor(
    readonly remoteAddress: string,
    readonly remotePort: number,
  ) {
    super();
  }
  destroy(): void {
    this.destroyed = true;
    this.emit('close');
  }
}
const raw = (port: number) => new FakeSocket('127.0.0.1', port) as unknown as net.Socket;
/** A TLSSocket wrapping `s`: the same peer address and port, another object. */
const tlsOver = (s: net.Socket) =>
  new FakeSocket(s.remoteAddress!, s.remotePort!) as unknown as tls.TLSSocket;

test('admit, attach, release: the gauge follows and the TLS socket finds its raw socket until attached', () => {
  const sizes: number[] = [];
  const t = new HandshakeTable<string>((n) => sizes.push(n));
  const a = raw(1001);
  const b = raw(1002);
  t.admit(a, true);
  t.admit(b, false);
  assert.equal(t.size, 2);
  assert.equal(t.rawUnder(tlsOver(a)), a);
  assert.equal(t.rawUnder(tlsOver(b)), null, 'admitted without TLS: not looked up');
  t.attach(a, 'conn-a');
  assert.equal(t.rawUnder(tlsOver(a)), null, 'attached: no longer pending');
  assert.ok(t.has(a));
  t.release('conn-a');
  assert.ok(!t.has(a));
  t.release('conn-a'); // twice, or for a connection never in the budget: nothing
  t.release('never');
  assert.equal(t.size, 1);
  assert.deepEqual(sizes, [1, 2, 2, 1], 'one report per change, none for a release that changed nothing');
});

test('a socket that closes before any connection took it leaves the budget; an attached one stays', () => {
  const t = new HandshakeTable<string>(() => undefined);
  const a = raw(2001);
  const b = raw(2002);
  t.admit(a, true);
  t.admit(b, true);
  t.attach(b, 'conn-b');
  (a as unknown as FakeSocket).emit('close');
  (b as unknown as FakeSocket).emit('close');
  assert.ok(!t.has(a));
  assert.equal(t.rawUnder(tlsOver(a)), null);
  assert.ok(t.has(b), 'the connection releases it when it closes');
  assert.equal(t.size, 1);
});

test('evictOldest takes entries in the order they came, attached or not; destroyUnattached spares attached ones', () => {
  const t = new HandshakeTable<string>(() => undefined);
  const s = [raw(3001), raw(3002), raw(3003), raw(3004)];
  for (const x of s) t.admit(x, true);
  t.attach(s[0]!, 'conn-0'); // attaching does not move it to the back
  const first = t.evictOldest();
  assert.equal(first?.raw, s[0]);
  assert.equal(first?.conn, 'conn-0');
  assert.equal(t.evictOldest()?.raw, s[1]);
  assert.equal(t.rawUnder(tlsOver(s[1]!)), null, 'an evicted socket is not found again');
  t.attach(s[3]!, 'conn-3');
  t.destroyUnattached();
  assert.ok((s[2] as unknown as FakeSocket).destroyed);
  assert.ok(!(s[3] as unknown as FakeSocket).destroyed);
  assert.ok(!t.has(s[2]!), 'destroyed: closed, so forgotten');
  assert.equal(t.size, 1);
  t.release('conn-3');
  assert.equal(t.evictOldest(), null);
});
