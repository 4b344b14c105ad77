import { EventEmitter } from 'node:events';
import type { TaskHeaders } from '@celeriac/core/spi';
import { TaskLogBook } from './task-logs.js';

/** Local task events, named as Celery's `celeryev` events (published on the broker by the events issue). */
export interface WorkerEventMap {
  'task-received': [{ id: string; name: string; headers: TaskHeaders; queue: string }];
  'task-started': [{ id: string; name: string }];
  'task-succeeded': [{ id: string; name: string; result: unknown; runtime: number }];
  'task-failed': [{ id: string; name: string; exception: unknown; traceback: string | null }];
  'task-retried': [{ id: string; name: string; retries: number; exception: unknown; traceback: string | null }];
  'task-revoked': [{ id: string; name: string; reason: string }];
  'task-rejected': [{ id: string | null; name: string | null; reason: string }];
  'worker-online': [{ hostname: string }];
  'worker-offline': [{ hostname: string }];
}

export class WorkerEvents extends EventEmitter<WorkerEventMap> {
  /** Tasks' `this.log` lines, kept while events are published so their final event can carry them. */
  readonly logs = new TaskLogBook();
}
