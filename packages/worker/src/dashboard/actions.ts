/**
 * What the dashboard does to the fleet: revoke, re-send, worker control,
 * purge, dead letters, schedules. Each checks its input (ARGUMENT_INVALID)
 * and names what it could not find (TASK_UNKNOWN, BEAT_ENTRY_UNKNOWN).
 */
import { ErrorCodes, fromWire, type CeleriacApp } from '@celeriac/core/spi';
import { DashboardError } from './errors.js';
import { LiteralError, parsePyLiteral } from './pyliteral.js';
import { WORKER_ACTIONS, type ActionResult, type HistoryStore, type WorkerAction } from './model.js';
import type { FleetMonitor } from './fleet.js';

/** Signals a terminate may carry (Celery's `signal` argument); anything else is refused. */
export const SIGNALS = ['SIGTERM', 'SIGKILL', 'SIGINT', 'SIGQUIT', 'SIGHUP', 'SIGUSR1', 'SIGUSR2'] as const;

/** How long a worker has to answer a control action. */
export const ACTION_TIMEOUT_MS = 2000;

const invalid = (message: string, details: Record<string, unknown> = {}) => new DashboardError(ErrorCodes.ARGUMENT_INVALID, message, details);

/** Task ids: a non-empty list of non-empty strings, at most 1000 (a page's bulk selection). */
export function checkIds(ids: unknown, what = 'ids'): string[] {
  if (!Array.isArray(ids) || ids.length === 0 || ids.length > 1000 || !ids.every((id) => typeof id === 'string' && id.length > 0 && id.length <= 255)) {
    throw invalid(`${what}: expected a list of 1–1000 task ids`, { param: what });
  }
  return [...new Set(ids as string[])];
}

/** The command and arguments a worker action sends (Celery's names and argument shapes). */
function controlCommand(action: WorkerAction, args: Record<string, unknown>): [string, Record<string, unknown>] {
  switch (action) {
    case 'pool_grow':
    case 'pool_shrink': {
      const n = args.n ?? 1;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 1000) throw invalid(`${action}: n must be a whole number from 1 to 1000`, { param: 'n' });
      return [action, { n }];
    }
    case 'rate_limit': {
      const task = args.task_name;
      const rate = args.rate_limit ?? null;
      if (typeof task !== 'string' || !task) throw invalid('rate_limit: task_name is required', { param: 'task_name' });
      if (rate !== null && typeof rate !== 'string' && typeof rate !== 'number') throw invalid('rate_limit: rate_limit must be like "10/s", a number per second, or null', { param: 'rate_limit' });
      return [action, { task_name: task, rate_limit: rate }];
    }
    default:
      return [action, {}];
  }
}

/** What a worker's reply says: `{ ok: '...' }` or `{ error: '...' }` (Celery's shapes); null is a plain acknowledgement. */
function readReply(reply: unknown): ActionResult {
  const r = reply as { ok?: unknown; error?: unknown } | null;
  if (r && typeof r === 'object' && 'error' in r) return { ok: false, message: String(r.error) };
  if (r && typeof r === 'object' && 'ok' in r) return { ok: true, message: String(r.ok) };
  return { ok: true, message: 'done' };
}

export class DashboardActions {
  constructor(
    private readonly app: CeleriacApp,
    private readonly history: HistoryStore,
    private readonly fleet: FleetMonitor,
  ) {}

  /** Revoke (and with `terminate`, kill the run with `signal`): kept in the result backend for workers that start later, and broadcast. */
  async revoke(ids: readonly string[], options: { terminate?: boolean; signal?: string } = {}): Promise<ActionResult> {
    const taskIds = checkIds(ids);
    const terminate = options.terminate === true;
    const signal = options.signal ?? 'SIGTERM';
    if (!(SIGNALS as readonly string[]).includes(signal)) throw invalid(`signal: expected one of ${SIGNALS.join(', ')}`, { param: 'signal' });
    await (await this.app.backend()).revoke(taskIds, { expiresMs: this.app.config.revokeExpires });
    await this.app.control.broadcast('revoke', { task_id: taskIds.length === 1 ? taskIds[0] : taskIds, terminate, signal }, { reply: false });
    return {
      ok: true,
      message: `${terminate ? `terminate (${signal})` : 'revoke'} sent for ${taskIds.length} task(s)`,
      details: { ids: taskIds, terminate, signal },
    };
  }

