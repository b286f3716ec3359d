// The agent process (`snowtap agent`), composed in start order: ops endpoint (probes answer
// while the spool is read) -> agent (spool, link, dnstap listeners) -> optional endpoint
// discovery. run() lasts until stop() (SIGTERM) or, with inputFile, until the capture is
// acknowledged, and resolves with the exit code: 0 stopped cleanly (or the capture fully
// acknowledged), 1 a capture not fully acknowledged. The CLI (cli/agent.ts) maps flags onto
// AgentProcessOptions and signals onto stop().

import type { Registry } from 'prom-client';
import type { Logger } from '../common/log';
import { createRegistry, OpsServer } from '../common/ops-server';
import { Agent } from './agent';
import {
  attachDiscovery,
  type DiscoveryMode,
  type DiscoveryTarget,
  EndpointWatcher,
  formatDiscoveryTarget,
  registerDiscoveryMetrics,
} from './discovery/index';
import { registerAgentMetrics } from './metrics';
import type { AgentOptions, Endpoint } from './options';

export interface AgentProcessOptions {
  agent: AgentOptions;
  /** /metrics, /healthz, /readyz; null: none (library use). */
  metricsListen?: Endpoint | null;
  /** Watch the enricher Service's EndpointSlices; the Service address is agent.enrichers[0]. */
  discovery?: { target: DiscoveryTarget; mode: DiscoveryMode } | null;
}

export class AgentProcess {
  readonly agent: Agent;
  readonly registry: Registry;
  private readonly log: Logger;
  private running: Promise<number> | null = null;
  private requestStop: () => void = () => undefined;
  private readonly stopRequested = new Promise<void>((resolve) => {
    this.requestStop = resolve;
  });

  /** Validates everything; throws AGENT_INVALID_OPTION naming the field. */
  constructor(private readonly o: AgentProcessOptions) {
    this.agent = new Agent(o.agent);
    this.log = o.agent.log;
    this.registry = createRegistry('agent');
    registerAgentMetrics(this.registry, this.agent);
  }

  /** Starts everything and runs until stopped; resolves with the exit code. Idempotent. */
  run(): Promise<number> {
    this.running ??= this.lifetime();
    return this.running;
  }

  /** SIGTERM: the orderly stop (agent.stop()); run() resolves once it is done. */
  stop(): void {
    this.requestStop();
  }

  private async lifetime(): Promise<number> {
    const agent = this.agent;
    const fileMode = agent.options.inputFile !== undefined;
    let ops: OpsServer | null = null;
    let stopDiscovery = () => {};
    try {
      if (this.o.metricsListen) {
        const server = new OpsServer({
          ...this.o.metricsListen,
          registry: this.registry,
          readiness: () => agent.readiness(),
        });
        const where = await server.listen();
        ops = server;
        this.log.info({ metrics: `${where.address}:${where.port}` }, 'ops endpoint listening');
      }
      try {
        await agent.start();
      } catch (err) {
        await agent.stop();
        throw err;
      }
      if (this.o.discovery) stopDiscovery = this.watchEndpoints(this.o.discovery);
      let code = 0;
      if (fileMode) {
        const replay = agent.replay();
        void this.stopRequested.then(() => agent.stop());
        code = (await replay) ? 0 : 1;
      } else {
        await this.stopRequested;
      }
      stopDiscovery();
      const { lost } = await agent.stop();
      if (lost > 0 && fileMode) code = 1;
      return code;
    } finally {
      stopDiscovery();
      await ops?.close();
    }
  }

  /** Subscribes the link client to the Service's ready endpoints; returns the unsubscribe. */
  private watchEndpoints(d: NonNullable<AgentProcessOptions['discovery']>): () => void {
    const o = this.agent.options;
    const watcher = new EndpointWatcher({ target: d.target, log: this.log });
    watcher.on('error', (err) =>
      this.log.warn({ code: err.code, err: err.message }, 'endpoint discovery problem'),
    );
    registerDiscoveryMetrics(this.registry, watcher);
    const detach = attachDiscovery(watcher, this.agent.client, {
      mode: d.mode,
      service: o.enrichers[0]!,
      agentKey: o.id,
    });
    watcher.start();
    this.log.info(
      { discovery: formatDiscoveryTarget(d.target), mode: d.mode },
      'watching enricher endpoints',
    );
    return () => {
      detach();
      watcher.stop();
    };
  }
}
