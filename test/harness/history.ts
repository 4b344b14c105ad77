/**
 * The history of a fault test, checked the way Jepsen checks a total queue:
 * every id the producer enqueued is set against the runs the workers
 * recorded (run-record.ts), and each id falls into one class.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { FaultWindow } from './fault-proxy.js';
import type { RunRecord } from './run-record.js';

export type { RunRecord } from './run-record.js';

/** What the producer knows about one publish. */
export type Outcome = 'confirmed' | 'failed' | 'unknown';

/**
 * Strength of each outcome: a retried publish may only move an id up.
 * `unknown` beats `failed` because a publish that might have landed must be
 * treated as possibly enqueued, whatever an earlier attempt said.
 */
const RANK: Record<Outcome, number> = { failed: 0, unknown: 1, confirmed: 2 };

/** The producer side of the history, kept in the test process. */
export class ProducerHistory {
  private readonly map = new Map<string, Outcome>();

  /** The broker confirmed the publish (it is enqueued). */
  confirmed(id: string): void {
    this.note(id, 'confirmed');
  }

  /** The publish definitely did not happen (e.g. refused before sending). */
  failed(id: string): void {
    this.note(id, 'failed');
  }

  /** The publish may or may not have happened (e.g. a timeout with the bytes sent). */
  unknown(id: string): void {
    this.note(id, 'unknown');
  }

  /** Each id's strongest outcome so far (a copy). */
  outcomes(): Map<string, Outcome> {
    return new Map(this.map);
  }

  private note(id: string, outcome: Outcome): void {
    const was = this.map.get(id);
    if (was === undefined || RANK[outcome] > RANK[was]) this.map.set(id, outcome);
  }
}

/**
 * The run records in a file (a missing file has none). A last line without
 * its newline is a record still being written — or cut off by a kill — and
 * is skipped if it does not parse; a bad line anywhere else is a real fault
 * and throws.
 */
export function readRuns(file: string): RunRecord[] {
  if (!existsSync(file)) return [];
  const text = readFileSync(file, 'utf8');
  const lines = text.split('\n');
  const partial = lines.pop() ?? ''; // '' when the file ends with a newline.
  const runs: RunRecord[] = [];
  lines.forEach((l, i) => {
    if (!l) return;
    try {
      runs.push(JSON.parse(l) as RunRecord);
    } catch {
      throw new Error(`${file}: line ${i + 1} is not a run record: ${l}`);
    }
  });
  if (partial) {
    try {
      runs.push(JSON.parse(partial) as RunRecord);
    } catch {
      // Truncated: the writer was interrupted, or has not finished yet.
    }
  }
  return runs;
}

/** Runs that recorded a start but no end (killed, or still going): start records with no finished twin. */
export function unfinishedRuns(runs: readonly RunRecord[]): RunRecord[] {
  const key = (r: RunRecord): string => `${r.id}\0${r.pid}\0${r.start}`;
  const done = new Set(runs.filter((r) => r.end !== undefined).map(key));
  return runs.filter((r) => r.end === undefined && !done.has(key(r)));
}

export interface HistoryInput {
  readonly producer: ProducerHistory | ReadonlyMap<string, Outcome>;
  readonly runs: readonly RunRecord[];
  readonly faults: readonly FaultWindow[];
  /** How long after a fault window closes its effects may still show (a redelivery waits out a visibility timeout, say). */
  readonly slackMs: number;
  /** The end of a window still open; defaults to Date.now(). */
  readonly now?: number;
  /**
   * Also explain an extra run, however late, when an earlier run of the same id was going during a
   * fault window (no slack): its ack may have been lost with the connection, and the broker hands the
   * message out again whenever it reaches the head of the queue — on RabbitMQ a redelivered message
   * on a classic queue goes back to the tail (as a counted copy), behind the whole backlog.
   */
  readonly inFlightExplains?: boolean;
}

