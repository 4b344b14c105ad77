export { Worker, type WorkerOptions } from './worker.js';
export { WorkerEvents, type WorkerEventMap } from './events.js';
export { AsyncPool } from './pools/async.js';
export type { Pool, PoolJob, PoolCapabilities } from './pools/pool.js';
export { retryDelay, shouldAutoretry, DEFAULT_RETRY_DELAY_MS } from './retry.js';
export { createLogger } from './logger.js';
