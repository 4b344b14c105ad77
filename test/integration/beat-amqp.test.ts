import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import amqp from 'amqplib';
import { celeriac, ROOT, type Spawned } from '../helpers/processes.js';
import { freshVhost } from '../servers/rabbitmq.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

const PERIODIC = join(ROOT, 'test', 'fixtures', 'apps', 'periodic.ts');
const dir = tempDir('celeriac-beat-amqp-');
let n = 0;

/** The task ids of every message in the vhost's `celery` queue, taken off it (no worker runs here). */
async function drainIds(url: string): Promise<string[]> {
  const conn = await amqp.connect(url);
  try {
    const ch = await conn.createChannel();
    // The queue exists once beat first sent to it: until then there is nothing to read.
    ch.on('error', () => undefined);
    const exists = await ch.checkQueue('celery').then(() => true, () => false);
    if (!exists) return [];
    const ids: string[] = [];
    for (let msg = await ch.get('celery', { noAck: true }); msg; msg = await ch.get('celery', { noAck: true })) ids.push(String(msg.properties.headers?.id));
    return ids;
  } finally {
    await conn.close();
  }
}

const leaderOf = (beats: Spawned[]): Spawned | undefined => beats.find((b) => /beat is the leader/.test(b.output()) && b.proc.exitCode === null);

/**
 * Beat on RabbitMQ with rpc:// results (#20 item 6): no store is shared there,
 * so beat refuses to start rather than keep its lock and last runs in memory;
 * given one (`--store` / CELERIAC_BEAT_STORE), two beats send each slot once.
 */
describe('beat on RabbitMQ with rpc:// results', () => {
  it('refuses to start without a store, naming what to configure (CAPABILITY_MISSING)', async () => {
    const url = await freshVhost(inject('amqpUrl'), inject('amqpNode'), `beat-none-${process.pid}`);
    const b = celeriac(['beat', '-A', PERIODIC], { CELERIAC_BROKER_URL: url });
    expect(await b.exited).not.toBe(0);
    expect(b.output()).toContain('CAPABILITY_MISSING');
    expect(b.output()).toContain('beatStore');
    expect(b.output()).toContain('--store');
    expect(b.output()).not.toContain('guest:guest');
  });

  it.each(['--store', 'CELERIAC_BEAT_STORE'] as const)('two beats sharing a SQLite store via %s: each slot sent once across a kill -9 of the leader', async (how) => {
    const url = await freshVhost(inject('amqpUrl'), inject('amqpNode'), `beat-two-${process.pid}-${++n}`);
    const store = `sqlite://${join(dir, `beat-${n}.db`)}`;
    const env = { CELERIAC_BROKER_URL: url, ...(how === 'CELERIAC_BEAT_STORE' ? { CELERIAC_BEAT_STORE: store } : {}) };
    const args = ['beat', '-A', PERIODIC, '--lease', '2000', ...(how === '--store' ? ['--store', store] : [])];
    const beats = [celeriac(args, env), celeriac(args, env)];
    await Promise.all(beats.map((b) => b.waitForOutput(/beat ready/)));
    const leader = await waitFor(() => leaderOf(beats), 'a leader');
    expect(leader.output()).toMatch(/"store":"sqlite"/);
    const ids: string[] = [];
    await waitFor(async () => (ids.push(...(await drainIds(url))), ids.length >= 3), 'three slots sent');
    leader.proc.kill('SIGKILL');
    await leader.exited;
    const survivor = beats.find((b) => b !== leader)!;
    await survivor.waitForOutput(/beat is the leader/, 15_000);
    const before = ids.length;
    await waitFor(async () => (ids.push(...(await drainIds(url))), ids.length >= before + 3), 'the survivor sends');
    survivor.proc.kill('SIGTERM');
    await survivor.exited;
    ids.push(...(await drainIds(url)));
    expect(ids.every((id) => id.startsWith('beat:tick:'))).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
