import type { CeleriacApp, ResultBackend, Transport } from '@celeriac/core/spi';
import type { WorkerEvents } from '../events.js';
import type { Logger } from '../logger.js';
import type { Pool } from '../pools/pool.js';
import type { WorkerState } from '../state.js';

/** What the trace pipeline works with: one worker's connections, pool, log, events and state. */
export interface TraceDeps {
  readonly app: CeleriacApp;
  readonly transport: Transport;
  readonly backend: ResultBackend;
  readonly pool: Pool;
  readonly log: Logger;
  readonly events: WorkerEvents;
  readonly state: WorkerState;
  /** This worker's node name (`celeriac@host`), as tasks see it in `ctx.hostname`. */
  readonly hostname: string;
  /** Aborted when the worker goes cold: steps still retrying give up, and their deliveries return by the broker's rules. */
  readonly halt: AbortSignal;
}
