import type { CeleriacApp } from '../app/app.js';
import type { SignatureLike } from '../protocol/schema.js';
import { AsyncResult } from '../result/async-result.js';
import { GroupResult } from '../result/group-result.js';
import type { ApplyOptions } from '../task/options.js';
import { newId } from '../util/ids.js';
import { CapabilityError } from '../errors.js';
import { applySignature } from './apply.js';

/** A signature with a task id fixed in its options (Celery pre-assigns the ids of chain steps and chord bodies). */
const withId = (sig: SignatureLike): SignatureLike =>
  typeof sig.options.task_id === 'string' ? sig : { ...sig, options: { ...sig.options, task_id: newId() } };

/**
 * Send a task signature or a canvas, encoded as Celery encodes it:
 * - chain: only the first step is sent; the rest travel reversed in `embed.chain`, each with its
 *   pre-assigned id; the result is the last step's.
 * - group: each member with the `group` header and its `group_index`.
 * - chord: the header size is recorded in the result backend, each header member carries the body
 *   in `embed.chord`; the worker that completes the join sends the body (an empty header sends it at once, with `[]`).
 */
export async function sendSignature(app: CeleriacApp, sig: SignatureLike, options: ApplyOptions = {}): Promise<AsyncResult | GroupResult> {
  const extra = { ...(options.parentId ? { parentId: options.parentId } : {}), ...(options.rootId ? { rootId: options.rootId } : {}) };
  switch (sig.subtask_type) {
    case 'chain': {
      const steps = (sig.kwargs.tasks as SignatureLike[]).map(withId);
      if (steps.some((s) => s.subtask_type)) {
        throw new CapabilityError('chain(): nested groups and chords inside a chain are not supported yet; chain task signatures');
      }
      const [first, ...rest] = steps;
      if (!first) throw new CapabilityError('chain(): a chain needs at least one step');
      await applySignature(app, first, { ...extra, chain: [...rest].reverse() });
      return new AsyncResult(String(steps[steps.length - 1]!.options.task_id), app);
    }
    case 'group': {
      const groupId = newId();
      const members = (sig.kwargs.tasks as SignatureLike[]).map(withId);
      const results = await Promise.all(
        members.map((m, i) => applySignature(app, { ...m, options: { ...m.options, group_id: groupId, group_index: i } }, extra)),
      );
      return new GroupResult(groupId, results, app);
    }
    case 'chord': {
      const header = (sig.kwargs.header as SignatureLike[]).map(withId);
      const body = withId(sig.kwargs.body as SignatureLike);
      if (header.length === 0) {
        await applySignature(app, body, { ...extra, prepend: [[]] });
        return new AsyncResult(String(body.options.task_id), app);
      }
      const groupId = newId();
      const backend = await app.backend();
      if (!backend.capabilities.chords) {
        throw new CapabilityError(`A chord needs a result backend that can join its header; the ${backend.kind} backend cannot. Use a redis:// or sqlite:// result backend.`, {
          backend: backend.kind,
        });
      }
      await backend.chordInit(groupId, header.length, { expiresMs: app.config.resultExpires });
      await Promise.all(
        header.map((m, i) => applySignature(app, { ...m, options: { ...m.options, group_id: groupId, group_index: i, chord: body } }, extra)),
      );
      return new AsyncResult(String(body.options.task_id), app);
    }
    default:
      return applySignature(app, sig, extra);
  }
}
