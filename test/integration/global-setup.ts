import type { TestProject } from 'vitest/node';
import { startRabbit } from '../servers/rabbitmq.js';
import { startRedis } from '../servers/redis.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A private redis-server for this run: `redis://127.0.0.1:<port>/0`. */
    redisUrl: string;
    /** A private RabbitMQ node for this run: `amqp://guest:guest@127.0.0.1:<port>`. */
    amqpUrl: string;
    /** Its node name, for `rabbitmqctl -n`. */
    amqpNode: string;
    /** Its TLS listener, `amqps://guest:guest@localhost:<port>`, and the CA that signed its certificate. */
    amqpsUrl: string;
    amqpsCa: string;
  }
}

/** Servers shared by the whole integration run: started once (in parallel), stopped at the end. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const [redis, rabbit] = await Promise.all([startRedis(), startRabbit()]);
  project.provide('redisUrl', redis.url);
  project.provide('amqpUrl', rabbit.url);
  project.provide('amqpNode', rabbit.node);
  project.provide('amqpsUrl', rabbit.tlsUrl);
  project.provide('amqpsCa', rabbit.caFile);
  return async () => {
    await Promise.all([redis.stop(), rabbit.stop()]);
  };
}
