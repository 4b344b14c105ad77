import { z } from 'zod';
import { formatIssues } from '../util/issues.js';
import { ConfigError } from '../errors.js';

/** `'20m'`, `'1h'`, `'30s'`, `'500ms'` or a number of ms. */
export function parseDuration(value: string | number): number {
  if (typeof value === 'number') return value;
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/.exec(value.trim());
  if (!m) throw new ConfigError(`invalid duration ${JSON.stringify(value)}; expected e.g. '500ms', '30s', '20m', '1h', '1d' or a number of ms`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
  return Math.round(Number(m[1]) * unit);
}

const durationSchema = z.union([z.number().int().positive(), z.string().min(2)]).transform((v, ctx) => {
  try {
    return parseDuration(v);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
    return z.NEVER;
  }
});

/** When an entry runs: a cron expression (5 or 6 fields, `@daily`...) in a time zone, an interval, or once. */
export const scheduleSpecSchema = z.union([
  z.strictObject({ cron: z.string().min(1), tz: z.string().min(1).optional() }),
  z.strictObject({ every: durationSchema }),
  z.strictObject({ at: z.union([z.date(), z.number(), z.string()]).transform((v) => new Date(v).getTime()) }),
]);

/** What happens to slots missed while no beat ran. */
export const missedPolicySchema = z.union([z.literal('skip'), z.literal('runOnce'), z.strictObject({ catchUp: z.number().int().positive() })]);

/** One periodic entry, as code, config or the run-time API define it. */
export const beatEntrySchema = z.strictObject({
  name: z.string().min(1),
  /** Task name (or a task handle's `taskName`). */
  task: z.union([
    z.string().min(1),
    z
      .custom<{ taskName: string }>((v) => (typeof v === 'function' || typeof v === 'object') && v !== null && typeof (v as { taskName?: unknown }).taskName === 'string', 'expected a task name or a task handle')
      .transform((h) => h.taskName),
  ]),
  schedule: scheduleSpecSchema,
  args: z.array(z.unknown()).default([]),
  kwargs: z.record(z.string(), z.unknown()).default({}),
  options: z
    .strictObject({
      queue: z.string().min(1).optional(),
      priority: z.number().int().min(0).max(255).optional(),
      /** ms after the slot after which the task is skipped (REVOKED, expired). */
      expires: z.number().int().positive().optional(),
      headers: z.record(z.string(), z.unknown()).optional(),
    })
    .default({}),
  /** Default `skip`: a slot missed by more than `graceMs` is not run late; the entry runs at its next slot. */
  missed: missedPolicySchema.default('skip'),
  /** How late a due slot may still be sent (a restart, a leader handover). */
  graceMs: z.number().int().min(0).default(60_000),
  enabled: z.boolean().default(true),
});

export type BeatEntryInput = z.input<typeof beatEntrySchema>;
export type BeatEntry = z.output<typeof beatEntrySchema>;
export type ScheduleSpec = z.output<typeof scheduleSpecSchema>;

/** Validate one entry; problems are a ConfigError naming the entry. */
export function parseBeatEntry(input: BeatEntryInput): BeatEntry {
  const parsed = beatEntrySchema.safeParse(input);
  if (!parsed.success) {
    const name = typeof (input as { name?: unknown })?.name === 'string' ? (input as { name: string }).name : '(unnamed)';
    throw new ConfigError(
      `Invalid beat entry ${JSON.stringify(name)}: ${formatIssues(parsed.error, { root: '(entry)' })}`,
    );
  }
  return parsed.data;
}

/**
 * The app's periodic entries defined in code (`app.beat.schedule({...})`). The
 * beat package runs them; this registry only holds validated definitions, so
 * `core` never depends on the scheduler.
 */
export class BeatRegistry {
  private readonly defined = new Map<string, BeatEntry>();
  /** Default IANA time zone for cron entries without `tz` (UTC when unset). */
  timezone: string | undefined;

  schedule(entries: BeatEntryInput | readonly BeatEntryInput[]): void {
    for (const input of Array.isArray(entries) ? (entries as readonly BeatEntryInput[]) : [entries as BeatEntryInput]) {
      const entry = parseBeatEntry(input);
      this.defined.set(entry.name, entry);
    }
  }

  entries(): BeatEntry[] {
    return [...this.defined.values()];
  }
}
