import { describe, expect, it } from 'vitest';
import { ConfigError, createApp, ErrorCodes, redactUrl, resolveConfigForTest } from './config-helpers.js';

describe('createApp configuration', () => {
  it('is validated once and frozen, with Celery-like defaults', () => {
    const app = createApp({ name: 'x', broker: 'memory://cfg' });
    expect(Object.isFrozen(app.config)).toBe(true);
    expect(Object.isFrozen(app.config.routes)).toBe(true);
    expect(app.config.defaultQueue).toBe('celery');
    expect(app.config.acksLate).toBe(true);
    expect(app.config.resultExpires).toBe(86_400_000);
    expect(app.config.backend.scheme).toBe('memory');
    expect(() => {
      (app.config as { defaultQueue: string }).defaultQueue = 'other';
    }).toThrow(TypeError);
  });

  it('an unknown option fails with a named error listing the accepted options', () => {
    const err = catchError(() => createApp({ brokr: 'memory://' } as never));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.code).toBe(ErrorCodes.CONFIG_INVALID);
    expect(err.message).toContain('unknown option "brokr"');
    expect(err.message).toMatch(/accepted: name, broker, backend, defaultQueue/);
  });

  it('a wrong option type fails with the path and the expectation', () => {
    const err = catchError(() => createApp({ maxDeliveries: 'five' } as never));
    expect(err.message).toMatch(/maxDeliveries: .*number/);
  });

  it('an unknown URL scheme fails at createApp and lists the accepted schemes', () => {
    const err = catchError(() => createApp({ broker: 'kafka://localhost' }));
    expect(err.code).toBe(ErrorCodes.URL_INVALID);
    expect(err.message).toContain('unsupported URL scheme "kafka"');
    expect(err.message).toContain('accepted schemes: memory');
  });

  it('a malformed URL fails with a named error, and never shows the password', () => {
    const err = catchError(() => createApp({ broker: 'memory://user:s3cret@host:notaport' }));
    expect(err.code).toBe(ErrorCodes.URL_INVALID);
    expect(err.message).toContain('malformed URL');
    expect(err.message).not.toContain('s3cret');
    const unknown = catchError(() => createApp({ broker: 'redis+x://admin:hunter2@host:6379/0' }));
    expect(unknown.message).not.toContain('hunter2');
    expect(JSON.stringify(unknown.details)).not.toContain('hunter2');
    expect(unknown.message).toContain('admin:***@');
  });

  it('redactUrl hides passwords in parseable and unparseable URLs', () => {
    expect(redactUrl('redis://:pw@localhost:6379/1')).toBe('redis://:***@localhost:6379/1');
    expect(redactUrl('amqp://guest:guest@h/vhost')).toBe('amqp://guest:***@h/vhost');
    expect(redactUrl('not a url://u:pw@x')).not.toContain('pw@');
  });

  it('reads CELERIAC_BROKER_URL and CELERIAC_RESULT_BACKEND when the options are absent; code wins over env', () => {
    const fromEnv = resolveConfigForTest({}, { CELERIAC_BROKER_URL: 'memory://env-broker', CELERIAC_RESULT_BACKEND: 'memory://env-backend' });
    expect(fromEnv.broker.url.host).toBe('env-broker');
    expect(fromEnv.backend.url.host).toBe('env-backend');
    const fromCode = resolveConfigForTest({ broker: 'memory://code' }, { CELERIAC_BROKER_URL: 'memory://env-broker' });
    expect(fromCode.broker.url.host).toBe('code');
    const badEnv = catchError(() => resolveConfigForTest({}, { CELERIAC_BROKER_URL: 'nope://x' }));
    expect(badEnv.message).toContain('CELERIAC_BROKER_URL');
  });

  it('routes: exact names win over globs; the first matching glob wins', () => {
    const app = createApp({
      broker: 'memory://routes',
      routes: { 'email.*': { queue: 'emails' }, 'email.urgent': { queue: 'urgent', priority: 9 }, '*': { queue: 'misc' } },
    });
    expect(app.routeFor('email.send')).toEqual({ queue: 'emails', priority: undefined });
    expect(app.routeFor('email.urgent')).toEqual({ queue: 'urgent', priority: 9 });
    expect(app.routeFor('tasks.add')).toEqual({ queue: 'misc', priority: undefined });
    expect(app.routeFor('email.send', { queue: 'override' }).queue).toBe('override');
  });

  it('task options are checked too: a typo or a bad rate limit is a named error', () => {
    const app = createApp({ broker: 'memory://taskopts' });
    expect(() => app.task({ name: 'a', maxRetry: 3 } as never, () => 1)).toThrow(/unrecognized key|maxRetry/i);
    expect(() => app.task({ name: 'b', rateLimit: '10 per second' }, () => 1)).toThrow(ConfigError);
    expect(() => app.task({}, () => 1)).toThrow(/could not be derived/);
  });

  it('task names default to <module file>.<function>, and a different task may not reuse a name', () => {
    const app = createApp({ broker: 'memory://names' });
    const handle = app.task(function add(x: number, y: number) {
      return x + y;
    });
    expect(handle.taskName).toBe('config.test.add');
    expect(() => app.task({ name: 'config.test.add' }, () => 0)).toThrow(expect.objectContaining({ code: ErrorCodes.TASK_DUPLICATE }));
  });
});

function catchError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    return e as ConfigError;
  }
  throw new Error('expected an error');
}

describe('beatStore', () => {
  it('takes a SQLite or Redis URL (option or CELERIAC_BEAT_STORE), validated when the app is made', () => {
    expect(resolveConfigForTest({ broker: 'amqp://localhost', beatStore: 'sqlite:///tmp/beat.db' }, {}).beatStore?.scheme).toBe('sqlite');
    expect(resolveConfigForTest({ broker: 'amqp://localhost' }, { CELERIAC_BEAT_STORE: 'redis://:pw@localhost/2' }).beatStore?.redacted).not.toContain('pw');
    expect(resolveConfigForTest({ broker: 'amqp://localhost' }, {}).beatStore).toBeNull();
    let err: unknown;
    try {
      resolveConfigForTest({ broker: 'amqp://localhost', beatStore: 'amqp://localhost' }, {});
    } catch (e) {
      err = e;
    }
    expect((err as ConfigError).code).toBe(ErrorCodes.URL_INVALID);
    expect((err as Error).message).toContain('beatStore: unsupported URL scheme "amqp"');
  });
});
