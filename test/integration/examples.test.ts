/**
 * Smoke runs of the examples under examples/: each starts what its README says to start (workers through the
 * real `celeriac` CLI, on the example's built dist), runs its client, checks what the client printed, and stops
 * everything with a warm shutdown (exit code 0). Servers come from the integration setup; every example gets
 * its own key prefix or queue names.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { ROOT, startWorker, type Spawned } from '../helpers/processes.js';

const EXAMPLES = join(ROOT, 'examples');
const run = `${process.pid}-${Date.now()}`;

interface Ran {
  code: number | string;
  out: string;
}

/** Run one of an example's scripts to its end (bounded), as `node dist/<script>` from the example's directory. */
function runNode(example: string, script: string, env: Record<string, string>, timeoutMs = 60_000): Promise<Ran> {
  const proc = spawn(process.execPath, [join('dist', script)], { cwd: join(EXAMPLES, example), env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (b: Buffer) => (out += b.toString()));
  proc.stderr.on('data', (b: Buffer) => (out += b.toString()));
  const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve) =>
    proc.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? signal ?? -1, out });
    }),
  );
}

/** A worker of an example, started from its directory as its README does: `celeriac worker -A dist/tasks.js ...`. */
function exampleWorker(example: string, args: string[], env: Record<string, string>): Promise<Spawned> {
  return startWorker(['-A', join(EXAMPLES, example, 'dist', 'tasks.js'), ...args], env);
}

/** SIGTERM (warm shutdown) and the exit code. */
async function warmStop(...procs: Spawned[]): Promise<(number | string)[]> {
  for (const p of procs) p.proc.kill('SIGTERM');
  return Promise.all(procs.map((p) => p.exited));
}

describe('examples/redis: a retried task and a chord on Redis', () => {
  it('the client prints the receipt after three attempts and the chord’s top words', async () => {
    const env = { CELERIAC_BROKER_URL: `${inject('redisUrl')}?keyPrefix=ex-redis-${run}:` };
    const workers = [await exampleWorker('redis', ['-c', '4', '-n', 'a@localhost'], env), await exampleWorker('redis', ['-c', '4', '-n', 'b@localhost'], env)];
    const client = await runNode('redis', 'client.js', env);
    expect(client.out).toMatch(/sent payments\.charge as task [0-9a-f-]{36}/);
    expect(client.out).toContain('charged order-1001: 4999 cents, after 3 attempts (state SUCCESS)');
    expect(client.out).toContain('top words across 3 documents: the=5, dog=3, fox=2');
    expect(client.code).toBe(0);
    const log = workers.map((w) => w.output()).join('\n');
    expect(log).toContain('gateway timed out charging order-1001 (attempt 1)');
    expect(log).toContain('gateway timed out charging order-1001 (attempt 2)');
    expect(await warmStop(...workers)).toEqual([0, 0]);
  });
});

describe('examples/rabbitmq: routing to two queues and a priority queue on RabbitMQ', () => {
  it('orders and reports go to their own workers, and the urgent report overtakes the waiting ones', async () => {
    const prefix = `ex-${run}-`;
    const env = { CELERIAC_BROKER_URL: inject('amqpUrl'), QUEUE_PREFIX: prefix };
    const orders = await exampleWorker('rabbitmq', ['-n', 'orders@localhost'], env);
    const reports = await exampleWorker('rabbitmq', ['-Q', `${prefix}reports`, '-c', '1', '-n', 'reports@localhost'], env);
    const client = await runNode('rabbitmq', 'client.js', env);
    expect(client.out, client.out).toMatch(/order A-1 \(1 items\) placed by worker pid (\d+)/);
    for (const id of ['A-1', 'A-2', 'A-3']) expect(client.out).toContain(`order ${id} (${id.slice(2)} items) placed by worker pid ${orders.pid}`);
    expect(client.out).toContain('reports ran in this order: month-end, urgent-audit, weekly-1, weekly-2, weekly-3');
    expect(client.out).toContain(`all reports rendered by worker pid ${reports.pid}`);
    expect(client.code).toBe(0);
    expect(await warmStop(orders, reports)).toEqual([0, 0]);
  });
});
