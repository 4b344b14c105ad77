import { PIDBOX, PIDBOX_REPLY, type ControlCommand, type Notice, type Transport } from '@celeriac/core/spi';
import type { ControlledWorker as Worker } from './controlled.js';
import { COMMANDS } from './commands.js';

/** kombu's `match(hostname, pattern, matcher)`: a shell glob, or a regular expression searched in the name. */
export function hostnameMatches(hostname: string, pattern: string, matcher: string | null): boolean {
  if (matcher === 'pcre') {
    try {
      return new RegExp(pattern).test(hostname);
    } catch {
      return false;
    }
  }
  const re = pattern.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${re}$`).test(hostname);
}

/**
 * This worker's mailbox node (kombu's `pidbox.Node`): listens on the
 * `celery.pidbox` fanout, runs the commands addressed to it, and answers
 * `{ <hostname>: reply }` to the caller's reply queue with its ticket — the
 * same exchange, routing and headers as a Python worker, so `celery inspect`
 * and `celeriac inspect` see both kinds.
 */
export class ControlNode {
  private unlisten: (() => Promise<void>) | undefined;

  constructor(
    private readonly worker: Worker,
    private readonly transport: Transport,
  ) {}

  async start(): Promise<void> {
    this.unlisten = await this.transport.listen(PIDBOX, '', (notice) => void this.onNotice(notice));
  }

  async stop(): Promise<void> {
    await this.unlisten?.();
    this.unlisten = undefined;
  }

  private async onNotice(notice: Notice): Promise<void> {
    const cmd = notice.payload as Partial<ControlCommand> | null;
    if (!cmd || typeof cmd !== 'object' || typeof cmd.method !== 'string') return;
    // The `expires` header is not checked here, as kombu's node does not: clocks of other hosts may be
    // seconds off, and a revoke dropped for that would be lost. (Commands are never buffered for a
    // worker that is away: its pidbox queue goes with its connection.)
    this.worker.app.clock.adjust(notice.headers.clock);
    if (!this.addressedToMe(cmd)) return;
    let reply: unknown;
    const handler = Object.hasOwn(COMMANDS, cmd.method) ? COMMANDS[cmd.method] : undefined;
    try {
      // An unknown command is answered, as kombu answers it, with `{ error }`: nothing failed here.
      const args = cmd.arguments && typeof cmd.arguments === 'object' ? cmd.arguments : {};
      reply = handler ? await handler(this.worker, args) : { error: `No such command: ${cmd.method}` };
    } catch (err) {
      this.worker.log.warn({ method: cmd.method, err }, 'remote control command failed');
      reply = { error: err instanceof Error ? err.message : String(err) };
    }
    const to = cmd.reply_to;
    if (!to || typeof to.routing_key !== 'string' || reply === undefined) return;
    try {
      await this.transport.notify({ ...PIDBOX_REPLY, name: typeof to.exchange === 'string' ? to.exchange : PIDBOX_REPLY.name }, to.routing_key, { [this.worker.hostname]: reply }, {
        headers: { ticket: cmd.ticket ?? null, clock: this.worker.app.clock.forward() },
      });
    } catch (err) {
      this.worker.log.warn({ method: cmd.method, err }, 'could not send a remote control reply');
    }
  }

  private addressedToMe(cmd: Partial<ControlCommand>): boolean {
    const me = this.worker.hostname;
    if (Array.isArray(cmd.destination) && cmd.destination.length > 0) return cmd.destination.includes(me);
    if (typeof cmd.pattern === 'string' && cmd.pattern && typeof cmd.matcher === 'string') return hostnameMatches(me, cmd.pattern, cmd.matcher);
    return true;
  }
}
