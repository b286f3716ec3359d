// The handshake as pure functions: the enricher's answer to a Hello (a Welcome or a
// Reject with a reason code) and the agent's check of the Welcome. No sockets, no timers:
// the deadline and the frames belong to the connection owners.

import type * as Crypto from 'node:crypto';
import { checkInt } from '../kit/options';
import {
  DEFAULT_KEEPALIVE_INTERVAL_MS,
  DEFAULT_MAX_IN_FLIGHT_BATCHES,
  DNSTAP_CONTENT_TYPE,
  isValidId,
  MAX_AGENT_ID_LENGTH,
  MAX_AUTH_TOKEN_LENGTH,
  MAX_CONTROL_BODY,
  MAX_INCARNATION_LENGTH,
  MAX_LINK_FRAME,
  MIN_PROTOCOL_VERSION,
  PROTOCOL_VERSION,
  RejectCode,
} from './constants';
import type { Hello, Reject, Welcome } from './control';
import { invalidArgument, LinkErrorCode, LinkProtocolError } from './errors';

/** Smallest keepalive interval an agent accepts: anything shorter is a ping storm. */
export const MIN_KEEPALIVE_INTERVAL_MS = 1000;

export interface EnricherHandshakeSettings {
  enricherId: string;
  /** Shared secret; when set (non-empty) every Hello must carry it. */
  authToken?: Uint8Array | string | null;
  minVersion?: number;
  maxVersion?: number;
  contentTypes?: readonly string[];
  maxInFlightBatches?: number;
  keepaliveIntervalMs?: number;
  /** Largest frame length this enricher's decoder takes; 0 = MAX_LINK_FRAME. */
  maxFrameBytes?: number;
}

export type HelloVerdict = { ok: true; version: number; welcome: Welcome } | { ok: false; reject: Reject };

// node:crypto on first use (the enricher's token check): not part of the agent's start-up.
const crypto = (): typeof Crypto => require('node:crypto') as typeof Crypto;
const sha256 = (b: Uint8Array): Buffer => crypto().createHash('sha256').update(b).digest();
const toBytes = (t: Uint8Array | string): Uint8Array => (typeof t === 'string' ? Buffer.from(t, 'utf8') : t);

function checkUint(what: string, v: number, min: number, max: number): number {
  return checkInt(what, v, min, max, invalidArgument);
}

/** The enricher's side: settings checked once, then one answer() per connection. */
export class EnricherHandshake {
  readonly minVersion: number;
  readonly maxVersion: number;
  private tokenDigest: Buffer | null;
  private readonly contentTypes: readonly string[];
  private readonly welcomeTemplate: Omit<Welcome, 'protocolVersion'>;

  constructor(settings: EnricherHandshakeSettings) {
    if (!isValidId(settings.enricherId, MAX_AGENT_ID_LENGTH)) {
      throw invalidArgument(`enricherId must be 1..253 of [A-Za-z0-9._:-], got "${settings.enricherId}"`);
    }
    this.minVersion = checkUint(
      'minVersion',
      settings.minVersion ?? MIN_PROTOCOL_VERSION,
      1,
      PROTOCOL_VERSION,
    );
    this.maxVersion = checkUint(
      'maxVersion',
      settings.maxVersion ?? PROTOCOL_VERSION,
      this.minVersion,
      PROTOCOL_VERSION,
    );
    const token = settings.authToken == null ? null : toBytes(settings.authToken);
    if (token !== null && token.length > MAX_AUTH_TOKEN_LENGTH) {
      throw invalidArgument(`authToken longer than ${MAX_AUTH_TOKEN_LENGTH} bytes`);
    }
    // Only the digest is kept: comparing digests takes the same time whatever the lengths.
    this.tokenDigest = token !== null && token.length > 0 ? sha256(token) : null;
    this.contentTypes = settings.contentTypes ?? [DNSTAP_CONTENT_TYPE];
    this.welcomeTemplate = {
      enricherId: settings.enricherId,
      maxInFlightBatches: checkUint(
        'maxInFlightBatches',
        settings.maxInFlightBatches ?? DEFAULT_MAX_IN_FLIGHT_BATCHES,
        1,
        1_000_000,
      ),
      keepaliveIntervalMs: checkUint(
        'keepaliveIntervalMs',
        settings.keepaliveIntervalMs ?? DEFAULT_KEEPALIVE_INTERVAL_MS,
        0,
        0xffffffff,
      ),
      maxFrameBytes: checkUint('maxFrameBytes', settings.maxFrameBytes ?? 0, 0, MAX_LINK_FRAME),
    };
  }

  /**
   * A new shared token (the Secret was rotated): Hellos from now on must carry it. An empty or
   * null token turns the check off only if it was off from the start (a token is never dropped).
   */
  setAuthToken(token: Uint8Array | string): void {
    const t = toBytes(token);
    if (t.length === 0 || t.length > MAX_AUTH_TOKEN_LENGTH)
      throw invalidArgument(`authToken must be 1..${MAX_AUTH_TOKEN_LENGTH} bytes`);
    this.tokenDigest = sha256(t);
  }

  /** True when Hellos must carry the token. */
  get requiresToken(): boolean {
    return this.tokenDigest !== null;
  }

