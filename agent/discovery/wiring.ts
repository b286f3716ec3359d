// How discovery drives the link client (the --discovery-mode option):
//   service: keep dialing the Service address (kube-proxy picks the pod). When pods join the
//     ready set, about their share of the traffic moves to them at once instead of at the
//     switch timers: each stripe moves with probability joined / ready and re-dials until it
//     lands on a joined pod (LinkClient.switchToward, stripe.ts: bounded, and it covers
//     kube-proxy writing its rules a little after the agent saw the EndpointSlice). That needs
//     the enricher ids in Welcomes to be the pod names (the enricher's default --id, the
//     hostname); when the pods we carry to are not in the list by name, every stripe switches
//     instead, SERVICE_SWITCH_DELAY_MS plus up to SERVICE_SWITCH_SPREAD_MS later (kube-proxy's
//     default min sync period is 1 s; the spread keeps a fleet's reconnects apart), and lands
//     where kube-proxy sends it. A pod leaving moves nobody: a terminating enricher drains its
//     own connections.
import { type Clock, realClock, type TimerHandle } from '../../common/clock';
import type { ReadyEndpoint } from './endpoints';
import type { EndpointsChange, EndpointWatcher } from './k8s-watcher';
import { spreadOrder } from './spread';

export const DISCOVERY_MODES = ['service', 'direct'] as const;
export type DiscoveryMode = (typeof DISCOVERY_MODES)[number];

/** What discovery needs of the link client (LinkClient has all of it). */
export interface SwitchableLink {
  setEndpoints(endpoints: readonly { host: string; port: number }[]): void;
  switchNow(): void;
  switchToward(enricherIds: ReadonlySet<string>, share: number): void;
  /** Enricher ids of the active connections. */
  carriers(): readonly string[];
}

/** Service mode: how long after pods joined an agent switches, at least (kube-proxy's default min sync period). */
export const SERVICE_SWITCH_DELAY_MS = 1_000;
/** ... plus a uniformly drawn share of this (a fleet's reconnects spread out). */
export const SERVICE_SWITCH_SPREAD_MS = 1_000;

export interface AttachOptions {
  mode: DiscoveryMode;
  /** --enricher HOST:PORT: the Service address, dialed in service mode and as the fallback. */
  service: { host: string; port: number };
  /** Spreads agents over pods in direct mode: the agent id (pod name). */
  agentKey: string;
  /** Timers of the service-mode switch (default: real time; the fleet simulator passes its own). */
  clock?: Clock;
  random?: () => number;
}

/** Subscribes `link` to `watcher`'s changes; returns the unsubscribe function. */
export function attachDiscovery(
  watcher: EndpointWatcher,
  link: SwitchableLink,
  o: AttachOptions,
): () => void {
  let synced = false;
  let first = '';
  let known = new Set<string>();
  let pending: TimerHandle | null = null;
  const clock = o.clock ?? realClock;
  const random = o.random ?? Math.random;
  const onEndpoints = (list: readonly ReadyEndpoint[], _change: EndpointsChange): void => {
    const initial = !synced;
    synced = true;
    if (o.mode === 'service') {
      // The first list is what we already dial through the Service: nothing to switch.
      const key = (e: ReadyEndpoint) => `${e.address}|${e.port}`;
      const joined = list.filter((e) => !known.has(key(e)));
      known = new Set(list.map(key));
      if (initial || joined.length === 0) return;
      const names = new Set(list.map((e) => e.podName ?? ''));
      const carriers = link.carriers();
      if (carriers.length > 0 && carriers.every((id) => names.has(id)) && joined.every((e) => e.podName)) {
        link.switchToward(new Set(joined.map((e) => e.podName!)), joined.length / list.length);
        return;
      }
      if (pending !== null) return;
      pending = clock.setTimeout(
        () => {
          pending = null;
          link.switchNow();
        },
        SERVICE_SWITCH_DELAY_MS + random() * SERVICE_SWITCH_SPREAD_MS,
        true,
      );
      return;
    }
    const ordered = spreadOrder(list, o.agentKey).map((e) => ({ host: e.address, port: e.port }));
    const targets = ordered.length > 0 ? ordered : [o.service];
    const head = `${targets[0]!.host}|${targets[0]!.port}`;
    link.setEndpoints(targets);
    if (head !== first) {
      first = head;
      link.switchNow();
    }
  };
  watcher.on('endpoints', onEndpoints);
  return () => {
    watcher.off('endpoints', onEndpoints);
    if (pending !== null) clock.clearTimeout(pending);
    pending = null;
  };
}
