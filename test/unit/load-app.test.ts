import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ErrorCodes, isCeleriacError } from '@celeriac/core';
import { loadApp } from '@celeriac/worker';
import { tempDir } from '../helpers/tmp.js';

// loadApp recognises an app by its shape (another copy of @celeriac/core's app is one too), so the
// modules below need no install: each exports an object shaped like one, named by `label`.
const APP = (label: string) => `{ label: ${JSON.stringify(label)}, sendTask() {}, registry: {}, config: {} }`;
const dir = tempDir('celeriac-load-app-');
let n = 0;

/** Write `source` as `name` in a fresh directory whose package.json says `type`. */
function module(name: string, source: string, type: 'module' | 'commonjs' = 'commonjs'): string {
  const at = join(dir, `m${++n}`);
  mkdirSync(at);
  writeFileSync(join(at, 'package.json'), JSON.stringify({ name: `m${n}`, type }));
  writeFileSync(join(at, name), source);
  return join(at, name);
}

const labelOf = async (spec: string): Promise<unknown> => ((await loadApp(spec)).app as unknown as { label: string }).label;

async function failure(spec: string): Promise<Error> {
  try {
    await loadApp(spec);
  } catch (err) {
    return err as Error;
  }
  throw new Error(`loadApp(${spec}) did not fail`);
}

describe('loadApp: -A in either module system', () => {
  it('ES modules: the app export, the default export, or the only app among the exports (.mjs, and .js under "type": "module")', async () => {
    expect(await labelOf(module('a.mjs', `export const app = ${APP('named')}; export const other = 1;`))).toBe('named');
    expect(await labelOf(module('b.mjs', `export default ${APP('default')};`))).toBe('default');
    expect(await labelOf(module('c.js', `export const celery = ${APP('only')};`, 'module'))).toBe('only');
  });

  it('CommonJS: module.exports = { app }, module.exports = app, exports.app (.cjs, and .js without "type": "module")', async () => {
    expect(await labelOf(module('a.js', `module.exports = { app: ${APP('object')}, add() {} };`))).toBe('object');
    expect(await labelOf(module('b.cjs', `module.exports = ${APP('bare')};`))).toBe('bare');
    expect(await labelOf(module('c.cjs', `exports.app = ${APP('exports')};`))).toBe('exports');
  });

  it('file:exportName picks an export, from ESM or from module.exports', async () => {
    expect(await labelOf(`${module('a.mjs', `export const app = ${APP('first')}; export const second = ${APP('second')};`)}:second`)).toBe('second');
    expect(await labelOf(`${module('b.cjs', `module.exports = { app: ${APP('first')}, second: ${APP('second')} };`)}:second`)).toBe('second');
    const err = await failure(`${module('c.cjs', `module.exports = { app: ${APP('first')} };`)}:nope`);
    expect(err.message).toMatch(/export "nope" is not a celeriac app/);
  });

  it('a module without an app, or no file, is APP_LOAD_FAILED saying what to export', async () => {
    const none = await failure(module('none.cjs', 'module.exports = { add() {} };'));
    expect(isCeleriacError(none, ErrorCodes.APP_LOAD_FAILED)).toBe(true);
    expect(none.message).toMatch(/exports no celeriac app .*module\.exports = \{ app \}/);
    expect(isCeleriacError(await failure(join(dir, 'missing.ts')), ErrorCodes.APP_LOAD_FAILED)).toBe(true);
  });

  it('a CommonJS module that require()s an ES module with top-level await: the error says what to do', async () => {
    const esm = module('tla.mjs', 'await Promise.resolve(); export const x = 1;');
    const err = await failure(module('needs-tla.cjs', `require(${JSON.stringify(esm)}); module.exports = { app: ${APP('x')} };`));
    expect(isCeleriacError(err, ErrorCodes.APP_LOAD_FAILED)).toBe(true);
    expect(err.message).toMatch(/top-level await: remove the top-level await/);
  });
});
