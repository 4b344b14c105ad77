import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

/** `pnpm check:deps`, run as CI runs it (node, a child process), against a fixture tree given as its root. */
const SCRIPT = join(import.meta.dirname, '../../scripts/check-deps.mjs');
const FIXTURES = join(import.meta.dirname, '../fixtures/deps-cycle');

function checkDeps(root: string): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [SCRIPT, root], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

const temps: string[] = [];
afterEach(() => {
  for (const t of temps.splice(0)) rmSync(t, { recursive: true, force: true });
});

/** A throwaway tree: `files` maps a path under the root to its text. */
function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'celeriac-check-deps-'));
  temps.push(root);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

describe('scripts/check-deps.mjs', () => {
  it('fails on a cycle closed by a type-only import and prints it as a path', () => {
    const r = checkDeps(FIXTURES);
    expect(r.status, r.out).toBe(1);
    expect(r.out).toContain('packages/core/src/a.ts → packages/core/src/b.ts → packages/core/src/a.ts');
  });

  it('passes the same files without the cycle', () => {
    const r = checkDeps(join(FIXTURES, 'no-cycle'));
    expect(r.status, r.out).toBe(0);
    expect(r.out).toContain('no import cycles among 3 files');
  });

  it('counts `export … from` and dynamic `import()` as edges, and folders as their index.ts', () => {
    const root = tree({
      'packages/core/src/a.ts': "export { b } from './b.js';\n",
      'packages/core/src/b.ts': "export const b = async (): Promise<unknown> => import('./c/index.js');\n",
      'packages/core/src/c/index.ts': "export * from '../a.js';\n",
    });
    const r = checkDeps(root);
    expect(r.status, r.out).toBe(1);
    expect(r.out).toContain('packages/core/src/a.ts → packages/core/src/b.ts → packages/core/src/c/index.ts → packages/core/src/a.ts');
  });

  it('lists every cycle of a tree, one line each', () => {
    const root = tree({
      'packages/core/src/a.ts': "import './b.js';\n",
      'packages/core/src/b.ts': "import './a.js';\n",
      'packages/worker/src/x.ts': "import type {} from './y.js';\n",
      'packages/worker/src/y.ts': "import type {} from './x.js';\n",
    });
    const r = checkDeps(root);
    expect(r.status, r.out).toBe(1);
    expect(r.out).toContain('Import cycles (type-only imports count): 2');
    expect(r.out).toContain('packages/core/src/a.ts → packages/core/src/b.ts → packages/core/src/a.ts');
    expect(r.out).toContain('packages/worker/src/x.ts → packages/worker/src/y.ts → packages/worker/src/x.ts');
  });

  it('fails when a backend imports the Redis or AMQP transport, and passes through drivers/', () => {
    const bad = checkDeps(
      tree({
        'packages/core/src/transport/redis/connection.ts': 'export const connect = 1;\n',
        'packages/core/src/backend/redis/redis-backend.ts': "import { connect } from '../../transport/redis/connection.js';\nexport const x = connect;\n",
      }),
    );
    expect(bad.status, bad.out).toBe(1);
    expect(bad.out).toContain('packages/core/src/backend/redis/redis-backend.ts imports packages/core/src/transport/redis/connection.ts');
    const good = checkDeps(
      tree({
        'packages/core/src/drivers/redis/connection.ts': 'export const connect = 1;\n',
        'packages/core/src/backend/redis/redis-backend.ts': "import { connect } from '../../drivers/redis/connection.js';\nexport const x = connect;\n",
      }),
    );
    expect(good.status, good.out).toBe(0);
  });

  it('still enforces the direction: core never depends on the worker', () => {
    const r = checkDeps(
      tree({
        'packages/core/package.json': JSON.stringify({ name: '@celeriac/core', dependencies: { '@celeriac/worker': 'workspace:*' } }),
        'packages/core/src/a.ts': "import type {} from '@celeriac/worker';\n",
      }),
    );
    expect(r.status, r.out).toBe(1);
    expect(r.out).toContain('packages/core/package.json depends on @celeriac/worker');
    expect(r.out).toContain('packages/core/src/a.ts imports @celeriac/worker');
  });
});
