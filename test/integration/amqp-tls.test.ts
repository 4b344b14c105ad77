import { describe, expect, inject, it } from 'vitest';
import { createApp } from '@celeriac/core';
import { freshVhost } from '../servers/rabbitmq.js';
import { memoryUrl } from '../helpers/wait.js';
import { startInProcessWorker } from '../helpers/in-process.js';

/** amqps:// against the run's RabbitMQ TLS listener (a certificate for localhost signed by a CA made for the run). */
describe('amqps://', () => {
  it('verifies the broker certificate against ?ca= and runs a task end to end', async () => {
    const url = await freshVhost(inject('amqpsUrl'), inject('amqpNode'), `tls-${process.pid}`);
    const app = createApp({ broker: `${url}?ca=${encodeURIComponent(inject('amqpsCa'))}`, backend: inject('redisUrl') });
    try {
      const add = app.task({ name: 'tls.add' }, async (x: number, y: number) => x + y);
      await startInProcessWorker(app, { queues: ['tls'] });
      const r = await add.applyAsync([20, 22], {}, { queue: 'tls' });
      await expect(r.get({ timeout: 10_000 })).resolves.toBe(42);
    } finally {
      await app.close();
    }
  });

  it('refuses a certificate it cannot verify, naming the reason; tlsInsecure=true is the explicit opt-out', async () => {
    const unverified = createApp({ broker: inject('amqpsUrl'), backend: memoryUrl('tls') });
    await expect(unverified.transport()).rejects.toThrow(/certificate/i);
    await unverified.close();
    const insecure = createApp({ broker: `${inject('amqpsUrl')}?tlsInsecure=true`, backend: memoryUrl('tls2') });
    try {
      const transport = await insecure.transport();
      expect(transport.kind).toBe('amqp');
      expect(await transport.length('tls-nothing-here')).toBe(0);
    } finally {
      await insecure.close();
    }
  });
});
