import { describe, expect, it } from 'vitest';
import { createApp, ConfigError, Signature } from '@celeriac/core';

describe('signatures', () => {
  const app = createApp({ broker: 'memory://sig' });
  const add = app.task({ name: 'tasks.add' }, (x: number, y: number) => x + y);

  it("are immutable values with exactly Celery's wire shape", () => {
    const s = add.s(4);
    expect(JSON.parse(JSON.stringify(s))).toEqual({ task: 'tasks.add', args: [4], kwargs: {}, options: {}, subtask_type: null, immutable: false });
    expect(Object.keys(s).sort()).toEqual(['args', 'immutable', 'kwargs', 'options', 'subtask_type', 'task']);
    expect(Object.isFrozen(s) && Object.isFrozen(s.args) && Object.isFrozen(s.options)).toBe(true);
    expect(() => {
      (s.args as unknown[]).push(1);
    }).toThrow(TypeError);
    expect(add.si(1, 2).immutable).toBe(true);
  });

  it('set() and clone() return new values and leave the original as it was', () => {
    const s = add.s(4);
    const routed = s.set({ queue: 'math', priority: 5 });
    expect(routed.options).toEqual({ queue: 'math', priority: 5 });
    expect(s.options).toEqual({});
    // clone prepends, as Celery's does: the args it still waits for come first.
    const full = s.clone([6], { extra: 1 }, { countdown: 2 });
    expect(full.args).toEqual([6, 4]);
    expect(full.kwargs).toEqual({ extra: 1 });
    expect(full.options).toEqual({ countdown: 2 });
    expect(s.args).toEqual([4]);
    // An immutable signature keeps its args whatever is cloned in.
    expect(add.si(1, 2).clone([] as never).args).toEqual([1, 2]);
  });

  it('Signature.from reads a dict from a message (e.g. a Python link) back', () => {
    const dict = { task: 'tasks.on_task_error', args: ['broken_task'], kwargs: {}, options: {}, subtask_type: null, immutable: false };
    expect(JSON.parse(JSON.stringify(Signature.from(dict)))).toEqual(dict);
  });
});

describe('beat entries from configuration', () => {
  it('beatSchedule in createApp is the same as app.beat.schedule, validated at creation', () => {
    const app = createApp({ broker: 'memory://beatcfg', timezone: 'Europe/Oslo', beatSchedule: [{ name: 'x', task: 'tasks.x', schedule: { every: '20m' } }] });
    expect(app.beat.entries()).toEqual([expect.objectContaining({ name: 'x', task: 'tasks.x', schedule: { every: 1_200_000 }, missed: 'skip' })]);
    expect(app.beat.timezone).toBe('Europe/Oslo');
    expect(() => createApp({ beatSchedule: [{ name: 'bad', task: 'tasks.x', schedule: { every: 'soon' } }] })).toThrow(ConfigError);
    expect(() => createApp({ timezone: 'Mars/Olympus' })).toThrow(/unknown IANA time zone/);
  });
});
