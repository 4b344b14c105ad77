/**
 * What sending returns: the promise of a result handle, which can also be
 * awaited for the value in one step — `await add.delay(1, 2).get({ timeout })`
 * instead of `await (await add.delay(1, 2)).get(...)`. Awaiting it as before
 * still gives the handle.
 */
export type Sent<H extends { get(...args: never[]): unknown }> = Promise<H> & {
  /** Wait until the message is accepted, then for its result (the handle's `get`). */
  readonly get: H['get'];
};

/** Add the one-step `get` to a sending promise. */
export function sent<H extends { get(...args: never[]): unknown }>(sending: Promise<H>): Sent<H> {
  const get = ((...args: never[]) => sending.then((handle) => handle.get(...args))) as H['get'];
  return Object.assign(sending, { get });
}
