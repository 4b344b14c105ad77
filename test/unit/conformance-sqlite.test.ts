import { join } from 'node:path';
import { SqliteBackend, SqliteTransport } from '@celeriac/core/spi';
import { backendConformance } from '../conformance/backend.js';
import { transportConformance } from '../conformance/transport.js';
import { tempDir } from '../helpers/tmp.js';

const dir = tempDir('celeriac-sqlite-conf-');
let n = 0;
transportConformance('sqlite', async () => {
  const path = join(dir, `t${++n}.db`);
  return {
    make: () => SqliteTransport.open(path, { visibilityTimeout: 2000 }),
    lease: { visibilityTimeout: 400, make: () => SqliteTransport.open(path, { visibilityTimeout: 400 }) },
  };
});
backendConformance('sqlite', async () => {
  const path = join(dir, `b${++n}.db`);
  return { make: () => SqliteBackend.open(path) };
});
