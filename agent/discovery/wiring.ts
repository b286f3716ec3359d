// How discovery drives the link client (the --discovery-mode option):
//   service: keep dialing the Service address (kube-proxy picks the pod); a change in the
//     ready set only re-opens the idle connection now instead of at the next switch timer.
//   direct:  dial pod addresses, in this agent's rendezvous order (spread.ts); when the
//     agent's first choice changes (a new pod won it, or it went away), switch now. With no
//     ready pod at all, fall back to the Service address rather than to dead pods.

import type { ReadyEndpoint } from './endpoints';
import type { EndpointsChange, EndpointWatcher } from './k8s-watcher';
import { spreadOrder } from './spread';

export const DISCOVERY_MODES = ['service', 'direct'] as const;
export type DiscoveryMode = (typeof DISCOVERY_MODES)[number];

/** What discovery needs of the link client (LinkClient has both). */
export interface SwitchableLink {
  setEndpoints(endpoints: readonly { host: string; port: number }[]): void;
  switchNow(): void;
}

export interface AttachOptions {
  mode: DiscoveryMode;
  /** --enricher HOST:PORT: the Service address, dialed in service mode and as the fallback. */
  service: { host: string; port: number };
  /** Spreads agents over pods in direct mode: the agent id (pod name). */
  agentKey: string;
}

/** Subscribes `link` to `watcher`'s changes; returns the unsubscribe function. */
export function attachDiscovery(
  watcher: EndpointWatcher,
  link: SwitchableLink,
  o: AttachOptions,
): () => void {
  let synced = false;
  let first = '';
  const onEndpoints = (list: readonly ReadyEndpoint[], _change: EndpointsChange): void => {
    const initial = !synced;
    synced = true;
    if (o.mode === 'service') {
      // The first list is what we already dial through the Service: nothing to switch.
      if (!initial) link.switchNow();
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
  return () => watcher.off('endpoints', onEndpoints);
}
