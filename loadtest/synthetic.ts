// Synthetic, realistic dnstap traffic for the demo and the load generator, and the sample
// policy that matches it. A resolver's view: clients in a few tenant networks (IPv4 and IPv6)
// asking for popular names, CDN names, random subdomains, a little malware/ads traffic, with
// a realistic mix of qtypes, rcodes, ECS and latencies. Each call to next() yields one frame:
// CLIENT_QUERY and CLIENT_RESPONSE alternate, the response carrying both times.
import { DnstapEncoder, type DnstapFields } from '../proto/dnstap/encoder';
import { MessageType } from '../proto/dnstap/view';
import { buildQuery, buildResponse, type SyntheticAnswer } from './dns-wire';
import { prng } from './prng';

const POPULAR = [
  'www.google.com',
  'google.com',
  'www.youtube.com',
  'i.ytimg.com',
  'www.facebook.com',
  'graph.facebook.com',
  'www.netflix.com',
  'login.microsoftonline.com',
  'outlook.office365.com',
  'www.apple.com',
  'api.github.com',
  'github.com',
  'www.amazon.com',
  'www.wikipedia.org',
  'en.wikipedia.org',
  'time.cloudflare.com',
  'update.example.com',
  'mail.example.org',
  'intranet.corp.example',
  'vpn.corp.example',
];
const CDN = ['cdn.example.net', 'static.example.net', 'edge.example-cdn.com'];
const ADS = ['ads.tracker.example', 'pixel.adnet.example', 'beacon.metrics.example'];
const MALWARE = ['c2.badactor.example', 'dga.malware.example', 'phish.login-verify.example'];
const QTYPES: [number, number][] = [
  [1, 0.55],
  [28, 0.25],
  [65, 0.08],
  [5, 0.02],
  [15, 0.02],
  [16, 0.03],
  [12, 0.03],
  [33, 0.01],
  [6, 0.01],
];

export interface Tenant {
  cidr: string;
  tenant: string;
  family: 1 | 2;
  base: number[];
}
const TENANTS: Tenant[] = [
  { cidr: '10.1.0.0/16', tenant: 'corp-hq', family: 1, base: [10, 1] },
  { cidr: '10.2.0.0/16', tenant: 'branch-east', family: 1, base: [10, 2] },
  { cidr: '192.168.0.0/16', tenant: 'guest-wifi', family: 1, base: [192, 168] },
  { cidr: '2001:db8:100::/48', tenant: 'corp-v6', family: 2, base: [0x20, 0x01, 0x0d, 0xb8, 0x01, 0x00] },
];

/** The policy document that goes with this traffic (README "Output: CSV chunks", policy document format). */
export function samplePolicy(): object {
  return {
    version: 'sample-1',
    domains: [
      ...ADS.map((d) => ({
        suffix: d.split('.').slice(-2).join('.'),
        category: 'advertising',
        action: 'log',
      })),
      ...MALWARE.map((d) => ({
        suffix: d.split('.').slice(-2).join('.'),
        category: 'malware',
        action: 'block',
      })),
      { suffix: 'facebook.com', category: 'social', action: 'log' },
      { suffix: 'corp.example', category: 'internal', action: 'allow' },
      { suffix: 'example.net', category: 'cdn', action: 'allow' },
      { suffix: 'google.com', category: 'search', action: 'allow' },
    ],
    networks: TENANTS.map((t) => ({ cidr: t.cidr, tenant: t.tenant })),
  };
}

interface Scenario {
  family: 1 | 2;
  protocol: number;
  client: Buffer;
  server: Buffer;
  query: Buffer;
  response: Buffer;
}

export interface SyntheticOptions {
  seed?: number;
  identity?: string;
  /** Distinct pre-built query/response pairs to cycle through. */
  scenarios?: number;
  /** Time source in ms (tests inject a fixed clock). */
  now?: () => number;
}

export class SyntheticTraffic {
  private readonly rnd: () => number;
  private readonly pool: Scenario[] = [];
  private readonly enc = new DnstapEncoder();
  private readonly f: DnstapFields;
  private readonly now: () => number;
  private pending: Scenario | null = null;
  private qSec = 0;
  private qNsec = 0;
  /** Frames produced so far. */
  count = 0;

  constructor(opts: SyntheticOptions = {}) {
    this.rnd = prng(opts.seed ?? 1);
    this.now = opts.now ?? Date.now;
    const identity = Buffer.from(opts.identity ?? 'demo-resolver-1');
    this.f = { type: MessageType.CLIENT_QUERY, identity, version: Buffer.from('snowtap synthetic') };
    const n = opts.scenarios ?? 4096;
    for (let i = 0; i < n; i++) this.pool.push(this.scenario(i));
  }

