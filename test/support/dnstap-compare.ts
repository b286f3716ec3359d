// Test-only comparison of a DnstapView (decoder.ts) with the protobufjs reference decode
// (schema.ts) of the same payload, field by field, presence included.
//
// The one intended difference (README.md): protobufjs applies proto2 closed-enum rules and
// moves enum values it does not know to unknown fields, keeping an earlier value; we keep
// the last raw number. So when our enum value is unknown, the reference may hold anything.

import { ABSENT, type DnstapView } from '../../proto/dnstap/view';

type Ref = { [key: string]: unknown };

/** Largest known value of each enum in dnstap.proto. */
const ENUM_MAX = { dnstapType: 1, type: 14, socketFamily: 2, socketProtocol: 7, httpProtocol: 3 };

function has(o: Ref, key: string): boolean {
  return Object.hasOwn(o, key);
}

function asNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  // protobufjs returns uint64 as a Long when the `long` package is installed.
  return (v as { toNumber(): number }).toNumber();
}

/** Mismatches between `view` and the protobufjs object `ref`; empty when they agree. */
export function diffView(view: DnstapView, ref: Ref): string[] {
  const out: string[] = [];
  const bytes = (name: string, off: number, len: number, o: Ref, key: string): void => {
    if (off === ABSENT) {
      if (has(o, key)) out.push(`${name}: absent, reference has it`);
      return;
    }
    if (!has(o, key)) out.push(`${name}: present, reference lacks it`);
    else if (!view.buf.subarray(off, off + len).equals(o[key] as Buffer)) out.push(`${name}: bytes differ`);
  };
  const num = (name: string, ours: number, o: Ref, key: string, enumMax = 0): void => {
    if (ours === ABSENT) {
      if (has(o, key)) out.push(`${name}: absent, reference has ${String(o[key])}`);
      return;
    }
    if (enumMax > 0 && (ours < 1 || ours > enumMax)) return; // closed-enum difference
    if (!has(o, key)) out.push(`${name}: ${ours}, reference lacks it`);
    else if (asNumber(o[key]) !== ours) out.push(`${name}: ${ours} != reference ${String(o[key])}`);
  };

  bytes('identity', view.identityOff, view.identityLen, ref, 'identity');
  bytes('version', view.versionOff, view.versionLen, ref, 'version');
  bytes('extra', view.extraOff, view.extraLen, ref, 'extra');
  num('dnstapType', view.dnstapType, ref, 'type', ENUM_MAX.dnstapType);
  if (view.hasMessage !== has(ref, 'message')) out.push(`hasMessage: ${view.hasMessage} != reference`);
  const m = (has(ref, 'message') ? ref.message : {}) as Ref;
  num('type', view.type, m, 'type', ENUM_MAX.type);
  num('socketFamily', view.socketFamily, m, 'socketFamily', ENUM_MAX.socketFamily);
  num('socketProtocol', view.socketProtocol, m, 'socketProtocol', ENUM_MAX.socketProtocol);
  bytes('queryAddress', view.queryAddressOff, view.queryAddressLen, m, 'queryAddress');
  bytes('responseAddress', view.responseAddressOff, view.responseAddressLen, m, 'responseAddress');
  num('queryPort', view.queryPort, m, 'queryPort');
  num('responsePort', view.responsePort, m, 'responsePort');
  num('queryTimeSec', view.queryTimeSec, m, 'queryTimeSec');
  num('queryTimeNsec', view.queryTimeNsec, m, 'queryTimeNsec');
  num('responseTimeSec', view.responseTimeSec, m, 'responseTimeSec');
  num('responseTimeNsec', view.responseTimeNsec, m, 'responseTimeNsec');
  bytes('queryMessage', view.queryMessageOff, view.queryMessageLen, m, 'queryMessage');
  bytes('responseMessage', view.responseMessageOff, view.responseMessageLen, m, 'responseMessage');
  bytes('queryZone', view.queryZoneOff, view.queryZoneLen, m, 'queryZone');
  num('httpProtocol', view.httpProtocol, m, 'httpProtocol', ENUM_MAX.httpProtocol);
  return out;
}

/**
 * Every field of the view as plain data (byte fields as hex, offsets kept), for deep
 * equality between two decodes of the same bytes.
 */
export function snapshot(view: DnstapView): Record<string, number | string | boolean> {
  const out: Record<string, number | string | boolean> = {};
  const v = view as unknown as Record<string, unknown>;
  for (const key of Object.keys(v)) {
    if (key === 'buf') continue;
    const value = v[key] as number | boolean;
    out[key] = value;
    if (key.endsWith('Off') && value !== ABSENT) {
      const len = v[`${key.slice(0, -3)}Len`] as number;
      out[`${key.slice(0, -3)}Hex`] = view.buf.toString('hex', value as number, (value as number) + len);
    }
  }
  return out;
}
