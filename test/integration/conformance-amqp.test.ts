import { beforeAll, inject } from 'vitest';
import { AmqpTransport, amqpSettings, parseUrl, RpcBackend } from '@celeriac/core/spi';
import { backendConformance } from '../conformance/backend.js';
import { transportConformance } from '../conformance/transport.js';
import { freshVhost } from '../servers/rabbitmq.js';

let url = '';
beforeAll(async () => {
  url = await freshVhost(inject('amqpUrl'), inject('amqpNode'), `conformance-${process.pid}`);
});
const settings = () => amqpSettings(parseUrl('broker', url, ['amqp']));

transportConformance('amqp', async () => {
  const s = settings();
  // Priorities need x-max-priority on the queue (RabbitMQ), declared as the app's `queues` option does.
  return { make: () => AmqpTransport.open(s, { queues: { prio: { exchangeType: 'direct', durable: true, maxPriority: 10 } } }) };
});

let setups = 0;
backendConformance('rpc', async () => {
  const s = settings();
  const setup = ++setups;
  let client = 0;
  return {
    make: () => RpcBackend.open(s, `reply-${setup}-${++client}`),
    replyTo: (reader) => (reader as RpcBackend).replyQueue,
  };
});
