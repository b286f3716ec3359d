// A minimal link peer in its own process: counts records and acknowledges every batch at once
// (agent-bench-support.ts's ackingEnricher). `bench-e2e --acking-peer` runs it in place of the
// enricher for the socket row, so that on a 2-core machine the agent's absorption is measured
// with an enricher that keeps up at almost no CPU, as one on another node would.
// Prints the port it listens on (127.0.0.1), then runs until killed.
import { ackingEnricher } from './agent-bench-support';

ackingEnricher().then(
  ({ port }) => console.log(port),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
