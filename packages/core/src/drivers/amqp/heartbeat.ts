/**
 * The heartbeat watchdog of an AMQP connection: a half-open partition (nothing arrives, nothing is
 * refused) is noticed within 2 × the negotiated heartbeat, where amqplib's own check can take three.
 */
import type { ChannelModel } from 'amqplib';

/**
 * Replace `model`'s connection once nothing has arrived for 2 × the negotiated heartbeat (the
 * broker sends one every half interval, so that is a dead or partitioned link): its socket is
 * destroyed, which closes the connection (and the session reconnects). amqplib's check ticks once
 * per interval and fires after two silent ticks, up to 3 × heartbeat late; this one samples the
 * socket's byte count four times per interval. It reads a counter only: amqplib's reading is
 * untouched. `onSilent` is told why, just before the socket goes.
 */
export function watchHeartbeat(model: ChannelModel, onSilent: (why: string) => void): void {
  const connection = (model as unknown as { connection?: { heartbeat?: number; stream?: { bytesRead?: number; destroy(err?: Error): void } } }).connection;
  const seconds = connection?.heartbeat ?? 0;
  const stream = connection?.stream;
  if (!seconds || !stream || typeof stream.bytesRead !== 'number') return;
  const limitMs = 2 * seconds * 1000;
  let seen = stream.bytesRead;
  let since = Date.now();
  const timer = setInterval(() => {
    const now = Date.now();
    if (stream.bytesRead !== seen) {
      seen = stream.bytesRead ?? seen;
      since = now;
    } else if (now - since > limitMs) {
      clearInterval(timer);
      const why = `nothing received for ${now - since} ms, 2 × heartbeat is ${limitMs} ms`;
      onSilent(why);
      stream.destroy(new Error(`Heartbeat timeout: ${why}`));
    }
  }, (seconds * 1000) / 4);
  timer.unref();
  model.once('close', () => clearInterval(timer));
}
