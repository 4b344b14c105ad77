import { describe, expect, it } from 'vitest';
import { EVENTS, listenEvents, type CeleryEvent } from '@celeriac/core/spi';
import { memoryApp } from '../helpers/in-process.js';
import { waitFor } from '../helpers/wait.js';

/** Python workers with an event loop send their task events grouped: one `task.multi` message holding a list. */
describe('listenEvents and task.multi', () => {
  it('unpacks a list of events into one call each, and still takes single events', async () => {
    const app = memoryApp('events-multi');
    const transport = await app.transport();
    const seen: CeleryEvent[] = [];
    const stop = await listenEvents(transport, (e) => seen.push(e), 'task.#');
    const base = { hostname: 'celery@py', timestamp: 1, clock: 1, pid: 1, utcoffset: 0 };
    await transport.notify(EVENTS, 'task.multi', [
      { ...base, type: 'task-received', uuid: 'a' },
      { ...base, type: 'task-started', uuid: 'a' },
      'not an event',
    ]);
    await transport.notify(EVENTS, 'task.succeeded', { ...base, type: 'task-succeeded', uuid: 'a' });
    await waitFor(() => seen.length === 3, 'three events');
    expect(seen.map((e) => e.type)).toEqual(['task-received', 'task-started', 'task-succeeded']);
    await stop();
  });
});
