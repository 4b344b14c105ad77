/**
 * Entry point of a process-pool child: loads the app module named by the
 * parent, then runs one task at a time on request and answers with the
 * outcome. Everything crosses the boundary as plain JSON-able data.
 */
import {
  contextStorage,
  encodeException,
  isCeleriacError,
  RetryRequested,
  requestRetry,
  SoftTimeLimitExceeded,
  tracebackOf,
  UnknownTaskError,
  type TaskContext,
} from '@celeriac/core/spi';
import { loadApp } from '../cli/load-app.js';
import { createLogger, taskLogger } from '../logger.js';
import { shouldAutoretry } from '../retry.js';
import { PoolStartError } from './errors.js';
import type { FromChild, ToChild } from './ipc.js';
import { exitWithParent } from './orphan-watch.js';
import { Interrupt } from '../state.js';

const send = (msg: FromChild): void => {
  process.send?.(msg);
};
const log = createLogger((process.env.CELERIAC_LOGLEVEL as 'info' | undefined) ?? 'info', 'celeriac-child');
const controllers = new Map<number, AbortController>();

// Before the app loads: a child must not outlive a worker killed with -9, even one whose
// task (or module) never yields, or its task would run here and again where it is redelivered.
exitWithParent({
  onError: (err) => log.warn({ err }, 'orphan watchdog thread failed: this child now stops with its worker only when its event loop is free'),
});

// A signal for the whole process group (Ctrl-C in a terminal, systemd's KillMode=control-group) is
// the worker's to act on: its warm shutdown lets this child finish the task it runs, then tells it to
// exit. Dying on the signal here would turn every warm shutdown into lost runs. The worker stops
// children with an 'exit' message or SIGKILL; a dead worker is noticed by exitWithParent.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => undefined);

async function main(): Promise<void> {
  const module = process.env.CELERIAC_CHILD_MODULE;
  if (!module) throw new PoolStartError('CELERIAC_CHILD_MODULE is not set: a process-pool child needs the app module to load');
  const { app } = await loadApp(module);
  process.on('message', (msg: ToChild) => {
    if (msg.type === 'exit') process.exit(0);
    if (msg.type === 'abort') {
      const reason =
        msg.reason === 'soft' ? new SoftTimeLimitExceeded(msg.seconds ?? 0) : new Interrupt(msg.reason === 'terminate' ? 'terminate' : 'shutdown');
      controllers.get(msg.jobId)?.abort(reason);
      return;
    }
    void run(app, msg);
  });
  send({ type: 'ready' });
}

async function run(app: Awaited<ReturnType<typeof loadApp>>['app'], msg: Extract<ToChild, { type: 'run' }>): Promise<void> {
  const task = app.registry.get(msg.taskName);
  const controller = new AbortController();
  controllers.set(msg.jobId, controller);
  const rss = (): number => process.memoryUsage().rss;
  try {
    if (!task) throw new UnknownTaskError(msg.taskName);
    const ctx: TaskContext = {
      ...msg.ctx,
      signal: controller.signal,
      log: taskLogger(log, msg.ctx.id, msg.ctx.name, msg.logs ? (level, line) => send({ type: 'log', jobId: msg.jobId, level, msg: line, at: Date.now() }) : undefined),
      updateState: async (state, meta) => send({ type: 'update-state', jobId: msg.jobId, state, meta: meta ?? null }),
      retry: requestRetry,
    };
    const value = await contextStorage.run(ctx, () => task.fn.apply(ctx, msg.args));
    send({ type: 'done', jobId: msg.jobId, rss: rss(), ok: true, value: value ?? null });
  } catch (err) {
    const retry = err instanceof RetryRequested ? err : undefined;
    const cause = retry ? (retry.cause_ ?? retry) : err;
    send({
      type: 'done',
      jobId: msg.jobId,
      rss: rss(),
      ok: false,
      retry: retry ? { ...(retry.countdown !== undefined ? { countdown: retry.countdown } : {}), ...(retry.maxRetries !== undefined ? { maxRetries: retry.maxRetries } : {}) } : null,
      exc: encodeException(cause),
      traceback: tracebackOf(cause),
      autoretry: !!task && shouldAutoretry(task.options, err),
    });
  } finally {
    controllers.delete(msg.jobId);
  }
}

main().catch((err: unknown) => {
  send({ type: 'fatal', message: err instanceof Error ? err.message : String(err), ...(isCeleriacError(err) ? { code: err.code } : {}) });
  process.exit(70);
});
