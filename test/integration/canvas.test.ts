import { join } from 'node:path';
import { inject } from 'vitest';
import { canvasSuite } from '../conformance/canvas.js';
import { tempDir } from '../helpers/tmp.js';

const dir = tempDir('celeriac-canvas-');
let n = 0;
canvasSuite('sqlite', () => `sqlite://${join(dir, `c${++n}.db`)}`);
canvasSuite('redis', () => `${inject('redisUrl')}?keyPrefix=canvas${process.pid}-${++n}:`);
