import { z } from 'zod';

const duration = z.number().int().positive();
// An error class (matched with instanceof) or a predicate over the thrown value.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const errorMatcher = z.custom<(abstract new (...args: any[]) => Error) | ((err: unknown) => boolean)>(
  (v) => typeof v === 'function',
  'expected an Error class or a predicate function',
);

/** Rate limits as Celery writes them: `'10/s'`, `'100/m'`, `'1000/h'`. */
export const RATE_LIMIT = /^(\d+(?:\.\d+)?)\/(s|m|h)$/;

/**
 * Options of a task definition. Durations are milliseconds.
 * Unknown keys are refused so a typo (`maxRetry`) is not silently ignored.
 */
export const taskOptionsSchema = z.strictObject({
  /** Exact task name on the wire, e.g. `tasks.add`. Default: `<module file>.<function name>`. */
  name: z.string().min(1).optional(),
  queue: z.string().min(1).optional(),
  priority: z.number().int().min(0).max(255).optional(),
  /** Retries allowed after the first run (Celery default 3). */
  maxRetries: z.number().int().min(0).default(3),
  /** `true` = exponential backoff from 1 s; a number = the base delay in ms. */
  retryBackoff: z.union([z.boolean(), duration]).default(false),
  retryBackoffMax: duration.default(600_000),
  retryJitter: z.boolean().default(true),
  /** Errors that trigger an automatic retry. */
  autoretryFor: z.array(errorMatcher).default([]),
  rateLimit: z.string().regex(RATE_LIMIT, "expected '<n>/s', '<n>/m' or '<n>/h'").optional(),
  /** Hard limit: the process running the task is killed past it. */
  timeLimit: duration.optional(),
  /** Soft limit: `ctx.signal` aborts with SoftTimeLimitExceeded past it. */
  softTimeLimit: duration.optional(),
  acksLate: z.boolean().optional(),
  ignoreResult: z.boolean().default(false),
  trackStarted: z.boolean().optional(),
  /** Default expiry of each call, ms after sending. */
  expires: duration.optional(),
  /** Parameter names, so keyword arguments from Python (`kwargs`) land in the right positions. */
  params: z.array(z.string().min(1)).optional(),
  /** zod schema for the positional args (a `z.tuple`), validated on the worker before the function runs. */
  args: z.custom<z.ZodType<unknown[]>>((v) => v instanceof z.ZodType, 'expected a zod schema').optional(),
  /** zod schema for the result, validated on the worker after the function returns. */
  result: z.custom<z.ZodType>((v) => v instanceof z.ZodType, 'expected a zod schema').optional(),
});

export type TaskOptions = z.input<typeof taskOptionsSchema>;
export type ResolvedTaskOptions = Readonly<z.output<typeof taskOptionsSchema>> & { readonly name: string };

/** Per-call options of `applyAsync` / `sendTask`. Durations are milliseconds. */
export interface ApplyOptions {
  /** Run no earlier than this many ms from now (broker-side delay). */
  readonly countdown?: number;
  /** Run no earlier than this time. */
  readonly eta?: Date | number;
  /** Skip (REVOKED, reason `expired`) if not started by then: ms from now, or a time. */
  readonly expires?: number | Date;
  readonly priority?: number;
  readonly queue?: string;
  /** Custom headers, merged beside the protocol headers. */
  readonly headers?: Readonly<Record<string, unknown>>;
  /** Use this id instead of a fresh uuid. */
  readonly taskId?: string;
  /**
   * Where `rpc://` results go (the message's `reply_to`); default this app's own id.
   * Workers keep the original sender's when they send a task again (retry, parked ETA).
   */
  readonly replyTo?: string;
  readonly link?: SignatureLike | readonly SignatureLike[];
  readonly linkError?: SignatureLike | readonly SignatureLike[];
  readonly ignoreResult?: boolean;
  readonly timeLimit?: number;
  readonly softTimeLimit?: number;
}

/** `applyAsync` options: {@link ApplyOptions} and the keyword arguments (Celery's `apply_async(args, kwargs, **options)`). */
export interface CallOptions extends ApplyOptions {
  readonly kwargs?: Readonly<Record<string, unknown>>;
}

/**
 * {@link ApplyOptions} plus the protocol fields a worker sets on the messages
 * it sends for a task that ran (a retry, a chain's next step, a chord member).
 * Part of the SPI, not of the user API: a caller never needs them.
 */
export interface MessageOptions extends ApplyOptions {
  readonly retries?: number;
  readonly parentId?: string;
  readonly rootId?: string;
  readonly groupId?: string;
  readonly groupIndex?: number;
  /** Rest of a chain, reversed as on the wire (the next step last). */
  readonly chain?: readonly SignatureLike[];
  readonly chord?: SignatureLike;
}

export type { SignatureLike } from '../protocol/schema.js';
import type { SignatureLike } from '../protocol/schema.js';
