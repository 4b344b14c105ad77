import { EventEmitter } from 'node:events';

/** Local task events, named as Celery's `celeryev` events (published on the broker by the events issue). */
export interface WorkerEventMap {
  'task-received': [{ id: string; name: string }];
  'task-started': [{ id: string; name: string }];
  'task-succeeded': [{ id: string; name: string; result: unknown; runtime: number }];
  'task-failed': [{ id: string; name: string; exception: unknown }];
  'task-retried': [{ id: string; name: string; retries: number }];
  'task-revoked': [{ id: string; name: string; reason: string }];
  'task-rejected': [{ id: string | null; name: string | null; reason: string }];
  'worker-online': [{ hostname: string }];
  'worker-offline': [{ hostname: string }];
}

export class WorkerEvents extends EventEmitter<WorkerEventMap> {}
