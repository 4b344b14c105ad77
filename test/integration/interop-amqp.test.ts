import { join } from 'node:path';
import { afterEach, describe, inject } from 'vitest';
import type { CeleriacApp } from '@celeriac/core';
import { ROOT } from '../helpers/processes.js';
import { delayGetInteropCases } from '../helpers/interop-cases.js';
import { freshVhost } from '../servers/rabbitmq.js';

const LECTURE = join(ROOT, 'test', 'fixtures', 'apps', 'lecture.ts');
let n = 0;
const clients: CeleriacApp[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
});

/** A vhost of its own on the run's RabbitMQ node; results in Redis (a db of its own) or as rpc:// replies. */
async function world(results: 'redis' | 'rpc') {
  const id = ++n;
  const url = await freshVhost(inject('amqpUrl'), inject('amqpNode'), `interop-${process.pid}-${id}`);
  const backend = results === 'rpc' ? 'rpc://' : inject('redisUrl').replace(/\/0$/, `/${(id % 15) + 1}`);
  const env = { CELERIAC_BROKER_URL: url, CELERIAC_RESULT_BACKEND: backend, CELERY_BROKER_URL: url, CELERY_RESULT_BACKEND: backend };
  return { url, backend, env };
}

describe.each(['redis', 'rpc'] as const)('interop with Python Celery 5.2.6 over RabbitMQ, results in %s', (results) => {
  delayGetInteropCases(() => world(results), LECTURE, clients);
});
