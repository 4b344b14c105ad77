import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { buildTaskMessage, ErrorCodes, fromWire, isCeleriacError, toWire, type TaskMessageInit, type WireMessage } from '@celeriac/core/spi';
import { memoryApp } from '../helpers/in-process.js';

// Admission is the worker's pure first step: tested alone, on messages built as a client builds them.
type AdmissionModule = typeof import('../../packages/worker/src/trace/admission.js');
const { admit, decodeDelivery, RATE_SLOT_HEADER } = (await import(join(import.meta.dirname, '../../packages/worker/dist/trace/admission.js'))) as AdmissionModule;

const app = memoryApp('admission');
app.task({ name: 't.add' }, (x: number, y: number) => x + y);
app.task({ name: 't.typed', args: z.tuple([z.number()]) }, (n: number) => n);
app.task({ name: 't.limited', rateLimit: '10/s' }, () => null);
app.task({ name: 't.hard', timeLimit: 5000 }, () => null);

const NOW = Date.UTC(2026, 11, 4, 12, 0, 0);

function wire(init: Partial<TaskMessageInit> = {}): WireMessage {
  return toWire(buildTaskMessage({ task: 't.add', id: 'id-1', args: [1, 2], kwargs: {}, now: NOW, ...init }));
}

function decide(w: WireMessage, over: Partial<Parameters<AdmissionModule['admit']>[1]> = {}) {
  const decoded = decodeDelivery(w, 1024 * 1024);
  if (decoded.kind !== 'decoded') throw new Error(`expected a decoded message, got ${decoded.kind}`);
  const booked: string[] = [];
  const decision = admit(decoded.message, {
    maxDeliveries: 5,
    deliveryCount: 1,
    now: NOW,
    findTask: (name) => app.registry.get(name),
    runTimeLimits: new Map(),
    isRevoked: () => false,
    reserveSlot: (name) => (booked.push(name), 0),
    delayedDelivery: true,
    hardLimitsEnforced: true,
    ...over,
  });
  return { decision, booked };
}

describe('admission (a pure decision before anything runs)', () => {
  it('refuses what cannot be decoded or is too large, naming the code and the readable id', () => {
    const big = decodeDelivery(wire({ args: ['x'.repeat(5000)] }), 1000);
    expect(big.kind).toBe('refuse');
    expect(big.kind === 'refuse' && isCeleriacError(big.error, ErrorCodes.PAYLOAD_TOO_LARGE)).toBe(true);
    expect(big.kind === 'refuse' && big.id).toBe('id-1');
    const bad = decodeDelivery({ ...wire(), body: Buffer.from('not json').toString('base64') }, 1024 * 1024);
    expect(bad.kind).toBe('refuse');
    expect(bad.kind === 'refuse' && bad.taskName).toBe('t.add');
  });

  it('runs a known task with its arguments, booking its rate slot once', () => {
    const { decision, booked } = decide(wire());
    expect(decision.kind).toBe('run');
    expect(decision.kind === 'run' && decision.args).toEqual([1, 2]);
    expect(booked).toEqual(['t.add']);
  });

  it('refuses an unknown task and wrong argument types, without booking a slot', () => {
    const unknown = decide(wire({ task: 't.nope' }));
    expect(unknown.decision.kind).toBe('refuse');
    expect(unknown.decision.kind === 'refuse' && isCeleriacError(unknown.decision.error, ErrorCodes.TASK_UNKNOWN)).toBe(true);
    const typed = decide(wire({ task: 't.typed', args: ['one'] }));
    expect(typed.decision.kind === 'refuse' && isCeleriacError(typed.decision.error, ErrorCodes.TASK_ARGS_INVALID)).toBe(true);
    expect(typed.booked).toEqual([]);
  });

  it('calls a message delivered more than maxDeliveries times poison, before anything else', () => {
    const { decision } = decide(wire(), { deliveryCount: 6, isRevoked: () => true });
    expect(decision.kind).toBe('poison');
    expect(decision.kind === 'poison' && decision.detail).toContain('delivered 5 times');
  });

  it('parks a future ETA broker-side, but runs it now where the broker cannot delay', () => {
    const later = wire({ etaMs: NOW + 60_000 });
    expect(decide(later).decision).toMatchObject({ kind: 'park', eta: NOW + 60_000 });
    expect(decide(later, { delayedDelivery: false }).decision.kind).toBe('run');
  });

  it('skips revoked and expired tasks', () => {
    expect(decide(wire(), { isRevoked: (id) => id === 'id-1' }).decision).toMatchObject({ kind: 'skip', reason: 'revoked' });
    expect(decide(wire({ expiresMs: NOW - 1 })).decision).toMatchObject({ kind: 'skip', reason: 'expired' });
  });

  it('sends a task over its rate back for its slot, unless it already holds one', () => {
    const over = decide(wire({ task: 't.limited', args: [] }), { reserveSlot: () => 250 });
    expect(over.decision).toMatchObject({ kind: 'wait-slot', waitMs: 250 });
    const holding = decide(wire({ task: 't.limited', args: [], headers: { [RATE_SLOT_HEADER]: NOW } }), { reserveSlot: () => 250 });
    expect(holding.decision.kind).toBe('run');
  });

  it('applies time limits set at run time by remote control', () => {
    const { decision } = decide(wire({ task: 't.hard', args: [] }), { runTimeLimits: new Map([['t.hard', { hard: null, soft: 2000 }]]) });
    expect(decision.kind === 'run' && decision.task.options.timeLimit).toBeUndefined();
    expect(decision.kind === 'run' && decision.task.options.softTimeLimit).toBe(2000);
  });

  it('keeps the decoded message on a refusal so its errbacks and chord hear of it', () => {
    const { decision } = decide(wire({ task: 't.typed', args: ['one'], errbacks: [{ task: 't.add', args: [], kwargs: {}, options: {}, subtask_type: null, immutable: false }] }));
    expect(decision.kind === 'refuse' && decision.message && fromWire(toWire(decision.message)).body[2].errbacks).toHaveLength(1);
  });
});
