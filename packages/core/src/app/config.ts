import { z } from 'zod';
import { formatIssues } from '../util/issues.js';
import { ConfigError } from '../errors.js';
import { parseUrl, type ParsedUrl } from '../util/url.js';
import { BACKEND_FACTORIES, TRANSPORT_FACTORIES, urlSettings } from '../transport/registry.js';
import { queueSchema, type QueueDeclaration } from '../transport/amqp/queue-declaration.js';

/** Env vars read when the option is not given in code (code wins, as an explicit choice should). */
export const ENV_BROKER_URL = 'CELERIAC_BROKER_URL';
export const ENV_RESULT_BACKEND = 'CELERIAC_RESULT_BACKEND';
export const ENV_BEAT_STORE = 'CELERIAC_BEAT_STORE';
/** Where beat state may live: a SQLite file or a Redis (see the `beatStore` option). */
export const BEAT_STORE_SCHEMES: readonly string[] = ['sqlite', 'redis', 'rediss', 'redis+sentinel'];

/** Used when neither the option nor the env var names a broker. */
export const DEFAULT_BROKER_URL = 'sqlite://./.celeriac/celeriac.db';

const routeSchema = z.strictObject({
  queue: z.string().min(1).optional(),
  priority: z.number().int().min(0).max(255).optional(),
  /** AMQP: publish to this exchange (topic, fanout) instead of straight to the queue. Ignored by other brokers. */
  exchange: z.string().optional(),
  /** AMQP: the routing key to publish with (default: the queue's). */
  routingKey: z.string().optional(),
});

export { queueSchema, type QueueDeclaration };

/**
 * Every app option. Durations are milliseconds throughout (JS convention),
 * converted to Celery's seconds only on the wire.
 */
export const configSchema = z.strictObject({
  /** App name, used in logs and as the prefix of derived task names' origin. */
  name: z.string().min(1).default('celeriac'),
  /** Broker URL. Default: `CELERIAC_BROKER_URL`, else the embedded `sqlite://./.celeriac/celeriac.db`. */
  broker: z.string().min(1).optional(),
  /** Result backend URL. Default: `CELERIAC_RESULT_BACKEND`, else the broker's URL when it can store results. */
  backend: z.string().min(1).optional(),
  /** Queue for tasks without a route (Celery's `task_default_queue`). */
  defaultQueue: z.string().min(1).default('celery'),
  /** `{ 'email.*': { queue: 'emails' } }`: exact names or `*` globs, first match wins. */
  routes: z.record(z.string(), routeSchema).default({}),
  /** AMQP queue declarations by queue name (exchange, type, arguments); see `queueSchema`. */
  queues: z.record(z.string(), queueSchema).default({}),
  /** How long results are kept (Celery's `result_expires`, 1 day). */
  resultExpires: z.number().int().positive().default(86_400_000),
  /** How long a revocation is remembered. */
  revokeExpires: z.number().int().positive().default(3 * 3_600_000),
  /** Acknowledge after the result is stored (default) rather than before running. */
  acksLate: z.boolean().default(true),
  /** Deliveries of one message before it goes to the dead-letter store. */
  maxDeliveries: z.number().int().min(1).default(5),
  /** Largest encoded message accepted by `applyAsync` and by the worker. */
  maxPayloadBytes: z.number().int().positive().default(10 * 1024 * 1024),
  /**
   * How long a claimed message stays invisible to other consumers without
   * renewal. The live owner renews every third of it, so only a dead or frozen
   * worker's messages come back (kombu's visibility_timeout, 1 h there).
   */
  visibilityTimeout: z.number().int().min(100).default(30_000),
  /** Default IANA time zone for cron schedules (Celery's `timezone`); UTC when unset. */
  timezone: z
    .string()
    .min(1)
    .refine((tz) => {
      try {
        new Intl.DateTimeFormat('en-US', { timeZone: tz });
        return true;
      } catch {
        return false;
      }
    }, 'unknown IANA time zone')
    .optional(),
  /**
   * Where beat keeps its leader lock and last-run times: `sqlite:///path/beat.db` (beats on one machine) or
   * `redis://...` (beats anywhere). Default: the broker when it is SQLite or Redis, else the result
   * backend when it is; on RabbitMQ with `rpc://` results there is none, and beat refuses to start
   * (`CAPABILITY_MISSING`) rather than keep them in memory. Also `CELERIAC_BEAT_STORE`.
   */
  beatStore: z.string().min(1).optional(),
  /** Periodic entries from configuration (Celery's `beat_schedule`); the same as `app.beat.schedule(...)`. */
  beatSchedule: z.array(z.record(z.string(), z.unknown())).optional(),
  /** Store STARTED when a task begins (Celery's `task_track_started`). */
  trackStarted: z.boolean().default(false),
  /**
   * The failed-task registry (RQ's FailedJobRegistry; `celeriac failed`): tasks that raised with no retry
   * left are kept with their message, exception, traceback, worker and times. `keep: 'auto'` (the
   * default) keeps them when the result backend can (Redis, SQLite, memory; not `rpc://`); `true`
   * refuses to start a worker whose backend cannot (`CAPABILITY_MISSING`); `false` keeps none. A task
   * option `keepFailed: false` opts one task out.
   */
  failedTasks: z
    .strictObject({
      keep: z.union([z.boolean(), z.literal('auto')]).default('auto'),
      maxCount: z.number().int().positive().default(10_000),
      maxAgeMs: z.number().int().positive().default(7 * 86_400_000),
    })
    .prefault({}),
  /** Send a `task-sent` event for every task this app sends (Celery's task_send_sent_event). */
  sendSentEvent: z.boolean().default(false),
  /**
   * Let workers start on a broker set up to lose accepted work (Redis with eviction on, or with no
   * persistence): they refuse with `UNSAFE_REDIS_CONFIG` otherwise, and warn when allowed.
   */
  allowUnsafeBroker: z.boolean().default(false),
});

