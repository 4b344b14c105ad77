import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ErrorCodes, TaskError, TimeoutError, UnknownTaskError, currentTask, toWire, buildTaskMessage } from '@celeriac/core/spi';
import { waitFor } from '../helpers/wait.js';
import { memoryApp, startInProcessWorker } from '../helpers/in-process.js';

const setup = (label: string) => memoryApp(label);
const startWorker = startInProcessWorker;

describe('memory:// end to end through the real worker loop', () => {
  it('delay → worker → get returns the result, and state/ready/successful follow', async () => {
    const app = setup('basic');
    const add = app.task({ name: 'tasks.add' }, async (x: number, y: number) => x + y);
    await startWorker(app);
    const result = await add.delay(1, 2);
    await expect(result.get({ timeout: 3000 })).resolves.toBe(3);
    expect(await result.state()).toBe('SUCCESS');
    expect(await result.ready()).toBe(true);
    expect(await result.successful()).toBe(true);
    expect(await result.failed()).toBe(false);
  });

  it('calling the handle directly runs the function in-process, without a broker', async () => {
    const app = setup('direct');
    const mul = app.task({ name: 'tasks.mul' }, (x: number, y: number) => x * y);
    await expect(mul(6, 7)).resolves.toBe(42);
    expect(await (await app.transport()).length('celery')).toBe(0);
  });

  it('a failing task rethrows as TaskError with the remote type, message and traceback as data', async () => {
    const app = setup('fail');
    const broken = app.task({ name: 'tasks.broken_task' }, async () => {
      throw new Error('failed');
    });
    await startWorker(app);
    const result = await broken.delay();
    const err = await result.get({ timeout: 3000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TaskError);
    const taskError = err as TaskError;
    expect(taskError.code).toBe(ErrorCodes.TASK_FAILED);
    expect(taskError.excType).toBe('Exception');
    expect(taskError.excModule).toBe('builtins');
    expect(taskError.excMessage).toBe('failed');
    expect(taskError.remoteTraceback).toContain('Error: failed');
    expect(taskError.taskId).toBe(result.id);
    expect(await result.failed()).toBe(true);
    // propagate: false returns the error instead of throwing it.
    const returned = await result.get({ timeout: 1000, propagate: false });
    expect(returned).toBeInstanceOf(TaskError);
  });

  it('forget() removes the stored result: the task reads PENDING again', async () => {
    const app = setup('forget');
    const add = app.task({ name: 'tasks.add' }, (x: number, y: number) => x + y);
    await startWorker(app);
    const result = await add.delay(2, 2);
    expect(await result.get({ timeout: 3000 })).toBe(4);
    await result.forget();
    expect(await result.state()).toBe('PENDING');
  });

  it('get() past its timeout throws a TimeoutError naming the task id', async () => {
    const app = setup('timeout');
    const result = await app.sendTask('tasks.nobody_runs_this', [], {});
    const err = await result.get({ timeout: 50 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as TimeoutError).message).toContain(result.id);
    expect((err as TimeoutError).code).toBe(ErrorCodes.TIMEOUT);
  });

  it('an unknown task name: a clear FAILURE, a dead-letter entry, and the worker keeps serving', async () => {
    const app = setup('unknown');
    const add = app.task({ name: 'tasks.add' }, (x: number, y: number) => x + y);
    await startWorker(app);
    const unknown = await app.sendTask('tasks.does_not_exist', [1], {});
    const err = (await unknown.get({ timeout: 3000 }).catch((e: unknown) => e)) as TaskError;
    expect(err).toBeInstanceOf(TaskError);
    expect(err.code).toBe(ErrorCodes.TASK_UNKNOWN);
    expect(err.excType).toBe('UnknownTaskError');
    expect(err.excMessage).toContain('tasks.does_not_exist');
    const transport = await app.transport();
    const dead = await waitFor(async () => {
      const list = await transport.listDeadLetters();
      return list.length ? list : undefined;
    }, 'the dead letter');
    expect(dead).toEqual([expect.objectContaining({ id: unknown.id, reason: 'TASK_UNKNOWN', queue: 'celery', taskName: 'tasks.does_not_exist' })]);
    // Still serving.
    expect(await (await add.delay(20, 22)).get({ timeout: 3000 })).toBe(42);
  });

  it('names such as __proto__ and constructor are simply unknown tasks', async () => {
    const app = setup('proto');
    expect(() => app.registry.require('__proto__')).toThrow(UnknownTaskError);
    expect(app.registry.get('constructor')).toBeUndefined();
    await startWorker(app);
    const r = await app.sendTask('__proto__', [], {});
    await expect(r.get({ timeout: 3000 })).rejects.toMatchObject({ code: ErrorCodes.TASK_UNKNOWN });
  });

  it('a malformed message is dead-lettered with its reason and the worker keeps serving', async () => {
    const app = setup('malformed');
    const add = app.task({ name: 'tasks.add' }, (x: number, y: number) => x + y);
    await startWorker(app);
    const transport = await app.transport();
    const good = toWire(buildTaskMessage({ task: 'tasks.add', id: 'bad-body-1', args: [1, 1], kwargs: {} }));
    await transport.publish('celery', { ...good, body: '{not json' });
    await transport.publish('celery', { ...good, headers: { ...good.headers, id: 'bad-body-2' }, body: '{"protocol": 1}' });
    await transport.publish('celery', { ...good, headers: { lang: 'py' } });
    const dead = await waitFor(async () => {
      const list = await transport.listDeadLetters();
      return list.length === 3 ? list : undefined;
    }, 'three dead letters');
    expect(dead.map((d) => d.reason)).toEqual(['MESSAGE_MALFORMED', 'MESSAGE_MALFORMED', 'MESSAGE_MALFORMED']);
    expect(dead.find((d) => d.id === 'bad-body-1')?.message).toMatch(/not valid JSON/);
    expect(dead.find((d) => d.id === 'bad-body-2')?.message).toMatch(/protocol v1/);
    // The caller waiting on a readable id gets an answer.
    await expect(app.asyncResult('bad-body-1').get({ timeout: 1000 })).rejects.toMatchObject({ code: 'MESSAGE_MALFORMED' });
    expect(await (await add.delay(1, 1)).get({ timeout: 3000 })).toBe(2);
  });

  it('zod args are validated on the worker: a mismatch is a non-retried FAILURE with a readable message', async () => {
    const app = setup('zod');
    let runs = 0;
    const add = app.task(
      { name: 'tasks.add', args: z.tuple([z.number(), z.number()]), result: z.number(), autoretryFor: [Error] },
      async (x, y) => {
        runs++;
        return x + y;
      },
    );
    await startWorker(app);
    expect(await (await add.delay(1, 2)).get({ timeout: 3000 })).toBe(3);
    const bad = await app.sendTask('tasks.add', ['one', 2], {});
    const err = (await bad.get({ timeout: 3000 }).catch((e: unknown) => e)) as TaskError;
    expect(err.code).toBe(ErrorCodes.TASK_ARGS_INVALID);
    expect(err.excMessage).toMatch(/Invalid arguments for task tasks\.add: arg 0: .*number/);
    expect(runs).toBe(1);
    const transport = await app.transport();
    await waitFor(async () => (await transport.listDeadLetters()).length === 1, 'the dead letter');
    expect((await transport.listDeadLetters()).map((d) => d.reason)).toEqual(['TASK_ARGS_INVALID']);
  });

  it('keyword arguments from Python land on the positions named by `params`', async () => {
    const app = setup('kwargs');
    app.task({ name: 'tasks.concat', params: ['x', 'y'] }, (x: string, y: string) => x + y);
    await startWorker(app);
    const r = await app.sendTask('tasks.concat', ['héllo '], { y: 'wörld' });
    expect(await r.get({ timeout: 3000 })).toBe('héllo wörld');
  });

  it('the task context: this and currentTask() give id, retries and a signal', async () => {
    const app = setup('ctx');
    const seen: unknown[] = [];
    const who = app.task({ name: 'tasks.who' }, async function (this: { id: string; retries: number }) {
      seen.push(this.id, this.retries, currentTask()?.id, currentTask()?.signal.aborted);
      return 'ok';
    });
    await startWorker(app);
    const r = await who.delay();
    await r.get({ timeout: 3000 });
    expect(seen).toEqual([r.id, 0, r.id, false]);
  });

  it('a link gets the parent result prepended; a link_error gets the failed task id first', async () => {
    const app = setup('links');
    const received: unknown[][] = [];
    const printTask = app.task({ name: 'tasks.print_task' }, (_x: string) => null);
    const broken = app.task({ name: 'tasks.broken_task' }, () => {
      throw new Error('failed');
    });
    const onSuccess = app.task({ name: 'tasks.on_task_success' }, (...args: unknown[]) => void received.push(['ok', ...args]));
    const onError = app.task({ name: 'tasks.on_task_error' }, (...args: unknown[]) => void received.push(['err', ...args]));
    await startWorker(app);
    await printTask.applyAsync(['something'], {}, { link: onSuccess.s('print_task') });
    const failed = await broken.applyAsync([], {}, { linkError: onError.s('broken_task') });
    await waitFor(() => received.length === 2, 'both callbacks');
    expect(received).toContainEqual(['ok', null, 'print_task']);
    expect(received).toContainEqual(['err', failed.id, 'broken_task']);
  });

  it('countdown is held broker-side: the task does not run before its time', async () => {
    const app = setup('countdown');
    const stamp = app.task({ name: 'tasks.stamp' }, () => Date.now());
    await startWorker(app);
    const sent = Date.now();
    const r = await stamp.applyAsync([], {}, { countdown: 300 });
    expect(await (await app.transport()).length('celery')).toBe(0);
    const ranAt = await r.get({ timeout: 3000 });
    expect(ranAt - sent).toBeGreaterThanOrEqual(295);
  });

  it('an expired task is skipped and recorded as REVOKED with reason expired', async () => {
    const app = setup('expired');
    let runs = 0;
    const add = app.task({ name: 'tasks.add' }, () => ++runs);
    const r = await add.applyAsync([], {}, { expires: new Date(Date.now() - 1000) });
    await startWorker(app);
    const err = (await r.get({ timeout: 3000 }).catch((e: unknown) => e)) as TaskError;
    expect(err.code).toBe(ErrorCodes.TASK_REVOKED);
    expect(err.excArgs).toEqual(['expired']);
    expect(runs).toBe(0);
  });

  it('revoke() before start: the worker skips it and records REVOKED', async () => {
    const app = setup('revoke');
    let runs = 0;
    const add = app.task({ name: 'tasks.add' }, () => ++runs);
    const r = await add.delay();
    await r.revoke();
    await startWorker(app);
    const err = (await r.get({ timeout: 3000 }).catch((e: unknown) => e)) as TaskError;
    expect(err.excType).toBe('TaskRevokedError');
    expect(err.excArgs).toEqual(['revoked']);
    expect(runs).toBe(0);
  });

  it('ctx.retry(): RETRY is stored, the same id runs again with retries + 1, then succeeds', async () => {
    const app = setup('retry');
    const attempts: number[] = [];
    const flaky = app.task({ name: 'tasks.flaky' }, async function (this: { retries: number; retry: (o: object) => never }) {
      attempts.push(this.retries);
      if (this.retries < 2) this.retry({ countdown: 10, exc: new Error('try again') });
      return 'done';
    });
    await startWorker(app);
    const r = await flaky.delay();
    expect(await r.get({ timeout: 3000 })).toBe('done');
    expect(attempts).toEqual([0, 1, 2]);
  });

  it('acksLate: false (per task) acknowledges before running; the default acknowledges after the result is stored', async () => {
    const app = setup('acks');
    const transport = await app.transport();
    let heldDuringEarly = -1;
    let heldDuringLate = -1;
    // The memory broker counts a delivery as held until it is acked: read what the consumer holds while each task runs.
    const held = (): number => (transport as unknown as { consumers: Set<{ inFlight: Map<unknown, unknown> }> }).consumers.values().next().value!.inFlight.size;
    const early = app.task({ name: 'tasks.early', acksLate: false }, () => void (heldDuringEarly = held()));
    const late = app.task({ name: 'tasks.late' }, () => void (heldDuringLate = held()));
    await startWorker(app, { concurrency: 1 });
    await (await early.delay()).get({ timeout: 3000 });
    await (await late.delay()).get({ timeout: 3000 });
    expect(heldDuringEarly).toBe(0);
    expect(heldDuringLate).toBe(1);
  });

  it('a payload over maxPayloadBytes is refused at applyAsync with a named error', async () => {
    const app = memoryApp('big', { maxPayloadBytes: 1024 });
    const echo = app.task({ name: 'tasks.echo' }, (s: string) => s);
    await expect(echo.delay('x'.repeat(2000))).rejects.toMatchObject({ code: ErrorCodes.PAYLOAD_TOO_LARGE, name: 'PayloadTooLargeError' });
  });
});

describe('node names and the task context hostname', () => {
  it('-n takes Celery\'s %h / %n / %d, and a task reads its worker\'s node name from this.hostname (null in-process)', async () => {
    const { expandNodeName } = await import('@celeriac/worker');
    expect(expandNodeName('w1@%h', 'web-1.example.com')).toBe('w1@web-1.example.com');
    expect(expandNodeName('%n-%d@%%', 'web-1.example.com')).toBe('web-1-example.com@%');
    expect(expandNodeName('w@%n', 'box')).toBe('w@box');
    const app = setup('hostname');
    const where = app.task({ name: 'tasks.where' }, function (this: { hostname: string | null }) {
      return this.hostname;
    });
    await startWorker(app, { hostname: 'node-%n@%h' });
    const host = (await import('node:os')).hostname();
    await expect(where.delay().get({ timeout: 3000 })).resolves.toBe(expandNodeName('node-%n@%h', host));
    await expect(where()).resolves.toBeNull();
  });
});
