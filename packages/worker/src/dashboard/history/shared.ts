/** Bounds and checks both history stores share, so they answer the same questions the same way. */
import { ErrorCodes } from '@celeriac/core/spi';
import { DashboardError } from '../errors.js';

/** Children and group members a task's detail lists (a chord of 10,000 is shown in part). */
export const MAX_CHILDREN = 200;
export const MAX_GROUP = 500;
/** Buckets one throughput call may ask for (a year of minutes is a mistake, not a chart). */
export const MAX_BUCKETS = 10_000;

/**
 * How many buckets of `bucketMs` from `since` until `now` (at least one).
 *
 * @throws DashboardError `ARGUMENT_INVALID` for a bucket that is not a positive integer of ms, or too many buckets.
 */
export function bucketCount(since: number, bucketMs: number, now: number): number {
  if (!Number.isSafeInteger(bucketMs) || bucketMs <= 0) throw new DashboardError(ErrorCodes.ARGUMENT_INVALID, `bucketMs must be a positive integer, got ${bucketMs}`, { argument: 'bucketMs' });
  if (!Number.isSafeInteger(since)) throw new DashboardError(ErrorCodes.ARGUMENT_INVALID, `since must be an integer epoch ms, got ${since}`, { argument: 'since' });
  const n = Math.max(1, Math.ceil((now - since + 1) / bucketMs));
  if (n > MAX_BUCKETS) throw new DashboardError(ErrorCodes.ARGUMENT_INVALID, `${n} buckets asked for; at most ${MAX_BUCKETS}: use a wider bucket or a later since`, { argument: 'bucketMs' });
  return n;
}
