import { signatureList } from '../canvas/signature.js';
import type { TaskMessageInit } from '../protocol/message.js';
import type { TaskMessage } from '../protocol/schema.js';
import { parseCeleryIso } from '../util/time.js';
import type { MessageOptions, ResolvedTaskOptions } from './options.js';

/**
 * The one mapping between `applyAsync` options and a message's headers, each
 * way: {@link messageInitOf} when a task is sent, {@link resendOptionsOf} when
 * a worker sends the same task again (a retry, a parked ETA, a rate-limit slot)
 * and must keep its identity and follow-ups.
 */

/** Protocol header names; anything else in a message's headers is a custom header, carried along when resent. */
export const PROTOCOL_HEADERS: ReadonlySet<string> = new Set([
  'lang', 'task', 'id', 'shadow', 'eta', 'expires', 'group', 'group_index', 'retries', 'timelimit',
  'root_id', 'parent_id', 'argsrepr', 'kwargsrepr', 'origin', 'ignore_result',
]);

/** What sending needs besides the call: the task's own options, the sender's reply queue, the clock. */
export interface SendContext {
  readonly defaults: ResolvedTaskOptions | undefined;
  readonly replyTo: string;
  readonly priority: number | undefined;
  readonly now: number;
}

/** Headers and body fields for a message that sends `name` with `options` (ms on our side, seconds on the wire). */
export function messageInitOf(
  name: string,
  id: string,
  call: { readonly args: readonly unknown[]; readonly kwargs: Readonly<Record<string, unknown>> },
  options: MessageOptions,
  ctx: SendContext,
): TaskMessageInit & { readonly etaMs: number | null } {
  const { defaults: def, now } = ctx;
  const etaMs = options.eta !== undefined ? +options.eta : options.countdown !== undefined ? now + options.countdown : null;
  const expires = options.expires ?? def?.expires;
  const hard = options.timeLimit ?? def?.timeLimit;
  const soft = options.softTimeLimit ?? def?.softTimeLimit;
  return {
    task: name,
    id,
    args: call.args,
    kwargs: call.kwargs,
    callbacks: signatureList(options.link),
    errbacks: signatureList(options.linkError),
    chain: options.chain ?? null,
    chord: options.chord ?? null,
    etaMs: etaMs !== null && etaMs > now ? etaMs : null,
    expiresMs: expires === undefined ? null : expires instanceof Date ? +expires : now + expires,
    retries: options.retries ?? 0,
    timeLimit: [hard !== undefined ? hard / 1000 : null, soft !== undefined ? soft / 1000 : null],
    rootId: options.rootId ?? id,
    parentId: options.parentId ?? null,
    group: options.groupId ?? null,
    groupIndex: options.groupIndex ?? null,
    ignoreResult: options.ignoreResult ?? def?.ignoreResult ?? false,
    replyTo: options.replyTo ?? ctx.replyTo,
    now,
    ...(ctx.priority !== undefined ? { priority: ctx.priority } : {}),
    ...(options.headers ? { headers: options.headers } : {}),
  };
}

/**
 * Options that send `message` again as the same task: same id's lineage, group,
 * limits, expiry, links, chain and chord, custom headers (less `omitHeaders`),
 * queue and priority as delivered. The caller adds what changes (`taskId`,
 * `retries`, `countdown`/`eta`).
 */
export function resendOptionsOf(
  message: Pick<TaskMessage, 'headers' | 'body'>,
  delivered: { readonly queue: string; readonly properties: Readonly<Record<string, unknown>> },
  omitHeaders: readonly string[] = [],
): MessageOptions {
  const { headers } = message;
  const embed = message.body[2];
  const custom = Object.fromEntries(Object.entries(headers).filter(([k]) => !PROTOCOL_HEADERS.has(k) && !omitHeaders.includes(k)));
  const expires = headers.expires ? parseCeleryIso(headers.expires) : NaN;
  const { priority, reply_to: replyTo } = delivered.properties;
  return {
    queue: delivered.queue,
    ...(typeof replyTo === 'string' ? { replyTo } : {}),
    rootId: headers.root_id ?? headers.id,
    ...(headers.parent_id ? { parentId: headers.parent_id } : {}),
    ...(typeof priority === 'number' ? { priority } : {}),
    ...(Number.isFinite(expires) ? { expires: new Date(expires) } : {}),
    ...(headers.group ? { groupId: headers.group } : {}),
    ...(headers.group_index !== null ? { groupIndex: headers.group_index } : {}),
    ...(headers.timelimit[0] !== null ? { timeLimit: headers.timelimit[0] * 1000 } : {}),
    ...(headers.timelimit[1] !== null ? { softTimeLimit: headers.timelimit[1] * 1000 } : {}),
    ...(embed.callbacks ? { link: embed.callbacks } : {}),
    ...(embed.errbacks ? { linkError: embed.errbacks } : {}),
    ...(embed.chain ? { chain: embed.chain } : {}),
    ...(embed.chord ? { chord: embed.chord } : {}),
    ...(Object.keys(custom).length ? { headers: custom } : {}),
    ignoreResult: headers.ignore_result,
  };
}
