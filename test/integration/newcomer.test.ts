/**
 * The newcomer's path (issue #17): the three packages as `pnpm pack` makes them, installed with npm
 * into projects outside this monorepo — a CommonJS one (`npm init -y`, npm's default) and an
 * ES-module one — then the README's first steps: `npx celeriac worker -A ./tasks.ts`, a client that
 * awaits a result, beat firing, `celeriac status`; `-A` with CommonJS and `.mjs` modules; a
 * `require('@celeriac/core')` client; `tsc --noEmit` with `skipLibCheck: false`; and `celeriac init`.
 *
 * One real install (it builds better-sqlite3, most of the time); the other projects start from a
 * copy of its node_modules — a project's `"type"` does not change what npm installs — and then run
 * `npm install` themselves.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/processes.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

const root = tempDir('celeriac-newcomer-');
const tarballDir = join(root, 'tarballs');
const cache = join(root, 'npm-cache');
const PACKAGES = ['core', 'worker', 'beat'] as const;
let tarballs: string[] = [];

/** A clean user shell: none of pnpm's, npm's or vitest's variables, no broker URL; one npm cache for the run. */
function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(npm_|pnpm_|PNPM_|VITEST|CELERIAC_)/i.test(k) || k === 'NODE_OPTIONS' || k === 'INIT_CWD') continue;
    env[k] = v;
  }
  return { ...env, npm_config_cache: cache, npm_config_update_notifier: 'false', npm_config_audit: 'false', npm_config_fund: 'false', ...extra };
}

interface Proc {
  readonly proc: ChildProcess;
  readonly label: string;
  output(): string;
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<void>;
  readonly exited: Promise<number | string>;
}

const started = new Set<Proc>();

/** Start a command in its own process group (npx → sh → node), so stopping it stops all of them. */
function start(cmd: string, args: string[], cwd: string, env: Record<string, string> = {}): Proc {
  const proc = spawn(cmd, args, { cwd, env: userEnv(env), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  proc.stdout.on('data', (b: Buffer) => (out += b.toString()));
  proc.stderr.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | string>((resolve) => proc.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  const label = `${cmd} ${args.join(' ')} (in ${cwd})`;
  const p: Proc = {
    proc,
    label,
    output: () => out,
    waitForOutput: async (pattern, timeoutMs = 30_000) => {
      await Promise.race([
        waitFor(() => pattern.test(out), `${label}: output ${pattern}\n--- output so far ---\n${out}`, timeoutMs),
        exited.then((code) => {
          if (!pattern.test(out)) throw new Error(`${label} exited (${code}) before printing ${pattern}:\n${out}`);
        }),
      ]);
    },
    exited,
  };
  started.add(p);
  return p;
}

const groupAlive = (pid: number): boolean => {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** SIGTERM to the whole group; waits until every process in it is gone (SIGKILL after the deadline). */
async function stop(p: Proc, timeoutMs = 15_000): Promise<void> {
  const pid = p.proc.pid!;
  if (groupAlive(pid)) process.kill(-pid, 'SIGTERM');
  try {
    await waitFor(() => !groupAlive(pid), `${p.label} to stop`, timeoutMs, 25);
  } finally {
    if (groupAlive(pid)) process.kill(-pid, 'SIGKILL');
  }
  await p.exited;
}

/** Run a command to its end; fails with its output unless it exits 0 (or `expectCode`). */
async function run(cmd: string, args: string[], cwd: string, opts: { timeoutMs?: number; expectCode?: number; env?: Record<string, string> } = {}): Promise<string> {
  const p = start(cmd, args, cwd, opts.env);
  const timeoutMs = opts.timeoutMs ?? 60_000;
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([
    p.exited,
    new Promise<string>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs))),
  ]);
  clearTimeout(timer);
  if (code === 'timeout') await stop(p, 2000);
  if (code !== (opts.expectCode ?? 0)) throw new Error(`${p.label}: exit ${code}, expected ${opts.expectCode ?? 0}:\n${p.output()}`);
  return p.output();
}

/** What a process prints for a promise left unobserved or an exception nothing caught. */
const UNHANDLED = /celeriac: (unhandled rejection|uncaught exception)|UnhandledPromiseRejection|Uncaught (Exception|Error)|triggerUncaughtException/;

afterEach(async () => {
  const all = [...started];
  started.clear();
  for (const p of all) if (groupAlive(p.proc.pid!)) await stop(p, 5000);
  const bad = all.filter((p) => UNHANDLED.test(p.output()));
  if (bad.length) throw new Error(`unhandled error in a spawned process:\n${bad.map((p) => `${p.label}\n${p.output()}`).join('\n---\n')}`);
});

const npmInstall = (cwd: string, args: string[]): Promise<string> =>
  run('npm', ['install', ...args, '--no-audit', '--no-fund', '--prefer-offline', '--cache', cache], cwd, { timeoutMs: 240_000 });

/** The README's "First steps" tasks.ts, as a newcomer copies it. */
function readmeTasks(): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const block = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!).find((code) => code.startsWith('// tasks.ts') && code.includes('createApp'));
  if (!block) throw new Error('README.md has no ```ts block starting with "// tasks.ts" (its "First steps")');
  return block;
}

