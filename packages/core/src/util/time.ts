/**
 * Celery writes ETA/expires as ISO-8601 with microseconds and `+00:00`, and
 * `date_done` as naive UTC ISO text. These helpers produce both shapes.
 */
export function toCeleryIso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000+00:00');
}

/** Naive UTC ISO text without offset, as Celery's `date_done`. */
export function toNaiveUtcIso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000');
}

/** Parse an ISO timestamp as Celery writes it (naive = UTC). Returns NaN when unparseable. */
export function parseCeleryIso(text: string): number {
  const hasZone = /(Z|[+-]\d{2}:?\d{2})$/.test(text);
  // JS Date accepts at most millisecond precision reliably: trim extra fraction digits.
  const trimmed = text.replace(/(\.\d{3})\d+/, '$1');
  return Date.parse(hasZone ? trimmed : `${trimmed}Z`);
}