  /**
   * Send a task again as a new task: same name, arguments and queue. The
   * arguments come from the most exact source there is: the dead-letter store's
   * wire message (the JSON as sent), else the result backend's extended record
   * (Celery's `result_extended`), else the history's reprs read back as Python
   * literals — refused with the reason when a repr is not one (truncated, an object).
   */
  async resend(id: string): Promise<{ id: string }> {
    const record = await this.history.get(id);
    const [dead] = await this.app.findDeadLetters([id]).catch(() => []);
    let call: { name: string; args: unknown[]; kwargs: Record<string, unknown>; queue: string | null } | undefined;
    if (dead) {
      const message = fromWire(dead.wire);
      const [args, kwargs] = message.body;
      call = { name: message.headers.task, args: [...args], kwargs: { ...kwargs }, queue: dead.queue };
    }
    if (!call && record) {
      const meta = (await (await this.app.backend()).get(id).catch(() => undefined)) as Record<string, unknown> | undefined;
      const name = record.name ?? (typeof meta?.name === 'string' ? meta.name : null);
      if (!name) throw invalid(`task ${id}: its name is not known, so it cannot be sent again`, { id });
      if (Array.isArray(meta?.args) && meta.kwargs && typeof meta.kwargs === 'object') {
        call = { name, args: meta.args as unknown[], kwargs: meta.kwargs as Record<string, unknown>, queue: record.queue ?? (typeof meta.queue === 'string' ? meta.queue : null) };
      } else {
        call = { name, ...this.fromReprs(id, record.args, record.kwargs), queue: record.queue };
      }
    }
    if (!call) throw new DashboardError(ErrorCodes.TASK_UNKNOWN, `no task with id ${id} in the history`, { id });
    const sent = await this.app.sendTask(call.name, call.args, call.kwargs, call.queue ? { queue: call.queue } : {});
    return { id: sent.id };
  }

  private fromReprs(id: string, args: string | null, kwargs: string | null): { args: unknown[]; kwargs: Record<string, unknown> } {
    try {
      const a = args === null || args === '' ? [] : parsePyLiteral(args);
      const k = kwargs === null || kwargs === '' ? {} : parsePyLiteral(kwargs);
      if (!Array.isArray(a)) throw new LiteralError('args is not a tuple or list');
      if (typeof k !== 'object' || k === null || Array.isArray(k)) throw new LiteralError('kwargs is not a dict');
      return { args: a, kwargs: k as Record<string, unknown> };
    } catch (err) {
      if (!(err instanceof LiteralError)) throw err;
      throw invalid(`task ${id}: its arguments were recorded only as text that cannot be read back exactly (${err.message}), so it cannot be sent again`, { id });
    }
  }

  /** A remote-control command to one worker; no answer within the timeout is `WORKER_NO_REPLY`. */
  async control(worker: string, action: WorkerAction, args: Record<string, unknown> = {}): Promise<ActionResult> {
    if (!(WORKER_ACTIONS as readonly string[]).includes(action)) throw invalid(`action: expected one of ${WORKER_ACTIONS.join(', ')}`, { param: 'action' });
    if (!worker) throw invalid('worker: a node name is required', { param: 'worker' });
    const [command, commandArgs] = controlCommand(action, args);
    const replies = await this.app.control.broadcast(command, commandArgs, { destination: [worker], timeout: ACTION_TIMEOUT_MS, limit: 1 });
    const reply = replies.find((r) => Object.hasOwn(r, worker));
    if (!reply) {
      return {
        ok: false,
        message: `${worker} did not answer ${action} within ${ACTION_TIMEOUT_MS / 1000} s (offline, busy, or a name that is not running)`,
        details: { code: ErrorCodes.WORKER_NO_REPLY, worker, action },
      };
    }
    // The workers page should show the new state without waiting for the next round.
    void this.fleet.controlRound().catch(() => undefined);
    return { ...readReply(reply[worker]), details: { worker, action } };
  }

  async purge(queue: string): Promise<{ purged: number }> {
    if (!queue || queue.length > 255) throw invalid('queue: a queue name is required', { param: 'queue' });
    return { purged: await (await this.app.transport()).purge(queue) };
  }

  async requeueDeadLetters(ids: readonly string[]): Promise<{ requeued: number }> {
    return { requeued: await this.app.requeueDeadLetters(checkIds(ids)) };
  }

  async discardDeadLetters(ids: readonly string[]): Promise<{ discarded: number }> {
    const transport = await this.app.transport();
    let discarded = 0;
    for (const id of checkIds(ids)) if (await transport.takeDeadLetter(id)) discarded++;
    return { discarded };
  }
}
