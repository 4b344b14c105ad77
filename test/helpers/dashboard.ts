import { afterEach } from 'vitest';
import { createApp, type CeleriacApp } from '@celeriac/core/spi';
import { celeriac, type Spawned } from './processes.js';
import { freePort } from '../servers/redis.js';

/** `celeriac dashboard` as a real process, and the client apps of the dashboard tests (closed after each test). */
const apps: CeleriacApp[] = [];
afterEach(async () => {
  for (const app of apps.splice(0)) await app.close();
});

/** A client app that also sends task-sent events (a task whose worker sends none is still in the history). */
export function client(broker: string, backend: string): CeleriacApp {
  const app = createApp({ name: 'dash-client', broker, backend, sendSentEvent: true });
  apps.push(app);
  return app;
}

export interface Dashboard {
  readonly proc: Spawned;
  readonly base: string;
  readonly token: string | null;
  get<T = unknown>(path: string, headers?: Record<string, string>): Promise<{ status: number; body: T; text: string }>;
  post<T = unknown>(path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: T; text: string }>;
}

/** Start `celeriac dashboard` and wait for its one ready line; requests carry the printed token as a bearer unless told otherwise. */
export async function dashboard(args: string[], env: Record<string, string> = {}): Promise<Dashboard> {
  const proc = celeriac(['dashboard', '--port', String(await freePort()), ...args], env);
  await Promise.race([
    proc.waitForOutput(/dashboard listening on \S+/, 30_000),
    proc.exited.then((code) => {
      throw new Error(`dashboard exited (${code}) before ready:\n${proc.output()}`);
    }),
  ]);
  const url = new URL(/dashboard listening on (\S+)/.exec(proc.output())![1]!);
  const token = url.searchParams.get('token');
  const auth = (headers: Record<string, string> = {}) => ('authorization' in headers || headers.cookie || !token ? headers : { authorization: `Bearer ${token}`, ...headers });
  const call = async <T>(method: string, path: string, body: unknown, headers: Record<string, string> | undefined) => {
    const res = await fetch(`${url.origin}${path}`, { method, headers: { 'content-type': 'application/json', ...auth(headers) }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // An HTML page: the text is the body.
    }
    return { status: res.status, body: parsed as T, text };
  };
  return {
    proc,
    base: url.origin,
    token,
    get: (path, headers) => call('GET', path, undefined, headers),
    post: (path, body, headers) => call('POST', path, body ?? {}, headers),
  };
}

export interface Task {
  id: string;
  name: string | null;
  state: string;
  worker: string | null;
  result: string | null;
  exception: string | null;
  traceback: string | null;
  timeline?: { type: string }[];
}
export interface Page {
  tasks: Task[];
  total: number;
}
