import { CronExpressionParser } from 'cron-parser';
import { ConfigError, ErrorCodes, type ScheduleSpec } from '@celeriac/core/spi';

/** A compiled schedule: slots are instants (epoch ms) derived only from the spec, never from when a beat ran. */
export interface Schedule {
  /** The first slot strictly after `afterMs`, or null when there is none (a one-off already past). */
  next(afterMs: number): number | null;
  /** Typical gap between slots (for claim TTLs); undefined for one-offs. */
  readonly periodMs: number | undefined;
  readonly description: string;
}

/**
 * Compile a schedule spec.
 * - cron: 5 or 6 fields or `@daily` and friends, in `tz` (or the app's zone, else UTC). Across DST,
 *   every real hour is a slot (23 on spring-forward, 25 on fall-back days); a wall time that does not
 *   exist runs at the first instant after the jump (02:00 → 03:00); a repeated wall time runs once.
 * - every: slots at whole multiples of the interval since the Unix epoch (UTC), so every beat computes
 *   the same slots and consecutive slots are exactly the interval apart.
 * - at: one slot.
 */
export function compileSchedule(spec: ScheduleSpec, defaultTz?: string): Schedule {
  if ('cron' in spec) {
    const tz = spec.tz ?? defaultTz ?? 'UTC';
    try {
      // Validate the expression and the zone once, at load.
      CronExpressionParser.parse(spec.cron, { currentDate: new Date(0), tz }).next();
      new Intl.DateTimeFormat('en-US', { timeZone: tz });
    } catch (err) {
      throw new ConfigError(`invalid cron schedule ${JSON.stringify(spec.cron)} (tz ${tz}): ${(err as Error).message}`, { cron: spec.cron, tz }, ErrorCodes.CONFIG_INVALID, { cause: err });
    }
    const at = (fromMs: number): number => CronExpressionParser.parse(spec.cron, { currentDate: new Date(fromMs), tz }).next().toDate().getTime();
    const fallback = wallClockSearch(spec.cron, tz);
    const next = (afterMs: number): number => {
      try {
        return at(afterMs);
      } catch {
        // cron-parser gives up ("loop limit") near some half-hour DST shifts (Lord Howe):
        // find the slot by walking the zone's wall clock minute by minute instead.
        return fallback(afterMs);
      }
    };
    const first = next(0);
    return { next, periodMs: next(first) - first, description: `cron ${spec.cron} (${tz})` };
  }
  if ('every' in spec) {
    const every = spec.every;
    return { next: (afterMs) => (Math.floor(afterMs / every) + 1) * every, periodMs: every, description: `every ${every} ms` };
  }
  const at = spec.at;
  if (!Number.isFinite(at)) throw new ConfigError('invalid one-off schedule: `at` is not a valid time');
  return { next: (afterMs) => (at > afterMs ? at : null), periodMs: undefined, description: `once at ${new Date(at).toISOString()}` };
}

/** Slots in (fromMs, toMs], oldest first, at most `cap` (the newest ones when there are more). */
export function slotsBetween(schedule: Schedule, fromMs: number, toMs: number, cap = 1000): number[] {
  const out: number[] = [];
  for (let t = schedule.next(fromMs); t !== null && t <= toMs; t = schedule.next(t)) {
    out.push(t);
    if (out.length > cap) out.shift();
  }
  return out;
}

/**
 * The next instant after `afterMs` whose wall-clock time in `tz` matches the
 * cron's minute, hour, day and month fields (minute resolution; Vixie-cron's
 * rule that a restricted day-of-month and day-of-week match either). Used only
 * where cron-parser cannot compute across a transition.
 */
function wallClockSearch(cron: string, tz: string): (afterMs: number) => number {
  const { fields } = CronExpressionParser.parse(cron, { tz });
  const fmt = new Intl.DateTimeFormat('en-US', { timeZone: tz, hourCycle: 'h23', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', weekday: 'short' });
  const days = { Sun: 0, Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6 } as const;
  const has = (values: readonly (number | string)[], v: number): boolean => values.includes(v);
  return (afterMs) => {
    for (let t = Math.floor(afterMs / 60_000) * 60_000 + 60_000; t < afterMs + 8 * 86_400_000; t += 60_000) {
      const p = Object.fromEntries(fmt.formatToParts(t).map((x) => [x.type, x.value]));
      const dow = days[p.weekday as keyof typeof days];
      const domOk = has(fields.dayOfMonth.values, Number(p.day));
      const dowOk = has(fields.dayOfWeek.values, dow) || (dow === 0 && has(fields.dayOfWeek.values, 7));
      const dayOk = fields.dayOfMonth.isWildcard || fields.dayOfWeek.isWildcard ? domOk && dowOk : domOk || dowOk;
      if (has(fields.minute.values, Number(p.minute)) && has(fields.hour.values, Number(p.hour)) && has(fields.month.values, Number(p.month)) && dayOk) return t;
    }
    throw new ConfigError(`cron ${JSON.stringify(cron)} (tz ${tz}) has no run within 8 days of ${new Date(afterMs).toISOString()}`);
  };
}
