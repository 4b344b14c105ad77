/**
 * The dashboard's pages rendered by a real Hono app over a fake of our own
 * DashboardService interface: every page renders empty, hostile values from
 * tasks and workers are escaped everywhere, bad input gets its status and
 * reason, actions show only to an authenticated request.
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Script } from 'node:vm';
import { describe, expect, it } from 'vitest';
import type { BrokerStatus, DashboardService, TaskDetail, TaskRecord } from '../../packages/worker/src/dashboard/model.js';

type PagesModule = typeof import('../../packages/worker/src/dashboard/ui/pages.js');
type HtmlModule = typeof import('../../packages/worker/src/dashboard/ui/html.js');
type ClientModule = typeof import('../../packages/worker/src/dashboard/ui/client.js');
const dist = join(import.meta.dirname, '../../packages/worker/dist/dashboard/ui');
const { mountPages } = (await import(join(dist, 'pages.js'))) as PagesModule;
const { escapeHtml, html, jsonScript } = (await import(join(dist, 'html.js'))) as HtmlModule;
const { DASHBOARD_JS } = (await import(join(dist, 'client.js'))) as ClientModule;

// hono is the worker package's dependency (not the repo root's): resolve it from there, as the server does.
type App = Parameters<PagesModule['mountPages']>[0];
const workerRequire = createRequire(join(import.meta.dirname, '../../packages/worker/package.json'));
const { Hono } = (await import(pathToFileURL(workerRequire.resolve('hono')).href)) as { Hono: new () => App };

const EVIL = '<script>alert("x")</script>';
const EVIL_ATTR = '"><img src=x onerror=alert(1)>';

const up: BrokerStatus = { url: 'redis://127.0.0.1:6379/0', reachable: true, error: null, since: 0 };

function record(over: Partial<TaskRecord> = {}): TaskRecord {
  return {
    id: 'aaaa-1111', name: 'tasks.add', state: 'SUCCESS', args: '(2, 3)', kwargs: '{}', result: '5', exception: null, traceback: null,
    worker: 'celeriac@w1', queue: 'celery', retries: 0, sentAt: 1, receivedAt: 2, startedAt: 3, endedAt: 4, runtime: 0.01,
    rootId: null, parentId: null, groupId: null, eta: null, expires: null, updatedAt: 1_700_000_000_000, ...over,
  };
}

function detail(r: TaskRecord): TaskDetail {
  return {
    ...r,
    timeline: [{ type: 'task-failed', at: 5, hostname: EVIL_ATTR, fields: { exception: EVIL } }],
    logs: [{ at: 5, level: 'INFO', msg: EVIL }],
    queueWaitMs: 1,
    relations: { parent: { id: EVIL_ATTR, name: EVIL, state: 'SUCCESS' }, root: null, children: [], group: [] },
  };
}

/** A fake of our own service interface: empty unless told otherwise. */
function fakeService(over: Partial<DashboardService> = {}): DashboardService {
  const none = async () => {
    throw new Error('not used');
  };
  return {
    overview: async () => ({ broker: up, workersOnline: 0, workers: 0, stateCounts: {}, failuresLastHour: 0, throughput: [], queues: null }),
    tasks: async (q) => ({ tasks: [], total: 0, offset: q.offset, limit: q.limit }),
    task: async () => undefined,
    throughput: async () => [],
    workers: async () => [],
    queues: async () => ({ queues: [], delayed: 0, deadLetters: 0, sampledAt: 0 }),
    deadLetters: async () => ({ total: 0, items: [] }),
    schedules: async () => [],
    broker: () => up,
    subscribe: () => () => undefined,
    revoke: none, resend: none, control: none, purge: none, requeueDeadLetters: none, discardDeadLetters: none, setScheduleEnabled: none,
    close: async () => undefined,
    ...over,
  };
}

