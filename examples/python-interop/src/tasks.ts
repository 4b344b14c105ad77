/**
 * The celeriac side: tasks a Python client can call, and a typed handle on a task a Python worker implements.
 *
 *   celeriac worker -A dist/tasks.js      (consumes the `node` queue)
 *
 * CELERIAC_BROKER_URL  default redis://localhost:6379/0: the same Redis as pyapp.py (results there too)
 */
import { createApp } from '@celeriac/core';

export const app = createApp({
  name: 'python-interop',
  broker: process.env.CELERIAC_BROKER_URL ?? 'redis://localhost:6379/0',
  // The same routes as pyapp.py: tasks of each language go to the queue its workers consume.
  defaultQueue: 'node',
  routes: { 'py.*': { queue: 'py' }, 'node.*': { queue: 'node' } },
});

/**
 * `params` names the arguments, so a Python client's keyword arguments land in the right positions:
 * `send_task('node.slugify', kwargs={'title': ..., 'separator': '_'})`.
 */
export const slugify = app.task({ name: 'node.slugify', params: ['title', 'separator'] }, (title: string, separator = '-') =>
  title
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, ' ')
    .trim()
    .split(' ')
    .join(separator),
);

/** Returns an object: it reaches Python as a dict. */
export const stats = app.task({ name: 'node.stats', params: ['numbers'] }, (numbers: number[]) => ({
  count: numbers.length,
  min: Math.min(...numbers),
  max: Math.max(...numbers),
  mean: numbers.reduce((a, b) => a + b, 0) / numbers.length,
}));

export const double = app.task({ name: 'node.double' }, (n: number) => n * 2);

/**
 * Implemented in Python (pyapp.py), declared here by name with its types: a send-only handle with `delay`,
 * `applyAsync` and `s()`, whose `get()` is typed `number`. Nothing of the Python code is imported.
 */
export const pyAdd = app.declareTask<[number, number], number>('py.add');
