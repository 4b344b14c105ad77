/**
 * The run side of a fault test's history, written from task code inside
 * worker processes. Kept dependency-free (node:fs only) so any fixture task
 * module can import it without pulling the test harness into a worker.
 *
 * Each call appends one JSON line with a single appendFileSync: once it has
 * returned, the line is in the file even if the writer is kill -9'd a moment
 * later — which is exactly when a fault test needs it.
 */
import { appendFileSync } from 'node:fs';

/**
 * One task run as seen by the worker. Times are epoch ms (`Date.now()`), the
 * one clock the test process and every worker process share.
 */
export interface RunRecord {
  /** The task id (the producer's id for the message). */
  readonly id: string;
  /** The task's retry attempt (0 for the first). */
  readonly attempt: number;
  /** How many times the broker has delivered this message, if it says (null if it does not). */
  readonly deliveryCount: number | null;
  readonly pid: number;
  readonly start: number;
  /** Absent on a start record: the run had begun but not (yet) finished. */
  readonly end?: number;
}

/** What a task knows when it starts running. */
export type RunStart = Omit<RunRecord, 'end'>;

/** A finished run. */
export type RunDone = RunStart & { readonly end: number };

function append(file: string, record: RunStart | RunDone): void {
  appendFileSync(file, `${JSON.stringify(record)}\n`);
}

/**
 * Record that a run began. A start with no matching {@link recordRun} is a run
 * that was killed (or is still going) — without this it would leave no trace.
 */
export function recordStart(file: string, run: RunStart): void {
  const { id, attempt, deliveryCount, pid, start } = run;
  append(file, { id, attempt, deliveryCount, pid, start });
}

/** Record a finished run (call it as the last thing the task does before returning). */
export function recordRun(file: string, run: RunDone): void {
  const { id, attempt, deliveryCount, pid, start, end } = run;
  append(file, { id, attempt, deliveryCount, pid, start, end });
}
