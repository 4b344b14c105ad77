/**
 * The dashboard in a real Chromium (Debian's, driven by playwright-core) against the real
 * `celeriac dashboard` process, real workers and the run's private Redis. Every check is on
 * what a person sees: text on the page, a chart's canvas, a row leaving a table — and the
 * live ones happen without a reload. Screenshots go to test/artifacts/dashboard/; with
 * CELERIAC_DOCS_IMAGES=1 the overview and task pages also to docs/images/ for the README
 * (not on every run: the tracked images would change with each).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { chain, createApp, Signature, type CeleriacApp } from '@celeriac/core';
import { celeriac, ROOT, startWorker, type Spawned } from '../helpers/processes.js';
import { tempDir } from '../helpers/tmp.js';
import { startRedis } from '../servers/redis.js';

const APP = join(ROOT, 'test', 'fixtures', 'apps', 'dashboard-tasks.ts');
const ARTIFACTS = join(ROOT, 'test', 'artifacts', 'dashboard');
const DOCS_IMAGES = process.env.CELERIAC_DOCS_IMAGES === '1' ? join(ROOT, 'docs', 'images') : ARTIFACTS;
const dir = tempDir('celeriac-dashboard-browser-');

let browser: Browser;
beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
});
afterAll(async () => {
  await browser?.close();
});

const contexts: BrowserContext[] = [];
const clients: CeleriacApp[] = [];
afterEach(async () => {
  for (const c of contexts.splice(0)) await c.close();
  for (const c of clients.splice(0)) await c.close();
});

interface World {
  readonly env: Record<string, string>;
  readonly client: CeleriacApp;
  readonly dashboard: Spawned;
  /** The dashboard's origin, `http://127.0.0.1:PORT`. */
  readonly base: string;
  /** A browser page signed in through the URL the dashboard printed. */
  readonly page: Page;
  worker(name: string, extra?: string[], env?: Record<string, string>): Promise<Spawned>;
  shot(name: string): Promise<void>;
}

let n = 0;

/** A fresh key prefix on the private Redis, a dashboard on it, and a signed-in browser page. */
async function world(redisUrl = inject('redisUrl')): Promise<World> {
  const id = ++n;
  const url = `${redisUrl}?keyPrefix=dashui${process.pid}-${id}:`;
  const env = { CELERIAC_BROKER_URL: url, CELERIAC_RESULT_BACKEND: url, CELERIAC_LOGLEVEL: 'info' };
  const client = createApp({ broker: url, backend: url, sendSentEvent: true });
  clients.push(client);
  const dashboard = celeriac(['dashboard', '-A', APP, '--port', '0', '--history', join(dir, `history-${id}.db`)], env);
  await Promise.race([
    dashboard.waitForOutput(/dashboard listening on http:\/\/\S+\?token=\w+/, 30_000),
    dashboard.exited.then((code) => {
      throw new Error(`dashboard exited (${code}) before listening:\n${dashboard.output()}`);
    }),
  ]);
  const printed = /dashboard listening on (http:\/\/\S+)/.exec(dashboard.output())![1]!;
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  contexts.push(context);
  const page = await context.newPage();
  page.setDefaultTimeout(30_000);
  // Opening the printed URL signs this browser in (a session cookie) and lands on the overview.
  await page.goto(printed);
  return {
    env,
    client,
    dashboard,
    base: new URL(printed).origin,
    page,
    worker: (name, extra = [], more = {}) => startWorker(['-A', APP, '-E', '-n', `${name}@%h`, '-c', '2', ...extra], { ...env, ...more }),
    shot: async (name) => {
      await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
    },
  };
}

/** The text of the flash messages an action shows. */
const flash = (page: Page) => page.getByTestId('flash');

