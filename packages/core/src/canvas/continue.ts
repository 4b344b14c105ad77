import type { ChordPart } from '../backend/backend.js';
import type { SignatureLike, TaskMessage } from '../protocol/schema.js';
import { CELERY_EXCEPTIONS, resultMeta } from '../result/records.js';
import type { CanvasHost } from './host.js';
import { applyCanvas, finalTaskIds } from './run.js';

/**
 * What happens after a task ends, once its own state is stored: links, the
 * chain's next step, errbacks, the outcome of chain steps that will now never
 * run, and the chord join (with the body sent, or its FAILURE stored, by the
 * member that completes it). Written once, here; the worker calls it.
 */

/**
 * Runs one step that records something (a send, a store, a join). A worker
 * passes one that retries while the broker or backend is away; each step is
 * retried alone, so a retry never repeats the steps before it.
 */
export type OutcomeStep = <T>(what: string, step: () => Promise<T>, taskId: string) => Promise<T>;

export interface Continuation {
  readonly host: CanvasHost;
  readonly step?: OutcomeStep;
  /** Told when a chord body is not run because a header member failed. */
  readonly warn?: (fields: Record<string, unknown>, message: string) => void;
}

/** The part of an ended task's message its follow-ups are read from. */
export type EndedMessage = Pick<TaskMessage, 'headers' | 'body' | 'properties'>;

/** How a task ended: its value, or the encoded exception of a FAILURE or REVOKED. */
export type Ending = { readonly state: 'SUCCESS'; readonly result: unknown } | { readonly state: 'FAILURE' | 'REVOKED'; readonly result: unknown };

const once: OutcomeStep = (_what, step) => step();

/** Continue the canvas after `message`'s task ended as `ending`. */
export async function continueAfter(c: Continuation, message: EndedMessage, ending: Ending): Promise<void> {
  const step = c.step ?? once;
  const { headers } = message;
  const embed = message.body[2];
  const id = headers.id;
  const rootId = headers.root_id ?? id;
  if (ending.state === 'SUCCESS') {
    const value = ending.result ?? null;
    for (const sig of embed.callbacks ?? []) {
      await step('send a link', () => applyCanvas(c.host, sig, { prepend: [value], parentId: id, rootId }), id);
    }
    const chain = embed.chain ?? [];
    const next = chain[chain.length - 1];
    if (next) {
      const rest = { prepend: [value], parentId: id, rootId, chain: chain.slice(0, -1) };
      await step("send the chain's next step", () => applyCanvas(c.host, next, rest), id);
    }
    if (embed.chord) await joinFor(c, message, ending);
    return;
  }
  if (ending.state === 'FAILURE') {
    // Errbacks get the failed task's id first, then their own args (Celery's `on_task_error(task_id, ...)`).
    for (const sig of embed.errbacks ?? []) {
      const errback = { ...sig, immutable: false };
      await step('send an errback', () => applyCanvas(c.host, errback, { prepend: [id], parentId: id, rootId }), id);
    }
  }
  // A chain stopped here gives this outcome to every step that will now never run, so whoever
  // waits on the chain's result hears it.
  const replyTo = typeof message.properties.reply_to === 'string' ? message.properties.reply_to : undefined;
  const expiresMs = c.host.config.resultExpires;
  for (const stepId of (embed.chain ?? []).flatMap(finalTaskIds)) {
    const meta = resultMeta({ id: stepId, group: null, parent_id: id }, ending.state, ending.result);
    await step("store a stopped chain step's state", async () => (await c.host.backend()).store(meta, { expiresMs, replyTo }), stepId);
  }
  await joinFor(c, message, ending);
}

/** A chord header member, as its message (or, for a chain member, its last step's options) describes it. */
interface ChordMember {
  readonly group: string;
  readonly index: number;
  readonly taskId: string;
  readonly rootId: string;
  readonly body: SignatureLike;
}

/** The chord this ended task is a member of, if any: itself, or (stopped early) its chain's last step. */
function memberOf(message: EndedMessage, ending: Ending): ChordMember | undefined {
  const { headers } = message;
  const rootId = headers.root_id ?? headers.id;
  const body = message.body[2].chord;
  const chain = message.body[2].chain ?? [];
  if (body && headers.group && headers.group_index !== null) {
    return { group: headers.group, index: headers.group_index, taskId: headers.id, rootId, body };
  }
  if (ending.state === 'SUCCESS' || chain.length === 0) return undefined;
  // A chain that is a chord header member carries the membership on its last step, which will now
  // never run: join for it, with this outcome, or the chord would wait forever.
  const o = chain[0]!.options;
  if (o.chord && typeof o.group_id === 'string' && typeof o.group_index === 'number' && typeof o.task_id === 'string') {
    return { group: o.group_id, index: o.group_index, taskId: o.task_id, rootId, body: o.chord as SignatureLike };
  }
  return undefined;
}

async function joinFor(c: Continuation, message: EndedMessage, ending: Ending): Promise<void> {
  const member = memberOf(message, ending);
  if (member) await joinChord(c, member, ending);
}

/**
 * A chord header member finished (in any state): join it. The member that
 * completes the join sends the body with every result in header order — or,
 * when a member did not succeed, stores the body's FAILURE (Celery's
 * ChordError naming that member) and runs the body's errbacks. A chord never hangs.
 */
async function joinChord(c: Continuation, m: ChordMember, ending: Ending): Promise<void> {
  const step = c.step ?? once;
  const { body } = m;
  const expiresMs = c.host.config.resultExpires;
  const part: ChordPart = { index: m.index, taskId: m.taskId, state: ending.state, result: ending.result };
  const parts = await step('join the chord', async () => (await c.host.backend()).chordPartReturn(m.group, part, { expiresMs }), m.taskId);
  if (!parts) return;
  const failed = parts.find((p) => p.state !== 'SUCCESS');
  const bodyIds = finalTaskIds(body);
  if (!failed) {
    const results = parts.map((p) => p.result);
    await step('send the chord body', () => applyCanvas(c.host, body, { prepend: [results], parentId: m.taskId, rootId: m.rootId }), m.taskId);
  } else {
    const exc = CELERY_EXCEPTIONS.chordError(failed.taskId, failed.state, failed.result);
    for (const id of bodyIds) {
      const meta = resultMeta({ id, group: null, parent_id: m.taskId }, 'FAILURE', exc);
      await step("store the chord body's FAILURE", async () => (await c.host.backend()).store(meta, { expiresMs }), m.taskId);
    }
    c.warn?.({ chord: m.group, failedMember: failed.taskId }, 'chord body not run: a header task failed');
    for (const errback of (body.options.link_error as SignatureLike[] | undefined) ?? []) {
      const sig = { ...errback, immutable: false };
      await step("send the chord body's errback", () => applyCanvas(c.host, sig, { prepend: [bodyIds[0] ?? m.group], parentId: m.taskId }), m.taskId);
    }
  }
  await step('complete the chord', async () => (await c.host.backend()).chordComplete(m.group, { expiresMs }), m.taskId);
}