  /**
   * Welcome or Reject for a Hello. Checked in this order: version (so that any agent learns
   * the supported range), token, content type, identity.
   */
  answer(hello: Hello): HelloVerdict {
    const agentMax = hello.protocolVersion;
    const agentMin = hello.minProtocolVersion === 0 ? agentMax : hello.minProtocolVersion;
    const version = Math.min(agentMax, this.maxVersion);
    if (agentMax === 0 || agentMin > agentMax || version < Math.max(agentMin, this.minVersion)) {
      return this.refuse(
        RejectCode.BAD_VERSION,
        `agent speaks versions ${agentMin}..${agentMax}, this enricher ${this.minVersion}..${this.maxVersion}`,
      );
    }
    if (this.tokenDigest !== null) {
      const token = hello.authToken;
      if (token.length === 0) return this.refuse(RejectCode.BAD_AUTH, 'an auth token is required');
      if (!crypto().timingSafeEqual(sha256(token), this.tokenDigest)) {
        return this.refuse(RejectCode.BAD_AUTH, 'auth token does not match');
      }
    }
    if (!this.contentTypes.includes(hello.contentType)) {
      return this.refuse(
        RejectCode.BAD_CONTENT_TYPE,
        `content type "${hello.contentType}" not served (served: ${this.contentTypes.join(', ')})`,
      );
    }
    if (
      !isValidId(hello.agentId, MAX_AGENT_ID_LENGTH) ||
      !isValidId(hello.incarnation, MAX_INCARNATION_LENGTH)
    ) {
      return this.refuse(
        RejectCode.BAD_IDENTITY,
        'agent_id (1..253) and incarnation (1..64) must be made of [A-Za-z0-9._:-]',
      );
    }
    return { ok: true, version, welcome: { protocolVersion: version, ...this.welcomeTemplate } };
  }

  /** A Reject carrying the supported version range, for any code (overload, draining...). */
  reject(code: number, message: string, retryAfterMs = 0): Reject {
    return {
      code,
      message,
      supportedMinVersion: this.minVersion,
      supportedMaxVersion: this.maxVersion,
      retryAfterMs,
    };
  }

  private refuse(code: number, message: string): HelloVerdict {
    return { ok: false, reject: this.reject(code, message) };
  }
}

export interface AgentHandshakeSettings {
  agentId: string;
  incarnation: string;
  authToken?: Uint8Array | string | null;
  minVersion?: number;
  maxVersion?: number;
  contentType?: string;
  software?: string;
}

/** What the agent uses on a connection after a good Welcome; defaults resolved. */
export interface AgreedLink {
  version: number;
  enricherId: string;
  maxInFlightBatches: number;
  /** 0 = keepalive off. */
  keepaliveIntervalMs: number;
  maxFrameBytes: number;
}

/** The agent's Hello. Throws LINK_INVALID_ARGUMENT naming a bad setting. */
export function makeHello(s: AgentHandshakeSettings): Hello {
  if (!isValidId(s.agentId, MAX_AGENT_ID_LENGTH)) {
    throw invalidArgument(`agentId must be 1..253 of [A-Za-z0-9._:-], got "${s.agentId}"`);
  }
  if (!isValidId(s.incarnation, MAX_INCARNATION_LENGTH)) {
    throw invalidArgument(`incarnation must be 1..64 of [A-Za-z0-9._:-], got "${s.incarnation}"`);
  }
  const minVersion = checkUint('minVersion', s.minVersion ?? MIN_PROTOCOL_VERSION, 1, PROTOCOL_VERSION);
  const token = s.authToken == null ? Buffer.alloc(0) : Buffer.from(toBytes(s.authToken));
  if (token.length > MAX_AUTH_TOKEN_LENGTH)
    throw invalidArgument(`authToken longer than ${MAX_AUTH_TOKEN_LENGTH} bytes`);
  return {
    protocolVersion: checkUint('maxVersion', s.maxVersion ?? PROTOCOL_VERSION, minVersion, PROTOCOL_VERSION),
    minProtocolVersion: minVersion,
    agentId: s.agentId,
    incarnation: s.incarnation,
    contentType: s.contentType ?? DNSTAP_CONTENT_TYPE,
    authToken: token,
    software: s.software ?? 'snowtap',
    marksResends: true,
  };
}

function badWelcome(message: string): LinkProtocolError {
  return new LinkProtocolError(LinkErrorCode.BAD_WELCOME, message);
}

/**
 * Checks a Welcome against the Hello we sent; throws LINK_BAD_WELCOME when it is unusable.
 * `ownMaxInFlight` is the agent's own limit: the enricher's advice can only lower it.
 */
export function checkWelcome(
  welcome: Welcome,
  hello: Hello,
  ownMaxInFlight: number = DEFAULT_MAX_IN_FLIGHT_BATCHES,
): AgreedLink {
  const v = welcome.protocolVersion;
  if (v < hello.minProtocolVersion || v > hello.protocolVersion || v === 0) {
    throw badWelcome(
      `enricher chose version ${v}, we offered ${hello.minProtocolVersion}..${hello.protocolVersion}`,
    );
  }
  if (!isValidId(welcome.enricherId, MAX_AGENT_ID_LENGTH)) {
    throw badWelcome(`enricher_id "${welcome.enricherId}" is not 1..253 of [A-Za-z0-9._:-]`);
  }
  const k = welcome.keepaliveIntervalMs;
  if (k !== 0 && k < MIN_KEEPALIVE_INTERVAL_MS) {
    throw badWelcome(`keepalive_interval_ms ${k} is below ${MIN_KEEPALIVE_INTERVAL_MS}`);
  }
  const f = welcome.maxFrameBytes;
  if (f !== 0 && (f <= MAX_CONTROL_BODY || f > MAX_LINK_FRAME)) {
    throw badWelcome(`max_frame_bytes ${f} is outside (${MAX_CONTROL_BODY}, ${MAX_LINK_FRAME}]`);
  }
  const advice = welcome.maxInFlightBatches;
  return {
    version: v,
    enricherId: welcome.enricherId,
    maxInFlightBatches: advice > 0 ? Math.min(ownMaxInFlight, advice) : ownMaxInFlight,
    keepaliveIntervalMs: k,
    maxFrameBytes: f === 0 ? MAX_LINK_FRAME : f,
  };
}
