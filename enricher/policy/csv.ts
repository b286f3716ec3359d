// Load-time helpers for rule storage: RFC 4180 field escaping, a pool of distinct strings
// (categories, actions, tenants repeat across millions of entries), and an append-only
// byte store for pre-encoded CSV fields. Every enriched row carries a rule's fields, so
// they are escaped and UTF-8 encoded once at load time; the row writer copies the bytes.

/** RFC 4180: a field is quoted iff it holds a comma, a double quote, CR or LF. */
export function csvField(value: string): string {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0x2c || c === 0x22 || c === 0x0d || c === 0x0a) {
      return '"' + value.replace(/"/g, '""') + '"';
    }
  }
  return value;
}

/**
 * A fresh copy of `s`. V8's JSON.parse may return substrings that point into the whole
 * document text; keeping one of them would keep the entire (tens of MB) text alive.
 */
export function detachString(s: string): string {
  return Buffer.from(s, 'utf8').toString('utf8');
}

/** Distinct strings by index, each with its escaped CSV field encoded once. */
export class StringPool {
  private readonly index = new Map<string, number>();
  readonly strings: string[] = [];
  readonly fields: Buffer[] = [];

  add(s: string): number {
    const hit = this.index.get(s);
    if (hit !== undefined) return hit;
    const copy = detachString(s);
    this.index.set(copy, this.strings.length);
    this.strings.push(copy);
    this.fields.push(Buffer.from(csvField(copy), 'utf8'));
    return this.strings.length - 1;
  }
}

/** Append-only bytes; item i is bytes[start[i]..start[i+1]). */
export class ByteStore {
  private buf = Buffer.allocUnsafe(1 << 16);
  private used = 0;
  private starts = new Int32Array(1024);
  private count = 0;

  /** Appends the concatenation of `parts` as one item. */
  append(...parts: (Buffer | string)[]): void {
    for (const p of parts) {
      const max = typeof p === 'string' ? p.length * 3 : p.length;
      if (this.used + max > this.buf.length) {
        const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.used + max));
        this.buf.copy(grown, 0, 0, this.used);
        this.buf = grown;
      }
      this.used += typeof p === 'string' ? this.buf.write(p, this.used, 'utf8') : p.copy(this.buf, this.used);
    }
    if (this.count + 2 > this.starts.length) {
      const grown = new Int32Array(this.starts.length * 2);
      grown.set(this.starts);
      this.starts = grown;
    }
    this.starts[++this.count] = this.used;
  }

  /** Trimmed copies: [bytes, starts] with starts.length === items + 1. */
  finish(): [Buffer, Int32Array] {
    return [Buffer.from(this.buf.subarray(0, this.used)), this.starts.slice(0, this.count + 1)];
  }
}
