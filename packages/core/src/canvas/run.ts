import { CapabilityError } from '../errors.js';
import type { SignatureLike } from '../protocol/schema.js';
import { AsyncResult, type ResultHost } from '../result/async-result.js';
import { GroupResult } from '../result/group-result.js';
import type { MessageOptions } from '../task/options.js';
import { newId } from '../util/ids.js';
import { applyOptionsOf } from './apply.js';
import type { CanvasHost } from './host.js';

/** Where a signature stands when it is applied: what it receives and what it belongs to. */
export interface CanvasContext {
  /** The parent's result (a chain step, a link) or the header's results (a chord body): prepended unless immutable. */
  readonly prepend?: readonly unknown[];
  readonly parentId?: string;
  readonly rootId?: string;
  /** Steps to run after this one, reversed as `embed.chain` carries them (the next is last). */
  readonly chain?: readonly SignatureLike[];
  /** Membership of a group or a chord header: travels on the member's (last) task as Celery encodes it. */
  readonly member?: { readonly groupId: string; readonly groupIndex: number; readonly chord?: SignatureLike };
}

const tasksOf = (sig: SignatureLike): SignatureLike[] => (sig.kwargs.tasks as SignatureLike[] | undefined) ?? [];
/** A chord's header: celeriac writes a list, Celery a `celery.group` signature. */
const headerOf = (sig: SignatureLike): SignatureLike[] => {
  const h = sig.kwargs.header as SignatureLike[] | SignatureLike | undefined;
  return Array.isArray(h) ? h : h ? tasksOf(h) : [];
};
const headerGroupId = (sig: SignatureLike): string | undefined => {
  const h = sig.kwargs.header as SignatureLike | SignatureLike[] | undefined;
  const id = !Array.isArray(h) && h ? h.options.task_id : sig.options.task_id;
  return typeof id === 'string' ? id : undefined;
};

function make(task: string, subtask_type: 'chain' | 'chord', kwargs: Record<string, unknown>): SignatureLike {
  return { task, args: [], kwargs, options: {}, subtask_type, immutable: false };
}
const chainOf = (steps: SignatureLike[]): SignatureLike => (steps.length === 1 ? steps[0]! : make('celery.chain', 'chain', { tasks: steps }));
const groupOf = (tasks: SignatureLike[]): SignatureLike => ({ task: 'celery.group', args: [], kwargs: { tasks }, options: {}, subtask_type: 'group', immutable: false });
const chordOf = (header: SignatureLike[], body: SignatureLike): SignatureLike => make('celery.chord', 'chord', { kwargs: {}, header: groupOf(header), body });

/**
 * A chain's steps as Celery runs them: nested chains flattened; a group followed
 * by more steps becomes a chord whose body is the rest (`group | xsum` is a
 * chord), and a chord followed by more steps takes them into its body.
 */
export function chainSteps(steps: readonly SignatureLike[]): SignatureLike[] {
  const flat = steps.flatMap((s) => (s.subtask_type === 'chain' ? chainSteps(tasksOf(pushLinksDown(s))) : [s]));
  for (let i = 0; i < flat.length - 1; i++) {
    // Links set on the group or chord move onto its tasks first: the canvas itself is rewritten below.
    const step = pushLinksDown(flat[i]!);
    const rest = flat.slice(i + 1);
    if (step.subtask_type === 'group') return [...flat.slice(0, i), chordOf(tasksOf(step), chainOf(rest))];
    if (step.subtask_type === 'chord') return [...flat.slice(0, i), chordOf(headerOf(step), chainOf([step.kwargs.body as SignatureLike, ...rest]))];
  }
  return flat;
}

/**
 * The canvas as it will be sent: chains normalised, and an id fixed on every
 * task and group before anything is sent — the ids travel inside other messages
 * (chain steps, chord bodies), and the caller's result handles use them.
 */
