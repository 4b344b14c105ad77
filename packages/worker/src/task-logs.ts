/** A line a task wrote with `this.log`, as it travels on the task's final event (`logs` field). */
export interface TaskLogLine {
  readonly at: number;
  readonly level: string;
  readonly msg: string;
}

/** Lines kept per task, and characters per line: a task that logs in a loop must not grow its final event without bound. */
export const MAX_LINES_PER_TASK = 200;
export const MAX_LINE_CHARS = 1000;
/** Tasks with lines kept at once; the oldest are dropped first (a task whose final event never went out). */
const MAX_TASKS = 2000;

/**
 * The log lines of tasks running on this worker, kept until their final
 * event (task-succeeded / failed / retried) carries them to the dashboard —
 * Flower cannot show a task's logs because Celery's events never carried
 * them. Only kept while events are on (`recording`): with events off a task's
 * `this.log` costs nothing here. The worker's own log still gets every line.
 */
export class TaskLogBook {
  recording = false;
  private readonly lines = new Map<string, TaskLogLine[]>();

  append(taskId: string, level: string, msg: string, at = Date.now()): void {
    if (!this.recording) return;
    let kept = this.lines.get(taskId);
    if (!kept) {
      if (this.lines.size >= MAX_TASKS) this.lines.delete(this.lines.keys().next().value as string);
      kept = [];
      this.lines.set(taskId, kept);
    }
    if (kept.length < MAX_LINES_PER_TASK) kept.push({ at, level, msg: msg.length > MAX_LINE_CHARS ? `${msg.slice(0, MAX_LINE_CHARS)}…` : msg });
    else if (kept.length === MAX_LINES_PER_TASK) kept.push({ at, level: 'warn', msg: `(further lines not kept: more than ${MAX_LINES_PER_TASK})` });
  }

  /** The task's lines, forgotten here; undefined when it wrote none. */
  take(taskId: string): TaskLogLine[] | undefined {
    const kept = this.lines.get(taskId);
    if (kept) this.lines.delete(taskId);
    return kept;
  }

  clear(): void {
    this.lines.clear();
  }
}