function appFor(service: DashboardService, authenticated = true): App {
  const app = new Hono();
  app.use('*', async (c, next) => {
    c.set('csrfToken', 'tok"en<');
    c.set('authenticated', authenticated);
    await next();
  });
  mountPages(app, service);
  return app;
}

async function get(app: App, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; type: string | null }> {
  const res = await app.request(path, { headers });
  return { status: res.status, body: await res.text(), type: res.headers.get('content-type') };
}

/** No page may contain markup from data: only our own script tags, and no attribute from a value. */
function expectNoInjection(body: string): void {
  expect(body).not.toContain('<script>alert');
  expect(body).not.toContain('<img src=x');
  // Every value sits inside a quoted attribute or a text node: with quoted values removed, no tag carries a handler.
  const tags = body.replace(/="[^"]*"/g, '=""').match(/<[a-z][^>]*>/gi) ?? [];
  expect(tags.filter((t) => /\son\w+=/i.test(t))).toEqual([]);
  const scripts = body.match(/<script[^>]*>/g) ?? [];
  for (const tag of scripts) expect(tag).toMatch(/^<script (src="\/assets\/[\w.]+"|type="application\/json" id="[\w-]+")>$/);
}

describe('dashboard pages', () => {
  it('every page renders from an empty service, with the nav and the CSRF meta (escaped)', async () => {
    const app = appFor(fakeService());
    for (const [path, text] of [
      ['/', 'Tasks per second, last hour'],
      ['/tasks', 'No task matches this search.'],
      ['/workers', 'No worker seen yet.'],
      ['/queues', 'No dead letters.'],
      ['/schedules', 'No beat schedule known.'],
    ] as const) {
      const r = await get(app, path);
      expect(r.status, path).toBe(200);
      expect(r.type).toMatch(/^text\/html/);
      expect(r.body, path).toContain(text);
      expect(r.body).toContain('<nav><a href="/"');
      expect(r.body).toContain('<meta name="csrf-token" content="tok&quot;en&lt;">');
      expect(r.body).toContain('<div id="broker-banner" class="banner" role="alert" hidden>');
    }
    expect((await get(app, '/')).body).toContain('<script src="/assets/uPlot.iife.min.js"></script>');
    // Behind the escaping, no inline script may run at all.
    const res = await app.request('/tasks');
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self';");
  });

  it("the overview's chart data is tasks per second of each bucket", async () => {
    const throughput = [
      { at: 1_800_000_000_000, succeeded: 60, failed: 6 },
      { at: 1_800_000_060_000, succeeded: 30, failed: 0 },
    ];
    const app = appFor(fakeService({ overview: async () => ({ broker: up, workersOnline: 1, workers: 1, stateCounts: {}, failuresLastHour: 6, throughput, queues: null }) }));
    const body = (await get(app, '/')).body;
    const json = /<script type="application\/json" id="throughput-data">(.*?)<\/script>/.exec(body)![1]!;
    expect(JSON.parse(json)).toEqual({ t: [1_800_000_000, 1_800_000_060], succeeded: [1, 0.5], failed: [0.1, 0], bucketS: 60 });
    expect(body).toContain('90 succeeded</span>, <span class="legend-bad">6 failed</span>');
  });

  it('escapes hostile task, worker, queue, dead-letter and schedule values on every page', async () => {
    const evilTask = record({ id: EVIL_ATTR, name: EVIL, state: 'FAILURE', args: EVIL, kwargs: EVIL_ATTR, exception: EVIL, traceback: `</pre>${EVIL}`, worker: EVIL_ATTR, queue: EVIL });
    const app = appFor(
      fakeService({
        tasks: async () => ({ tasks: [evilTask], total: 1, offset: 0, limit: 50 }),
        task: async () => detail(evilTask),
        workers: async () => [
          { hostname: EVIL_ATTR, state: 'running', software: EVIL, heartbeatAgoS: 1, pool: EVIL, concurrency: 1, active: 0, processed: 1, queues: [EVIL], registered: [EVIL, EVIL_ATTR], loadavg: null, lastSeen: 0 },
        ],
        queues: async () => ({ queues: [{ name: EVIL_ATTR, ready: 1, unacked: 0, readyRate: 0 }], delayed: 0, deadLetters: 1, sampledAt: 0 }),
        deadLetters: async () => ({
          total: 1,
          items: [{ id: EVIL_ATTR, taskName: EVIL, queue: EVIL, reason: EVIL, message: EVIL, failedAt: 0, deliveryCount: 1, args: EVIL, kwargs: EVIL, traceback: EVIL }],
        }),
        schedules: async () => [{ name: EVIL_ATTR, task: EVIL, schedule: EVIL, enabled: true, lastRunAt: null, nextRunAt: null }],
        overview: async () => ({
          broker: { ...up, reachable: false, error: EVIL },
          workersOnline: 1, workers: 1, stateCounts: { FAILURE: 1 }, failuresLastHour: 1,
          throughput: [{ at: 0, succeeded: 1, failed: 1 }],
          queues: { queues: [{ name: EVIL, ready: 1, unacked: null, readyRate: null }], delayed: null, deadLetters: 1, sampledAt: 0 },
        }),
        broker: () => ({ ...up, reachable: false, error: `${EVIL}</div>` }),
      }),
    );
    for (const path of ['/', '/tasks', `/tasks/${encodeURIComponent(EVIL_ATTR)}`, '/workers', '/queues', '/schedules']) {
      const r = await get(app, path);
      expect(r.status, path).toBe(200);
      expectNoInjection(r.body);
      expect(r.body, path).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;');
    }
    const page = (await get(app, `/tasks/${encodeURIComponent(EVIL_ATTR)}`)).body;
    expect(page).toContain('&lt;/pre&gt;&lt;script&gt;');
    expect(page).toContain('data-action="resend" data-id="&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"');
  });

  it('the broker banner shows the reason when the broker is unreachable', async () => {
    const down: BrokerStatus = { ...up, reachable: false, error: 'connect ECONNREFUSED 127.0.0.1:6379' };
    const r = await get(appFor(fakeService({ broker: () => down })), '/tasks');
    expect(r.body).toContain('<div id="broker-banner" class="banner" role="alert">broker unreachable: connect ECONNREFUSED 127.0.0.1:6379; history stays browsable</div>');
  });

  it('an unknown task id is a 404 page; a malformed filter is a 400 with the reason, the form kept', async () => {
    const app = appFor(fakeService());
    const missing = await get(app, '/tasks/no-such-id');
    expect(missing.status).toBe(404);
    expect(missing.body).toContain('No task with id <code>no-such-id</code> is in the history.');
    const bad = await get(app, '/tasks?limit=abc&name=tasks.add');
    expect(bad.status).toBe(400);
    expect(bad.body).toContain('Invalid search (400):</strong> limit: &quot;abc&quot; is not an integer');
    expect(bad.body).toContain('name="name" value="tasks.add"');
    const badState = await get(app, '/tasks?state=SUCCESS&state=NOPE');
    expect(badState.status).toBe(400);
    expect(badState.body).toContain('unknown state &quot;NOPE&quot;');
  });

  it('the search form keeps the filter; sort headers and pages link with it', async () => {
    const tasks = Array.from({ length: 50 }, (_, i) => record({ id: `id-${i}` }));
    const app = appFor(fakeService({ tasks: async (q) => ({ tasks, total: 120, offset: q.offset, limit: q.limit }) }));
    const r = await get(app, '/tasks?name=tasks.*&state=SUCCESS,FAILURE&offset=50');
    expect(r.status).toBe(200);
    expect(r.body).toContain('name="state" value="SUCCESS" checked');
    expect(r.body).toContain('name="state" value="FAILURE" checked');
    expect(r.body).toContain('51–100 of 120');
    expect(r.body).toContain('href="/tasks?name=tasks.*&amp;state=SUCCESS%2CFAILURE&amp;offset=0"');
    expect(r.body).toContain('href="/tasks?name=tasks.*&amp;state=SUCCESS%2CFAILURE&amp;offset=100"');
    expect(r.body).toContain('href="/tasks?name=tasks.*&amp;state=SUCCESS%2CFAILURE&amp;offset=0&amp;sort=name&amp;order=desc"');
  });

  it('actions only for an authenticated request; otherwise how to sign in', async () => {
    const svc = fakeService({
      tasks: async () => ({ tasks: [record({ state: 'STARTED' })], total: 1, offset: 0, limit: 50 }),
      task: async () => detail(record({ state: 'STARTED' })),
      workers: async () => [{ hostname: 'celeriac@w1', state: 'running', software: null, heartbeatAgoS: 1, pool: 'async', concurrency: 4, active: 0, processed: 0, queues: ['celery'], registered: ['tasks.add'], loadavg: [0.1, 0.2, 0.3], lastSeen: 0 }],
    });
    for (const path of ['/tasks', '/tasks/aaaa-1111', '/workers', '/queues', '/schedules']) {
      const anon = await get(appFor(svc, false), path);
      expect(anon.body, path).not.toContain('data-action=');
      expect(anon.body, path).toContain('open the URL <code>celeriac dashboard</code> printed');
    }
    expect((await get(appFor(svc), '/tasks/aaaa-1111')).body).toContain('data-action="revoke"');
    expect((await get(appFor(svc), '/workers')).body).toContain('data-command="shutdown" data-confirm="Shut down worker celeriac@w1?');
  });

  it('X-Partial: 1 returns <main> alone, naming the live events that refresh it', async () => {
    const r = await get(appFor(fakeService()), '/workers', { 'X-Partial': '1' });
    expect(r.body.startsWith('<main id="main" data-title="Workers" data-live="worker" data-poll-ms="5000">')).toBe(true);
    expect(r.body).not.toContain('<html');
  });

  it('serves the stylesheet, the client script and uPlot from node_modules', async () => {
    const app = appFor(fakeService());
    const uplot = await get(app, '/assets/uPlot.iife.min.js');
    expect(uplot.status).toBe(200);
    expect(uplot.type).toMatch(/^text\/javascript/);
    expect(uplot.body).toContain('uPlot');
    expect((await get(app, '/assets/uPlot.min.css')).body).toContain('.uplot');
    expect((await get(app, '/assets/dashboard.js')).body).toBe(DASHBOARD_JS);
    expect((await get(app, '/assets/dashboard.css')).type).toMatch(/^text\/css/);
    expect((await get(app, '/assets/..%2Fpackage.json')).status).toBe(404);
    expect((await get(app, '/assets/toString')).status).toBe(404);
    // The client script is valid JavaScript (parsed, not run).
    expect(() => new Script(DASHBOARD_JS, { filename: 'dashboard.js' })).not.toThrow();
  });
});

describe('html escaping helper', () => {
  it('escapes text and attributes, leaves nested templates alone, drops null/false', () => {
    expect(escapeHtml(`<a href="x" title='y'>&\``)).toBe('&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&#96;');
    const inner = html`<b>${EVIL}</b>`;
    expect(html`<p title="${EVIL_ATTR}">${inner}${null}${false}${undefined}${[1, '<', html`<i></i>`]}</p>`.value).toBe(
      '<p title="&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"><b>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;</b>1&lt;<i></i></p>',
    );
  });

  it('a JSON block cannot be closed by a value', () => {
    const out = jsonScript('d', { s: '</script><script>alert(1)</script>', u: '\u2028' }).value;
    expect(out).not.toContain('</script><script>');
    expect(JSON.parse(out.replace(/^<script[^>]*>/, '').replace(/<\/script>$/, ''))).toEqual({ s: '</script><script>alert(1)</script>', u: '\u2028' });
  });
});