export function prepare(input: SignatureLike, replyTo?: string): SignatureLike {
  // Celery stamps every task with the sender's reply queue too, so rpc:// results of later steps find their way back.
  const id = (s: SignatureLike): SignatureLike =>
    typeof s.options.task_id === 'string' && (!replyTo || s.options.reply_to) ? s : { ...s, options: { ...s.options, task_id: s.options.task_id ?? newId(), ...(replyTo && !s.options.reply_to ? { reply_to: replyTo } : {}) } };
  const sig = pushLinksDown(input);
  switch (sig.subtask_type) {
    case 'chunks': {
      // As Celery applies chunks: a group of starmaps over slices of `n`.
      const { task, it, n } = sig.kwargs as { task: SignatureLike; it: unknown[][]; n: number };
      const parts = Array.from({ length: Math.ceil(it.length / n) }, (_, i) => it.slice(i * n, i * n + n));
      const members = parts.map((part): SignatureLike => ({ task: 'celery.starmap', args: [], kwargs: { task, it: part }, options: {}, subtask_type: 'xstarmap', immutable: true }));
      return prepare({ task: 'celery.group', args: [], kwargs: { tasks: members }, options: sig.options, subtask_type: 'group', immutable: false }, replyTo);
    }
    case 'chain':
      return { ...sig, kwargs: { ...sig.kwargs, tasks: chainSteps(tasksOf(sig)).map((t) => prepare(t, replyTo)) } };
    case 'group':
      return id({ ...sig, kwargs: { ...sig.kwargs, tasks: tasksOf(sig).map((t) => prepare(t, replyTo)) } });
    case 'chord': {
      // As Celery freezes a chord: the group id is the chord's id; each member knows its index and the body.
      const groupId = headerGroupId(sig) ?? newId();
      const body = prepare(sig.kwargs.body as SignatureLike, replyTo);
      const members = headerOf(sig).map((m, i) => {
        const p = prepare(m, replyTo);
        return p.subtask_type ? p : { ...p, options: { ...p.options, group_index: i, chord: body } };
      });
      const header = { ...groupOf(members), options: { task_id: groupId, chord: body } };
      return { ...sig, options: { ...sig.options, task_id: groupId }, kwargs: { kwargs: {}, ...sig.kwargs, header, body } };
    }
    default:
      return id(sig);
  }
}

const linksOf = (v: unknown): SignatureLike[] => (Array.isArray(v) ? (v as SignatureLike[]) : v && typeof v === 'object' ? [v as SignatureLike] : []);
const addLinks = (sig: SignatureLike, key: 'link' | 'link_error', links: SignatureLike[]): SignatureLike =>
  links.length ? { ...sig, options: { ...sig.options, [key]: [...linksOf(sig.options[key]), ...links] } } : sig;

/**
 * Links set on a canvas move onto the tasks that run, as Celery's do: a chain's
 * errbacks go on every step and its callbacks on the last; a group's on every
 * member; a chord's on its body.
 */
function pushLinksDown(sig: SignatureLike): SignatureLike {
  if (!sig.subtask_type) return sig;
  const link = linksOf(sig.options.link);
  const linkError = linksOf(sig.options.link_error);
  if (!link.length && !linkError.length) return sig;
  const { link: _l, link_error: _e, ...options } = sig.options;
  const both = (s: SignatureLike, withLink: boolean): SignatureLike => addLinks(withLink ? addLinks(s, 'link', link) : s, 'link_error', linkError);
  if (sig.subtask_type === 'chord') return { ...sig, options, kwargs: { ...sig.kwargs, body: both(sig.kwargs.body as SignatureLike, true) } };
  const tasks = tasksOf(sig);
  const moved = tasks.map((t, i) => both(t, sig.subtask_type === 'group' || i === tasks.length - 1));
  return { ...sig, options, kwargs: { ...sig.kwargs, tasks: moved } };
}

/** The result handle of a prepared canvas: a chain's is its last step's, a chord's its body's, a group's a GroupResult. */
export function resultOf(app: ResultHost, sig: SignatureLike): AsyncResult | GroupResult {
  switch (sig.subtask_type) {
    case 'chain': {
      const steps = tasksOf(sig);
      return resultOf(app, steps[steps.length - 1]!);
    }
    case 'chord':
      return resultOf(app, sig.kwargs.body as SignatureLike);
    case 'group':
      return new GroupResult(String(sig.options.task_id), tasksOf(sig).map((m) => resultOf(app, m) as AsyncResult), app);
    default:
      return new AsyncResult(String(sig.options.task_id), app);
  }
}

/**
 * The ids whose results stand for `sig` once it has run: a task's own, a chain's
 * last step's, a chord's body's, every member's of a group. A step that will never
 * run (a chain stopped by a failure) gets its outcome stored under these.
 */
export function finalTaskIds(sig: SignatureLike): string[] {
  switch (sig.subtask_type) {
    case 'chain': {
      const steps = tasksOf(sig);
      return steps.length ? finalTaskIds(steps[steps.length - 1]!) : [];
    }
    case 'chord':
      return finalTaskIds(sig.kwargs.body as SignatureLike);
    case 'group':
      return tasksOf(sig).flatMap(finalTaskIds);
    default:
      return typeof sig.options.task_id === 'string' ? [sig.options.task_id] : [];
  }
}

