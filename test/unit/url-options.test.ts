import { afterAll, describe, expect, it } from 'vitest';
import { amqpSettings, ConfigError, createApp, ErrorCodes, parseUrl, redisSettings, sqliteSettings, type CeleriacApp } from '@celeriac/core/spi';

/** Scheme-specific URL query options are checked by createApp, before anything connects. */

function failure(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

/** createApp opens nothing: an app made here is closed at once (closing something never opened is free). */
const apps: CeleriacApp[] = [];
const app = (broker: string, backend?: string): CeleriacApp => {
  const made = createApp({ broker, ...(backend ? { backend } : {}) });
  apps.push(made);
  return made;
};
afterAll(async () => {
  await Promise.all(apps.map((a) => a.close()));
});

describe('URL query options are validated by createApp', () => {
  describe('redis://', () => {
    it('a bad number names the key and the value, lists the accepted keys, and hides the password', () => {
      const err = failure(() => app('redis://admin:hunter2@localhost:6379/0?commandTimeout=abc'));
      expect(err.code).toBe(ErrorCodes.URL_INVALID);
      expect(err.message).toContain('commandTimeout');
      expect(err.message).toContain('"abc"');
      expect(err.message).toContain('accepted: keyPrefix, global_keyprefix, commandTimeout');
      expect(err.message).not.toContain('hunter2');
      expect(JSON.stringify(err.details)).not.toContain('hunter2');
      expect(failure(() => app('redis://localhost/0?commandTimeout=0')).message).toMatch(/commandTimeout .*≥ 1/);
    });

    it('an unknown key is refused, with the accepted keys of its scheme', () => {
      const err = failure(() => app('redis://:s3cret@localhost:6379/0?foo=1'));
      expect(err.code).toBe(ErrorCodes.URL_INVALID);
      expect(err.message).toContain('unknown option "foo" in redis:// URL');
      expect(err.message).toContain('(accepted: keyPrefix, global_keyprefix, commandTimeout)');
      expect(err.message).not.toContain('s3cret');
      expect(err.details).toMatchObject({ option: 'foo', accepted: ['keyPrefix', 'global_keyprefix', 'commandTimeout'] });
      // TLS options belong to rediss://, sentinels to redis+sentinel://.
      expect(failure(() => app('redis://localhost/0?tlsInsecure=true')).message).toContain('unknown option "tlsInsecure"');
      expect(failure(() => app('rediss://localhost/0?tlsInsecure=maybe')).message).toMatch(/tlsInsecure .*true or false, got "maybe"/);
      expect(failure(() => app('redis+sentinel://localhost:26379/mymaster?sentinels=h:notaport')).message).toContain('sentinels');
    });

    it('the backend URL is checked too', () => {
      const err = failure(() => app('memory://url-opts', 'redis://localhost/0?keyprefix=x'));
      expect(err.message).toContain('unknown option "keyprefix" in redis:// URL');
    });

    it('a good URL passes, and its settings are what the transport uses', () => {
      const made = app('redis://:pw@localhost:6390/2?keyPrefix=p:&commandTimeout=750');
      expect(made.config.broker.scheme).toBe('redis');
      const s = redisSettings(made.config.broker);
      expect(s).toMatchObject({ keyPrefix: 'p:', db: 2, options: { port: 6390, commandTimeout: 750, socketTimeout: 750, password: 'pw' } });
      expect(redisSettings(parseUrl('broker', 'rediss://h/0?ca=/x/ca.pem&tlsInsecure=false', ['rediss']))).toMatchObject({ caFile: '/x/ca.pem', options: { tls: { rejectUnauthorized: true } } });
      const sentinel = redisSettings(parseUrl('broker', 'redis+sentinel://s1:26379/mymaster/3?sentinels=s2:26380', ['redis+sentinel']));
      expect(sentinel.options).toMatchObject({ name: 'mymaster', db: 3, sentinels: [{ host: 's1', port: 26379 }, { host: 's2', port: 26380 }] });
    });
  });

  describe('amqp://', () => {
    it('a bad number names the key and the value and lists the accepted keys', () => {
      const err = failure(() => app('amqp://guest:topsecret@localhost:5672/?heartbeat=ten'));
      expect(err.code).toBe(ErrorCodes.URL_INVALID);
      expect(err.message).toContain('heartbeat');
      expect(err.message).toContain('"ten"');
      expect(err.message).toContain('accepted: heartbeat, connectTimeout, publishTimeout');
      expect(err.message).not.toContain('topsecret');
      expect(failure(() => app('amqp://localhost/?publishTimeout=-5')).message).toContain('publishTimeout');
    });

    it('an unknown key is refused, with the accepted keys', () => {
      const err = failure(() => app('amqp://localhost/?heartbeats=10'));
      expect(err.message).toContain('unknown option "heartbeats" in amqp:// URL');
      expect(err.message).toContain('(accepted: heartbeat, connectTimeout, publishTimeout, consumerTimeout)');
      expect(failure(() => app('amqps://localhost/?cert=x')).message).toContain('(accepted: heartbeat, connectTimeout, publishTimeout, consumerTimeout, ca, tlsInsecure)');
    });

    it('a good URL passes, with rpc:// as its backend', () => {
      const made = app('amqp://u:p@localhost:5673/vh?heartbeat=0&publishTimeout=2500&connectTimeout=900');
      expect(made.config.backend.scheme).toBe('rpc');
      const s = amqpSettings(made.config.broker);
      expect(s.connect).toMatchObject({ hostname: 'localhost', port: 5673, vhost: 'vh', heartbeat: 0 });
      expect(s.publishTimeoutMs).toBe(2500);
      expect(s.socket).toMatchObject({ timeout: 900 });
      expect(failure(() => app('amqp://localhost/', 'rpc://?x=1')).message).toContain('unknown option "x" in rpc:// URL (accepted: none)');
    });
  });

  describe('sqlite://', () => {
    it('takes no query options: any key is unknown, and the message says none are accepted', () => {
      const err = failure(() => app('sqlite://./.celeriac/url-options.db?busyTimeout=abc'));
      expect(err.code).toBe(ErrorCodes.URL_INVALID);
      expect(err.message).toContain('unknown option "busyTimeout" in sqlite:// URL');
      expect(err.message).toContain('(accepted: none)');
    });

    it('a good URL passes and names its file', () => {
      const made = app('sqlite:///tmp/celeriac-url-options.db');
      expect(sqliteSettings(made.config.broker).path).toBe('/tmp/celeriac-url-options.db');
      expect(made.config.backend.scheme).toBe('sqlite');
    });
  });

  it('memory:// takes no query options either', () => {
    expect(failure(() => app('memory://x?y=1')).message).toContain('unknown option "y" in memory:// URL (accepted: none)');
  });
});
