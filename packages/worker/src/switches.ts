import type { ResultBackend } from '@celeriac/core/spi';
import type { Logger } from './logger.js';

/**
 * Durable fleet switches, kept in the result backend so that they outlive
 * every worker (RQ's `rq suspend`, BullMQ's `queue.pause()`): `celeriac
 * suspend` (no worker takes new tasks, and one started later starts
 * suspended) and `celeriac pause <queue>` (no worker takes tasks from that
 * queue). Workers read them at start and every {@link SWITCH_POLL_MS}.
 */
export const SUSPENDED_FLAG = 'suspended';
const PAUSED_PREFIX = 'paused:';
export const pausedFlag = (queue: string): string => `${PAUSED_PREFIX}${queue}`;
/** How soon a running worker follows a switch turned by `celeriac suspend` / `pause` (they also broadcast, for at once). */
export const SWITCH_POLL_MS = 2000;

export interface FleetSwitches {
  readonly suspended: boolean;
  readonly pausedQueues: readonly string[];
}

export function switchesOf(flags: Readonly<Record<string, string>>): FleetSwitches {
  const names = Object.keys(flags);
  return {
    suspended: names.includes(SUSPENDED_FLAG),
    pausedQueues: names.filter((n) => n.startsWith(PAUSED_PREFIX)).map((n) => n.slice(PAUSED_PREFIX.length)).sort(),
  };
}

/** The switches now, or null when the backend keeps none (`rpc://`: there are none to follow). */
export async function readSwitches(backend: ResultBackend): Promise<FleetSwitches | null> {
  if (!backend.capabilities.fleetFlags || !backend.readFlags) return null;
  return switchesOf(await backend.readFlags());
}

const same = (a: FleetSwitches, b: FleetSwitches): boolean => a.suspended === b.suspended && a.pausedQueues.join('\0') === b.pausedQueues.join('\0');

/**
 * Follows the switches: calls `onChange` when one is turned — edge-triggered,
 * so a worker suspended by hand (`control suspend`) is not resumed by the
 * watcher just because the fleet switch is off. A read that fails (backend
 * away) is retried at the next poll; the worker keeps its last state.
 */
export class SwitchWatcher {
  private timer: NodeJS.Timeout | undefined;
  private busy = false;

  constructor(
    private readonly backend: ResultBackend,
    private last: FleetSwitches,
    private readonly onChange: (now: FleetSwitches, before: FleetSwitches) => Promise<void>,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.poll(), SWITCH_POLL_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private async poll(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const now = await readSwitches(this.backend);
      if (now && !same(now, this.last)) {
        const before = this.last;
        this.last = now;
        await this.onChange(now, before);
      }
    } catch (err) {
      this.log.debug({ err }, 'could not read the fleet switches; trying again');
    } finally {
      this.busy = false;
    }
  }
}
