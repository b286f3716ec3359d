// Load-time helpers for rule storage: RFC 4180 field escaping, a pool of distinct strings
// (categories, actions, tenants repeat across millions of entries), and an append-only
// byte store for pre-encoded CSV fields. Every enriched row carries a rule's fields, so
// they are escaped and UTF-8 encoded once at load time; the row writer copies the bytes.

import { csvFieldNeedsQuoting } from '../output/csv';
import { escapeTextString } from '../output/text-escape';

/** RFC 4180: a field is quoted iff it holds a comma, a double quote, `\`, CR or LF (the output's rule). */
export function csvField(value: string): string {
  return csvFieldNeedsQuoting(value) ? '"' + value.replace(/"/g, '""') + '"' : value;
}

/**
 * A user's free text (category, action, tenant) as a CSV field: escaped as Snowtap text
 * (output/text-escape.ts: no control bytes, no lone surrogates, `\` doubled) and quoted when
 * needed. "" is written `""`, a present empty string, not an empty field (which loads as NULL).
 */
export function csvTextField(value: string): string {
  return value === '' ? '""' : csvField(escapeTextString(value));
}

/**
 * A fresh copy of `s`. V8's JSON.parse may return substrings that point into the whole
 * document text; keeping one of them would keep the entire (tens of MB) text alive.
 */
export function detachString(s: string): string {
  return Buffer.from(s, 'utf8').toString('utf8');
}

/** Distinct strings by index, each with its escaped CSV field prepared once. */
export class StringPool {
  private readonly index = new Map<string, number>();
  readonly strings: string[] = [];
  /** csvTextField(strings[i]) */
  readonly fieldTexts: string[] = [];
  /** csvTextField(strings[i]) as UTF-8 */
  readonly fields: Buffer[] = [];

  add(s: string): number {
    const hit = this.index.get(s);
    if (hit !== undefined) return hit;
    const copy = detachString(s);
    // Escaped from the original: detachString() would turn a lone surrogate into U+FFFD.
    const field = detachString(csvTextField(s));
    this.index.set(copy, this.strings.length);
    this.strings.push(copy);
    this.fieldTexts.push(field);
    this.fields.push(Buffer.from(field, 'utf8'));
    return this.strings.length - 1;
  }
}

/** Append-only UTF-8 strings; item i is bytes[start[i]..start[i+1]). */
export class ByteStore {
  private buf = Buffer.allocUnsafe(1 << 16);
  private used = 0;
  private starts = new Int32Array(1024);
  private count = 0;

  append(text: string): void {
    // Three bytes per UTF-16 unit bounds the UTF-8 length.
    if (this.used + text.length * 3 > this.buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.used + text.length * 3));
      this.buf.copy(grown, 0, 0, this.used);
      this.buf = grown;
    }
    this.used += this.buf.write(text, this.used, 'utf8');
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
