import { ErrorCodes, MessageError } from '../errors.js';
import { formatIssues } from '../util/issues.js';
import { originName } from '../util/ids.js';
import { toCeleryIso } from '../util/time.js';
import { pyRepr, pyTupleRepr } from './repr.js';
import { UNDECODABLE, type WireMessage } from './wire.js';
import {
  bodySchema,
  headersSchema,
  propertiesSchema,
  type Embed,
  type SignatureDict,
  type SignatureLike,
  type TaskMessage,
  type TaskHeaders,
  type TaskBody,
} from './schema.js';
import type { z } from 'zod';

export type { WireMessage } from './wire.js';

/** What it takes to write one protocol v2 task message. */
export interface TaskMessageInit {
  task: string;
  id: string;
  args: readonly unknown[];
  kwargs: Readonly<Record<string, unknown>>;
  callbacks?: readonly SignatureLike[] | null;
  errbacks?: readonly SignatureLike[] | null;
  chain?: readonly SignatureLike[] | null;
  chord?: SignatureLike | null;
  etaMs?: number | null;
  expiresMs?: number | null;
  group?: string | null;
  groupIndex?: number | null;
  retries?: number;
  timeLimit?: readonly [number | null, number | null];
  rootId?: string | null;
  parentId?: string | null;
  ignoreResult?: boolean;
  shadow?: string | null;
  priority?: number;
  replyTo?: string;
  /** Custom headers, merged beside the protocol headers as Celery does. */
  headers?: Readonly<Record<string, unknown>>;
  /** Clock used for `expiration`; tests inject it. */
  now?: number;
}

/** A signature as the plain JSON dict the body carries. */
function toDict(sig: SignatureLike): SignatureDict {
  return JSON.parse(JSON.stringify(sig)) as SignatureDict;
}

/** Build a protocol v2 message with exactly the fields Celery 5.2 writes. */
export function buildTaskMessage(init: TaskMessageInit): TaskMessage {
  const embed: Embed = {
    callbacks: init.callbacks ? init.callbacks.map(toDict) : null,
    errbacks: init.errbacks ? init.errbacks.map(toDict) : null,
    chain: init.chain ? init.chain.map(toDict) : null,
    chord: init.chord ? toDict(init.chord) : null,
  };
  const headers = {
    ...init.headers,
    lang: 'js',
    task: init.task,
    id: init.id,
    shadow: init.shadow ?? null,
    eta: init.etaMs != null ? toCeleryIso(init.etaMs) : null,
    expires: init.expiresMs != null ? toCeleryIso(init.expiresMs) : null,
    group: init.group ?? null,
    group_index: init.groupIndex ?? null,
    retries: init.retries ?? 0,
    timelimit: [init.timeLimit?.[0] ?? null, init.timeLimit?.[1] ?? null] as [number | null, number | null],
    root_id: init.rootId ?? init.id,
    parent_id: init.parentId ?? null,
    argsrepr: pyTupleRepr(init.args),
    kwargsrepr: pyRepr(init.kwargs),
    origin: originName(),
    ignore_result: init.ignoreResult ?? false,
  };
  const properties: TaskMessage['properties'] = {
    correlation_id: init.id,
    ...(init.replyTo ? { reply_to: init.replyTo } : {}),
    delivery_mode: 2,
    priority: init.priority ?? 0,
    // Celery also writes `expires` as the AMQP per-message TTL (ms, as a string).
    ...(init.expiresMs != null
      ? { expiration: String(Math.max(0, Math.round(init.expiresMs - (init.now ?? Date.now())))) }
      : {}),
  };
  return { headers, properties, body: [[...init.args], { ...init.kwargs }, embed] };
}

/** Serialise a task message for the transport seam. */
export function toWire(message: TaskMessage): WireMessage {
  return {
    body: JSON.stringify(message.body),
    contentType: 'application/json',
    contentEncoding: 'utf-8',
    headers: message.headers,
    properties: message.properties,
  };
}

const str = (v: unknown): boolean => typeof v === 'string';
const strOrNull = (v: unknown): boolean => v === null || typeof v === 'string';
const intOrNull = (v: unknown): boolean => v === null || Number.isInteger(v);
const numOrNull = (v: unknown): boolean => v === null || typeof v === 'number';

/**
 * Hot-path shortcut: headers that already carry every protocol field with its
 * exact type (what Celery 5 and celeriac write) are what the zod schema would
 * return, so they skip it. Anything else goes through the schema, which stays
 * the definition (and writes the error messages).
 */
function exactHeaders(h: Readonly<Record<string, unknown>>): { success: true; data: TaskHeaders } | undefined {
  const tl = h.timelimit;
  const ok =
    str(h.lang) && str(h.task) && (h.task as string).length > 0 && str(h.id) && (h.id as string).length > 0 &&
    strOrNull(h.shadow) && strOrNull(h.eta) && strOrNull(h.expires) && strOrNull(h.group) && intOrNull(h.group_index) &&
    Number.isInteger(h.retries) && (h.retries as number) >= 0 && Array.isArray(tl) && tl.length === 2 && numOrNull(tl[0]) && numOrNull(tl[1]) &&
    strOrNull(h.root_id) && strOrNull(h.parent_id) && strOrNull(h.argsrepr) && strOrNull(h.kwargsrepr) && strOrNull(h.origin) &&
    typeof h.ignore_result === 'boolean';
  return ok ? { success: true, data: h as TaskHeaders } : undefined;
}

