import type { ApplyOptions, SignatureLike } from '../task/options.js';

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);
const sigs = (v: unknown): SignatureLike[] | undefined => (Array.isArray(v) && v.length > 0 ? (v as SignatureLike[]) : undefined);

/**
 * Read a signature's `options` (snake_case, as Celery writes them) into
 * `applyAsync` options. Celery's `countdown` and `expires` are seconds on the
 * wire; celeriac's own options are ms.
 */
export function applyOptionsOf(options: Readonly<Record<string, unknown>>): ApplyOptions {
  const o: Record<string, unknown> = {};
  const set = (key: keyof ApplyOptions, value: unknown): void => {
    if (value !== undefined) o[key] = value;
  };
  set('taskId', str(options.task_id));
  set('replyTo', str(options.reply_to));
  set('queue', str(options.queue));
  set('priority', num(options.priority));
  const countdown = num(options.countdown);
  set('countdown', countdown !== undefined ? countdown * 1000 : undefined);
  const expires = num(options.expires);
  set('expires', expires !== undefined ? expires * 1000 : undefined);
  set('link', sigs(options.link));
  set('linkError', sigs(options.link_error));
  set('groupId', str(options.group_id));
  set('groupIndex', num(options.group_index));
  set('chord', options.chord && typeof options.chord === 'object' ? options.chord : undefined);
  return o;
}
