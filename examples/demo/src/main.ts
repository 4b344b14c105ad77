/**
 * `pnpm demo`: starts two worker processes on the embedded default broker (a
 * SQLite file, no server), then a client that walks through celeriac's basics
 * with readable output, then shuts everything down and exits 0.
 * Set CELERIAC_BROKER_URL / CELERIAC_RESULT_BACKEND to run the same code elsewhere.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chain, chord, group, TaskError } from '@celeriac/core';
import { add, app, brokenTask, flaky, mul, noop, onTaskError, onTaskSuccess, printTask, xsum } from './tasks.js';

const here = dirname(fileURLToPath(import.meta.url));
const cli = join(dirname(createRequire(import.meta.url).resolve('@celeriac/worker/package.json')), 'bin', 'celeriac.js');

function step(title: string): void {
  console.log(`\n▸ ${title}`);
}

/** Start `celeriac worker` (or `celeriac beat`) and resolve once it reports ready. */
function startProcess(name: string, command: 'worker' | 'beat' = 'worker', events = false): Promise<ChildProcess> {
  // With a dashboard watching, workers send events from their first task (-E), not from its first enable_events.
  const args = command === 'worker' ? ['worker', '-A', join(here, 'tasks.js'), '-c', '4', '-n', name, ...(events ? ['-E'] : [])] : ['beat', '-A', join(here, 'tasks.js')];
  const proc = spawn(process.execPath, [cli, ...args, '--loglevel', 'info'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: process.env,
  });
  return new Promise((resolve, reject) => {
    let buffered = '';
    proc.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      for (let nl = buffered.indexOf('\n'); nl !== -1; nl = buffered.indexOf('\n')) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (!line.startsWith('{')) console.log(line); // what tasks print
        else if (line.includes('"worker ready"') || line.includes('"beat ready"')) {
          console.log(`  ${command} ${name} ready (pid ${proc.pid})`);
          resolve(proc);
        } else if (/"level":(50|60)/.test(line)) console.log(`  [${name}] ${line}`);
      }
    });
    proc.on('exit', (code) => reject(new Error(`${command} ${name} exited early with code ${code}`)));
  });
}

const DASHBOARD = `http://127.0.0.1:${process.env.CELERIAC_DASHBOARD_PORT ?? '5555'}/`;

/** Whether a `celeriac dashboard` answers on its default address (it serves /api/broker without a token on loopback). */
async function dashboardRunning(): Promise<boolean> {
  try {
    const res = await fetch(new URL('api/broker', DASHBOARD), { signal: AbortSignal.timeout(500) });
    // A dashboard started with a token (or basic auth) answers 401 to a read without it: it is running.
    if (res.status === 401) return (res.headers.get('content-type') ?? '').includes('json');
    return res.ok && typeof ((await res.json()) as { url?: unknown }).url === 'string';
  } catch {
    return false;
  }
}

