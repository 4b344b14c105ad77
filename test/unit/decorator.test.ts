import { describe, expect, it } from 'vitest';
import { createApp, task } from '@celeriac/core';
import { Worker } from '@celeriac/worker';
import { memoryUrl } from '../helpers/wait.js';

class MathTasks {
  factor = 10;

  @task({ name: 'tasks.scale' })
  async scale(x: number) {
    return x * this.factor;
  }

  @task()
  async negate(x: number) {
    return -x;
  }

  helper() {
    return 'not a task';
  }
}

describe('@task() TC39 method decorators', () => {
  it('register methods into the same registry, bound to the instance', async () => {
    const app = createApp({ broker: memoryUrl('decorator') });
    const { scale, negate } = app.register(new MathTasks());
    expect(app.registry.names().filter((n) => !n.startsWith('celery.'))).toEqual(['MathTasks.negate', 'tasks.scale']);
    expect(app.registry.get('helper')).toBeUndefined();
    expect(await scale(4)).toBe(40);
    const worker = new Worker(app, { logLevel: 'silent' });
    await worker.start();
    try {
      expect(await (await scale.delay(5)).get({ timeout: 3000 })).toBe(50);
      expect(await (await negate.delay(5)).get({ timeout: 3000 })).toBe(-5);
    } finally {
      await worker.stop();
      await app.close();
    }
  });
});
