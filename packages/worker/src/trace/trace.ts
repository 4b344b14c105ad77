import { resultMeta, type Delivery, type RegisteredTask, type TaskMessage } from '@celeriac/core/spi';
import { admit, decodeDelivery } from './admission.js';
import type { TraceDeps } from './deps.js';
import { execute } from './execute.js';
import { fleetGate } from './fleet.js';
import { poison, recordExecution, refuse, sendBack, skip } from './outcome.js';
import { ack, giveBack, stillOwned, store, storeOptionsOf } from './steps.js';

/**
 * Run one delivery to its end: a stored result, a retry, or a dead-letter
 * entry with a reason — then the ack. Never throws: whatever goes wrong is
 * recorded and the worker keeps serving.
 *
 * The pipeline: decode → admission (a pure decision) → execution → outcome.
 */
export async function traceDelivery(deps: TraceDeps, delivery: Delivery): Promise<void> {
  try {
    await trace(deps, delivery);
  } catch (err) {
    await giveBack(deps, delivery, err);
  }
}

async function trace(deps: TraceDeps, delivery: Delivery): Promise<void> {
  const cfg = deps.app.config;
  const decoded = decodeDelivery(delivery.message, cfg.maxPayloadBytes);
  if (decoded.kind === 'refuse') return refuse(deps, delivery, decoded);
  const { message } = decoded;
  const { headers } = message;
  if (deps.events.listenerCount('task-received')) deps.events.emit('task-received', { id: headers.id, name: headers.task, headers, queue: delivery.queue });
  // Prefetched by a worker that was then paused past its lease: handed on meanwhile, so neither run,
  // refused nor copied (cheap while the lease is fresh).
  if (!(await stillOwned(deps, delivery, headers.id))) return;

  const { state } = deps;
  const now = Date.now();
  const admission = admit(message, {
    maxDeliveries: cfg.maxDeliveries,
    deliveryCount: delivery.deliveryCount,
    now,
    findTask: (name) => deps.app.registry.get(name),
    runTimeLimits: state.timeLimits,
    isRevoked: (id) => state.isRevoked(id),
    reserveSlot: (name, rate) => state.rateLimiter.reserve(name, rate),
    delayedDelivery: deps.transport.capabilities.delayedDelivery,
    hardLimitsEnforced: deps.pool.capabilities.hardTimeLimit,
  });
  switch (admission.kind) {
    case 'refuse':
      return refuse(deps, delivery, admission);
    case 'poison':
      return poison(deps, delivery, message, admission.detail);
    case 'park':
      return sendBack(deps, delivery, message, { eta: admission.eta });
    case 'skip':
      return skip(deps, delivery, message, admission.reason);
    case 'wait-slot':
      // Over its rate: back to the broker until its slot, holding neither a slot nor the message here.
      return sendBack(deps, delivery, message, { slotAt: now + admission.waitMs, countdown: admission.waitMs });
    case 'run':
      break;
  }

  const { task, args } = admission;
  // Fleet-wide limits come after the worker's own: a task this worker would not run yet books nothing shared.
  const gate = await fleetGate(deps, task, message, args);
  if (gate.kind === 'wait') return sendBack(deps, delivery, message, { countdown: gate.ms, headers: gate.headers, why: gate.why });
  if (gate.kind === 'refuse') return refuse(deps, delivery, { kind: 'refuse', id: headers.id, taskName: task.name, error: gate.error, message });
  try {
    await run(deps, delivery, task, message, args, now);
  } finally {
    await gate.release();
  }
}

async function run(deps: TraceDeps, delivery: Delivery, task: RegisteredTask, message: TaskMessage, args: unknown[], receivedAt: number): Promise<void> {
  const cfg = deps.app.config;
  const { headers } = message;
  const acksLate = task.options.acksLate ?? cfg.acksLate;
  if (!acksLate) await ack(deps, delivery, headers.id);
  const settle = acksLate ? () => ack(deps, delivery, headers.id) : async () => undefined;
  if (task.options.trackStarted ?? cfg.trackStarted) await store(deps, delivery, resultMeta(headers, 'STARTED', { pid: process.pid }));
  const execution = await execute(deps, { task, message, args, queue: delivery.queue, storeOptions: storeOptionsOf(deps, delivery) });
  await recordExecution(deps, delivery, { task, message, receivedAt }, execution, settle);
}
