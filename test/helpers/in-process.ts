import { afterEach } from 'vitest';
import { createApp, type AppOptions, type CeleriacApp } from '@celeriac/core';
import { Worker } from '@celeriac/worker';
import { memoryUrl } from './wait.js';

const apps: CeleriacApp[] = [];
const workers: Worker[] = [];

/** An app on a memory:// broker of its own, closed after the test. */
export function memoryApp(label: string, options: AppOptions = {}): CeleriacApp {
  const app = createApp({ name: label, broker: memoryUrl(label), ...options });
  apps.push(app);
  return app;
}

/** A real worker in this process (silent), stopped after the test. */
export async function startInProcessWorker(app: CeleriacApp, options: ConstructorParameters<typeof Worker>[1] = {}): Promise<Worker> {
  const worker = new Worker(app, { logLevel: 'silent', ...options });
  workers.push(worker);
  await worker.start();
  return worker;
}

afterEach(async () => {
  for (const w of workers.splice(0)) await w.stop({ timeoutMs: 1000 });
  for (const a of apps.splice(0)) await a.close();
});
