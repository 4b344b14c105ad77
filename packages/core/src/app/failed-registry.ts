import type { FailedTaskRecord, ResultBackend } from '../backend/backend.js';
import { CapabilityError } from '../errors.js';
import type { Transport } from '../transport/transport.js';

/** A page of the failed-task registry read at a time (it is never loaded whole). */
const PAGE = 100;

function checkRegistry(backend: ResultBackend): void {
  if (!backend.capabilities.failedRegistry || !backend.listFailed || !backend.failedCount || !backend.getFailed || !backend.takeFailed) {
    throw new CapabilityError(`the ${backend.kind} result backend has no failed-task registry; use a Redis or SQLite result backend`, { backend: backend.kind });
  }
}

/** Whether this backend keeps failed tasks. */
export function hasFailedRegistry(backend: ResultBackend): boolean {
  return backend.capabilities.failedRegistry === true;
}

/**
 * Send failed tasks again as they were sent (same id, arguments, options and
 * links; their retries start again from 0), on the queue they were consumed
 * from, and remove them from the registry — the given ids, or every one kept
 * when asked. The FAILURE stored for each is forgotten first, so the new run's
 * result is its outcome. Publish first, then remove: a crash in between leaves
 * a record that was requeued, never a task lost. Resolves to how many were sent.
 */
export async function requeueFailed(transport: Transport, backend: ResultBackend, ids?: readonly string[]): Promise<number> {
  checkRegistry(backend);
  const requeue = async (record: FailedTaskRecord): Promise<void> => {
    if ((await backend.get(record.id))?.status === 'FAILURE') await backend.forget(record.id);
    const wire = { ...record.wire, headers: { ...record.wire.headers, retries: 0 } };
    const priority = wire.properties.priority;
    await transport.publish(record.queue, wire, typeof priority === 'number' ? { priority } : {});
    await backend.takeFailed!(record.id);
  };
  if (ids) {
    let n = 0;
    for (const id of ids) {
      const record = await backend.getFailed!(id);
      if (record) {
        await requeue(record);
        n++;
      }
    }
    return n;
  }
  // As many as were kept when asked, oldest first: one that fails again at once is not requeued twice.
  let n = 0;
  for (let left = await backend.failedCount!(); left > 0; ) {
    const page = await backend.listFailed!({ offset: 0, limit: Math.min(left, PAGE) });
    if (page.length === 0) break;
    for (const record of page) await requeue(record);
    left -= page.length;
    n += page.length;
  }
  return n;
}
