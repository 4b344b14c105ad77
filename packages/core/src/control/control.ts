import { newId } from '../util/ids.js';
import { PIDBOX, PIDBOX_REPLY } from '../transport/notice.js';
import type { Transport } from '../transport/transport.js';
import type { LamportClock } from './clock.js';

/** Which workers a command is for (Celery's `destination`, or a hostname `pattern` with a `matcher`). */
export interface BroadcastOptions {
  /** Only these node names (`celeriac@host`) run it. */
  readonly destination?: readonly string[];
  /** Node names matching this pattern run it (`matcher` 'glob', the default, or 'pcre'). */
  readonly pattern?: string;
  readonly matcher?: 'glob' | 'pcre';
  /** How long to collect replies, ms (default 1000). */
  readonly timeout?: number;
  /** Stop collecting after this many replies (default: the destination's length, else none). */
  readonly limit?: number;
  /** Ask for replies (default true); false sends the command and returns at once. */
  readonly reply?: boolean;
}

/** One worker's answer: `{ 'celeriac@host': reply }`, as Celery's `broadcast(..., reply=True)` lists them. */
export type ControlReply = Record<string, unknown>;

/** The remote-control command body, as kombu's Mailbox sends it. */
export interface ControlCommand {
  readonly method: string;
  readonly arguments: Record<string, unknown>;
  readonly destination: readonly string[] | null;
  readonly pattern: string | null;
  readonly matcher: string | null;
  readonly ticket?: string;
  readonly reply_to?: { readonly exchange: string; readonly routing_key: string };
}

/** How long a reply queue outlives its caller (kombu's reply_queue_expires). */
const REPLY_QUEUE_EXPIRES_MS = 10_000;

/**
 * Remote control over kombu's pidbox, wire-compatible with Celery: commands
 * are broadcast on the `celery.pidbox` fanout exchange; replies come back
 * through the `reply.celery.pidbox` direct exchange to a reply queue named
 * `<oid>.<ticket>.reply.celery.pidbox` (one per call), matched by `ticket`. Python's `celery inspect`
 * reaches celeriac workers, and `app.control` reaches Python workers.
 */
export class Control {
  constructor(
    private readonly transport: () => Promise<Transport>,
    private readonly oid: string,
    private readonly clock: LamportClock,
  ) {}

  /** Send `command` to the workers; with replies, resolves once `timeout` passes or `limit` replies arrived. */
  async broadcast(command: string, args: Record<string, unknown> = {}, options: BroadcastOptions = {}): Promise<ControlReply[]> {
    const transport = await this.transport();
    const timeout = options.timeout ?? 1000;
    const wantReply = options.reply ?? true;
    const limit = options.limit ?? (options.destination?.length || undefined);
    const body: ControlCommand = {
      method: command,
      arguments: args,
      destination: options.destination ? [...options.destination] : null,
      pattern: options.pattern ?? null,
      matcher: options.pattern ? (options.matcher ?? 'glob') : null,
    };
    // kombu's headers: a cast has no deadline (0); a call's replies are wanted until the timeout.
    const headers = { clock: this.clock.forward(), expires: wantReply ? (Date.now() + timeout) / 1000 : 0 };
    if (!wantReply) {
      await transport.notify(PIDBOX, '', body, { headers });
      return [];
    }
    const ticket = newId();
    // A reply queue per call: concurrent calls from one app never take each other's replies
    // (two consumers on one queue would each get only some of them).
    const replyKey = `${this.oid}.${ticket}`;
    const replies: ControlReply[] = [];
    let done: () => void = () => undefined;
    const finished = new Promise<void>((resolve) => (done = resolve));
    // The reply queue is bound before the command goes out, so no fast reply is missed.
    const unlisten = await transport.listen(
      PIDBOX_REPLY,
      replyKey,
      (notice) => {
        this.clock.adjust(notice.headers.clock);
        if (notice.headers.ticket !== ticket || typeof notice.payload !== 'object' || notice.payload === null) return;
        replies.push(notice.payload as ControlReply);
        if (limit !== undefined && replies.length >= limit) done();
      },
      { queue: `${replyKey}.${PIDBOX_REPLY.name}`, expiresMs: REPLY_QUEUE_EXPIRES_MS },
    );
    const timer = setTimeout(done, timeout);
    try {
      await transport.notify(PIDBOX, '', { ...body, ticket, reply_to: { exchange: PIDBOX_REPLY.name, routing_key: replyKey } }, { headers });
      await finished;
    } finally {
      clearTimeout(timer);
      await unlisten();
    }
    return replies;
  }

  /** Replies merged by node name, as Celery's `inspect()` returns them. */
  async inspect(method: string, args: Record<string, unknown> = {}, options: BroadcastOptions = {}): Promise<Record<string, unknown>> {
    return Object.assign({}, ...(await this.broadcast(method, args, options))) as Record<string, unknown>;
  }

  /** `{ 'celeriac@host': { ok: 'pong' } }` per live worker. */
  ping(options: BroadcastOptions = {}): Promise<Record<string, unknown>> {
    return this.inspect('ping', {}, options);
  }

  /** Change a task's rate limit on the workers (`'10/s'`; null lifts it). */
  rateLimit(taskName: string, rateLimit: string | null, options: BroadcastOptions = {}): Promise<Record<string, unknown>> {
    return this.inspect('rate_limit', { task_name: taskName, rate_limit: rateLimit }, options);
  }

  /** Change a task's time limits on the workers, in seconds as Celery takes them. */
  timeLimit(taskName: string, limits: { hard?: number | null; soft?: number | null }, options: BroadcastOptions = {}): Promise<Record<string, unknown>> {
    return this.inspect('time_limit', { task_name: taskName, hard: limits.hard ?? null, soft: limits.soft ?? null }, options);
  }
}
