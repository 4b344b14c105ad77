import { inject } from 'vitest';
import { parseUrl, RedisBackend, RedisTransport, redisSettings } from '@celeriac/core/spi';
import { backendConformance } from '../conformance/backend.js';
import { transportConformance } from '../conformance/transport.js';

const base = inject('redisUrl');
let n = 0;
/** Each setup gets its own key prefix: a fresh namespace on the shared server. */
const settings = () => redisSettings(parseUrl('broker', `${base}?keyPrefix=conf${process.pid}-${++n}:`, ['redis']));

transportConformance('redis', async () => {
  const s = settings();
  return {
    make: () => RedisTransport.open(s, { visibilityTimeout: 2000 }),
    lease: { visibilityTimeout: 500, make: () => RedisTransport.open(s, { visibilityTimeout: 500 }) },
  };
});
backendConformance('redis', async () => {
  const s = settings();
  return { make: () => RedisBackend.open(s) };
});
