// Keyed client pseudonyms (--pseudonymize-clients KEYFILE, issue 9 step 1): the client address
// columns (privacy.ts says which) hold HMAC-SHA-256(key, address) truncated to 128 bits, as 32
// lower-case hex digits, instead of the address. Stable for one key across restarts and pods,
// not reversible, not guessable without the key (the address space is small, so a plain hash
// could be inverted by enumeration; a keyed one cannot). An IPv4-mapped IPv6 address is hashed
// as its IPv4 address, so a dual-stack socket gives the client the same pseudonym. With
// masking on as well, the masked address is hashed (a pseudonym per subnet).
//
// `client_key_id` says which key made a row's pseudonyms: HMAC-SHA-256(key, KEY_ID_LABEL)
// truncated to 64 bits - a PRF output under the key, so it reveals nothing about the key.
//
// Key rotation without restart: Kubernetes updates a mounted Secret by writing a new
// timestamped directory and atomically swapping the `..data` symlink; the file path stays a
// symlink into `..data`, so a watch on the file sees nothing. The enricher re-reads the path
// (which follows the new symlinks) on a timer with the other secret files
// (common/secret-files.ts) and swaps the key with setKey() when the bytes differ. Pseudonyms are cached per address (bounded; cleared on a key change), because one
// HMAC costs ~1 µs and clients repeat.

import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { CodedError, type CodedErrorOptions } from '../../proto/kit/index';

/** Shortest key accepted: 128 bits. */
export const MIN_KEY_BYTES = 16;
export const PSEUDONYM_HEX_LENGTH = 32;
export const KEY_ID_HEX_LENGTH = 16;
export const KEY_ID_LABEL = 'snowtap client key id v1';
/** Cached pseudonyms per key; the cache is cleared when full. */
export const PSEUDONYM_CACHE_ENTRIES = 65_536;

export class KeyFileError extends CodedError<'SNOWTAP_KEY_FILE'> {
  override readonly name = 'KeyFileError';
  constructor(message: string, options?: CodedErrorOptions) {
    super('SNOWTAP_KEY_FILE', message, options);
  }
}

/** The key from the file's bytes: a trailing newline (echo, kubectl) is not part of it. */
export function keyFromBytes(bytes: Buffer, path: string): Buffer {
  let end = bytes.length;
  if (end > 0 && bytes[end - 1] === 0x0a) end--;
  if (end > 0 && bytes[end - 1] === 0x0d) end--;
  if (end < MIN_KEY_BYTES)
    throw new KeyFileError(
      `pseudonymize-clients ${path}: the key is ${end} bytes, at least ${MIN_KEY_BYTES} needed`,
    );
  return Buffer.from(bytes.subarray(0, end));
}

function isV4Mapped(a: Uint8Array, off: number): boolean {
  for (let i = 0; i < 10; i++) if (a[off + i] !== 0) return false;
  return a[off + 10] === 0xff && a[off + 11] === 0xff;
}

export class Pseudonymizer {
  private key: Buffer;
  private keyIdText: Buffer;
  private readonly cache4 = new Map<number, Buffer>();
  private readonly cache6 = new Map<string, Buffer>();
  /** Key changes picked up by reload(). */
  reloads = 0;

  constructor(
    key: Buffer,
    /** Re-read by reload(); null for a fixed key. */
    readonly path: string | null = null,
  ) {
    this.key = key;
    this.keyIdText = keyId(key);
  }

  static fromFile(path: string): Pseudonymizer {
    let bytes: Buffer;
    try {
      bytes = readFileSync(path);
    } catch (err) {
      throw new KeyFileError(`pseudonymize-clients ${path}: ${(err as Error).message}`);
    }
    return new Pseudonymizer(keyFromBytes(bytes, path), path);
  }

  /** The key id as CSV-safe ASCII (hex). */
  get keyId(): Buffer {
    return this.keyIdText;
  }

  /**
   * Re-reads the key file; swaps the key when it changed. Returns true on a change. A read
   * error or a too-short key keeps the current key and throws (the caller logs it).
   */
  reload(): boolean {
    if (this.path === null) return false;
    return this.setKey(keyFromBytes(readFileSync(this.path), this.path));
  }

  /** Puts `key` in use (a rotated key file, common/secret-files.ts); true when it differs. */
  setKey(key: Buffer): boolean {
    if (key.equals(this.key)) return false;
    this.key = key;
    this.keyIdText = keyId(key);
    this.cache4.clear();
    this.cache6.clear();
    this.reloads++;
    return true;
  }

  /** Writes the pseudonym of the address src[off, off+len) (4 or 16 bytes) at dst[p..]; returns the end. */
  write(src: Uint8Array, off: number, len: number, dst: Buffer, p: number): number {
    let text: Buffer | undefined;
    if (len === 4 || (len === 16 && isV4Mapped(src, off))) {
      const o = len === 4 ? off : off + 12;
      const k = ((src[o]! << 24) | (src[o + 1]! << 16) | (src[o + 2]! << 8) | src[o + 3]!) >>> 0;
      text = this.cache4.get(k);
      if (text === undefined) {
        text = this.hash(src, o, 4);
        if (this.cache4.size >= PSEUDONYM_CACHE_ENTRIES) this.cache4.clear();
        this.cache4.set(k, text);
      }
    } else if (len === 16) {
      const k = Buffer.from(src.buffer, src.byteOffset + off, 16).toString('latin1');
      text = this.cache6.get(k);
      if (text === undefined) {
        text = this.hash(src, off, 16);
        if (this.cache6.size >= PSEUDONYM_CACHE_ENTRIES) this.cache6.clear();
        this.cache6.set(k, text);
      }
    } else return p;
    for (let i = 0; i < PSEUDONYM_HEX_LENGTH; i++) dst[p + i] = text[i]!;
    return p + PSEUDONYM_HEX_LENGTH;
  }

  /** The pseudonym as a string (tests, tools). */
  pseudonym(address: Uint8Array): string {
    const tmp = Buffer.alloc(PSEUDONYM_HEX_LENGTH);
    return tmp.toString('latin1', 0, this.write(address, 0, address.length, tmp, 0));
  }

  private hash(src: Uint8Array, off: number, len: number): Buffer {
    const mac = createHmac('sha256', this.key)
      .update(src.subarray(off, off + len))
      .digest();
    return Buffer.from(mac.subarray(0, PSEUDONYM_HEX_LENGTH / 2).toString('hex'), 'latin1');
  }
}

function keyId(key: Buffer): Buffer {
  const mac = createHmac('sha256', key).update(KEY_ID_LABEL).digest();
  return Buffer.from(mac.subarray(0, KEY_ID_HEX_LENGTH / 2).toString('hex'), 'latin1');
}
