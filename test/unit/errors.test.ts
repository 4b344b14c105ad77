import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as core from '@celeriac/core/spi';
import {
  ArgumentError,
  BrokerUnavailableError,
  CeleriacError,
  ConfigError,
  ErrorCodes,
  isCeleriacError,
  MessageError,
  TaskError,
  UnknownBeatEntryError,
  UnknownTaskError,
  ValidationError,
  chunks,
  createApp,
  fromKombuEnvelope,
  fromWire,
  task,
} from '@celeriac/core/spi';
import { CliError, rateIntervalMs } from '@celeriac/worker';

type ErrorsModule = typeof import('@celeriac/core/spi');

/**
 * A second copy of the package, as when an app and a CLI each have their own `node_modules`: the built
 * `errors.js` loaded again under another URL is a second module instance, with classes of its own.
 */
const ERRORS_URL = pathToFileURL(join(import.meta.dirname, '../../packages/core/dist/errors.js')).href;
async function secondCopy(): Promise<ErrorsModule> {
  const copy = (await import(/* @vite-ignore */ `${ERRORS_URL}?copy=2`)) as ErrorsModule;
  // The premise of the tests below: these are other classes than the ones the package exports.
  expect(copy.CeleriacError).not.toBe(CeleriacError);
  expect(copy.ConfigError).not.toBe(ConfigError);
  return copy;
}

const taskError = (init: Partial<ConstructorParameters<typeof TaskError>[0]> = {}): TaskError =>
  new TaskError({ taskId: 'id-1', excType: 'ValueError', excModule: 'builtins', excArgs: ['bad'], traceback: null, ...init });

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

