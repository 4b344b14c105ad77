import type { ResultBackend } from '../backend/backend.js';
import { ArgumentError, CapabilityError } from '../errors.js';
import type { AsyncResult } from '../result/async-result.js';
import type { DeduplicateOptions, MessageOptions } from '../task/options.js';
import { newId } from '../util/ids.js';

/** What a deduplicated send needs from its app. */
export interface DedupHost {
  backend(): Promise<ResultBackend>;
  revoke(taskIds: readonly string[]): Promise<void>;
  asyncResult<R>(id: string): AsyncResult<R>;
}

function checked(d: DeduplicateOptions): Required<DeduplicateOptions> {
  if (typeof d.id !== 'string' || d.id.length === 0) throw new ArgumentError('deduplicate.id: expected a non-empty string', { option: 'deduplicate.id' });
  if (typeof d.ttlMs !== 'number' || !Number.isInteger(d.ttlMs) || d.ttlMs <= 0) {
    throw new ArgumentError(`deduplicate.ttlMs: expected a positive whole number of ms, got ${JSON.stringify(d.ttlMs)}`, { option: 'deduplicate.ttlMs' });
  }
  const mode = d.mode ?? 'first';
  if (mode !== 'first' && mode !== 'debounce') throw new ArgumentError(`deduplicate.mode: expected 'first' or 'debounce', got ${JSON.stringify(mode)}`, { option: 'deduplicate.mode' });
  return { id: d.id, ttlMs: d.ttlMs, mode };
}

/**
 * A send with `deduplicate`: claim the key in the result backend (one atomic
 * step there), then send — or not. `first`: a key held by another task means
 * that task's handle and no send; a send that fails lets go of the key, so
 * later sends are not pointed at a task that never went out. `debounce`: this
 * task becomes the holder and runs `ttlMs` from now unless told otherwise;
 * the holder it replaced is revoked after this one was sent (a revoked task
 * that has not started is skipped by every worker: REVOKED).
 */
export async function sendDeduplicated<R>(
  host: DedupHost,
  taskName: string,
  options: MessageOptions & { readonly deduplicate: DeduplicateOptions },
  send: (options: MessageOptions) => Promise<AsyncResult<R>>,
): Promise<AsyncResult<R>> {
  const d = checked(options.deduplicate);
  const backend = await host.backend();
  if (!backend.capabilities.deduplication || !backend.claimDedup || !backend.releaseDedup) {
    throw new CapabilityError(`deduplicate needs a result backend every sender shares (Redis, SQLite); the ${backend.kind} backend has none`, { backend: backend.kind });
  }
  const { deduplicate: _, ...rest } = options;
  const taskId = rest.taskId ?? newId();
  const key = `${taskName}:${d.id}`;
  const debounce = d.mode === 'debounce';
  const holder = await backend.claimDedup(key, taskId, { ttlMs: d.ttlMs, replace: debounce });
  if (holder !== null && !debounce) return host.asyncResult<R>(holder);
  const delayed = debounce && rest.countdown === undefined && rest.eta === undefined ? { countdown: d.ttlMs } : {};
  let result: AsyncResult<R>;
  try {
    result = await send({ ...rest, ...delayed, taskId });
  } catch (err) {
    await backend.releaseDedup(key, taskId).catch(() => undefined);
    throw err;
  }
  if (holder !== null && holder !== taskId) await host.revoke([holder]);
  return result;
}
