/**
 * Sleep between polls of a store that cannot push: short right after work was
 * found, doubling while idle up to `maxMs`, and cut short by `wake()` (a write
 * seen in this process, or a file-change hint from another).
 */
export class PollBackoff {
  private delay: number;
  private wakeUp: (() => void) | undefined;

  constructor(
    private readonly minMs = 1,
    private readonly maxMs = 250,
  ) {
    this.delay = minMs;
  }

  /** Work was found: poll again soon. */
  reset(): void {
    this.delay = this.minMs;
  }

  wake(): void {
    this.delay = this.minMs;
    this.wakeUp?.();
  }

  /** Sleep for the current delay (at most `capMs`), then grow it. */
  sleep(capMs = Infinity): Promise<void> {
    const ms = Math.min(this.delay, Math.max(0, capMs));
    this.delay = Math.min(this.maxMs, this.delay * 2);
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wakeUp = () => {
        this.wakeUp = undefined;
        done();
      };
    });
  }
}