/** A CommonJS module: zod 3 (the project's own, through Standard Schema) types nothing here but validates on the worker. */
const CJS_TASKS = `const { createApp } = require('@celeriac/core');
const { z } = require('zod');

const app = createApp({ name: 'cjs' });
const add = app.task({ name: 'tasks.add', args: z.tuple([z.number(), z.number()]) }, async (x, y) => x + y);
module.exports = { app, add };
`;
/** \`module.exports = app\` */
const CJS_APP_OBJECT = `const { createApp } = require('@celeriac/core');

const app = createApp({ name: 'bare' });
app.task({ name: 'tasks.add' }, async (x, y) => x + y);
module.exports = app;
`;
const MJS_TASKS = `import { createApp } from '@celeriac/core';

const app = createApp({ name: 'mjs' });
export const add = app.task({ name: 'tasks.add' }, async (x, y) => x + y);
export default app;
`;
/** A client that require()s @celeriac/core and sends by name. */
const REQUIRE_CLIENT = `const { createApp } = require('@celeriac/core');

const app = createApp({ name: 'client' });
app
  .sendTask('tasks.add', [20, 22])
  .then((r) => r.get({ timeout: 20000 }))
  .then((v) => console.log('require client got ' + JSON.stringify(v)))
  .finally(() => app.close());
`;
/** A typed client of tasks.ts: CommonJS has no top-level await. */
const TS_CLIENT_CJS = `import { add, app } from './tasks.js';

async function main(): Promise<void> {
  const sum: number = await add.delay(1, 2).get({ timeout: 20_000 });
  console.log(\`ts client got \${sum}\`);
  await app.close();
}
void main();
`;
const TS_CLIENT_ESM = `import { add, app } from './tasks.js';

const sum: number = await add.delay(1, 2).get({ timeout: 20_000 });
console.log(\`ts client got \${sum}\`);
await app.close();
`;
/** Beat: an interval entry; the task leaves a line in the worker's log. */
const BEAT_TASKS = `import { createApp } from '@celeriac/core';

export const app = createApp({
  name: 'periodic',
  broker: 'sqlite://./.celeriac/beat.db',
  beatSchedule: [{ name: 'tick-every-second', task: 'tasks.tick', schedule: { every: 1000 }, args: ['tock'] }],
});

export const tick = app.task({ name: 'tasks.tick' }, async (word: string) => {
  console.log(\`tick ran: \${word}\`);
  return word;
});
`;
/** Compiled with skipLibCheck: false: every entry's declarations, zod 3 schemas typing a task. */
const TYPE_CHECK = `import { z } from 'zod';
import { createApp, type AsyncResult } from '@celeriac/core';
import { Worker } from '@celeriac/worker';
import { Beat, RedisBeatStore } from '@celeriac/beat';
import { RedisTransport, AmqpTransport, openDb } from '@celeriac/core/spi';

const app = createApp({ name: 'check', broker: 'memory://check' });
const mul = app.task({ name: 'tasks.mul', args: z.tuple([z.number(), z.number()]) }, async (x, y) => x * y);
export const product: Promise<number> = mul.delay(2, 3).get();
export const handle: Promise<AsyncResult<number>> = mul.delay(2, 3);
// @ts-expect-error the zod 3 schema says numbers
void mul.delay('2', 3);
export const used = [Worker, Beat, RedisBeatStore, RedisTransport, AmqpTransport, openDb];
`;
const TSCONFIG = JSON.stringify(
  {
    compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, skipLibCheck: false, noEmit: true },
    files: ['tasks.ts', 'client.ts', 'check.ts'],
  },
  null,
  2,
);

const cjsDir = join(root, 'cjs-project');
const esmDir = join(root, 'esm-project');

/** `npx celeriac worker -A <module>` until ready, a client run against it, then a clean stop. */
async function roundTrip(dir: string, module: string, client: [string, string[]], expected: RegExp, workerArgs: string[] = []): Promise<void> {
  const worker = start('npx', ['celeriac', 'worker', '-A', module, '-c', '2', ...workerArgs], dir);
  await worker.waitForOutput(/worker ready/, 40_000);
  const out = await run(client[0], client[1], dir, { timeoutMs: 40_000 });
  expect(out, `client against -A ${module}`).toMatch(expected);
  await stop(worker);
  expect(worker.output()).toMatch(/worker stopped/);
}

