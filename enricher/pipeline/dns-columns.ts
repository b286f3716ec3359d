// The columns appended by issue 9 step 4 (after `enricher_id`): header flags, opcode, EDNS
// UDP size and DO bit, the answers, the dnstap Policy fields and query_zone. Written straight
// into the row buffer like the other columns; the answers are decoded here, only when the
// column is written (proto/dns/answers.ts), never by the parser.
//
// Text from the producer that is not a DNS name (Policy.type, a Policy.value that is neither
// a name nor an address, a rule or zone that is not a valid wire-format name) is outside text:
// Snowtap text (output/text-escape.ts), cut at OUTSIDE_TEXT_MAX_BYTES and counted.

import {
  ANSWERS_TEXT_SLACK,
  AnswersWriter,
  Cursor,
  flagsTextBytes as flagsTextBytesExport,
  opcodeBytes as opcodeBytesExport,
  writeNameText as writeNameTextExport,
} from '../../proto/dns/index';
import {
  ABSENT as ABSENTExport,
  type DnstapView,
  POLICY_ACTION_NAMES,
  POLICY_MATCH_NAMES,
  PolicyMatch,
} from '../../proto/dnstap/index';
import { writeIpText as writeIpTextExport } from '../../proto/net/index';
import { quoteCsvFieldInPlace, writeCsvField, writeCsvQuotedEmpty } from '../output/csv';
import { escapeTextBytes } from '../output/text-escape';
import { encodeNames, WordTable, wordsOf, writeBytes, writeUint, writeWords } from './bytes';
import type { ClientMask } from './privacy';
import type { Pseudonymizer } from './pseudonym';
import type { DnsChoice } from './row-encoder';

// Hot-path imports as module constants (CommonJS reads index.ts re-exports through getters).
const ABSENT: number = ABSENTExport;
const flagsTextBytes = flagsTextBytesExport;
const opcodeBytes = opcodeBytesExport;
const writeNameText = writeNameTextExport;
const writeIpText = writeIpTextExport;

/** Outside text in the appended columns is cut here (a producer could send 1 MiB). */
export const OUTSIDE_TEXT_MAX_BYTES = 256;
/**
 * Upper bound of the bytes the appended columns take in a row: the answers (text, slack and
 * quoting), four names or outside texts of at most ~3 KiB each, and the short fields.
 */
export const DNS_COLUMNS_MAX_BYTES =
  2 * 1024 + ANSWERS_TEXT_SLACK + 4 * (OUTSIDE_TEXT_MAX_BYTES * 12 + 2) + 512;

/** Fields cut to their bound, by column (snowtap_enricher_fields_truncated_total). */
export class TruncatedCounters {
  identity = 0;
  answers = 0;
  dnstap_policy_type = 0;
  dnstap_policy_rule = 0;
  dnstap_policy_value = 0;
  query_zone = 0;
}

const COMMA = 44;
const TRUE = Buffer.from('true');
const FALSE = Buffer.from('false');
const QUOTED_EMPTY = Buffer.from('""');
const COMMA_BYTES = Buffer.from(',');
const TRUE_WORDS = wordsOf(TRUE);
const FALSE_WORDS = wordsOf(FALSE);
/**
 * "<flags>,<opcode>" by header bits 4-15 (QR, OPCODE, AA, TC, RD, RA, Z, AD, CD), the flags
 * `""` when none is set: both columns in one copy.
 */
const FLAGS_OPCODE_WORDS = new WordTable((k) => {
  const flags = flagsTextBytes(k << 4);
  const opcode = opcodeBytes((k >> 7) & 0xf);
  return Buffer.concat([flags.length === 0 ? QUOTED_EMPTY : flags, COMMA_BYTES, opcode]);
}, 4096);
const ACTIONS = encodeNames(POLICY_ACTION_NAMES);
const MATCHES = encodeNames(POLICY_MATCH_NAMES);
const nameCur = new Cursor();
const maskScratch = Buffer.alloc(16);

type TruncatedColumn = 'dnstap_policy_type' | 'dnstap_policy_rule' | 'dnstap_policy_value' | 'query_zone';

export class DnsColumnsWriter {
  readonly answers: AnswersWriter;

  constructor(
    readonly truncated: TruncatedCounters,
    answersMaxBytes?: number,
  ) {
    this.answers = new AnswersWriter(answersMaxBytes);
  }

