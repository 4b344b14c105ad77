import type { Notice } from '../notice.js';
import type { DeadLetterRecord } from '../transport.js';

const MAX_TIMER_MS = 2 ** 31 - 1;

/** One message as the in-process broker keeps it: serialised, as a real broker would. */
export interface StoredMessage {
  readonly text: string;
  readonly priority: number;
  deliveryCount: number;
}

/** A consumer registered with the broker: it pulls while it has credit. */
export interface BrokerConsumer {
  readonly queues: readonly string[];
  hasCredit(): boolean;
  deliver(queue: string, message: StoredMessage): void;
}

/**
 * The shared state behind `memory://<name>`: several transports (an app's
 * client side and its worker) in one process meet here, like clients of one
 * server. Priority order is `highFirst`, like RabbitMQ.
 */
export class MemoryBroker {
  private readonly queues = new Map<string, StoredMessage[]>();
  private readonly delayed: { due: number; queue: string; message: StoredMessage }[] = [];
  private delayTimer: NodeJS.Timeout | undefined;
  private readonly consumers: BrokerConsumer[] = [];
  private pumping = false;
  readonly deadLetters = new Map<string, DeadLetterRecord>();
  /** Notice listeners (remote control, events) of every transport on this broker. */
  readonly listeners = new Set<{ readonly exchange: string; readonly bindingKey: string; readonly onNotice: (notice: Notice) => void }>();

  delayedCount(): number {
    return this.delayed.length;
  }

  enqueue(queue: string, message: StoredMessage, front = false): void {
    const items = this.queues.get(queue) ?? [];
    this.queues.set(queue, items);
    // Front: before equal priorities (a requeued message goes first, as on RabbitMQ).
    const at = items.findIndex((m) => (front ? m.priority <= message.priority : m.priority < message.priority));
    if (at === -1) items.push(message);
    else items.splice(at, 0, message);
    this.pump();
  }

  enqueueAt(due: number, queue: string, message: StoredMessage): void {
    const at = this.delayed.findIndex((d) => d.due > due);
    if (at === -1) this.delayed.push({ due, queue, message });
    else this.delayed.splice(at, 0, { due, queue, message });
    this.armDelayTimer();
  }

  private armDelayTimer(): void {
    clearTimeout(this.delayTimer);
    const next = this.delayed[0];
    if (!next) return;
    this.delayTimer = setTimeout(() => {
      const now = Date.now();
      while (this.delayed[0] && this.delayed[0].due <= now) {
        const d = this.delayed.shift()!;
        this.enqueue(d.queue, d.message);
      }
      this.armDelayTimer();
      // setTimeout holds at most ~24.8 days: far ETAs re-arm until due.
    }, Math.min(MAX_TIMER_MS, Math.max(0, next.due - Date.now())));
  }

  length(queue: string): number {
    return this.queues.get(queue)?.length ?? 0;
  }

  purge(queue: string): number {
    const n = this.length(queue);
    this.queues.delete(queue);
    return n;
  }

  addConsumer(consumer: BrokerConsumer): void {
    this.consumers.push(consumer);
    this.pump();
  }

  removeConsumer(consumer: BrokerConsumer): void {
    const i = this.consumers.indexOf(consumer);
    if (i !== -1) this.consumers.splice(i, 1);
  }

  /** Hand ready messages to consumers with credit, round-robin, until none can take more. */
  pump(): void {
    if (this.pumping) return; // deliveries made during a pump are picked up by its loop
    this.pumping = true;
    try {
      let progressed = true;
      while (progressed) {
        progressed = false;
        for (const consumer of [...this.consumers]) {
          if (!consumer.hasCredit()) continue;
          for (const queue of consumer.queues) {
            const message = this.queues.get(queue)?.shift();
            if (message) {
              message.deliveryCount += 1;
              consumer.deliver(queue, message);
              progressed = true;
              break;
            }
          }
        }
      }
    } finally {
      this.pumping = false;
    }
  }

  /** Stop timers; queued messages stay (a closed client does not empty the server). */
  stopTimers(): void {
    clearTimeout(this.delayTimer);
  }
}

const brokers = new Map<string, MemoryBroker>();

/** The broker named by a `memory://<name>` URL (`memory://` is `default`). */
export function memoryBroker(name: string): MemoryBroker {
  let broker = brokers.get(name);
  if (!broker) {
    broker = new MemoryBroker();
    brokers.set(name, broker);
  }
  return broker;
}
