import { MemoryBackend, MemoryTransport } from '@celeriac/core/spi';
import { backendConformance } from '../conformance/backend.js';
import { transportConformance } from '../conformance/transport.js';

let n = 0;
transportConformance('memory', async () => {
  const name = `conf-t-${++n}`;
  return { make: async () => new MemoryTransport(name) };
});
backendConformance('memory', async () => {
  const name = `conf-b-${++n}`;
  return { make: async () => new MemoryBackend(name) };
});
