// The enricher's network inputs: the link server (agents) and the --dnstap-listen sink, both
// feeding the pipeline whose sink (the chunk writer) tells them when to hold back. Tests may import the modules directly.
export { DnstapInput, DnstapInputStats, FRAMES_PER_SEQ } from './dnstap-input';
export { LinkConnection } from './link-connection';
export {
  FINAL_ACK_GRACE_MS,
  type LinkListenResult,
  LinkServer,
  OVERLOAD_DRAIN_REASON,
} from './link-server';
export {
  LINK_SERVER_DEFAULTS,
  LINK_SERVER_LIMITS,
  LinkServerOptionError,
  type LinkServerOptions,
  type LinkTlsOptions,
  type RecordProcessor,
} from './options';
export {
  OVERLOAD_DEFAULTS,
  OVERLOAD_LIMITS,
  OverloadController,
  type OverloadOptions,
  resolveOverloadOptions,
} from './overload';
export { type LinkCloseReason, LinkServerStats } from './stats';
