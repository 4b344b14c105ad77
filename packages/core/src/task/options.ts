import { z } from 'zod';

const duration = z.number().int().positive();
// An error class (matched with instanceof) or a predicate over the thrown value.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const errorMatcher = z.custom<(abstract new (...args: any[]) => Error) | ((err: unknown) => boolean)>(
  (v) => typeof v === 'function',
  'expected an Error class or a predicate function',
);

/**
 * The Standard Schema V1 interface (https://standardschema.dev), copied as types as the spec
 * intends: zod (≥ 3.24, and 4), valibot, arktype and others implement it, so a task's `args` /
 * `result` schema comes from whichever library, and version, the project uses.
 */
export interface StandardSchemaV1<Input = unknown, Output = Input> {
  readonly '~standard': StandardSchemaV1.Props<Input, Output>;
}

// eslint-disable-next-line @typescript-eslint/no-namespace
export declare namespace StandardSchemaV1 {
  export interface Props<Input = unknown, Output = Input> {
    readonly version: 1;
    readonly vendor: string;
    readonly validate: (value: unknown) => Result<Output> | Promise<Result<Output>>;
    readonly types?: Types<Input, Output> | undefined;
  }
  export type Result<Output> = SuccessResult<Output> | FailureResult;
  export interface SuccessResult<Output> {
    readonly value: Output;
    readonly issues?: undefined;
  }
  export interface FailureResult {
    readonly issues: ReadonlyArray<Issue>;
  }
  export interface Issue {
    readonly message: string;
    readonly path?: ReadonlyArray<PropertyKey | PathSegment> | undefined;
  }
  export interface PathSegment {
    readonly key: PropertyKey;
  }
  export interface Types<Input = unknown, Output = Input> {
    readonly input: Input;
    readonly output: Output;
  }
  export type InferInput<Schema extends StandardSchemaV1> = NonNullable<Schema['~standard']['types']>['input'];
  export type InferOutput<Schema extends StandardSchemaV1> = NonNullable<Schema['~standard']['types']>['output'];
}

/** Whether `v` implements Standard Schema V1 (a `~standard` object with `version: 1` and `validate`). */
export function isStandardSchema(v: unknown): v is StandardSchemaV1 {
  if ((typeof v !== 'object' && typeof v !== 'function') || v === null) return false;
  const props = (v as { '~standard'?: Partial<StandardSchemaV1.Props> })['~standard'];
  return !!props && props.version === 1 && typeof props.validate === 'function';
}

const STANDARD_SCHEMA_EXPECTED =
  'expected a Standard Schema (zod >= 3.24, valibot, arktype, ...: an object with a "~standard" property); an older zod 3 schema does not have one: upgrade zod to ^3.24 or 4';

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
  /** Per worker, as Celery's `rate_limit`: each worker spaces this task's runs on its own. */
  rateLimit: z.string().regex(RATE_LIMIT, "expected '<n>/s', '<n>/m' or '<n>/h'").optional(),
  /**
   * Across the whole fleet (BullMQ's limiter): runs of this task are spaced by one shared clock in the
   * result backend, however many workers there are. Needs a Redis, SQLite or memory backend (checked at
   * worker start: `CAPABILITY_MISSING` on `rpc://`). With `rateLimitKey`, one limit per key.
   */
  globalRateLimit: z.string().regex(RATE_LIMIT, "expected '<n>/s', '<n>/m' or '<n>/h'").optional(),
  /** The key of `globalRateLimit`'s bucket, from the call's arguments (e.g. the tenant): each key gets the whole limit. */
  rateLimitKey: z.custom<(...args: never[]) => string | number>((v) => typeof v === 'function', 'expected a function of the arguments').optional(),
  /**
   * At most this many runs of the task at once across the fleet (per `concurrencyKey` when given);
   * the others wait broker-side, holding no worker slot. A holder's lease is renewed while it runs and
   * expires 30 s after its worker died. Same backends as `globalRateLimit`.
   */
  concurrencyLimit: z.number().int().positive().optional(),
  concurrencyKey: z.custom<(...args: never[]) => string | number>((v) => typeof v === 'function', 'expected a function of the arguments').optional(),
  /** Hard limit: the process running the task is killed past it. */
  timeLimit: duration.optional(),
  /** Soft limit: `ctx.signal` aborts with SoftTimeLimitExceeded past it. */
  softTimeLimit: duration.optional(),
  acksLate: z.boolean().optional(),
  ignoreResult: z.boolean().default(false),
  trackStarted: z.boolean().optional(),
  /** Keep this task in the failed-task registry when it fails for good (default: the app's `failedTasks.keep`). */
  keepFailed: z.boolean().optional(),
  /** Default expiry of each call, ms after sending. */
  expires: duration.optional(),
  /** Parameter names, so keyword arguments from Python (`kwargs`) land in the right positions. */
  params: z.array(z.string().min(1)).optional(),
  /**
   * Schema of the positional args (a tuple), validated on the worker before the function runs: any
   * Standard Schema — zod ≥ 3.24 (`z.tuple([...])`), valibot, arktype — from the project's own copy.
   */
  args: z.custom<StandardSchemaV1<unknown[], unknown[]>>(isStandardSchema, STANDARD_SCHEMA_EXPECTED).optional(),
  /** Schema of the result (any Standard Schema), validated on the worker after the function returns. */
  result: z.custom<StandardSchemaV1>(isStandardSchema, STANDARD_SCHEMA_EXPECTED).optional(),
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
  /**
   * Send at most one task per `id` (per task name) within `ttlMs`, across every process sharing the
   * result backend (BullMQ's deduplication). A second send inside the window enqueues nothing and
   * returns a handle on the first. With `mode: 'debounce'` the last send wins instead: it runs
   * `ttlMs` after it was sent (unless `countdown`/`eta` say otherwise) and the one it replaced is
   * revoked. Needs a Redis, SQLite or memory result backend (`CAPABILITY_MISSING` on `rpc://`).
   */
  readonly deduplicate?: DeduplicateOptions;
}

export interface DeduplicateOptions {
  /** What makes two sends the same, e.g. `invoice:42` (scoped to the task name). */
  readonly id: string;
  /** How long the window lasts, ms. */
  readonly ttlMs: number;
  /** `first` (default): the first send within the window runs; `debounce`: the last one does. */
  readonly mode?: 'first' | 'debounce';
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
