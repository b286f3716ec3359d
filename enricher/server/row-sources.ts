// RowSources of one agent connection. A record's id is `<agent>/<incarnation>/<seq>/<index>`
// (LINK.md), so records of a batch share the RowSource of (incarnation, sample rate): built
// once and reused, never per record. The common case (the Hello's incarnation, unsampled)
// costs no string building at all.

import type { BatchView } from '../../proto/link/index';
import { RowSource } from '../pipeline/row-encoder';

/** Distinct (incarnation, sample rate) pairs kept per connection; a flood only costs a rebuild. */
const MAX_CACHED_SOURCES = 64;

export class RowSources {
  private readonly cache = new Map<string, RowSource>();
  private common: RowSource | null = null;

  constructor(
    private readonly agentId: string,
    private readonly incarnation: string,
  ) {}

  /** The source for a parsed batch: its own incarnation when set, else the Hello's. */
  of(view: BatchView): RowSource {
    const rate = view.sampleRate === 0 ? 1 : view.sampleRate;
    const own = view.incarnationEnd !== view.incarnationStart;
    if (!own && rate === 1) {
      this.common ??= new RowSource(`${this.agentId}/${this.incarnation}`, this.agentId, 1);
      return this.common;
    }
    const inc = own ? view.incarnation : this.incarnation;
    const key = `${inc}/${rate}`;
    let src = this.cache.get(key);
    if (src === undefined) {
      if (this.cache.size >= MAX_CACHED_SOURCES) this.cache.clear();
      src = new RowSource(`${this.agentId}/${inc}`, this.agentId, rate);
      this.cache.set(key, src);
    }
    return src;
  }
}