describe('CeleriacError', () => {
  it('instanceof holds across two copies of the package, both ways, class by class', async () => {
    const copy = await secondCopy();
    const theirs = new copy.ConfigError('bad option', { key: 'x' });
    expect(theirs).toBeInstanceOf(ConfigError);
    expect(theirs).toBeInstanceOf(CeleriacError);
    expect(theirs).not.toBeInstanceOf(TaskError);
    expect(isCeleriacError(theirs)).toBe(true);
    expect(isCeleriacError(theirs, ErrorCodes.CONFIG_INVALID)).toBe(true);
    expect(isCeleriacError(theirs, ErrorCodes.URL_INVALID)).toBe(false);

    const ours = new BrokerUnavailableError('redis is away');
    expect(ours).toBeInstanceOf(copy.BrokerUnavailableError);
    expect(ours).toBeInstanceOf(copy.CeleriacError);
    expect(ours).not.toBeInstanceOf(copy.ConfigError);
    expect(copy.isCeleriacError(ours, copy.ErrorCodes.BROKER_UNAVAILABLE)).toBe(true);
  });

  it('subclasses are told apart: a ConfigError is not a TaskError, nor the reverse', () => {
    const config = new ConfigError('bad');
    const failed = taskError();
    expect(config).toBeInstanceOf(ConfigError);
    expect(config).toBeInstanceOf(CeleriacError);
    expect(config).toBeInstanceOf(Error);
    expect(config).not.toBeInstanceOf(TaskError);
    expect(config).not.toBeInstanceOf(ValidationError);
    expect(failed).toBeInstanceOf(TaskError);
    expect(failed).not.toBeInstanceOf(ConfigError);
    expect(config.name).toBe('ConfigError');
    expect(failed.name).toBe('TaskError');
  });

  it('is not claimed by look-alikes: a plain Error, an object with a code, null', () => {
    const lookAlike = Object.assign(new Error('x'), { code: 'CONFIG_INVALID', details: {} });
    expect(lookAlike).not.toBeInstanceOf(CeleriacError);
    expect(isCeleriacError(lookAlike)).toBe(false);
    expect(isCeleriacError({ code: 'CONFIG_INVALID' })).toBe(false);
    expect(isCeleriacError(null)).toBe(false);
    expect(isCeleriacError('CONFIG_INVALID')).toBe(false);
  });

  it('keeps its cause', () => {
    const econn = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), { code: 'ECONNREFUSED' });
    const err = new BrokerUnavailableError('cannot reach redis://localhost:6379', { url: 'redis://localhost:6379' }, { cause: econn });
    expect(err.cause).toBe(econn);
    expect(err.code).toBe('BROKER_UNAVAILABLE');
    expect(err.details).toEqual({ url: 'redis://localhost:6379' });
    expect(Object.isFrozen(err.details)).toBe(true);
    expect(new ConfigError('x', {}, ErrorCodes.URL_INVALID, { cause: econn }).cause).toBe(econn);
    expect(new ArgumentError('x', {}, { cause: econn }).cause).toBe(econn);
    expect(new CliError('x', 3, ErrorCodes.BROKER_UNAVAILABLE, { cause: econn }).cause).toBe(econn);
  });

  it('decoding a message that is not JSON chains the parser error as the cause', () => {
    const envelope = thrown(() => fromKombuEnvelope('{not json'));
    expect(envelope).toBeInstanceOf(MessageError);
    expect((envelope as MessageError).cause).toBeInstanceOf(SyntaxError);
    const body = thrown(() =>
      fromWire({ body: '[[], {}, {', contentType: 'application/json', contentEncoding: 'utf-8', headers: { task: 't', id: 'i' }, properties: {} }),
    );
    expect(isCeleriacError(body, ErrorCodes.MESSAGE_MALFORMED)).toBe(true);
  });

  it('codes are stable strings: a code is its own name, and none is renamed or dropped', () => {
    for (const [key, value] of Object.entries(ErrorCodes)) expect(value).toBe(key);
    // Scripts match on these: adding a code is fine, renaming or removing one breaks them.
    expect(Object.keys(ErrorCodes)).toEqual(
      expect.arrayContaining([
        'CONFIG_INVALID', 'URL_INVALID', 'CAPABILITY_MISSING', 'TASK_UNKNOWN', 'TASK_DUPLICATE', 'TASK_ARGS_INVALID',
        'TASK_RESULT_INVALID', 'TASK_FAILED', 'MESSAGE_MALFORMED', 'CONTENT_TYPE_REJECTED', 'MESSAGE_TOO_DEEP',
        'RESULT_NOT_SERIALIZABLE', 'PAYLOAD_TOO_LARGE', 'TIMEOUT', 'TRANSPORT_CLOSED', 'BROKER_UNAVAILABLE', 'BROKER_BLOCKED',
        'UNROUTABLE', 'QUEUE_MISMATCH', 'TASK_REVOKED', 'SOFT_TIME_LIMIT', 'TIME_LIMIT', 'WORKER_LOST', 'MAX_RETRIES', 'RETRY',
        'LEASE_LOST', 'CHORD_ERROR', 'UNSAFE_REDIS_CONFIG', 'ARGUMENT_INVALID', 'BEAT_ENTRY_UNKNOWN', 'DEAD_LETTER_UNKNOWN',
        'APP_LOAD_FAILED', 'POOL_START_FAILED',
      ]),
    );
    expect(new ConfigError('x').code).toBe('CONFIG_INVALID');
    expect(new UnknownTaskError('t').code).toBe('TASK_UNKNOWN');
    expect(new UnknownBeatEntryError('nightly').code).toBe('BEAT_ENTRY_UNKNOWN');
    expect(new ArgumentError('x').code).toBe('ARGUMENT_INVALID');
    expect(taskError().code).toBe('TASK_FAILED');
    expect(new CliError('x').code).toBe('ARGUMENT_INVALID');
    expect(new CliError('x').exitCode).toBe(2);
  });

  it('every error class the package exports is a CeleriacError with a code from the catalogue', () => {
    const codes = new Set<string>(Object.values(ErrorCodes));
    // Prototype chains, not instanceof: CeleriacError's instanceof reads an instance's brand.
    const classes = (Object.entries(core) as [string, unknown][])
      .filter((e): e is [string, { prototype: object }] => typeof e[1] === 'function' && /Error$|Exceeded$|Requested$/.test(e[0]))
      .filter(([, value]) => Error.prototype.isPrototypeOf(value.prototype));
    expect(classes.length).toBeGreaterThan(10);
    for (const [name, value] of classes) {
      expect(value === CeleriacError || CeleriacError.prototype.isPrototypeOf(value.prototype), name).toBe(true);
    }
    for (const err of [new ConfigError('x'), new UnknownBeatEntryError('e'), new ArgumentError('x'), taskError()]) expect(codes.has(err.code)).toBe(true);
  });
});

describe('bad arguments throw ArgumentError (ARGUMENT_INVALID), not a bare RangeError or TypeError', () => {
  it('chunks() with a chunk size that is not a positive integer', () => {
    const app = createApp({ broker: 'memory://errors-chunks' });
    const add = app.task({ name: 'tasks.add' }, (x: number, y: number) => x + y);
    for (const n of [0, -1, 1.5, Number.NaN]) {
      const err = thrown(() => chunks(add, [[1, 2]], n));
      expect(err).toBeInstanceOf(ArgumentError);
      expect(isCeleriacError(err, ErrorCodes.ARGUMENT_INVALID)).toBe(true);
    }
  });

  it('a rate limit that is not <n>/s, <n>/m or <n>/h', () => {
    expect(rateIntervalMs('10/s')).toBe(100);
    const err = thrown(() => rateIntervalMs('ten per second'));
    expect(err).toBeInstanceOf(ArgumentError);
    expect((err as ArgumentError).details).toEqual({ rate: 'ten per second' });
  });

  it('@task() on something other than a public instance method', () => {
    const decorate = task({ name: 'x' });
    const context = { kind: 'method', static: true, private: false, name: 'run' } as unknown as ClassMethodDecoratorContext;
    const err = thrown(() => decorate(() => 1, context));
    expect(err).toBeInstanceOf(ArgumentError);
    expect(isCeleriacError(err, ErrorCodes.ARGUMENT_INVALID)).toBe(true);
  });
});
