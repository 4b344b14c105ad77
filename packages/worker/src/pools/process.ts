import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { RetryRequested, SoftTimeLimitExceeded, TaskError } from '@celeriac/core/spi';
import { Interrupt } from '../state.js';
import { ChildTaskError, PoolStartError, TimeLimitExceeded, WorkerLostError } from './errors.js';
import type { FromChild, ToChild } from './ipc.js';
import type { Pool, PoolJob } from './pool.js';

export interface ProcessPoolOptions {
  /** The module that defines the app and its tasks (the worker's `-A`). */
  readonly module: string;
  /** Number of child processes; each runs one task at a time. */
  readonly size: number;
  /** Replace a child after it ran this many tasks. */
  readonly maxTasksPerChild?: number;
  /** Replace a child whose resident memory passes this many MB after a task. */
  readonly maxMemoryPerChildMb?: number;
  /** After a terminate request, kill the child if the task has not stopped within this many ms. */
  readonly terminateGraceMs?: number;
  readonly logLevel?: string;
  /** Start each child with its young generation capped at about this many MB (`--max-semi-space-size`); 0 or unset: V8's default. */
  readonly youngGenerationMb?: number;
}

interface Child {
  readonly proc: ChildProcess;
  tasksRun: number;
  job: { jobId: number; settle: (outcome: { ok: true; value: unknown } | { ok: false; error: unknown }) => void } | undefined;
  retiring: boolean;
}

const CHILD_ENTRY = fileURLToPath(new URL('./child.js', import.meta.url));

/**
 * Runs tasks in child processes that load the same module as the worker
 * (Celery's prefork): CPU-bound work, isolation, hard time limits by kill, and
 * recycling by task count or memory. A child that dies mid-task is replaced
 * and its task follows the worker-lost rule (returned to the queue).
 */
export class ProcessPool implements Pool {
  readonly kind = 'process' as const;
  readonly capabilities = Object.freeze({ hardTimeLimit: true });
  private readonly children = new Set<Child>();
  private readonly idle: Child[] = [];
  private readonly waiting: ((child: Child) => void)[] = [];
  private nextJobId = 1;
  private closing = false;
  /** Children to keep (changed at run time by `pool_grow` / `pool_shrink`). */
  private size: number;

  constructor(private readonly options: ProcessPoolOptions) {
    this.size = options.size;
  }

  async start(): Promise<void> {
    await Promise.all(Array.from({ length: this.size }, () => this.spawn()));
  }

  /** Grow (spawn children now) or shrink (retire idle children now, busy ones after their task). */
  async resize(size: number): Promise<void> {
    this.size = size;
    const missing = size - this.children.size;
    if (missing > 0) await Promise.all(Array.from({ length: missing }, () => this.spawn()));
    for (const child of [...this.idle]) if (this.liveChildren() > this.size) this.retire(child);
  }

  private liveChildren(): number {
    let n = 0;
    for (const c of this.children) if (!c.retiring) n++;
    return n;
  }

  private retire(child: Child): void {
    const at = this.idle.indexOf(child);
    if (at !== -1) this.idle.splice(at, 1);
    child.retiring = true;
    this.sendTo(child, { type: 'exit' });
  }

