/** Poll `check` until it returns a truthy value or the deadline passes (never a bare sleep). */
export async function waitFor<T>(check: () => T | Promise<T>, what: string, timeoutMs = 10_000, everyMs = 10): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A unique memory:// URL so tests never share broker state. */
let n = 0;
export const memoryUrl = (label = 't'): string => `memory://${label}-${process.pid}-${++n}-${Date.now()}`;