/** Put membership on the task that finishes `sig`: itself, a chain's last step, or a chord's body. */
function withMember(sig: SignatureLike, member: NonNullable<CanvasContext['member']>, inChain = false): SignatureLike {
  switch (sig.subtask_type) {
    case 'chain': {
      const steps = tasksOf(sig);
      return { ...sig, kwargs: { ...sig.kwargs, tasks: [...steps.slice(0, -1), withMember(steps[steps.length - 1]!, member, true)] } };
    }
    case 'chord':
      return { ...sig, kwargs: { ...sig.kwargs, body: withMember(sig.kwargs.body as SignatureLike, member) } };
    case 'group':
      throw new CapabilityError('A group directly inside a group or a chord header is not supported; flatten it into one group');
    default:
      return {
        ...sig,
        // A plain group's chain member carries only the group id (as Celery writes it); chord members also their index.
        options: {
          ...sig.options,
          group_id: member.groupId,
          ...(!inChain || member.chord ? { group_index: member.groupIndex } : {}),
          ...(member.chord ? { chord: member.chord } : {}),
        },
      };
  }
}

/**
 * Apply a signature or a canvas — from a client, or from a worker continuing a
 * chain, completing a chord or following a link — encoded as Celery encodes it:
 * a chain sends its first step with the rest reversed in `embed.chain`; a group
 * sends each member with `group`/`group_index`; a chord records its header size
 * in the backend and sends each header member with the body in `embed.chord`.
 */
export async function applyCanvas(app: CanvasHost, input: SignatureLike, ctx: CanvasContext = {}): Promise<void> {
  const sig = ctx.member ? withMember(prepare(input), ctx.member) : prepare(input);
  const base = { ...(ctx.prepend ? { prepend: ctx.prepend } : {}), ...(ctx.parentId ? { parentId: ctx.parentId } : {}), ...(ctx.rootId ? { rootId: ctx.rootId } : {}) };
  if ((sig.subtask_type === 'chain' || sig.subtask_type === 'group' || sig.subtask_type === 'chord') && ctx.chain?.length) {
    // A canvas with steps after it: one chain, normalised (a group then steps becomes a chord).
    return applyCanvas(app, make('celery.chain', 'chain', { tasks: [sig, ...[...ctx.chain].reverse()] }), base);
  }
  switch (sig.subtask_type) {
    case 'chain': {
      const [first, ...rest] = tasksOf(sig);
      if (!first) throw new CapabilityError('chain(): a chain needs at least one step');
      // Normalised, a canvas is only ever the last step: the first step carries the rest.
      return applyCanvas(app, first, { ...base, chain: [...rest].reverse() });
    }
    case 'group': {
      const groupId = String(sig.options.task_id);
      await Promise.all(tasksOf(sig).map((m, i) => applyCanvas(app, m, { ...base, member: { groupId, groupIndex: i } })));
      return;
    }
    case 'chord': {
      const header = headerOf(sig);
      const body = sig.kwargs.body as SignatureLike;
      if (header.length === 0) return applyCanvas(app, body, { ...base, prepend: [[]] });
      const backend = await app.backend();
      if (!backend.capabilities.chords) {
        throw new CapabilityError(`A chord needs a result backend that can join its header; the ${backend.kind} backend cannot. Use a redis:// or sqlite:// result backend.`, {
          backend: backend.kind,
        });
      }
      const groupId = String(sig.options.task_id);
      await backend.chordInit(groupId, header.length, { expiresMs: app.config.resultExpires });
      await Promise.all(header.map((m, i) => applyCanvas(app, m, { ...base, member: { groupId, groupIndex: i, chord: body } })));
      return;
    }
    default: {
      const args = sig.immutable || !ctx.prepend ? [...sig.args] : [...ctx.prepend, ...sig.args];
      const options: MessageOptions = {
        ...applyOptionsOf(sig.options),
        ...(ctx.parentId ? { parentId: ctx.parentId } : {}),
        ...(ctx.rootId ? { rootId: ctx.rootId } : {}),
        ...(ctx.chain?.length ? { chain: ctx.chain } : {}),
      };
      await app.sendTask(sig.task, args, sig.kwargs, options);
    }
  }
}

/** Send a canvas from a client: prepared once (ids fixed), applied, and its result handle returned. */
export async function sendCanvas(app: CanvasHost & ResultHost & { readonly oid: string }, sig: SignatureLike, options: MessageOptions = {}): Promise<AsyncResult | GroupResult> {
  const prepared = prepare(sig, app.oid);
  await applyCanvas(app, prepared, { ...(options.parentId ? { parentId: options.parentId } : {}), ...(options.rootId ? { rootId: options.rootId } : {}) });
  return resultOf(app, prepared);
}
