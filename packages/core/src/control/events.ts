import { EVENTS } from '../transport/notice.js';
import type { Transport } from '../transport/transport.js';
import type { LamportClock } from './clock.js';

/** A Celery event: `type` plus its fields; every event has `hostname`, `timestamp` (unix s), `clock`, `pid`, `utcoffset`. */
export interface CeleryEvent {
  readonly type: string;
  readonly hostname: string;
  readonly timestamp: number;
  readonly [field: string]: unknown;
}

/** Celery's `utcoffset()`: hours west of UTC, floored. */
function utcOffset(): number {
  return Math.floor(new Date().getTimezoneOffset() / 60);
}

/**
 * Sends events on Celery's `celeryev` exchange with Celery's fields and
 * routing key (the type with `-` as `.`), so `celery events` and Flower read
 * them. Events are live signals: one that cannot be sent (broker away) is
 * counted and dropped, never allowed to fail or slow the task it describes.
 */
export class EventDispatcher {
  enabled: boolean;
  /** Events that could not be sent. */
  dropped = 0;

  constructor(
    private readonly transport: () => Promise<Transport>,
    readonly hostname: string,
    private readonly clock: LamportClock,
    options: { enabled?: boolean } = {},
  ) {
    this.enabled = options.enabled ?? false;
  }

  /** Send an event when enabled (fire and forget). */
  send(type: string, fields: Record<string, unknown> = {}): void {
    if (!this.enabled) return;
    void this.publish(type, fields).catch(() => {
      this.dropped++;
    });
  }

  /** Send an event now, whatever `enabled` says; resolves once the broker took it. */
  async publish(type: string, fields: Record<string, unknown> = {}): Promise<void> {
    const event: CeleryEvent = {
      hostname: this.hostname,
      utcoffset: utcOffset(),
      pid: process.pid,
      clock: this.clock.forward(),
      ...fields,
      timestamp: typeof fields.timestamp === 'number' ? fields.timestamp : Date.now() / 1000,
      type,
    };
    const transport = await this.transport();
    await transport.notify(EVENTS, type.replace(/-/g, '.'), event, { headers: { hostname: this.hostname } });
  }
}

/**
 * Listen to events on `celeryev` (all of them, or those matching a topic
 * `bindingKey` such as `task.#`), on a private queue that expires as Celery's
 * receiver queues do. Resolves to the function that stops listening.
 */
export async function listenEvents(transport: Transport, onEvent: (event: CeleryEvent) => void, bindingKey = '#'): Promise<() => Promise<void>> {
  return transport.listen(
    EVENTS,
    bindingKey,
    (notice) => {
      // A Python worker with an event loop groups its task events into one `task.multi` message whose
      // body is a list of events (Celery's EventDispatcher with buffer_while_offline / groups): unpack it.
      const payload: unknown = notice.payload;
      for (const e of Array.isArray(payload) ? (payload as unknown[]) : [payload]) {
        if (e && typeof e === 'object' && typeof (e as Partial<CeleryEvent>).type === 'string') onEvent(e as CeleryEvent);
      }
    },
    { expiresMs: 60_000, messageTtlMs: 5_000 },
  );
}
