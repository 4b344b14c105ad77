import type { ApplyOptions, MessageOptions, SignatureLike } from '../task/options.js';

/**
 * The one mapping between a signature's `options` (snake_case, seconds, as
 * Celery writes them inside messages) and celeriac's camelCase, milliseconds
 * options: {@link signatureOptionsOf} when a signature is set up,
 * {@link applyOptionsOf} when it is sent.
 */

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);
const sigs = (v: unknown): SignatureLike[] | undefined => (Array.isArray(v) && v.length > 0 ? (v as SignatureLike[]) : undefined);
const time = (v: unknown): Date | undefined => {
  const ms = typeof v === 'string' ? Date.parse(v) : NaN;
  return Number.isFinite(ms) ? new Date(ms) : undefined;
};
const toList = (v: SignatureLike | readonly SignatureLike[]): SignatureLike[] =>
  (Array.isArray(v) ? [...(v as readonly SignatureLike[])] : [v as SignatureLike]).map((s) => JSON.parse(JSON.stringify(s)) as SignatureLike);
const seconds = (ms: number): number => ms / 1000;

/** camelCase option → how it is written in a signature's options. */
const TO_SIGNATURE: { readonly [K in keyof ApplyOptions]-?: (value: NonNullable<ApplyOptions[K]>) => [string, unknown] } = {
  taskId: (v) => ['task_id', v],
  replyTo: (v) => ['reply_to', v],
  queue: (v) => ['queue', v],
  priority: (v) => ['priority', v],
  countdown: (v) => ['countdown', seconds(v)],
  eta: (v) => ['eta', new Date(+v).toISOString()],
  expires: (v) => ['expires', v instanceof Date ? v.toISOString() : seconds(v)],
  link: (v) => ['link', toList(v)],
  linkError: (v) => ['link_error', toList(v)],
  ignoreResult: (v) => ['ignore_result', v],
  timeLimit: (v) => ['time_limit', seconds(v)],
  softTimeLimit: (v) => ['soft_time_limit', seconds(v)],
  headers: (v) => ['headers', v],
  deduplicate: (v) => ['deduplicate', { ...v }],
};

/** Every `ApplyOptions` key (the table above is complete by its type). */
export const APPLY_OPTION_KEYS: readonly (keyof ApplyOptions)[] = Object.keys(TO_SIGNATURE) as (keyof ApplyOptions)[];

/**
 * `Signature.set()` options as the signature carries them: celeriac's
 * camelCase, milliseconds options converted; snake_case keys (Celery's own, as
 * in `set({ link_error: [...] })`) kept as they are.
 */
export function signatureOptionsOf(options: ApplyOptions | Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined) continue;
    const convert = Object.hasOwn(TO_SIGNATURE, key) ? (TO_SIGNATURE as Record<string, (v: unknown) => [string, unknown]>)[key] : undefined;
    const [k, v] = convert ? convert(value) : [key, value];
    out[k] = v;
  }
  return out;
}

/**
 * Read a signature's `options` (snake_case, as Celery writes them) into
 * `applyAsync` options. Celery's `countdown`, `expires` and time limits are
 * seconds on the wire; `eta` (and a dated `expires`) ISO 8601.
 */
export function applyOptionsOf(options: Readonly<Record<string, unknown>>): MessageOptions {
  const o: Record<string, unknown> = {};
  const set = (key: keyof MessageOptions, value: unknown): void => {
    if (value !== undefined) o[key] = value;
  };
  const ms = (v: unknown): number | undefined => {
    const n = num(v);
    return n !== undefined ? n * 1000 : undefined;
  };
  set('taskId', str(options.task_id));
  set('replyTo', str(options.reply_to));
  set('queue', str(options.queue));
  set('priority', num(options.priority));
  set('countdown', ms(options.countdown));
  set('eta', time(options.eta));
  set('expires', ms(options.expires) ?? time(options.expires));
  set('link', sigs(options.link));
  set('linkError', sigs(options.link_error));
  set('ignoreResult', typeof options.ignore_result === 'boolean' ? options.ignore_result : undefined);
  set('timeLimit', ms(options.time_limit));
  set('softTimeLimit', ms(options.soft_time_limit));
  set('headers', options.headers && typeof options.headers === 'object' && !Array.isArray(options.headers) ? options.headers : undefined);
  set('deduplicate', options.deduplicate && typeof options.deduplicate === 'object' ? options.deduplicate : undefined);
  set('groupId', str(options.group_id));
  set('groupIndex', num(options.group_index));
  set('chord', options.chord && typeof options.chord === 'object' ? options.chord : undefined);
  return o;
}