  /** Writes ",flags,opcode,...,query_zone,client_key_id" (leading comma included) at b[p..]; returns the end. */
  write(
    v: DnstapView,
    dns: DnsChoice,
    mask: ClientMask | null,
    pseudo: Pseudonymizer | null,
    b: Buffer,
    p: number,
    dv: DataView,
  ): number {
    const d = dns.view;
    // flags, opcode: from the header; `""` when no flag is set (present, empty).
    b[p++] = COMMA;
    if (dns.headerOk) p = FLAGS_OPCODE_WORDS.write(b, dv, p, (d.flags >> 4) & 0xfff);
    else b[p++] = COMMA;
    // edns_udp_size, edns_do: only with an OPT RR.
    b[p++] = COMMA;
    if (d.hasOpt) p = writeUint(b, p, d.ednsUdpSize);
    b[p++] = COMMA;
    if (d.hasOpt) p = d.ednsDo ? writeWords(dv, p, TRUE_WORDS, 4) : writeWords(dv, p, FALSE_WORDS, 5);
    // answers: rendered now, into the row, then quoted in place if it needs it.
    b[p++] = COMMA;
    if (d.answersOff >= 0 && d.ancount > 0) {
      const answers = this.answers;
      const before = answers.truncated;
      const end = answers.write(v.buf, d, b, p, dv);
      if (answers.truncated !== before) this.truncated.answers++;
      // Addresses only (the usual answer): nothing to quote, no need to scan.
      p = answers.plain ? end : quoteCsvFieldInPlace(b, p, end);
    }
    // dnstap Policy: type, rule, action, match, value (rare: out of line).
    if (v.hasPolicy) p = this.policy(v, mask, pseudo, b, p);
    else {
      b[p++] = COMMA;
      b[p++] = COMMA;
      b[p++] = COMMA;
      b[p++] = COMMA;
      b[p++] = COMMA;
    }
    const fb = v.buf;
    // query_zone
    b[p++] = COMMA;
    if (v.queryZoneOff !== ABSENT)
      p = this.nameOrText(b, p, fb, v.queryZoneOff, v.queryZoneLen, 'query_zone');
    // client_key_id: which key made this row's pseudonyms.
    b[p++] = COMMA;
    if (pseudo !== null) p = writeBytes(b, p, pseudo.keyId);
    return p;
  }

  /** ",type,rule,action,match,value" of the dnstap Policy. */
  private policy(
    v: DnstapView,
    mask: ClientMask | null,
    pseudo: Pseudonymizer | null,
    b: Buffer,
    p: number,
  ): number {
    const fb = v.buf;
    b[p++] = COMMA;
    if (v.policyTypeOff !== ABSENT)
      p = this.outsideText(b, p, fb, v.policyTypeOff, v.policyTypeLen, 'dnstap_policy_type');
    b[p++] = COMMA;
    if (v.policyRuleOff !== ABSENT)
      p = this.nameOrText(b, p, fb, v.policyRuleOff, v.policyRuleLen, 'dnstap_policy_rule');
    b[p++] = COMMA;
    if (v.policyAction !== ABSENT)
      p =
        v.policyAction > 0 && v.policyAction < ACTIONS.length
          ? writeBytes(b, p, ACTIONS[v.policyAction]!)
          : writeUint(b, p, v.policyAction);
    b[p++] = COMMA;
    if (v.policyMatch !== ABSENT)
      p =
        v.policyMatch > 0 && v.policyMatch < MATCHES.length
          ? writeBytes(b, p, MATCHES[v.policyMatch]!)
          : writeUint(b, p, v.policyMatch);
    b[p++] = COMMA;
    if (v.policyValueOff !== ABSENT) p = this.policyValue(v, mask, pseudo, b, p);
    return p;
  }

  /** Policy.value by its match: an address for *_IP (masked like the client for CLIENT_IP), a name for *_NAME. */
  private policyValue(
    v: DnstapView,
    mask: ClientMask | null,
    pseudo: Pseudonymizer | null,
    b: Buffer,
    p: number,
  ): number {
    const fb = v.buf;
    const off = v.policyValueOff;
    const len = v.policyValueLen;
    const m = v.policyMatch;
    if (m === PolicyMatch.CLIENT_IP || m === PolicyMatch.RESPONSE_IP || m === PolicyMatch.NS_IP) {
      if (len === 4 || len === 16) {
        if (m === PolicyMatch.CLIENT_IP && (mask !== null || pseudo !== null)) {
          let src: Uint8Array = fb;
          let at = off;
          if (mask !== null) {
            mask.apply(fb, off, len, maskScratch);
            src = maskScratch;
            at = 0;
          }
          return pseudo !== null ? pseudo.write(src, at, len, b, p) : writeIpText(src, at, len, b, p);
        }
        return writeIpText(fb, off, len, b, p);
      }
      // Not an address: the bytes could still hold one; with masking on, leave nothing behind.
      if (m === PolicyMatch.CLIENT_IP && (mask !== null || pseudo !== null)) return p;
      return this.outsideText(b, p, fb, off, len, 'dnstap_policy_value');
    }
    if (m === PolicyMatch.QNAME || m === PolicyMatch.NS_NAME)
      return this.nameOrText(b, p, fb, off, len, 'dnstap_policy_value');
    return this.outsideText(b, p, fb, off, len, 'dnstap_policy_value');
  }

  /** A wire-format name filling buf[off, off+len) exactly (no compression), else outside text. */
  private nameOrText(
    b: Buffer,
    p: number,
    fb: Buffer,
    off: number,
    len: number,
    column: TruncatedColumn,
  ): number {
    nameCur.reset(fb, off, off + len);
    const end = writeNameText(nameCur, b, p);
    const whole = end >= 0 && nameCur.pos === off + len && nameCur.error === null;
    nameCur.release();
    if (whole) return quoteCsvFieldInPlace(b, p, end);
    return this.outsideText(b, p, fb, off, len, column);
  }

  private outsideText(
    b: Buffer,
    p: number,
    fb: Buffer,
    off: number,
    len: number,
    column: TruncatedColumn,
  ): number {
    if (len > OUTSIDE_TEXT_MAX_BYTES) {
      len = OUTSIDE_TEXT_MAX_BYTES;
      this.truncated[column]++;
    }
    if (len === 0) return writeCsvQuotedEmpty(b, p);
    return writeCsvField(b, p, escapeTextBytes(fb, off, off + len));
  }
}