export type AppOptions = z.input<typeof configSchema>;

export interface ResolvedConfig extends Readonly<Omit<z.output<typeof configSchema>, 'routes' | 'queues' | 'broker' | 'backend' | 'beatStore'>> {
  readonly broker: ParsedUrl;
  readonly backend: ParsedUrl;
  /** The beat store URL given by `beatStore` or `CELERIAC_BEAT_STORE`; null picks the default (see `beatStore`). */
  readonly beatStore: ParsedUrl | null;
  readonly routes: Readonly<Record<string, Readonly<z.output<typeof routeSchema>>>>;
  readonly queues: Readonly<Record<string, Readonly<QueueDeclaration>>>;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !(value instanceof URL) && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

function describe(error: z.ZodError): string {
  return formatIssues(error, { root: '(options)', accepted: Object.keys(configSchema.shape) });
}

/**
 * Validate app options once, fill defaults from the environment, check URLs
 * (their schemes and each scheme's query options), and freeze the result.
 * Every problem is a {@link ConfigError} whose message lists what is accepted
 * and never contains a URL's password.
 */
export function resolveConfig(options: AppOptions, env: NodeJS.ProcessEnv = process.env): ResolvedConfig {
  const parsed = configSchema.safeParse(options ?? {});
  if (!parsed.success) {
    // Zod may echo received values; make sure no URL credential survives in the text.
    throw new ConfigError(`Invalid celeriac configuration: ${describe(parsed.error)}`.replace(/\/\/([^/@:\s]*):[^/@\s]*@/g, '//$1:***@'));
  }
  const cfg = parsed.data;
  const brokerRaw = cfg.broker ?? env[ENV_BROKER_URL] ?? DEFAULT_BROKER_URL;
  const broker = parseUrl(cfg.broker ? 'broker' : env[ENV_BROKER_URL] ? ENV_BROKER_URL : 'broker', brokerRaw, Object.keys(TRANSPORT_FACTORIES));
  const backendRaw = cfg.backend ?? env[ENV_RESULT_BACKEND];
  const backendSchemes = Object.keys(BACKEND_FACTORIES);
  let backend: ParsedUrl;
  if (backendRaw !== undefined) {
    backend = parseUrl(cfg.backend ? 'backend' : ENV_RESULT_BACKEND, backendRaw, backendSchemes);
  } else if (backendSchemes.includes(broker.scheme)) {
    backend = broker;
  } else if (broker.scheme === 'amqp' || broker.scheme === 'amqps') {
    // What Celery users of RabbitMQ reach for: results as replies to the caller, over the broker's own connection.
    backend = parseUrl('backend', 'rpc://', backendSchemes);
  } else {
    throw new ConfigError(
      `No result backend configured and the broker scheme ${JSON.stringify(broker.scheme)} cannot store results; set "backend" or ${ENV_RESULT_BACKEND} to one of: ${backendSchemes.join(', ')}`,
      { accepted: backendSchemes },
    );
  }
  if (backend.scheme === 'rpc' && broker.scheme !== 'amqp' && broker.scheme !== 'amqps') {
    throw new ConfigError(`backend rpc:// sends results as replies over an AMQP broker, but the broker is ${broker.redacted}; use an amqp:// broker or another backend`, {
      broker: broker.redacted,
    });
  }
  // Each scheme's own options (`?commandTimeout=`, `?heartbeat=`...) are checked now, not when the
  // transport first connects; the settings parsed here are the ones the transport and backend use.
  urlSettings(broker);
  urlSettings(backend);
  const beatStoreRaw = cfg.beatStore ?? env[ENV_BEAT_STORE];
  const beatStore = beatStoreRaw === undefined ? null : parseUrl(cfg.beatStore ? 'beatStore' : ENV_BEAT_STORE, beatStoreRaw, BEAT_STORE_SCHEMES);
  if (beatStore) urlSettings(beatStore);
  return deepFreeze({ ...cfg, broker, backend, beatStore });
}
