import type { CeleriacApp, Delivery, Transport } from '@celeriac/core/spi';
import type { WorkerEvents } from '../events.js';
import type { Logger } from '../logger.js';
import type { Pool } from '../pools/pool.js';
import type { WorkerState } from '../state.js';

/**
 * What remote control, task events and metrics see of a worker: its state
 * (read), its settings, and the few actions a command may take. The worker
 * implements it; control code never imports the worker itself.
 */
export interface ControlledWorker {
  readonly hostname: string;
  readonly startedAt: number;
  readonly app: Pick<CeleriacApp, 'clock' | 'registry' | 'config' | 'backend'>;
  readonly pool: Pick<Pool, 'kind' | 'capabilities'>;
  readonly log: Logger;
  readonly events: WorkerEvents;
  readonly state: WorkerState;
  readonly concurrency: number;
  readonly prefetchCount: number;
  readonly queues: readonly string[];
  /** Messages received and not yet started (`inspect reserved`). */
  readonly reserved: readonly Delivery[];
  readonly isSuspended: boolean;
  /** Its queues paused fleet-wide (`celeriac pause`), not consumed until resumed. */
  readonly pausedQueues: readonly string[];
  readonly eventsEnabled: boolean;
  /** When this worker last sent a worker-heartbeat event (null: events off, or none yet). */
  readonly lastHeartbeatAt: number | null;
  readonly transport: Transport | undefined;
  revoke(ids: readonly string[], terminate: boolean): string[];
  resize(concurrency: number): Promise<void>;
  setQueues(queues: readonly string[]): Promise<void>;
  suspend(): Promise<void>;
  resume(): Promise<void>;
  setEvents(enabled: boolean): boolean;
  emitHeartbeat(): void;
  requestShutdown(): void;
}
