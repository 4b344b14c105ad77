/**
 * An AbortController made only when someone reads its signal. Most tasks never
 * look at `ctx.signal`, and a real controller per task is a measurable share
 * of a no-op task's cost; the abort reason is kept either way.
 */
export class LazyAbort {
  private controller: AbortController | undefined;
  private abortReason: unknown;
  private aborted = false;

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort(this.abortReason);
    }
    return this.controller.signal;
  }

  /** Why it was aborted (undefined while not aborted). */
  get reason(): unknown {
    return this.aborted ? this.abortReason : undefined;
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.abortReason = reason;
    this.controller?.abort(reason);
  }
}
