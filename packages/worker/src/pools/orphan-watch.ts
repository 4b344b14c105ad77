/**
 * Makes a process-pool child die with the worker that forked it.
 *
 * Why: a worker killed with `kill -9` (or by the OOM killer) gets no chance to
 * stop its children. Its broker connection drops, so the task a child was
 * running is redelivered and runs again on another worker, while the orphan
 * goes on running it too (side effects twice), and one in a CPU loop spins
 * for ever. Linux's `PR_SET_PDEATHSIG` would do this in the kernel, but Node
 * has no binding for it, so the child watches for itself in two ways:
 *
 * - the IPC channel: when the parent dies the kernel closes its end, and the
 *   child's `process` emits `'disconnect'` — but only once its event loop
 *   turns, which is never for a task stuck in synchronous code;
 * - a watchdog thread (a `worker_threads` thread, so it runs while the main
 *   thread is blocked) that polls `process.ppid` (a live getter, also in a
 *   thread: it reads `getppid()` each time) and, once the child was
 *   reparented, kills the whole process with SIGKILL. `process.exit()` in a
 *   thread would only end the thread; a signal to our own pid ends every
 *   thread at once, whatever the main thread is doing.
 *
 * @module
 */
import { SHARE_ENV, Worker } from 'node:worker_threads';

/** How often the watchdog thread looks at its parent pid, in ms. */
export const ORPHAN_POLL_MS = 250;

/** Exit code of a child that left because its parent's IPC channel closed. */
export const ORPHAN_EXIT_CODE = 1;

/**
 * The watchdog's whole program (CommonJS, run with `eval: true`). It sleeps
 * with `Atomics.wait` on a private SharedArrayBuffer, which blocks the thread
 * itself: no timer, no event loop, nothing that could be starved. The pid it
 * must keep seeing is passed in, not read here, so a parent that died while
 * the thread was starting is still noticed.
 */
const WATCHDOG_SOURCE = `
const { workerData } = require('node:worker_threads');
const { parentPid, pollMs } = workerData;
const nap = new Int32Array(new SharedArrayBuffer(4));
while (process.ppid === parentPid) Atomics.wait(nap, 0, 0, pollMs);
process.kill(process.pid, 'SIGKILL');
`;

/**
 * Caps for the watchdog's isolate, which allocates next to nothing once Node
 * has bootstrapped it. The thread still costs a child about 8 MB of RSS
 * (Node 20.20, median of 7: a child of a plain JS app 61.8 → 69.9 MB; in a
 * bare process +9.5 MB uncapped, +8.7 MB with these caps): the price of a
 * second isolate and Node environment, which no cap removes. Below 4 MB of
 * old generation Node's own bootstrap runs out of heap
 * (ERR_WORKER_OUT_OF_MEMORY); 8 leaves room for other Node versions.
 */
const WATCHDOG_LIMITS = { maxOldGenerationSizeMb: 8, maxYoungGenerationSizeMb: 1 } as const;

export interface OrphanWatchOptions {
  /** The pid whose death ends this process (default: `process.ppid` now). */
  readonly parentPid?: number;
  /** Poll interval of the watchdog thread, in ms (default {@link ORPHAN_POLL_MS}). */
  readonly pollMs?: number;
  /** The watchdog thread failed (then only the `'disconnect'` exit is left). */
  readonly onError?: (err: Error) => void;
}

/**
 * End this process when its parent goes: at once on the IPC channel's
 * `'disconnect'` (event loop free), and within about `pollMs` from the
 * watchdog thread otherwise (event loop blocked). Call it first thing in the
 * child, before the app module loads: a module may block at import too.
 *
 * The thread is `unref()`ed, so it never keeps the child alive, and is started
 * without the child's `execArgv` (no preloads, no loader, no V8 flags run in
 * it again) and sharing its environment instead of copying it.
 *
 * @returns the watchdog thread, or `undefined` if it could not be started.
 */
export function exitWithParent(options: OrphanWatchOptions = {}): Worker | undefined {
  const parentPid = options.parentPid ?? process.ppid;
  if (process.send) {
    // No clean-up: whatever the task does next is work the broker hands to another worker.
    process.once('disconnect', () => process.exit(ORPHAN_EXIT_CODE));
    // Closed before we listened (the parent died while this child started): act now.
    if (!process.connected) process.exit(ORPHAN_EXIT_CODE);
  }
  let thread: Worker;
  try {
    thread = new Worker(WATCHDOG_SOURCE, {
      eval: true,
      workerData: { parentPid, pollMs: options.pollMs ?? ORPHAN_POLL_MS },
      resourceLimits: WATCHDOG_LIMITS,
      execArgv: [],
      env: SHARE_ENV,
    });
  } catch (err) {
    options.onError?.(err as Error);
    return undefined;
  }
  thread.on('error', (err) => options.onError?.(err));
  thread.unref();
  return thread;
}
