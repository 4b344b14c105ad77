import type { TaskError } from '../errors.js';
import { AsyncResult, type GetOptions, type ResultHost } from './async-result.js';

/** The results of a group, in the group's order (Celery's `GroupResult`). */
export class GroupResult<R = unknown> {
  constructor(
    readonly id: string,
    readonly results: readonly AsyncResult<R>[],
    private readonly host: ResultHost,
  ) {}

  /**
   * Every member's value, in order. A failed member rethrows its TaskError; with
   * `propagate: false` its TaskError takes its place in the list instead.
   */
  get(options?: GetOptions & { propagate?: true }): Promise<R[]>;
  get(options: GetOptions & { propagate: false }): Promise<(R | TaskError)[]>;
  get(options: GetOptions = {}): Promise<(R | TaskError)[]> {
    return Promise.all(this.results.map((r) => r.get(options as GetOptions & { propagate: false })));
  }

  /** Celery's name for `get` on a group. */
  join(options?: GetOptions & { propagate?: true }): Promise<R[]>;
  join(options: GetOptions & { propagate: false }): Promise<(R | TaskError)[]>;
  join(options: GetOptions = {}): Promise<(R | TaskError)[]> {
    return this.get(options as GetOptions & { propagate: false });
  }

  async completedCount(): Promise<number> {
    return (await Promise.all(this.results.map((r) => r.successful()))).filter(Boolean).length;
  }

  async ready(): Promise<boolean> {
    return (await Promise.all(this.results.map((r) => r.ready()))).every(Boolean);
  }

  async successful(): Promise<boolean> {
    return (await Promise.all(this.results.map((r) => r.successful()))).every(Boolean);
  }

  async failed(): Promise<boolean> {
    return (await Promise.all(this.results.map((r) => r.failed()))).some(Boolean);
  }

  /** Save the member ids in the result backend, so `GroupResult.restore(app, id)` can find the group later. */
  async save(): Promise<void> {
    const backend = await this.host.backend();
    await backend.saveGroup(
      this.id,
      this.results.map((r) => r.id),
      { expiresMs: this.host.resultExpires },
    );
  }

  /** A saved group by id, or undefined when none was saved (or it expired). */
  static async restore<R = unknown>(host: ResultHost, groupId: string): Promise<GroupResult<R> | undefined> {
    const ids = await (await host.backend()).restoreGroup(groupId);
    return ids && new GroupResult<R>(groupId, ids.map((id) => new AsyncResult<R>(id, host)), host);
  }

  async revoke(options: { terminate?: boolean } = {}): Promise<void> {
    await this.host.revoke(
      this.results.map((r) => r.id),
      options,
    );
  }
}
