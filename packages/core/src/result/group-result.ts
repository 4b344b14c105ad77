import type { AsyncResult, GetOptions, ResultHost } from './async-result.js';

/** The results of a group, in the group's order (Celery's `GroupResult`). */
export class GroupResult<R = unknown> {
  constructor(
    readonly id: string,
    readonly results: readonly AsyncResult<R>[],
    private readonly host: ResultHost,
  ) {}

  /** Every member's value, in order; a failed member rethrows its TaskError (unless `propagate: false`). */
  get(options: GetOptions = {}): Promise<R[]> {
    return Promise.all(this.results.map((r) => r.get(options as GetOptions & { propagate?: true })));
  }

  /** Celery's name for `get` on a group. */
  join(options: GetOptions = {}): Promise<R[]> {
    return this.get(options);
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

  async revoke(options: { terminate?: boolean } = {}): Promise<void> {
    await this.host.revoke(
      this.results.map((r) => r.id),
      options,
    );
  }
}
