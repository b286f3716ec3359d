// The Snowtap agent (sidecar relay): dnstap in, link batches out. See README.md here.
export { Agent, type AgentCounters, type StopSummary } from './agent';
export { DROP_REASONS, type DropReason } from './buffer';
export { AgentError, AgentErrorCode, RejectedError } from './errors';
export { LinkClient, type Role } from './link';
export { registerAgentMetrics } from './metrics';
export {
  AGENT_DEFAULTS,
  AGENT_LIMITS,
  type AgentOptions,
  type Endpoint,
  newIncarnation,
  resolveAgentOptions,
  SAMPLE_MODES,
  type SampleMode,
  type TlsSettings,
  WHEN_FULL,
  type WhenFull,
} from './options';
export { AgentProcess, type AgentProcessOptions } from './process';
