/**
 * A Lamport clock, as kombu keeps one per app: forwarded on every command and
 * event sent, adjusted to what is received, so events from several hosts can be
 * ordered. Celery sends it in the `clock` header and event field.
 */
export class LamportClock {
  private value = 0;

  forward(): number {
    return ++this.value;
  }

  adjust(other: unknown): number {
    if (typeof other === 'number' && Number.isFinite(other)) this.value = Math.max(this.value, Math.floor(other)) + 1;
    return this.value;
  }

  get current(): number {
    return this.value;
  }
}