async function main(): Promise<void> {
  const embedded = !process.env.CELERIAC_BROKER_URL;
  const dashboard = await dashboardRunning();
  if (embedded && dashboard) {
    // A dashboard has the store open: empty its queues instead of deleting the file under it.
    const transport = await app.transport();
    await transport.purge(app.config.defaultQueue);
  } else if (embedded) {
    // Start from an empty embedded store so the output is the same every run.
    for (const suffix of ['', '-wal', '-shm']) rmSync(join(process.cwd(), '.celeriac', `celeriac.db${suffix}`), { force: true });
  }
  console.log(`celeriac demo — broker ${app.config.broker.redacted}, results ${app.config.backend.redacted}`);
  console.log(
    dashboard
      ? `dashboard: ${DASHBOARD} is running — watch the tasks arrive there`
      : `dashboard: none running; to watch this demo live, run \`pnpm exec celeriac dashboard -A examples/demo/dist/tasks.js\` in another terminal and open ${DASHBOARD}`,
  );

  step('Starting two worker processes and beat');
  const workers = await Promise.all([startProcess('demo-1@localhost', 'worker', dashboard), startProcess('demo-2@localhost', 'worker', dashboard), startProcess('beat', 'beat')]);

  step('delay() and get()');
  const sum = await add.delay(2, 3);
  console.log(`  add.delay(2, 3) → task ${sum.id}`);
  console.log(`  result: ${await sum.get({ timeout: 10_000 })}  (state ${await sum.state()})`);

  step('A failing task and its error');
  const failed = await brokenTask.delay();
  try {
    await failed.get({ timeout: 10_000 });
  } catch (err) {
    const e = err as TaskError;
    console.log(`  broken_task raised ${e.excType}: ${e.excMessage}  (code ${e.code})`);
  }

  step('A retry that succeeds');
  console.log(`  flaky: ${await (await flaky.delay()).get({ timeout: 20_000 })}`);

  step('A group, a chain and a chord');
  const squares = await app.send(group(Array.from({ length: 10 }, (_, i) => add.s(i, i))));
  console.log(`  group(add(i, i) for i < 10) → ${JSON.stringify(await squares.get({ timeout: 10_000 }))}`);
  const chained = await app.send(chain(add.s(4, 4), mul.s(8)));
  console.log(`  chain(add(4, 4), mul(8)) → ${await chained.get({ timeout: 10_000 })}`);
  const summed = await app.send(chord(Array.from({ length: 10 }, (_, i) => add.s(i, i)), xsum.s()));
  console.log(`  chord(add(i, i) for i < 10, xsum) → ${await summed.get({ timeout: 10_000 })}`);

  step('link and link_error callbacks');
  const successId = crypto.randomUUID();
  const errorId = crypto.randomUUID();
  await printTask.applyAsync(['something'], {}, { link: onTaskSuccess.s('print_task').set({ task_id: successId }) });
  const broken = await brokenTask.applyAsync([], {}, { linkError: onTaskError.s('broken_task').set({ task_id: errorId }) });
  console.log(`  link fired: ${await app.asyncResult<string>(successId).get({ timeout: 10_000 })}`);
  console.log(`  link_error fired: ${await app.asyncResult<string>(errorId).get({ timeout: 10_000 })}  (failed task ${broken.id})`);

  step('A periodic task (beat, every second)');
  const backend = await app.backend();
  const fired = new Set<string>();
  const watchedFrom = Date.now();
  while (fired.size < 2) {
    if (Date.now() - watchedFrom > 20_000) throw new Error('the periodic task did not fire twice within 20 s');
    // Each beat slot has a known task id: beat:<entry>:<slot time>.
    const now = Math.floor(Date.now() / 1000) * 1000;
    const ids = Array.from({ length: 5 }, (_, i) => `beat:heartbeat:${new Date(now - i * 1000).toISOString()}`);
    const metas = await backend.getMany(ids);
    for (const [i, id] of ids.entries()) {
      if (metas[i]?.status !== 'SUCCESS' || fired.has(id)) continue;
      fired.add(id);
      console.log(`  heartbeat ran for slot ${id.slice('beat:heartbeat:'.length)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  console.log('  periodic task fired twice');

  step('A batch of 1,000 tasks');
  const started = Date.now();
  const batch = [];
  for (let i = 0; i < 1000; i++) batch.push(await noop.delay());
  const transport = await app.transport();
  for (;;) {
    const left = await transport.length(app.config.defaultQueue);
    const done = 1000 - left;
    process.stdout.write(`\r  progress: ${'█'.repeat(Math.round(done / 40)).padEnd(25, '░')} ${String(done).padStart(4)}/1000 `);
    if (left === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await Promise.all(batch.map((r) => r.get({ timeout: 60_000 })));
  console.log(`\n  all 1000 done in ${Date.now() - started} ms`);

  step('Shutting down');
  await Promise.all(
    workers.map(
      (w) =>
        new Promise<void>((resolve, reject) => {
          w.removeAllListeners('exit');
          w.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`process exited with ${code}`))));
          w.kill('SIGTERM');
        }),
    ),
  );
  await app.close();
  console.log('  workers and beat stopped cleanly');
  if (dashboard) console.log(`  every task of this run is in the dashboard's history: ${DASHBOARD}tasks`);
  console.log('\ndemo finished ✔');
}

main().catch(async (err: unknown) => {
  console.error('demo failed:', err);
  await app.close().catch(() => undefined);
  process.exit(1);
});
