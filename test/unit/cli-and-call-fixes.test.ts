import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ArgumentError, ErrorCodes, isCeleriacError } from '@celeriac/core';
import { memoryApp, startInProcessWorker } from '../helpers/in-process.js';
import { waitFor } from '../helpers/wait.js';

type InspectModule = typeof import('../../packages/worker/src/cli/inspect-command.js');
type StatusModule = typeof import('../../packages/worker/src/cli/status-command.js');
const { SIGNATURES } = (await import(join(import.meta.dirname, '../../packages/worker/dist/cli/inspect-command.js'))) as InspectModule;
const { statusReport } = (await import(join(import.meta.dirname, '../../packages/worker/dist/cli/status-command.js'))) as StatusModule;

describe('control terminate', () => {
  it('takes Celery\'s `terminate <signal> <id>...`, and ids alone mean SIGTERM (a first id is never taken for a signal)', () => {
    const id = '2f0c7a8e-46d5-4b1e-9b0a-5d2c1f3e4a6b';
    expect(SIGNATURES.terminate!([id])).toEqual({ signal: 'SIGTERM', task_id: [id] });
    expect(SIGNATURES.terminate!(['SIGKILL', id, 'x'])).toEqual({ signal: 'SIGKILL', task_id: [id, 'x'] });
    expect(SIGNATURES.terminate!(['9', id])).toEqual({ signal: '9', task_id: [id] });
  });
});

describe('celeriac status', () => {
  it('counts every dead letter, not one page of them', async () => {
    const app = memoryApp('status-count');
    await startInProcessWorker(app);
    await Promise.all(Array.from({ length: 130 }, () => app.sendTask('no.such.task')));
    const transport = await app.transport();
    await waitFor(async () => (await transport.deadLetterCount()) === 130 || undefined, '130 dead letters', 20_000);
    const report = await statusReport(app, [], 500);
    expect(report.deadLetters).toBe(130);
  });
});

describe('applyAsync options', () => {
  it('refuses a second argument that mixes options with other keys (a misspelt option would drop the rest)', () => {
    const app = memoryApp('mixed');
    const add = app.task({ name: 'tasks.add' }, (x: number, y: number) => x + y);
    let thrown: unknown;
    try {
      void add.applyAsync([1, 2], { countdown: 5000, prority: 1 } as never);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(ArgumentError);
    expect(isCeleriacError(thrown, ErrorCodes.ARGUMENT_INVALID)).toBe(true);
    expect((thrown as Error).message).toContain('"prority"');
  });
});
