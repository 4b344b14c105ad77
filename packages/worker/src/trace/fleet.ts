import { CapabilityError, type RegisteredTask, type ResultBackend, type TaskMessage, type Transport } from '@celeriac/core/spi';
import { rateIntervalMs } from '../rate-limit.js';
import type { TraceDeps } from './deps.js';

/**
 * Fleet-wide limits (BullMQ's global limiter, Hatchet's concurrency keys):
 * `globalRateLimit` spaces a task's runs by one clock shared in the result
 * backend, `concurrencyLimit` lets at most N run at once across every worker.
 * A task over either goes back to the broker to wait — it holds no worker
 * slot and no lease while it waits.
 */

/** Marks a message sent back to wait for its booked fleet-wide slot: it holds that slot, and only needs a lease now. */
export const FLEET_SLOT_HEADER = 'x-celeriac-fleet-slot';
/** A concurrency lease lasts this long unrenewed: a dead holder's lease frees within it. Renewed every third of it. */
export const LEASE_MS = 30_000;
/** How long a task that found every lease taken waits before it asks again (plus up to half as much jitter). */
const LEASE_RETRY_MS = 500;

export type FleetGate =
  | { readonly kind: 'run'; readonly release: () => Promise<void> }
  /** The backend cannot keep the limit (the worker start check was bypassed): refused, never run unlimited. */
  | { readonly kind: 'refuse'; readonly error: CapabilityError }
  | { readonly kind: 'wait'; readonly ms: number; readonly headers: Readonly<Record<string, unknown>>; readonly why: string };

const FREE: FleetGate = { kind: 'run', release: async () => undefined };

/** Whether a task has a fleet-wide limit. */
export function hasFleetLimits(task: RegisteredTask): boolean {
  return task.options.globalRateLimit !== undefined || task.options.concurrencyLimit !== undefined;
}

/**
 * Refuse at worker start a task with fleet-wide limits that this backend or
 * broker cannot keep: a limit that silently became per worker would be a lie.
 */
export function checkFleetLimits(tasks: Iterable<RegisteredTask>, backend: ResultBackend, transport: Transport): void {
  const limited = [...tasks].filter(hasFleetLimits).map((t) => t.name);
  if (limited.length === 0) return;
  if (!backend.capabilities.fleetLimits) {
    throw new CapabilityError(
      `tasks ${limited.join(', ')} have fleet-wide limits (globalRateLimit / concurrencyLimit), kept in the result backend, and the ${backend.kind} backend cannot keep them; use a Redis or SQLite result backend`,
      { tasks: limited, backend: backend.kind },
    );
  }
  if (!transport.capabilities.delayedDelivery) {
    throw new CapabilityError(`tasks ${limited.join(', ')} have fleet-wide limits, and the ${transport.kind} broker cannot hold a waiting task until its turn`, { tasks: limited });
  }
}

const keyOf = (task: RegisteredTask, fn: ((...args: never[]) => string | number) | undefined, args: readonly unknown[]): string =>
  fn ? `${task.name}:${String((fn as (...a: unknown[]) => string | number)(...args))}` : task.name;

/** Book the fleet-wide slot, then take a lease; say how long to wait when either is not free. */
export async function fleetGate(deps: TraceDeps, task: RegisteredTask, message: TaskMessage, args: readonly unknown[]): Promise<FleetGate> {
  const o = task.options;
  if (!hasFleetLimits(task)) return FREE;
  const backend = deps.backend;
  if (!backend.capabilities.fleetLimits) return { kind: 'refuse', error: new CapabilityError(`task ${task.name} has a fleet-wide limit and the ${backend.kind} backend cannot keep it`, { task: task.name }) };
  const booked = typeof message.headers[FLEET_SLOT_HEADER] === 'number';
  if (o.globalRateLimit !== undefined && !booked) {
    const wait = await backend.reserveRateSlot!(task.name, keyOf(task, o.rateLimitKey, args), rateIntervalMs(o.globalRateLimit));
    if (wait > 0) return { kind: 'wait', ms: wait, headers: { [FLEET_SLOT_HEADER]: Date.now() + wait }, why: 'send the message back for its fleet-wide rate-limit slot' };
  }
  if (o.concurrencyLimit === undefined) return FREE;
  const key = keyOf(task, o.concurrencyKey, args);
  const holder = message.headers.id;
  const limit = o.concurrencyLimit;
  if (!(await backend.acquireLease!(key, holder, limit, LEASE_MS))) {
    // It keeps the rate slot it booked (the header goes with it): it only waits for a lease now.
    const headers = o.globalRateLimit !== undefined ? { [FLEET_SLOT_HEADER]: booked ? message.headers[FLEET_SLOT_HEADER] : Date.now() } : {};
    return { kind: 'wait', ms: LEASE_RETRY_MS + Math.floor(Math.random() * (LEASE_RETRY_MS / 2)), headers, why: 'send the message back to wait for a concurrency lease' };
  }
  const renew = setInterval(() => {
    backend.acquireLease!(key, holder, limit, LEASE_MS).catch((err: unknown) => deps.log.warn({ err, taskId: holder, key }, 'could not renew the concurrency lease'));
  }, LEASE_MS / 3);
  renew.unref();
  return {
    kind: 'run',
    release: async () => {
      clearInterval(renew);
      // A release that fails leaves the lease to expire (LEASE_MS): never worse than a crash.
      await backend.releaseLease!(key, holder).catch((err: unknown) => deps.log.warn({ err, taskId: holder, key }, 'could not release the concurrency lease; it expires on its own'));
    },
  };
}