export interface HistoryReport {
  readonly counts: {
    /** Ids the producer tried to enqueue (any outcome). */
    readonly enqueued: number;
    readonly confirmed: number;
    readonly failed: number;
    readonly unknown: number;
    /** Confirmed and completed exactly once. */
    readonly ok: number;
    /** Confirmed, never completed. */
    readonly lost: number;
    /** Completed more than once (whatever the producer's outcome). */
    readonly duplicated: number;
    /** Failed or unknown to the producer, yet completed exactly once. */
    readonly recovered: number;
    /** Completed, but the producer never tried to enqueue it. */
    readonly unexpected: number;
    /** Duplicated ids whose every extra run overlaps a fault window (plus slack). */
    readonly attributed: number;
    /** Duplicated ids with an extra run no fault explains. */
    readonly unattributed: number;
  };
  readonly lost: string[];
  readonly unexpected: string[];
  /** The completed runs of each unattributed duplicate, earliest start first. */
  readonly unattributed: { id: string; runs: RunRecord[] }[];
}

/**
 * Classify every id. An id is in at most one of ok, lost, duplicated,
 * recovered, unexpected (a failed or unknown id that never completed is in
 * none: not running it was right). "Completed" means a run record with an
 * end; start records only matter to {@link unfinishedRuns}.
 *
 * For a duplicate, the run that started first is the original and the rest
 * are extras. An extra run is attributed when its [start, end] overlaps some
 * fault window [start, (end ?? now) + slackMs]; the id is attributed when all
 * its extras are.
 */
export function checkHistory(input: HistoryInput): HistoryReport {
  const outcomes = input.producer instanceof ProducerHistory ? input.producer.outcomes() : input.producer;
  const now = input.now ?? Date.now();
  const windows = input.faults.map((w) => ({ start: w.start, end: (w.end ?? now) + input.slackMs }));
  const explained = (r: RunRecord): boolean => windows.some((w) => r.start <= w.end && r.end! >= w.start);

  const completed = new Map<string, RunRecord[]>();
  for (const r of input.runs) {
    if (r.end === undefined) continue;
    const list = completed.get(r.id);
    if (list) list.push(r);
    else completed.set(r.id, [r]);
  }

  const counts = { enqueued: outcomes.size, confirmed: 0, failed: 0, unknown: 0, ok: 0, lost: 0, duplicated: 0, recovered: 0, unexpected: 0, attributed: 0, unattributed: 0 };
  const lost: string[] = [];
  const unexpected: string[] = [];
  const unattributed: { id: string; runs: RunRecord[] }[] = [];

  for (const [id, outcome] of outcomes) {
    counts[outcome]++;
    const runs = completed.get(id) ?? [];
    if (runs.length > 1) {
      counts.duplicated++;
      const sorted = [...runs].sort((a, b) => a.start - b.start || a.end! - b.end!);
      const raw = input.faults.map((w) => ({ start: w.start, end: w.end ?? now }));
      const inFault = (r: RunRecord): boolean => raw.some((w) => r.start <= w.end && r.end! >= w.start);
      const extraExplained = (r: RunRecord, i: number): boolean => explained(r) || (input.inFlightExplains === true && sorted.slice(0, i + 1).some(inFault));
      if (sorted.slice(1).every(extraExplained)) counts.attributed++;
      else {
        counts.unattributed++;
        unattributed.push({ id, runs: sorted });
      }
    } else if (runs.length === 1) {
      if (outcome === 'confirmed') counts.ok++;
      else counts.recovered++;
    } else if (outcome === 'confirmed') {
      counts.lost++;
      lost.push(id);
    }
  }
  for (const id of completed.keys()) {
    if (outcomes.has(id)) continue;
    counts.unexpected++;
    unexpected.push(id);
  }
  return { counts, lost, unexpected, unattributed };
}

/** One line for a test log, e.g. `enqueued 100 (confirmed 98, failed 1, unknown 1): ok 97, lost 0, …`. */
export function summary(report: HistoryReport): string {
  const c = report.counts;
  const line =
    `enqueued ${c.enqueued} (confirmed ${c.confirmed}, failed ${c.failed}, unknown ${c.unknown}): ` +
    `ok ${c.ok}, lost ${c.lost}, duplicated ${c.duplicated} (attributed ${c.attributed}, unattributed ${c.unattributed}), ` +
    `recovered ${c.recovered}, unexpected ${c.unexpected}`;
  const ids = (label: string, list: readonly string[]): string => (list.length ? `; ${label}: ${list.slice(0, 5).join(', ')}${list.length > 5 ? ', …' : ''}` : '');
  return line + ids('lost', report.lost) + ids('unexpected', report.unexpected) + ids('unattributed', report.unattributed.map((u) => u.id));
}