  private pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.rnd() * items.length)]!;
  }

  private scenario(i: number): Scenario {
    const r = this.rnd();
    let name: string;
    if (r < 0.55) name = this.pick(POPULAR);
    else if (r < 0.75) name = `${Math.floor(this.rnd() * 1e6).toString(36)}.${this.pick(CDN)}`;
    else if (r < 0.9) name = `q${i}-${Math.floor(this.rnd() * 1e9).toString(36)}.w.example.org`;
    else if (r < 0.97) name = this.pick(ADS);
    else name = this.pick(MALWARE);
    let qtype = 1;
    let acc = 0;
    const t = this.rnd();
    for (const [type, p] of QTYPES)
      if (t < (acc += p)) {
        qtype = type;
        break;
      }
    const tenant = this.pick(TENANTS);
    const client = Buffer.alloc(tenant.family === 1 ? 4 : 16);
    tenant.base.forEach((b, k) => {
      client[k] = b;
    });
    for (let k = tenant.base.length; k < client.length; k++) client[k] = Math.floor(this.rnd() * 256);
    const server =
      tenant.family === 1
        ? Buffer.from([10, 0, 0, 53])
        : Buffer.from('20010db8000000000000000000000053', 'hex');
    const id = Math.floor(this.rnd() * 65536);
    const ecs =
      this.rnd() < 0.1 && tenant.family === 1
        ? { family: 1 as const, source: 24, address: client }
        : undefined;
    const rc = this.rnd();
    const rcode =
      name.startsWith('q') && name.endsWith('w.example.org') ? 3 : rc < 0.97 ? 0 : rc < 0.99 ? 2 : 5;
    const answers: SyntheticAnswer[] = [];
    if (rcode === 0 && (qtype === 1 || qtype === 28)) {
      const count = 1 + Math.floor(this.rnd() * 3);
      for (let k = 0; k < count; k++) {
        const data = Buffer.alloc(qtype === 1 ? 4 : 16);
        for (let b = 0; b < data.length; b++) data[b] = Math.floor(this.rnd() * 256);
        answers.push({ type: qtype, ttl: 60 + Math.floor(this.rnd() * 3600), data });
      }
    }
    const q = { name, qtype };
    return {
      family: tenant.family,
      protocol: this.rnd() < 0.93 ? 1 : this.rnd() < 0.7 ? 2 : 3,
      client,
      server,
      query: buildQuery(q, { id, edns: true, ecs }),
      response: buildResponse(q, { id, edns: true, ecs, rcode, answers }),
    };
  }

  /** Writes the next dnstap frame payload into buf at off; returns its length. */
  next(buf: Buffer, off: number): number {
    const f = this.f;
    if (this.pending === null) {
      const s = this.pick(this.pool);
      const ms = this.now();
      this.qSec = Math.floor(ms / 1000);
      this.qNsec = (ms % 1000) * 1e6 + Math.floor(this.rnd() * 1e6);
      f.type = MessageType.CLIENT_QUERY;
      f.socketFamily = s.family;
      f.socketProtocol = s.protocol;
      f.queryAddress = s.client;
      f.responseAddress = s.server;
      f.queryPort = 1024 + Math.floor(this.rnd() * 64000);
      f.responsePort = 53;
      f.queryTimeSec = this.qSec;
      f.queryTimeNsec = this.qNsec;
      f.queryMessage = s.query;
      f.responseTimeSec = undefined;
      f.responseTimeNsec = undefined;
      f.responseMessage = undefined;
      this.pending = s;
    } else {
      // Latency: mostly cache hits (sub-ms), a tail of recursions up to ~100 ms.
      const lat = this.rnd() < 0.8 ? 50_000 + this.rnd() * 500_000 : 2e6 + this.rnd() * 1e8;
      let ns = this.qNsec + Math.floor(lat);
      let sec = this.qSec;
      while (ns >= 1e9) {
        ns -= 1e9;
        sec++;
      }
      f.type = MessageType.CLIENT_RESPONSE;
      f.responseTimeSec = sec;
      f.responseTimeNsec = ns;
      f.queryMessage = undefined;
      f.responseMessage = this.pending.response;
      this.pending = null;
    }
    this.count++;
    return this.enc.encodeInto(f, buf, off);
  }
}
