import { describe, expect, it } from 'vitest';
import { compileSchedule, slotsBetween } from '@celeriac/beat';
import { ConfigError } from '@celeriac/core';

const utc = (s: string): number => Date.parse(s);
/** Local wall-clock time of an instant in a zone, as `HH:MM`. */
const wall = (ms: number, tz: string): string =>
  new Intl.DateTimeFormat('en-GB', { timeZone: tz, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(ms);
/** Slots of a schedule within one local calendar day in `tz`. */
function dayRuns(spec: Parameters<typeof compileSchedule>[0], tz: string, dayStartUtc: number, dayEndUtc: number): number[] {
  return slotsBetween(compileSchedule(spec, tz), dayStartUtc - 1, dayEndUtc - 1);
}

describe('schedules across DST and time zones (T25)', () => {
  // Local midnight to midnight of each transition day, in UTC.
  const days = [
    { tz: 'America/New_York', day: '2026-03-08', start: '2026-03-08T05:00:00Z', end: '2026-03-09T04:00:00Z', hours: 23 },
    { tz: 'America/New_York', day: '2026-11-01', start: '2026-11-01T04:00:00Z', end: '2026-11-02T05:00:00Z', hours: 25 },
    { tz: 'Europe/Berlin', day: '2026-03-29', start: '2026-03-28T23:00:00Z', end: '2026-03-29T22:00:00Z', hours: 23 },
    { tz: 'Europe/Berlin', day: '2026-10-25', start: '2026-10-24T22:00:00Z', end: '2026-10-25T23:00:00Z', hours: 25 },
    { tz: 'Pacific/Chatham', day: '2026-04-05', start: '2026-04-04T10:15:00Z', end: '2026-04-05T11:15:00Z', hours: 25 },
    { tz: 'Pacific/Chatham', day: '2026-09-27', start: '2026-09-26T11:15:00Z', end: '2026-09-27T10:15:00Z', hours: 23 },
  ] as const;

  it.each(days)('hourly cron fires once per real hour on $day in $tz', ({ tz, start, end, hours }) => {
    const runs = dayRuns({ cron: '0 * * * *', tz }, tz, utc(start), utc(end));
    expect(runs).toHaveLength(hours);
    for (let i = 1; i < runs.length; i++) expect(runs[i]! - runs[i - 1]!).toBeGreaterThan(0);
  });

  it.each(days)('0 2 * * * and 30 1 * * * run exactly once on $day in $tz (a skipped wall time runs after the jump)', ({ tz, start, end }) => {
    for (const cron of ['0 2 * * *', '30 1 * * *']) {
      const runs = dayRuns({ cron, tz }, tz, utc(start), utc(end));
      expect(runs, `${cron} ${tz}`).toHaveLength(1);
    }
  });

  it('spring-forward: 0 2 * * * runs at 03:00 local in New York and Berlin', () => {
    expect(wall(dayRuns({ cron: '0 2 * * *' }, 'America/New_York', utc('2026-03-08T05:00:00Z'), utc('2026-03-09T04:00:00Z'))[0]!, 'America/New_York')).toBe('03:00');
    expect(wall(dayRuns({ cron: '0 2 * * *' }, 'Europe/Berlin', utc('2026-03-28T23:00:00Z'), utc('2026-03-29T22:00:00Z'))[0]!, 'Europe/Berlin')).toBe('03:00');
  });

  it('Lord Howe (30-minute shift): one daily run per local day, never in the past', () => {
    const s = compileSchedule({ cron: '0 2 * * *', tz: 'Australia/Lord_Howe' });
    const runs = slotsBetween(s, utc('2026-03-30T00:00:00Z'), utc('2026-04-10T00:00:00Z'));
    expect(runs).toHaveLength(11);
    for (const r of runs) expect(wall(r, 'Australia/Lord_Howe')).toBe('02:00');
  });

  it('an interval is always exactly its length apart in UTC, across any transition', () => {
    const s = compileSchedule({ every: 3_600_000 });
    const runs = slotsBetween(s, utc('2026-11-01T00:00:00Z'), utc('2026-11-03T00:00:00Z'));
    expect(runs).toHaveLength(48);
    for (let i = 1; i < runs.length; i++) expect(runs[i]! - runs[i - 1]!).toBe(3_600_000);
  });

  it('next is never in the past, for every kind', () => {
    const now = utc('2026-10-25T00:59:59Z');
    for (const spec of [{ cron: '0 * * * *', tz: 'Europe/Berlin' }, { cron: '*/10 * * * * *' }, { cron: '@daily', tz: 'Pacific/Chatham' }, { every: 1234 }, { at: now + 5 }]) {
      const next = compileSchedule(spec).next(now);
      expect(next, JSON.stringify(spec)).not.toBeNull();
      expect(next!).toBeGreaterThan(now);
    }
    expect(compileSchedule({ at: now - 5 }).next(now)).toBeNull();
  });

  it('6-field cron and @aliases are accepted; a bad expression or zone is a ConfigError', () => {
    expect(compileSchedule({ cron: '*/15 * * * * *' }).periodMs).toBe(15_000);
    expect(compileSchedule({ cron: '@hourly' }).periodMs).toBe(3_600_000);
    expect(() => compileSchedule({ cron: 'every tuesday' })).toThrow(ConfigError);
    expect(() => compileSchedule({ cron: '0 2 * * *', tz: 'Mars/Olympus' })).toThrow(ConfigError);
  });
});