describe('celeriac dashboard in Chromium', () => {
  it('the overview shows the throughput chart and the workers online', async () => {
    const w = await world();
    await w.worker('dash-a');
    const sent = [];
    for (let i = 0; i < 24; i++) sent.push(await w.client.sendTask('dash.add', [i, i]));
    for (let i = 0; i < 4; i++) sent.push(await w.client.sendTask('dash.fail', [`overview ${i}`]));
    await Promise.all(sent.map((r) => r.get({ timeout: 20_000 }).catch(() => undefined)));
    const { page } = w;
    await page.goto(`${w.base}/`);
    // uPlot drew into the chart's box (a canvas exists only when the client script ran).
    await page.locator('#throughput-chart canvas').first().waitFor();
    // The counts update live as the worker's heartbeat and the tasks' events arrive.
    await page.getByTestId('workers-online').filter({ hasText: /^1$/ }).waitFor();
    await page.locator('.chart-totals', { hasText: '24 succeeded, 4 failed' }).waitFor();
    await page.getByTestId('stat-failures').filter({ hasText: '4' }).waitFor();
    expect(await page.locator('h1').innerText()).toBe('Overview');
    // The queue drained: its depth follows the broker's samples live.
    await page.locator('tr[data-queue=celery] td:nth-child(2)', { hasText: /^0$/ }).waitFor();
    await w.shot('overview');
    await page.screenshot({ path: join(DOCS_IMAGES, 'dashboard-overview.png') });
  });

  it('finds a task by name and by id; a failing task shows its traceback and timeline', async () => {
    const w = await world();
    await w.worker('dash-a');
    const ok = await w.client.sendTask('dash.add', [2, 3]);
    const bad = await w.client.sendTask('dash.fail', ['the disk is full']);
    expect(await ok.get({ timeout: 20_000 })).toBe(5);
    await expect(bad.get({ timeout: 20_000 })).rejects.toThrow(/kaput: the disk is full/);
    const { page } = w;

    // By name, through the search form.
    await page.goto(`${w.base}/tasks`);
    await page.fill('input[name=name]', 'dash.fail');
    await page.click('form.search button[type=submit]');
    const rows = page.locator('table.tasks tbody tr');
    await rows.filter({ hasText: bad.id }).filter({ hasText: 'FAILURE' }).waitFor();
    expect(await rows.filter({ hasText: ok.id }).count()).toBe(0);
    await w.shot('tasks-by-name');

    // By id.
    await page.fill('input[name=name]', '');
    await page.fill('input[name=id]', ok.id);
    await page.click('form.search button[type=submit]');
    await rows.filter({ hasText: ok.id }).filter({ hasText: 'SUCCESS' }).waitFor();
    expect(await rows.count()).toBe(1);
    await page.getByTestId('task-count').filter({ hasText: '1–1 of 1' }).waitFor();

    // The failing task's page: exception, traceback, the timeline of its events, its log line.
    await page.fill('input[name=id]', bad.id);
    await page.click('form.search button[type=submit]');
    await page.click(`table.tasks a:text-is("${bad.id}")`);
    await page.waitForURL(`${w.base}/tasks/${bad.id}`);
    await page.getByTestId('traceback').filter({ hasText: 'Error: kaput: the disk is full' }).waitFor();
    expect(await page.getByTestId('exception').innerText()).toContain('kaput: the disk is full');
    const timeline = page.getByTestId('timeline');
    await timeline.filter({ hasText: 'task-failed' }).waitFor();
    for (const event of ['task-sent', 'task-received', 'task-started', 'task-failed']) expect(await timeline.innerText()).toContain(event);
    await page.getByTestId('logs').filter({ hasText: 'about to fail: the disk is full' }).waitFor();
    expect(await page.locator('h1').innerText()).toMatch(/dash\.fail\s+FAILURE/);
    await w.shot('task-failed');
    await page.screenshot({ path: join(DOCS_IMAGES, 'dashboard-task.png'), fullPage: true });

    // Re-send: a new task with the same arguments, linked from the result message.
    await page.click('button[data-action=resend]');
    expect(await page.locator('#confirm-text').innerText()).toBe('Send dash.fail again with the same arguments?');
    await page.click('#confirm-ok');
    const sentAgain = flash(page).filter({ hasText: 'Re-sent as a new task:' });
    await sentAgain.waitFor();
    const newId = await sentAgain.locator('a').innerText();
    expect(newId).not.toBe(bad.id);
    await sentAgain.locator('a').click();
    await page.waitForURL(`${w.base}/tasks/${newId}`);
    await page.getByTestId('traceback').filter({ hasText: 'Error: kaput: the disk is full' }).waitFor();
  });

  it("links a chain's steps: the parent from the child, the child from the parent", async () => {
    const w = await world();
    await w.worker('dash-a');
    const last = await w.client.send(chain(new Signature({ task: 'dash.add', args: [1, 2] }), new Signature({ task: 'dash.add', args: [10] })));
    expect(await last.get({ timeout: 20_000 })).toBe(13);
    const { page } = w;
    await page.goto(`${w.base}/tasks/${last.id}`);
    await page.locator('h1', { hasText: 'SUCCESS' }).waitFor();
    const parent = page.getByTestId('relation-parent').locator('a');
    await parent.waitFor();
    const parentId = await parent.innerText();
    expect(parentId).not.toBe(last.id);
    await parent.click();
    await page.waitForURL(`${w.base}/tasks/${parentId}`);
    expect(await page.getByTestId('args').innerText()).toBe('(1, 2)');
    await page.getByTestId('relation-children').locator('a', { hasText: last.id }).waitFor();
    await w.shot('task-chain-parent');
  });

  it('revokes a queued task from the UI and shows it REVOKED', async () => {
    const w = await world();
    // Queued where no worker consumes yet: it waits in the broker, as a backlog does.
    const queued = await w.client.sendTask('dash.add', [7, 7], {}, { queue: 'dash-later', countdown: 1000 });
    const { page } = w;
    await page.goto(`${w.base}/tasks/${queued.id}`);
    // Until its task-sent event is in the history the page says "not found"; the event turns it into the task.
    await page.locator('h1', { hasText: 'SENT' }).waitFor();
    await page.click('button[data-action=revoke]:text-is("Revoke")');
    await page.locator('#confirm-dialog[open]').waitFor();
    expect(await page.locator('#confirm-text').innerText()).toBe(`Revoke task ${queued.id}?`);
    await page.click('#confirm-ok');
    await flash(page).filter({ hasText: 'revoke sent for 1 task(s)' }).waitFor();
    // A worker for that queue starts, finds the task revoked and skips it: the page turns REVOKED by itself.
    await w.worker('dash-later', ['-Q', 'dash-later']);
    await page.locator('h1', { hasText: 'REVOKED' }).waitFor();
    await page.getByTestId('timeline').filter({ hasText: 'task-revoked' }).waitFor();
    await w.shot('task-revoked');
  });

  it('bulk-revokes the tasks selected in the list; the list turns REVOKED live', async () => {
    const w = await world();
    const queued = [];
    for (let i = 0; i < 3; i++) queued.push(await w.client.sendTask('dash.add', [i, 0], {}, { queue: 'dash-later' }));
    const { page } = w;
    await page.goto(`${w.base}/tasks?queue=dash-later`);
    const rows = page.locator('table.tasks tbody tr');
    for (const r of queued) await rows.filter({ hasText: r.id }).filter({ hasText: 'SENT' }).waitFor();
    await page.check('input[data-select-all]');
    await page.click('button[data-action=revoke-selected]:text-is("Revoke selected")');
    expect(await page.locator('#confirm-text').innerText()).toBe('Revoke the selected tasks?');
    await page.click('#confirm-ok');
    await flash(page).filter({ hasText: 'revoke sent for 3 task(s)' }).waitFor();
    await w.worker('dash-later', ['-Q', 'dash-later']);
    for (const r of queued) await rows.filter({ hasText: r.id }).filter({ hasText: 'REVOKED' }).waitFor();
    await w.shot('tasks-bulk-revoked');
  });

  it('requeues a dead letter: it leaves the list and runs', async () => {
    const w = await world();
    const v1 = await w.worker('dash-v1');
    // v1 does not know dash.late: it parks the message in the dead-letter store.
    const late = await w.client.sendTask<number>('dash.late', [4]);
    const { page } = w;
    await page.goto(`${w.base}/queues`);
    const row = page.locator('table.dead-letters tbody tr', { hasText: late.id });
    // The page follows the queue samples live: the parked message shows up without a reload.
    await row.waitFor();
    expect(await row.innerText()).toContain('dash.late');
    expect(await row.locator('.reason').innerText()).toBe('TASK_UNKNOWN');
    await w.shot('dead-letter');
    // The fixed release is deployed: v1 goes, v2 (which knows dash.late) comes.
    v1.proc.kill('SIGTERM');
    await v1.exited;
    await w.worker('dash-v2', [], { DASH_WITH_LATE: '1' });
    await row.locator('button[data-action=requeue]').click();
    await flash(page).filter({ hasText: 'Requeued 1 dead letter(s).' }).waitFor();
    await row.waitFor({ state: 'detached' });
    await page.getByTestId('no-dead-letters').waitFor();
    expect(await late.get({ timeout: 20_000 })).toBe(40);
    await w.shot('dead-letter-requeued');
  });

  it('shows a worker going offline live, without a reload', async () => {
    const w = await world();
    const doomed = await w.worker('dash-doomed');
    await w.worker('dash-survivor');
    const { page } = w;
    await page.goto(`${w.base}/workers`);
    const doomedRow = page.locator('tr[data-worker^="dash-doomed@"]');
    await doomedRow.getByTestId('worker-state').filter({ hasText: 'running' }).waitFor();
    await page.locator('tr[data-worker^="dash-survivor@"]').getByTestId('worker-state').filter({ hasText: 'running' }).waitFor();
    // A mark in this document: a reload would lose it.
    await page.evaluate(() => ((globalThis as Record<string, unknown>).dashboardTestMark = 'same document'));
    doomed.proc.kill('SIGKILL');
    await doomed.exited;
    // No worker-offline event from a SIGKILL: its heartbeats stop and the monitor calls it offline.
    await doomedRow.getByTestId('worker-state').filter({ hasText: 'offline' }).waitFor({ timeout: 45_000 });
    expect(await page.evaluate(() => (globalThis as Record<string, unknown>).dashboardTestMark)).toBe('same document');
    expect(await page.locator('tr[data-worker^="dash-survivor@"]').getByTestId('worker-state').innerText()).toBe('running');
    await page.getByTestId('workers-summary').filter({ hasText: '1 online of 2' }).waitFor();
    await w.shot('worker-offline');
  }, 90_000);

  it('controls a worker from the UI: suspend, resume, and shutdown after confirming', async () => {
    const w = await world();
    const worker = await w.worker('dash-ctl');
    const { page } = w;
    await page.goto(`${w.base}/workers`);
    const row = page.locator('tr[data-worker^="dash-ctl@"]');
    const state = row.getByTestId('worker-state');
    await state.filter({ hasText: 'running' }).waitFor();
    await row.locator('button[data-command=suspend]').click();
    expect(await page.locator('#confirm-text').innerText()).toMatch(/^Stop dash-ctl@\S+ consuming new tasks\?$/);
    await page.click('#confirm-ok');
    await flash(page).filter({ hasText: 'suspended: not taking new tasks' }).waitFor();
    await state.filter({ hasText: 'suspended' }).waitFor();
    await row.locator('button[data-command=resume]').click();
    await state.filter({ hasText: 'running' }).waitFor();
    // Pool +1: the concurrency column follows (the page re-reads itself while open).
    const concurrency = row.locator('td:nth-child(5)');
    expect(await concurrency.innerText()).toBe('2');
    await row.locator('button[data-command=pool_grow]').click();
    await flash(page).filter({ hasText: 'pool will grow' }).waitFor();
    await concurrency.filter({ hasText: /^3$/ }).waitFor();
    await row.locator('select[name=task_name]').selectOption('dash.add');
    await row.locator('input[name=rate_limit]').fill('10/m');
    await row.locator('button[data-command=rate_limit]').click();
    await flash(page).filter({ hasText: 'new rate limit set successfully' }).waitFor();
    await row.locator('button[data-command=shutdown]').click();
    expect(await page.locator('#confirm-text').innerText()).toContain('Shut down worker dash-ctl@');
    // Cancelling does nothing; confirming shuts it down.
    await page.click('#confirm-dialog button[value=cancel]');
    await page.locator('#confirm-dialog[open]').waitFor({ state: 'hidden' });
    expect(await state.innerText()).toBe('running');
    await row.locator('button[data-command=shutdown]').click();
    await page.click('#confirm-ok');
    expect(await worker.exited).toBe(0);
    await state.filter({ hasText: 'offline' }).waitFor();
    await w.shot('worker-shutdown');
  });

  it('lists beat entries and disables / enables one', async () => {
    const w = await world();
    const { page } = w;
    await page.goto(`${w.base}/schedules`);
    const row = page.locator('tr[data-schedule=dash-nightly]');
    await row.waitFor();
    expect(await row.innerText()).toContain('dash.add');
    expect(await row.innerText()).toContain('0 3 * * *');
    await row.locator('.chip', { hasText: /^enabled$/ }).waitFor();
    await row.locator('button[data-action=schedule]', { hasText: 'Disable' }).click();
    expect(await page.locator('#confirm-text').innerText()).toBe('Disable schedule dash-nightly? Beat stops sending dash.add for it.');
    await page.click('#confirm-ok');
    await flash(page).filter({ hasText: 'Schedule dash-nightly disabled.' }).waitFor();
    await row.locator('.chip', { hasText: /^disabled$/ }).waitFor();
    await w.shot('schedule-disabled');
    await row.locator('button[data-action=schedule]', { hasText: 'Enable' }).click();
    await flash(page).filter({ hasText: 'Schedule dash-nightly enabled.' }).waitFor();
    await row.locator('.chip', { hasText: /^enabled$/ }).waitFor();
  });

  it('a broker outage shows the banner live, the history stays browsable, and it clears by itself', async () => {
    const redis = await startRedis();
    try {
      const w = await world(redis.url);
      const worker = await w.worker('dash-outage');
      const done = await w.client.sendTask('dash.add', [20, 22]);
      expect(await done.get({ timeout: 20_000 })).toBe(42);
      worker.proc.kill('SIGTERM');
      await worker.exited;
      const { page } = w;
      await page.goto(`${w.base}/tasks?id=${done.id}`);
      await page.locator('table.tasks tbody tr', { hasText: done.id }).filter({ hasText: 'SUCCESS' }).waitFor();
      const banner = page.locator('#broker-banner');
      expect(await banner.isVisible()).toBe(false);
      await redis.kill9();
      await banner.filter({ hasText: /^broker unreachable: .+; history stays browsable$/ }).waitFor();
      await w.shot('broker-down');
      // The history is read without the broker: the task and its page still show.
      await page.goto(`${w.base}/tasks/${done.id}`);
      await page.locator('h1', { hasText: 'SUCCESS' }).waitFor();
      expect(await page.getByTestId('result').innerText()).toBe('42');
      await banner.filter({ hasText: 'broker unreachable' }).waitFor();
      await redis.restart();
      await banner.waitFor({ state: 'hidden' });
    } finally {
      await redis.stop();
    }
  }, 90_000);

  it('without signing in: pages read, no action buttons, and how to sign in; bad input explained', async () => {
    const w = await world();
    const context = await browser.newContext();
    contexts.push(context);
    const anon = await context.newPage();
    await anon.goto(`${w.base}/tasks`);
    await anon.getByTestId('sign-in-note').filter({ hasText: 'open the URL celeriac dashboard printed' }).waitFor();
    expect(await anon.locator('button[data-action]').count()).toBe(0);
    const missing = await anon.goto(`${w.base}/tasks/no-such-task`);
    expect(missing?.status()).toBe(404);
    expect(await anon.getByTestId('not-found').innerText()).toContain('No task with id no-such-task is in the history.');
    const bad = await anon.goto(`${w.base}/tasks?state=DONE`);
    expect(bad?.status()).toBe(400);
    expect(await anon.locator('.alert-error').innerText()).toContain('state: unknown state "DONE"');
    await anon.screenshot({ path: join(ARTIFACTS, 'bad-filter.png'), fullPage: true });
  });
});
