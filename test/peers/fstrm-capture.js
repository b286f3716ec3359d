#!/usr/bin/env node
// Tiny Frame Streams receiver for making fixtures: accepts dnstap senders on a
// unix socket or loopback TCP port, bidirectional (READY/ACCEPT/START ... STOP/
// FINISH) AND unidirectional (START ... STOP; unbound `dnstap-bidirectional:
// no`), which fstrm_capture and the Go dnstap CLI both drop. Writes every data
// frame, unchanged and in arrival order, to one Frame Streams file
// (START with the content type, data frames, STOP) and closes it on SIGTERM/
// SIGINT. Self-contained on purpose (plain Node, no build, no project code), so
// it is an independent reference for Snowtap's own decoder.
//
//   node fstrm-capture.js unix:/abs/path|tcp:127.0.0.1:PORT OUTFILE
// stderr: one line per connection with its mode, and "data frames: N" at exit.
'use strict';
const fs = require('node:fs');
const net = require('node:net');

const CONTENT_TYPE = Buffer.from('protobuf:dnstap.Dnstap');
const ACCEPT = 1, START = 2, STOP = 3, READY = 4, FINISH = 5;
const FIELD_CONTENT_TYPE = 1;
const MAX_CONTROL = 512; // Frame Streams spec limit for control frames
const MAX_DATA = 16 << 20; // far above any dnstap frame; only guards against garbage

const [dest, outPath] = process.argv.slice(2);
if (!dest || !outPath || !/^(unix:\/|tcp:(127\.[0-9.]+|\[::1\]):\d+$)/.test(dest)) {
  process.stderr.write('usage: fstrm-capture.js unix:/abs/path|tcp:127.0.0.1:PORT OUTFILE (loopback only)\n');
  process.exit(2);
}

function control(type, withContentType) {
  const len = 4 + (withContentType ? 8 + CONTENT_TYPE.length : 0);
  const b = Buffer.alloc(8 + len);
  b.writeUInt32BE(0, 0); // escape: a control frame follows
  b.writeUInt32BE(len, 4);
  b.writeUInt32BE(type, 8);
  if (withContentType) {
    b.writeUInt32BE(FIELD_CONTENT_TYPE, 12);
    b.writeUInt32BE(CONTENT_TYPE.length, 16);
    CONTENT_TYPE.copy(b, 20);
  }
  return b;
}

// Content types offered in a READY/START control body (after its type word).
function contentTypes(body) {
  const types = [];
  for (let o = 4; o + 8 <= body.length; ) {
    const field = body.readUInt32BE(o);
    const len = body.readUInt32BE(o + 4);
    if (o + 8 + len > body.length) throw new Error('control field overruns the frame');
    if (field === FIELD_CONTENT_TYPE) types.push(body.subarray(o + 8, o + 8 + len));
    o += 8 + len;
  }
  return types;
}

const out = fs.openSync(outPath, 'w');
fs.writeSync(out, control(START, true));
let frames = 0;
let connections = 0;
const sockets = new Set();

function onConnection(sock) {
  const id = ++connections;
  sockets.add(sock);
  let buf = Buffer.alloc(0);
  let started = false;
  let mode = 'unidirectional';
  const fail = (why) => {
    process.stderr.write(`connection ${id}: ${why}, closing\n`);
    sock.destroy();
  };
  sock.on('data', (chunk) => {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    const pending = [];
    let o = 0;
    while (buf.length - o >= 4) {
      const len = buf.readUInt32BE(o);
      if (len > 0) {
        if (!started) return fail('data frame before START');
        if (len > MAX_DATA) return fail(`data frame of ${len} bytes`);
        if (buf.length - o < 4 + len) break;
        pending.push(buf.subarray(o, o + 4 + len)); // length prefix + payload, as in the file
        frames++;
        o += 4 + len;
        continue;
      }
      if (buf.length - o < 8) break;
      const clen = buf.readUInt32BE(o + 4);
      if (clen < 4 || clen > MAX_CONTROL) return fail(`control frame of ${clen} bytes`);
      if (buf.length - o < 8 + clen) break;
      const body = buf.subarray(o + 8, o + 8 + clen);
      o += 8 + clen;
      const type = body.readUInt32BE(0);
      if (type === READY || type === START) {
        const offered = contentTypes(body);
        if (offered.length && !offered.some((t) => t.equals(CONTENT_TYPE))) return fail('wrong content type');
      }
      if (type === READY) {
        mode = 'bidirectional';
        sock.write(control(ACCEPT, true));
      } else if (type === START) {
        started = true;
        process.stderr.write(`connection ${id}: ${mode}\n`);
      } else if (type === STOP) {
        if (mode === 'bidirectional') sock.write(control(FINISH, false));
        sock.end();
      } else {
        return fail(`unexpected control type ${type}`);
      }
    }
    if (pending.length) fs.writeSync(out, pending.length === 1 ? pending[0] : Buffer.concat(pending));
    buf = buf.subarray(o);
  });
  sock.on('error', (err) => process.stderr.write(`connection ${id}: ${err.message}\n`));
  sock.on('close', () => sockets.delete(sock));
}

const server = net.createServer(onConnection);
if (dest.startsWith('unix:')) {
  const path = dest.slice(5);
  fs.rmSync(path, { force: true });
  server.listen(path);
} else {
  const hp = dest.slice(4);
  const i = hp.lastIndexOf(':');
  server.listen(Number(hp.slice(i + 1)), hp.slice(0, i).replace(/^\[|\]$/g, ''));
}
server.on('error', (err) => {
  process.stderr.write(`listen ${dest}: ${err.message}\n`);
  process.exit(1);
});

function finish() {
  server.close();
  for (const s of sockets) s.destroy();
  fs.writeSync(out, control(STOP, false));
  fs.closeSync(out);
  if (dest.startsWith('unix:')) fs.rmSync(dest.slice(5), { force: true });
  process.stderr.write(`data frames: ${frames}\n`);
  process.exit(0);
}
process.on('SIGTERM', finish);
process.on('SIGINT', finish);
