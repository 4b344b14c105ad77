import { z } from 'zod';

/**
 * Celery protocol v2 as zod schemas. These are pinned by the golden fixtures
 * captured from Celery 5.2.6 (test/fixtures/celery-5.2): change them only when
 * a fixture says so. Schemas are lenient about extra keys (Celery adds fields
 * across versions; custom headers ride beside the protocol ones) and strict
 * about the fields celeriac reads.
 */

/** `{task, args, kwargs, options, subtask_type, immutable}` — a Celery signature dict. */
export const signatureSchema = z.looseObject({
  task: z.string().min(1),
  args: z.array(z.unknown()).default([]),
  kwargs: z.record(z.string(), z.unknown()).default({}),
  options: z.record(z.string(), z.unknown()).default({}),
  subtask_type: z.string().nullable().default(null),
  immutable: z.boolean().default(false),
});
export type SignatureDict = z.infer<typeof signatureSchema>;

/** Anything with Celery's signature shape (a celeriac Signature, or a plain dict from Python). */
export interface SignatureLike {
  readonly task: string;
  readonly args: readonly unknown[];
  readonly kwargs: Readonly<Record<string, unknown>>;
  readonly options: Readonly<Record<string, unknown>>;
  readonly subtask_type: string | null;
  readonly immutable: boolean;
}

/** The third element of the body: what runs after this task. All four keys are written, null when unused. */
export const embedSchema = z.looseObject({
  callbacks: z.array(signatureSchema).nullable().default(null),
  errbacks: z.array(signatureSchema).nullable().default(null),
  chain: z.array(signatureSchema).nullable().default(null),
  chord: signatureSchema.nullable().default(null),
});
export type Embed = z.infer<typeof embedSchema>;

/** Body: `[args, kwargs, embed]`. */
export const bodySchema = z.tuple([
  z.array(z.unknown()),
  z.record(z.string(), z.unknown()),
  embedSchema,
]);
export type TaskBody = z.infer<typeof bodySchema>;

const nullableString = z.string().nullable().default(null);

/** Protocol v2 headers. Extra (custom) headers pass through. */
export const headersSchema = z.looseObject({
  lang: z.string().default('py'),
  task: z.string().min(1),
  id: z.string().min(1),
  shadow: nullableString,
  eta: nullableString,
  expires: nullableString,
  group: nullableString,
  group_index: z.number().int().nullable().default(null),
  retries: z.number().int().min(0).default(0),
  timelimit: z.tuple([z.number().nullable(), z.number().nullable()]).default([null, null]),
  root_id: nullableString,
  parent_id: nullableString,
  argsrepr: nullableString,
  kwargsrepr: nullableString,
  origin: nullableString,
  ignore_result: z.boolean().default(false),
});
export type TaskHeaders = z.infer<typeof headersSchema>;

/** Message properties a task message carries (AMQP properties, or kombu's `properties` on Redis). */
export const propertiesSchema = z.looseObject({
  correlation_id: z.string().optional(),
  reply_to: z.string().optional(),
  delivery_mode: z.number().int().optional(),
  priority: z.number().int().min(0).max(255).optional(),
  expiration: z.string().optional(),
});
export type MessageProperties = z.infer<typeof propertiesSchema>;

/** A decoded task message, independent of the transport that carried it. */
export interface TaskMessage {
  readonly headers: TaskHeaders;
  readonly properties: MessageProperties;
  readonly body: TaskBody;
}

/** Celery's encoded exception: `exc_message` is the list of the exception's args. */
export const exceptionSchema = z.looseObject({
  exc_type: z.string(),
  exc_message: z.union([z.array(z.unknown()), z.string()]).transform((m) => (Array.isArray(m) ? m : [m])),
  exc_module: z.string().nullable().default(null),
});
export type EncodedException = z.infer<typeof exceptionSchema>;

export const STATES = ['PENDING', 'RECEIVED', 'STARTED', 'RETRY', 'SUCCESS', 'FAILURE', 'REVOKED'] as const;
export type TaskState = (typeof STATES)[number];
/** States after which a task's result never changes. */
export const READY_STATES: ReadonlySet<TaskState> = new Set(['SUCCESS', 'FAILURE', 'REVOKED']);
export const EXCEPTION_STATES: ReadonlySet<TaskState> = new Set(['FAILURE', 'RETRY', 'REVOKED']);

/** `celery-task-meta-<id>`: a result record as Celery stores it. */
export const resultMetaSchema = z.looseObject({
  status: z.string(),
  result: z.unknown(),
  traceback: z.string().nullable().default(null),
  children: z.array(z.unknown()).default([]),
  date_done: z.string().nullable().default(null),
  task_id: z.string(),
  group_id: z.string().nullable().optional(),
  parent_id: z.string().nullable().optional(),
});
export type ResultMeta = z.infer<typeof resultMetaSchema>;
