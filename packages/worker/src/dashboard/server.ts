/**
 * The dashboard's HTTP layer (hono): authentication and CSRF for every
 * request (auth.ts), the JSON API under `/api` (api.ts), the pages (ui/),
 * and one error shape — `{ error: { code, message } }` with the status
 * `HTTP_STATUS` gives the code. Pages get `csrfToken` and `authenticated` in
 * the context (env.ts).
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { Hono, type Context } from 'hono';
import { getCookie, setCookie } from 'hono/cookie';
import { bodyLimit } from 'hono/body-limit';
import { isCeleriacError, ErrorCodes } from '@celeriac/core/spi';
import type { DashboardEnv } from './env.js';
import { HTTP_STATUS } from './errors.js';
import type { DashboardService } from './model.js';
import { Authenticator, SESSION_COOKIE, type AuthConfig } from './auth.js';
import { mountApi } from './api.js';
import { closeStreams } from './sse.js';

/** Codes that mean the broker is away: 503 even when HTTP_STATUS has no entry. */
const BROKER_DOWN = new Set<string>([ErrorCodes.BROKER_UNAVAILABLE, ErrorCodes.BROKER_BLOCKED, ErrorCodes.TRANSPORT_CLOSED, ErrorCodes.TIMEOUT]);

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

function htmlPage(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)} · celeriac</title></head><body><h1>${escapeHtml(title)}</h1>${body}<p><a href="/">celeriac dashboard</a></p></body></html>`;
}

/** Status and body of an error, safe to show: a celeriac error's code and message, else a generic 500. */
export function errorResponse(err: unknown): { status: number; code: string; message: string } {
  if (isCeleriacError(err)) {
    const explicit = typeof err.details.status === 'number' ? err.details.status : undefined;
    const status = explicit ?? HTTP_STATUS[err.code] ?? (BROKER_DOWN.has(err.code) ? 503 : 500);
    return { status, code: err.code, message: err.message };
  }
  return { status: 500, code: 'INTERNAL', message: 'internal error (see the dashboard log)' };
}

export interface ServerOptions {
  readonly service: DashboardService;
  readonly auth: AuthConfig;
  /** Scrub secrets from any text an error carries to a response. */
  readonly scrub?: (text: string) => string;
  readonly log?: (line: string) => void;
}

/** The hono app: auth first, then the API, then the pages (when the ui module is there), then 404s. */
export async function createDashboardApp(options: ServerOptions): Promise<Hono<DashboardEnv>> {
  const { service } = options;
  const auth = new Authenticator(options.auth);
  const scrub = options.scrub ?? ((s: string) => s);
  const log = options.log ?? ((line: string) => process.stderr.write(`dashboard: ${line}\n`));
  const app = new Hono<DashboardEnv>();
  const isApi = (c: Context) => c.req.path === '/api' || c.req.path.startsWith('/api/');

  app.onError((err, c) => {
    const e = errorResponse(err);
    if (e.status >= 500 && !isCeleriacError(err)) log(`${c.req.method} ${c.req.path}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    const message = scrub(e.message);
    if (isApi(c)) return c.json({ error: { code: e.code, message } }, e.status as 500);
    return c.html(htmlPage(`${e.status} ${e.code}`, `<p>${escapeHtml(message)}</p>`), e.status as 500);
  });

  app.use('*', async (c, next) => {
    if (!auth.hostAllowed(c.req.header('host'))) {
      return c.text('this dashboard is bound to a loopback address: open it as 127.0.0.1 or localhost', 403);
    }
    // `?token=` (the printed URL): a session cookie, then the same URL without the token.
    const given = c.req.query('token');
    if (given !== undefined && (c.req.method === 'GET' || c.req.method === 'HEAD')) {
      if (!auth.tokenMatches(given)) return isApi(c) ? c.json({ error: { code: ErrorCodes.AUTH_REQUIRED, message: 'wrong token' } }, 401) : c.html(htmlPage('Wrong token', '<p>Open the URL the dashboard printed.</p>'), 401);
      setCookie(c, SESSION_COOKIE, auth.newSession(), { httpOnly: true, sameSite: 'Strict', path: '/', secure: new URL(c.req.url).protocol === 'https:' });
      const clean = new URL(c.req.url);
      clean.searchParams.delete('token');
      return c.redirect(`${clean.pathname}${clean.search}`, 303);
    }
    const who = auth.identify({ authorization: c.req.header('authorization') }, getCookie(c, SESSION_COOKIE));
    const authenticated = who.method !== 'none';
    if (!authenticated && options.auth.readsNeedAuth) {
      if (options.auth.basic) c.header('WWW-Authenticate', 'Basic realm="celeriac dashboard", charset="UTF-8"');
      const message = 'authentication required: open the URL with ?token=…, send Authorization: Bearer <token>, or basic auth';
      return isApi(c) ? c.json({ error: { code: ErrorCodes.AUTH_REQUIRED, message } }, 401) : c.html(htmlPage('Authentication required', `<p>${escapeHtml(message)}</p>`), 401);
    }
    if (!['GET', 'HEAD', 'OPTIONS'].includes(c.req.method)) {
      auth.checkAction(who, { csrf: c.req.header('x-csrf-token'), origin: c.req.header('origin'), referer: c.req.header('referer'), host: c.req.header('host') });
    }
    c.set('authenticated', authenticated);
    c.set('csrfToken', who.csrfToken);
    c.header('X-Frame-Options', 'DENY');
    c.header('Referrer-Policy', 'same-origin');
    await next();
  });

  app.use('/api/*', bodyLimit({ maxSize: 1024 * 1024, onError: (c) => c.json({ error: { code: ErrorCodes.ARGUMENT_INVALID, message: 'request body larger than 1 MiB' } }, 413) }));
  mountApi(app, service);

  // The pages are another engineer's module; until it is built, the API alone is served.
  const pagesModule = './ui/pages.js';
  const pages = (await import(pagesModule).catch((err: unknown) => {
    if ((err as { code?: string }).code === 'ERR_MODULE_NOT_FOUND') return null;
    throw err;
  })) as { mountPages?: (app: Hono<DashboardEnv>, service: DashboardService) => void } | null;
  if (pages?.mountPages) pages.mountPages(app, service);
  else app.get('/', (c) => c.html(htmlPage('celeriac dashboard', '<p>The pages are not built; the JSON API is at <a href="/api/overview">/api/overview</a>.</p>')));

  app.notFound((c) => {
    if (isApi(c)) return c.json({ error: { code: 'NOT_FOUND', message: `no API route ${c.req.method} ${c.req.path}` } }, 404);
    return c.html(htmlPage('Page not found', `<p>Nothing at ${escapeHtml(c.req.path)}.</p>`), 404);
  });
  return app;
}

export interface RunningServer {
  readonly server: Server;
  readonly port: number;
  close(): Promise<void>;
}

/** Listen on `host:port` (port 0: any free one); rejects when the address is taken. */
export async function listen(app: Hono<DashboardEnv>, host: string, port: number): Promise<RunningServer> {
  const { createAdaptorServer } = await import('@hono/node-server');
  const server = createAdaptorServer({ fetch: app.fetch, hostname: host }) as Server;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        // Live streams never end by themselves: end them, then drop idle keep-alive sockets.
        closeStreams();
        server.close(() => resolve());
        server.closeIdleConnections();
        setTimeout(() => server.closeAllConnections(), 1000).unref();
      }),
  };
}