/** Same shortcut for the commonest body: `[args, kwargs, {callbacks: null, errbacks: null, chain: null, chord: null}]`. */
function exactPlainBody(raw: unknown): { success: true; data: TaskBody } | undefined {
  if (!Array.isArray(raw) || raw.length !== 3) return undefined;
  const [args, kwargs, embed] = raw as [unknown, unknown, Record<string, unknown> | null];
  const plain =
    Array.isArray(args) && kwargs !== null && typeof kwargs === 'object' && !Array.isArray(kwargs) &&
    embed !== null && typeof embed === 'object' && embed.callbacks === null && embed.errbacks === null && embed.chain === null && embed.chord === null;
  return plain ? { success: true, data: raw as TaskBody } : undefined;
}

const optional = (v: unknown, ok: (v: unknown) => boolean): boolean => v === undefined || ok(v);
const byte = (v: unknown): boolean => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 255;

/** Same shortcut for properties: the known ones absent or of their exact type (the schema keeps unknown keys as they are). */
function exactProperties(p: Readonly<Record<string, unknown>>): { success: true; data: TaskMessage['properties'] } | undefined {
  const ok =
    optional(p.correlation_id, str) && optional(p.reply_to, str) && optional(p.delivery_mode, Number.isInteger) &&
    optional(p.priority, byte) && optional(p.expiration, str);
  return ok ? { success: true, data: p } : undefined;
}

/** Deepest nesting a message body may have; deeper JSON would overflow the stack when re-serialised. */
export const MAX_JSON_DEPTH = 512;

/** Nesting depth of JSON text, counted without parsing (strings skipped), stopping early past the limit. */
export function jsonDepth(text: string, stopAt = MAX_JSON_DEPTH + 1): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92 /* \\ */) i++;
      else if (c === 34 /* " */) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 91 || c === 123 /* [ { */) {
      if (++depth > max && (max = depth) >= stopAt) return max;
    } else if (c === 93 || c === 125) depth--;
  }
  return max;
}

function describeIssues(error: z.ZodError): string {
  return formatIssues(error);
}

/**
 * Decode and validate a task message from the transport. Throws
 * {@link MessageError} with the task name/id when they are readable, and a
 * readable list of what is wrong.
 */
export function fromWire(wire: WireMessage): TaskMessage {
  const headerProbe = wire.headers as { task?: unknown; id?: unknown };
  const ident = { task: headerProbe.task, id: headerProbe.id };
  if (wire.contentType === UNDECODABLE) {
    throw new MessageError(`Undecodable message envelope: ${String(wire.properties.error)}`, ident);
  }
  if (wire.contentType !== 'application/json') {
    // Never pickle, yaml or msgpack: only JSON is read, so nothing in a message can run code.
    throw new MessageError(`Content type ${JSON.stringify(wire.contentType)} rejected; celeriac reads application/json only`, ident, ErrorCodes.CONTENT_TYPE_REJECTED);
  }
  if (!/^(utf-?8|binary)$/i.test(wire.contentEncoding)) {
    // Compressed bodies are refused rather than inflated: no decompression bomb can reach memory.
    throw new MessageError(`Content encoding ${JSON.stringify(wire.contentEncoding)} rejected; celeriac reads utf-8 only`, ident, ErrorCodes.CONTENT_TYPE_REJECTED);
  }
  const depth = jsonDepth(wire.body);
  if (depth > MAX_JSON_DEPTH) {
    throw new MessageError(`Task message body nests deeper than ${MAX_JSON_DEPTH} levels`, ident, ErrorCodes.MESSAGE_TOO_DEEP);
  }
  const headers = exactHeaders(wire.headers) ?? headersSchema.safeParse(wire.headers);
  if (!headers.success) {
    throw new MessageError(`Malformed task message headers: ${describeIssues(headers.error)}`, ident);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(wire.body);
  } catch (e) {
    throw new MessageError(`Task message body is not valid JSON: ${(e as Error).message}`, ident, ErrorCodes.MESSAGE_MALFORMED, { cause: e });
  }
  if (raw !== null && typeof raw === 'object' && !Array.isArray(raw)) {
    throw new MessageError('Task message body is a protocol v1 dict; celeriac reads protocol v2 only', ident);
  }
  const body = exactPlainBody(raw) ?? bodySchema.safeParse(raw);
  if (!body.success) {
    throw new MessageError(`Malformed task message body: ${describeIssues(body.error)}`, ident);
  }
  const properties = exactProperties(wire.properties) ?? propertiesSchema.safeParse(wire.properties);
  return { headers: headers.data, properties: properties.success ? properties.data : {}, body: body.data };
}

/**
 * Size of a message body in UTF-8 bytes, for `maxPayloadBytes`. Counting is
 * skipped when the body cannot be over `limit` (a UTF-16 unit is at most 3
 * bytes), so the common small message costs nothing. Headers are bounded by
 * the protocol and not counted.
 */
export function wireSize(wire: WireMessage, limit = 0): number {
  return wire.body.length * 3 <= limit ? wire.body.length : Buffer.byteLength(wire.body);
}
