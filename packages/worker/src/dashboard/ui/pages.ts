/**
 * The browser UI's routes: server-rendered pages read from the
 * DashboardService (every page reads without JS), their assets, and the
 * partial responses (`X-Partial: 1` → `<main>` only) the client script swaps
 * in on live events. Actions are POSTs to the JSON API, made by the client
 * script; pages only show their buttons to an authenticated request.
 */
import type { Context, Hono } from 'hono';
import { isCeleriacError } from '@celeriac/core/spi';
import type { DashboardEnv } from '../env.js';
import { HTTP_STATUS } from '../errors.js';
import { parseTaskQuery } from '../history/query.js';
import type { DashboardService } from '../model.js';
import { mountAssets, UPLOT_CSS, UPLOT_JS } from './assets.js';
import { html } from './html.js';
import { mainElement, page, type MainSpec, type PageName } from './layout.js';
import { overviewMain } from './overview.js';
import { alertBox } from './parts.js';
import { queuesMain, type QueuesPageInput } from './queues.js';
import { schedulesMain } from './schedules.js';
import { taskDetailMain, taskNotFoundMain } from './task-detail.js';
import { FILTER_FIELDS, tasksMain, type FilterParams } from './tasks.js';
import { workersMain } from './workers.js';

type Ctx = Context<DashboardEnv>;
type Status = 200 | 400 | 401 | 404 | 500 | 503 | 504;

/** Dead letters per page on the queues page. */
const DEAD_LETTER_PAGE = 50;

/**
 * Defence in depth behind the escaping: no inline script runs, scripts only
 * from this origin. (uPlot styles its elements through the DOM, which CSP allows.)
 */
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

interface Extra {
  readonly scripts?: readonly string[];
  readonly styles?: readonly string[];
}

/** The page, or with `X-Partial: 1` its `<main>` alone. */
function respond(c: Ctx, service: DashboardService, active: PageName | null, main: MainSpec, status: Status, extra: Extra): Response {
  c.header('Content-Security-Policy', CSP);
  c.header('X-Content-Type-Options', 'nosniff');
  c.header('Cache-Control', 'no-store');
  c.header('Vary', 'X-Partial');
  if (c.req.header('X-Partial') === '1') return c.html(mainElement(main).value, status);
  return c.html(page({ ...main, ...extra, active, csrfToken: c.get('csrfToken'), broker: service.broker() }).value, status);
}

/** The status and the person-readable reason of an error a page can explain; undefined for a bug (rethrown). */
function explain(err: unknown): { status: Status; message: string } | undefined {
  if (!isCeleriacError(err)) return undefined;
  return { status: (HTTP_STATUS[err.code] ?? 500) as Status, message: err.message };
}

/** Run a section's read; an explainable failure becomes its message instead of failing the page. */
async function section<T>(read: () => Promise<T>): Promise<{ value: T; error?: undefined } | { value: null; error: string; status: Status }> {
  try {
    return { value: await read() };
  } catch (err) {
    const e = explain(err);
    if (!e) throw err;
    // An error may quote a broker URL: never with its password on a page.
    return { value: null, error: e.message.replace(/\/\/([^/@:\s]*):[^/@\s]*@/g, '//$1:***@'), status: e.status };
  }
}

function errorMain(title: string, status: Status, message: string): MainSpec {
  return { title, body: html`<h1>${title}</h1>${alertBox('error', `${status}:`, message)}` };
}

/** The tasks page's URL params, as the form shows them back (repeated `state` joined by commas). */
function filterParams(url: URL): FilterParams {
  const p: Record<string, string> = {};
  for (const key of [...FILTER_FIELDS, 'sort', 'order', 'offset', 'limit'] as const) {
    const values = url.searchParams.getAll(key).filter((v) => v !== '');
    if (values.length) p[key] = values.join(',');
  }
  return p;
}

/**
 * Register the pages on the dashboard's app: `/`, `/tasks`, `/tasks/:id`,
 * `/workers`, `/queues`, `/schedules` and `/assets/*`. The server must have
 * set `csrfToken` and `authenticated` (DashboardEnv) before these run.
 */
export function mountPages(app: Hono<DashboardEnv>, service: DashboardService): void {
  mountAssets(app);
  const send = (c: Ctx, active: PageName | null, main: MainSpec, status: Status = 200, extra: Extra = {}): Response => respond(c, service, active, main, status, extra);

  app.get('/', async (c) => {
    const r = await section(() => service.overview());
    if (r.error !== undefined) return send(c, 'overview', errorMain('Overview', r.status, r.error), r.status);
    return send(c, 'overview', overviewMain(r.value), 200, { scripts: [UPLOT_JS], styles: [UPLOT_CSS] });
  });

  app.get('/tasks', async (c) => {
    const url = new URL(c.req.url);
    const params = filterParams(url);
    const auth = c.get('authenticated');
    const r = await section(() => service.tasks(parseTaskQuery(url.searchParams)));
    if (r.error !== undefined) return send(c, 'tasks', tasksMain(params, null, auth, r.error), r.status);
    return send(c, 'tasks', tasksMain(params, r.value, auth));
  });

  app.get('/tasks/:id', async (c) => {
    const id = c.req.param('id');
    const r = await section(() => service.task(id));
    if (r.error !== undefined) return send(c, 'tasks', errorMain('Task', r.status, r.error), r.status);
    if (!r.value) return send(c, 'tasks', taskNotFoundMain(id), 404);
    return send(c, 'tasks', taskDetailMain(r.value, c.get('authenticated')));
  });

  app.get('/workers', async (c) => {
    const r = await section(() => service.workers());
    return send(c, 'workers', workersMain(r.value ?? [], c.get('authenticated'), r.error), r.error !== undefined ? r.status : 200);
  });

  app.get('/queues', async (c) => {
    const raw = Number(new URL(c.req.url).searchParams.get('offset') ?? 0);
    const offset = Number.isSafeInteger(raw) && raw > 0 ? raw : 0;
    // Both reads need the broker; while it is down each says so in its place, and the page is still a 200.
    const [queues, dead] = await Promise.all([section(() => service.queues()), section(() => service.deadLetters({ offset, limit: DEAD_LETTER_PAGE }))]);
    const input: QueuesPageInput = {
      queues: queues.value,
      dead: dead.value ? { ...dead.value, offset, limit: DEAD_LETTER_PAGE } : null,
      ...(queues.error !== undefined ? { queuesError: queues.error } : {}),
      ...(dead.error !== undefined ? { deadError: dead.error } : {}),
    };
    return send(c, 'queues', queuesMain(input, c.get('authenticated')));
  });

  app.get('/schedules', async (c) => {
    const r = await section(() => service.schedules());
    return send(c, 'schedules', schedulesMain(r.value ?? [], c.get('authenticated'), r.error), r.error !== undefined ? r.status : 200);
  });
}