  private spawn(): Promise<Child> {
    const young = this.options.youngGenerationMb;
    const proc = fork(CHILD_ENTRY, [], {
      // A child is started by us, so its cap is a start-up flag (exact), unlike the worker's own.
      ...(young ? { execArgv: [...process.execArgv, `--max-semi-space-size=${Math.max(1, Math.round(young / 2))}`] } : {}),
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, CELERIAC_CHILD_MODULE: this.options.module, CELERIAC_LOGLEVEL: this.options.logLevel ?? 'info' },
      serialization: 'advanced',
    });
    const child: Child = { proc, tasksRun: 0, job: undefined, retiring: false };
    this.children.add(child);
    return new Promise<Child>((resolve, reject) => {
      proc.on('message', (msg: FromChild) => {
        if (msg.type === 'ready') {
          this.release(child);
          resolve(child);
        } else if (msg.type === 'fatal') {
          reject(new PoolStartError(`process pool child could not start: ${msg.message}`, { pid: proc.pid, ...(msg.code ? { childCode: msg.code } : {}) }));
        } else if (msg.type === 'done' && child.job?.jobId === msg.jobId) {
          const { settle } = child.job;
          child.job = undefined;
          child.tasksRun++;
          settle(msg.ok ? { ok: true, value: msg.value } : { ok: false, error: childError(msg) });
          this.afterTask(child, msg.rss);
        } else if (msg.type === 'update-state') {
          this.jobHandlers.get(msg.jobId)?.state(msg.state, msg.meta);
        } else if (msg.type === 'log') {
          this.jobHandlers.get(msg.jobId)?.log?.(msg.level, msg.msg, msg.at);
        }
      });
      proc.on('exit', (code, signal) => {
        this.children.delete(child);
        const at = this.idle.indexOf(child);
        if (at !== -1) this.idle.splice(at, 1);
        reject(new PoolStartError(`process pool child exited during start (code ${code}, signal ${signal})`, { pid: proc.pid, exitCode: code, signal }));
        if (child.job) {
          const { settle } = child.job;
          child.job = undefined;
          settle({ ok: false, error: new WorkerLostError('?', `child ${proc.pid} exited with ${signal ?? `code ${code}`}`) });
        }
        // Keep the pool at size: a crashed or recycled child is replaced.
        if (!this.closing && this.liveChildren() < this.size) void this.spawn().catch(() => undefined);
      });
    });
  }

  /** What a running job's child may send besides its outcome: custom states and log lines. */
  private readonly jobHandlers = new Map<number, { state: (state: string, meta: unknown) => void; log: PoolJob['onLog'] }>();

  private afterTask(child: Child, rss: number): void {
    const { maxTasksPerChild, maxMemoryPerChildMb } = this.options;
    const tooMany = maxTasksPerChild !== undefined && child.tasksRun >= maxTasksPerChild;
    const tooBig = maxMemoryPerChildMb !== undefined && rss > maxMemoryPerChildMb * 1024 * 1024;
    if (tooMany || tooBig || this.liveChildren() > this.size) {
      this.retire(child);
      return;
    }
    this.release(child);
  }

  private release(child: Child): void {
    const next = this.waiting.shift();
    if (next) next(child);
    else this.idle.push(child);
  }

  private acquire(): Promise<Child> {
    const child = this.idle.shift();
    return child ? Promise.resolve(child) : new Promise((resolve) => this.waiting.push(resolve));
  }

  private sendTo(child: Child, msg: ToChild): void {
    if (child.proc.connected) child.proc.send(msg);
  }

  async run({ task, args, ctx, onLog }: PoolJob): Promise<unknown> {
    const child = await this.acquire();
    const jobId = this.nextJobId++;
    // The child does not wait for its custom state to be stored (it only posted it), so a store that
    // fails is reported here, in the task's log, rather than left as an unhandled rejection.
    const state = (name: string, meta: unknown): void => {
      ctx.updateState(name, meta).catch((err: unknown) => ctx.log.warn(`could not store state ${name}: ${err instanceof Error ? err.message : String(err)}`));
    };
    this.jobHandlers.set(jobId, { state, log: onLog });
    const hardMs = task.options.timeLimit;
    let hardTimer: NodeJS.Timeout | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    const outcome = await new Promise<{ ok: true; value: unknown } | { ok: false; error: unknown }>((settle) => {
      child.job = { jobId, settle };
      const onAbort = (): void => {
        const reason: unknown = ctx.signal.reason;
        if (reason instanceof SoftTimeLimitExceeded) {
          this.sendTo(child, { type: 'abort', jobId, reason: 'soft', seconds: (reason.details.seconds as number) ?? 0 });
        } else if (reason instanceof Interrupt) {
          this.sendTo(child, { type: 'abort', jobId, reason: reason.kind });
          // A task that ignores its signal is stopped by killing its process.
          killTimer = setTimeout(() => child.proc.kill('SIGKILL'), reason.kind === 'shutdown' ? 0 : (this.options.terminateGraceMs ?? 2000));
        }
      };
      // Aborted before we listened (a revoke that came while a child was being found): act on it now,
      // since an aborted signal fires no event for a listener added later.
      if (ctx.signal.aborted) onAbort();
      else ctx.signal.addEventListener('abort', onAbort, { once: true });
      if (hardMs !== undefined) {
        hardTimer = setTimeout(() => {
          if (child.job?.jobId !== jobId) return;
          child.job = undefined;
          settle({ ok: false, error: new TimeLimitExceeded(ctx.id, hardMs / 1000) });
          child.proc.kill('SIGKILL');
        }, hardMs);
      }
      this.sendTo(child, { type: 'run', jobId, taskName: task.name, args: [...args], ctx: {
        id: ctx.id, name: ctx.name, retries: ctx.retries, rootId: ctx.rootId, parentId: ctx.parentId, groupId: ctx.groupId, hostname: ctx.hostname, args: ctx.args, kwargs: ctx.kwargs,
      }, ...(onLog ? { logs: true } : {}) });
    });
    clearTimeout(hardTimer);
    clearTimeout(killTimer);
    this.jobHandlers.delete(jobId);
    if (outcome.ok) return outcome.value;
    const error = outcome.error;
    if (error instanceof WorkerLostError) throw new WorkerLostError(ctx.id, error.message.replace(/^.*?: /, ''));
    throw error;
  }

  async interruptAll(): Promise<void> {
    for (const child of this.children) if (child.job) child.proc.kill('SIGKILL');
  }

  async close(): Promise<void> {
    this.closing = true;
    const exits = [...this.children].map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.proc.exitCode !== null || child.proc.signalCode !== null) return resolve();
          child.proc.once('exit', () => resolve());
          this.sendTo(child, { type: 'exit' });
          setTimeout(() => child.proc.kill('SIGKILL'), 2000).unref();
        }),
    );
    await Promise.all(exits);
  }
}

function childError(msg: Extract<FromChild, { type: 'done'; ok: false }>): unknown {
  const taskId = '';
  if (msg.retry) {
    return new RetryRequested(msg.retry.countdown, new TaskError({ taskId, excType: msg.exc.exc_type, excModule: msg.exc.exc_module, excArgs: msg.exc.exc_message, traceback: msg.traceback }), msg.retry.maxRetries);
  }
  return new ChildTaskError(taskId, msg.exc, msg.traceback, msg.autoretry);
}
