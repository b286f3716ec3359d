// Endpoint-aware discovery (--discovery k8s://NAMESPACE/SERVICE[:PORT]): watches the
// enricher Service's EndpointSlices so the link client can switch to new pods at once.

export type { ReadyEndpoint } from './endpoints';
export { DiscoveryError, DiscoveryErrorCode, isTargetError } from './errors';
export { type EndpointsChange, EndpointWatcher } from './k8s-watcher';
export type { KubeConfigSource } from './kube-client';
export { registerDiscoveryMetrics } from './metrics';
export { type DiscoveryTarget, formatDiscoveryTarget, parseDiscoveryTarget } from './target';
export { DISCOVERY_DEFAULTS, type DiscoveryStats, type EndpointWatcherOptions } from './watcher-options';
export { attachDiscovery, DISCOVERY_MODES, type DiscoveryMode, type SwitchableLink } from './wiring';