beforeAll(async () => {
  mkdirSync(tarballDir);
  for (const pkg of PACKAGES) await run('pnpm', ['pack', '--pack-destination', tarballDir], join(ROOT, 'packages', pkg), { timeoutMs: 60_000 });
  tarballs = readdirSync(tarballDir)
    .filter((f) => f.endsWith('.tgz'))
    .map((f) => join(tarballDir, f));
  // The CommonJS project: npm's default.
  mkdirSync(cjsDir);
  await run('npm', ['init', '-y'], cjsDir);
  await npmInstall(cjsDir, [...tarballs, 'tsx', 'typescript', 'zod@^3.24']);
  // The ES-module project: the same dependencies, "type": "module".
  mkdirSync(esmDir);
  cpSync(join(cjsDir, 'node_modules'), join(esmDir, 'node_modules'), { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
  cpSync(join(cjsDir, 'package-lock.json'), join(esmDir, 'package-lock.json'));
  const pkg = JSON.parse(readFileSync(join(cjsDir, 'package.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(join(esmDir, 'package.json'), JSON.stringify({ ...pkg, name: 'esm-project', type: 'module' }, null, 2));
  await npmInstall(esmDir, []);
}, 300_000);

describe('the packages as published', () => {
  it('pnpm pack rewrites workspace:* to the version; each tarball has a README, a LICENSE, engines, exports with types', async () => {
    expect(tarballs).toHaveLength(3);
    for (const tgz of tarballs) {
      const files = (await run('tar', ['-tzf', tgz], root)).split('\n');
      expect(files, tgz).toEqual(expect.arrayContaining(['package/README.md', 'package/LICENSE', 'package/package.json', 'package/dist/index.js', 'package/dist/index.d.ts']));
      const manifest = JSON.parse(await run('tar', ['-xOzf', tgz, 'package/package.json'], root)) as {
        name: string;
        version: string;
        engines?: { node?: string };
        repository?: unknown;
        publishConfig?: unknown;
        exports: Record<string, string | { types?: string }>;
        dependencies?: Record<string, string>;
      };
      expect(JSON.stringify(manifest), manifest.name).not.toContain('workspace:');
      expect(manifest.engines?.node).toBe('>=20.19');
      expect(manifest.repository).toBeDefined();
      expect(manifest.publishConfig).toEqual({ access: 'public' });
      for (const [entry, target] of Object.entries(manifest.exports)) {
        if (entry !== './package.json') expect(typeof target === 'object' && target.types, `${manifest.name} ${entry}`).toMatch(/\.d\.ts$/);
      }
      for (const [dep, range] of Object.entries(manifest.dependencies ?? {})) if (dep.startsWith('@celeriac/')) expect(range).toBe(manifest.version);
    }
  });
});

describe('a CommonJS project (npm init -y)', () => {
  it('the README first steps: npx celeriac worker -A ./tasks.ts, a typed client awaiting add.delay(1, 2).get(), a require() client', async () => {
    writeFileSync(join(cjsDir, 'tasks.ts'), readmeTasks());
    writeFileSync(join(cjsDir, 'client.ts'), TS_CLIENT_CJS);
    writeFileSync(join(cjsDir, 'client.cjs'), REQUIRE_CLIENT);
    const worker = start('npx', ['celeriac', 'worker', '-A', './tasks.ts', '-c', '2'], cjsDir);
    await worker.waitForOutput(/worker ready/, 40_000);
    expect(await run('npx', ['tsx', 'client.ts'], cjsDir)).toMatch(/ts client got 3\b/);
    expect(await run('node', ['client.cjs'], cjsDir)).toMatch(/require client got 42\b/);
    const status = JSON.parse(await run('npx', ['celeriac', 'status', '-A', './tasks.ts', '--json'], cjsDir)) as { queues: { name: string }[]; workers: unknown[] };
    expect(status.queues.map((q) => q.name)).toContain('celery');
    expect(status.workers).toHaveLength(1);
    await stop(worker);
    expect(worker.output()).toMatch(/worker stopped/);
  });

  it('-A loads a CommonJS tasks.js (module.exports = { app }), module.exports = app, and a tasks.mjs (export default app)', async () => {
    writeFileSync(join(cjsDir, 'tasks.js'), CJS_TASKS);
    writeFileSync(join(cjsDir, 'bare.cjs'), CJS_APP_OBJECT);
    writeFileSync(join(cjsDir, 'tasks.mjs'), MJS_TASKS);
    for (const module of ['./tasks.js', './bare.cjs', './tasks.mjs']) await roundTrip(cjsDir, module, ['node', ['client.cjs']], /require client got 42\b/);
  });

  it('the process pool loads tasks.ts in its children too (-P process)', async () => {
    await roundTrip(cjsDir, './tasks.ts', ['npx', ['tsx', 'client.ts']], /ts client got 3\b/, ['-P', 'process']);
  });

  it('npx celeriac beat -A ./beat.ts fires an interval entry, and a worker runs it', async () => {
    writeFileSync(join(cjsDir, 'beat.ts'), BEAT_TASKS);
    const worker = start('npx', ['celeriac', 'worker', '-A', './beat.ts', '-c', '1'], cjsDir);
    await worker.waitForOutput(/worker ready/, 40_000);
    const beat = start('npx', ['celeriac', 'beat', '-A', './beat.ts'], cjsDir);
    await beat.waitForOutput(/beat ready/, 40_000);
    await worker.waitForOutput(/tick ran: tock/, 20_000);
    await stop(beat);
    await stop(worker);
  });

  it('tsc --noEmit with skipLibCheck: false compiles the project against every entry point, with zod 3 typing a task', async () => {
    writeFileSync(join(cjsDir, 'check.ts'), TYPE_CHECK);
    writeFileSync(join(cjsDir, 'tsconfig.json'), TSCONFIG);
    await run('npx', ['tsc', '-p', '.'], cjsDir, { timeoutMs: 60_000 });
  });
});

describe('an ES-module project ("type": "module")', () => {
  it('the README first steps with top-level await; -A loads a .cjs CommonJS module and a .mjs module; tsc with skipLibCheck: false', async () => {
    writeFileSync(join(esmDir, 'tasks.ts'), readmeTasks());
    writeFileSync(join(esmDir, 'client.ts'), TS_CLIENT_ESM);
    writeFileSync(join(esmDir, 'client.cjs'), REQUIRE_CLIENT);
    writeFileSync(join(esmDir, 'tasks.cjs'), CJS_TASKS);
    writeFileSync(join(esmDir, 'tasks.mjs'), MJS_TASKS);
    await roundTrip(esmDir, './tasks.ts', ['npx', ['tsx', 'client.ts']], /ts client got 3\b/);
    for (const module of ['./tasks.cjs', './tasks.mjs']) await roundTrip(esmDir, module, ['node', ['client.cjs']], /require client got 42\b/);
    writeFileSync(join(esmDir, 'check.ts'), TYPE_CHECK);
    writeFileSync(join(esmDir, 'tsconfig.json'), TSCONFIG);
    await run('npx', ['tsc', '-p', '.'], esmDir, { timeoutMs: 60_000 });
  });
});

describe('celeriac init', () => {
  it('scaffolds a project into an empty dir that installs, type-checks and runs (worker + client); a second init refuses to overwrite', async () => {
    const dir = join(root, 'fresh');
    const out = await run('npx', ['celeriac', 'init', dir], cjsDir);
    expect(out).toMatch(/created src\/tasks\.ts/);
    const again = await run('npx', ['celeriac', 'init', dir], cjsDir, { expectCode: 2 });
    expect(again).toMatch(/writes no file that exists.*src\/tasks\.ts/);
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { type?: string; scripts: Record<string, string> };
    expect(pkg.type).toBe('module');
    expect(Object.keys(pkg.scripts)).toEqual(expect.arrayContaining(['worker', 'beat', 'client']));
    cpSync(join(cjsDir, 'node_modules'), join(dir, 'node_modules'), { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
    await npmInstall(dir, tarballs);
    await run('npm', ['run', 'typecheck'], dir, { timeoutMs: 60_000 });
    const worker = start('npm', ['run', 'worker'], dir);
    await worker.waitForOutput(/worker ready/, 40_000);
    const client = await run('npm', ['run', 'client'], dir, { timeoutMs: 40_000 });
    expect(client).toMatch(/add\(1, 2\) = 3/);
    expect(client).toMatch(/hello, world/);
    await stop(worker);
    expect(worker.output()).toMatch(/worker stopped/);
  });

  it('--cjs scaffolds a CommonJS project whose client runs', async () => {
    const dir = join(root, 'fresh-cjs');
    await run('npx', ['celeriac', 'init', dir, '--cjs'], cjsDir);
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { type?: string };
    expect(pkg.type).toBeUndefined();
    cpSync(join(root, 'fresh', 'node_modules'), join(dir, 'node_modules'), { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
    await npmInstall(dir, tarballs);
    await run('npm', ['run', 'typecheck'], dir, { timeoutMs: 60_000 });
    const worker = start('npm', ['run', 'worker'], dir);
    await worker.waitForOutput(/worker ready/, 40_000);
    expect(await run('npm', ['run', 'client'], dir, { timeoutMs: 40_000 })).toMatch(/add\(1, 2\) = 3/);
    await stop(worker);
  });
});
