/**
 * Small broker helpers of the fleet monitor: the event feed, and a deadline on
 * any broker call (a broker that hangs must read as unreachable, not freeze a page).
 */
import { EVENTS, redactUrl, type CeleriacApp, type CeleryEvent, type Transport } from '@celeriac/core/spi';

/**
 * Listen to every event on `celeryev`, as core's `listenEvents` does, and also
 * unpack the batches a Python worker with an event loop sends: it buffers task
 * events and publishes them as one `task.multi` message whose body is a list
 * (Celery's EventReceiver reads both forms; without this, every task event of a
 * Python worker on Redis or RabbitMQ would be lost).
 */
export function listenAllEvents(transport: Transport, onEvent: (event: CeleryEvent) => void): Promise<() => Promise<void>> {
  const one = (e: unknown) => {
    if (e && typeof e === 'object' && typeof (e as Partial<CeleryEvent>).type === 'string') onEvent(e as CeleryEvent);
  };
  return transport.listen(
    EVENTS,
    '#',
    (notice) => {
      if (Array.isArray(notice.payload)) for (const e of notice.payload) one(e);
      else one(notice.payload);
    },
    // Celery's receiver queue settings: gone a minute after the dashboard, events older than 5 s dropped.
    { expiresMs: 60_000, messageTtlMs: 5_000 },
  );
}

/** Reject after `ms` with a plain reason (the original promise's late rejection is still observed by the race). */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * A function that hides the app's broker and backend passwords in any text (a driver's error
 * message may quote a URL): URLs get `***` for a password, and the passwords themselves are replaced.
 */
export function secretScrubber(app: CeleriacApp): (text: string) => string {
  const secrets = [app.config.broker, app.config.backend].map((u) => (u.url.password ? decodeURIComponent(u.url.password) : '')).filter((s) => s.length > 0);
  return (text) => {
    let out = redactUrl(text).replace(/\/\/([^/@:\s]*):[^/@\s]*@/g, '//$1:***@');
    for (const s of secrets) out = out.split(s).join('***');
    return out;
  };
}
