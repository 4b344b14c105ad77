/**
 * Static assets under `/assets/`: our stylesheet and client script (strings
 * in this package) and uPlot's browser build, read from the installed `uplot`
 * package — resolved through Node's module resolution, so the dashboard works
 * wherever the package manager put it, with no bundling step.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { Hono } from 'hono';
import type { DashboardEnv } from '../env.js';
import { DASHBOARD_JS } from './client.js';
import { DASHBOARD_CSS } from './style.js';

const require = createRequire(import.meta.url);

interface Asset {
  readonly type: string;
  load(): Promise<string>;
}

const ASSETS: Readonly<Record<string, Asset>> = {
  'dashboard.css': { type: 'text/css; charset=utf-8', load: async () => DASHBOARD_CSS },
  'dashboard.js': { type: 'text/javascript; charset=utf-8', load: async () => DASHBOARD_JS },
  'uPlot.iife.min.js': { type: 'text/javascript; charset=utf-8', load: () => readFile(require.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8') },
  'uPlot.min.css': { type: 'text/css; charset=utf-8', load: () => readFile(require.resolve('uplot/dist/uPlot.min.css'), 'utf8') },
};

/** Served paths of uPlot's script and stylesheet (the overview page links them). */
export const UPLOT_JS = '/assets/uPlot.iife.min.js';
export const UPLOT_CSS = '/assets/uPlot.min.css';

/** Register `GET /assets/:file`; each file is read once and kept (they never change while running). */
export function mountAssets(app: Hono<DashboardEnv>): void {
  const cache = new Map<string, Promise<string>>();
  app.get('/assets/:file', async (c) => {
    const name = c.req.param('file');
    const asset = Object.hasOwn(ASSETS, name) ? ASSETS[name] : undefined;
    if (!asset) return c.text('not found', 404);
    let body = cache.get(name);
    if (!body) {
      body = asset.load();
      cache.set(name, body);
      // A failed read (a broken install) is retried on the next request rather than cached.
      body.catch(() => cache.delete(name));
    }
    return c.body(await body, 200, { 'Content-Type': asset.type, 'Cache-Control': 'public, max-age=300', 'X-Content-Type-Options': 'nosniff' });
  });
}
