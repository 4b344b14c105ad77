import { join } from 'node:path';
import { inject } from 'vitest';
import { canvasSuite } from '../conformance/canvas.js';
import { tempDir } from '../helpers/tmp.js';

const dir = tempDir('celeriac-canvas-');
let n = 0;
canvasSuite('sqlite', () => `sqlite://${join(dir, `c${++n}.db`)}`);
canvasSuite('redis', () => `${inject('redisUrl')}?keyPrefix=canvas${process.pid}-${++n}:`);
// RabbitMQ as broker (one vhost for the file; the suite's queues are emptied by its own workers), Redis as backend.
canvasSuite('amqp + redis', () => ({ broker: inject('amqpUrl'), backend: `${inject('redisUrl')}?keyPrefix=canvas-amqp${process.pid}-${++n}:` }));
