import { describe, expect, it } from 'vitest';
import {
  createApp,
  decodeException,
  fromKombuEnvelope,
  fromWire,
  parseCeleryIso,
  resultMetaSchema,
  Signature,
  toKombuEnvelope,
  toWire,
  buildTaskMessage,
  type TaskMessage,
  type WireMessage,
} from '@celeriac/core/spi';
import { fixtureFiles, loadFixture, type Fixture } from '../helpers/fixtures.js';
import { memoryUrl } from '../helpers/wait.js';

interface AmqpRaw {
  properties: Record<string, unknown> & { content_type: string; content_encoding: string };
  headers: Record<string, unknown>;
  body: string;
}

/** Every task message a fixture holds, as wire messages (the transport-neutral form). */
function wireMessagesOf(fx: Fixture): WireMessage[] {
  const raw = fx.raw as Record<string, unknown>;
  if (raw && typeof raw === 'object' && 'queue_keys' in raw) {
    return Object.values(raw.queue_keys as Record<string, string[]>).flat().map((text) => fromKombuEnvelope(text).wire);
  }
  if (raw && typeof raw === 'object' && 'messages' in raw) {
    return (raw.messages as AmqpRaw[]).map((m) => {
      const { content_type, content_encoding, ...properties } = m.properties;
      return { body: m.body, contentType: content_type, contentEncoding: content_encoding, headers: m.headers, properties };
    });
  }
  return [];
}

const isTaskMessage = (w: WireMessage): boolean => typeof w.headers.task === 'string';

describe('golden fixtures from Celery 5.2.6: every task message decodes', () => {
  const files = [...fixtureFiles('redis'), ...fixtureFiles('amqp')].filter(
    (f) => !/control-revoke|rpc-backend|key-layout|retry-republish-unacked/.test(f),
  );
  it.each(files)('%s', (file) => {
    const fx = loadFixture(file);
    const wires = wireMessagesOf(fx).filter(isTaskMessage);
    expect(wires.length).toBeGreaterThan(0);
    for (const wire of wires) {
      const msg = fromWire(wire);
      expect(msg.headers.task).toBe(wire.headers.task);
      expect(msg.headers.id).toBe(wire.headers.id);
      // The parsed body is the body Celery wrote, key for key.
      expect(JSON.parse(JSON.stringify(msg.body))).toEqual(JSON.parse(wire.body));
      for (const sig of [...(msg.body[2].callbacks ?? []), ...(msg.body[2].errbacks ?? []), ...(msg.body[2].chain ?? [])]) {
        expect(JSON.parse(JSON.stringify(Signature.from(sig)))).toEqual(sig);
      }
    }
  });

  it('redis/retry-republish-unacked.json: unacked entries are [envelope, exchange, routing_key] and decode', () => {
    const fx = loadFixture('redis/retry-republish-unacked.json');
    const unacked = (fx.raw as { unacked: Record<string, string> }).unacked;
    const entries = Object.entries(unacked);
    expect(entries.length).toBeGreaterThan(0);
    for (const [tag, text] of entries) {
      const [envelope, , routingKey] = JSON.parse(text) as [unknown, string, string];
      const { wire, deliveryTag } = fromKombuEnvelope(JSON.stringify(envelope));
      expect(deliveryTag).toBe(tag);
      const msg = fromWire(wire);
      expect(msg.headers.retries).toBe(1);
      expect(msg.headers.parent_id).toBe(msg.headers.id);
      expect(routingKey).toBe('celery');
    }
  });

  it('redis/key-layout.json: binding members are <routing_key>\\x06\\x16<pattern>\\x06\\x16<queue>', () => {
    const fx = loadFixture('redis/key-layout.json');
    const raw = fx.raw as Record<string, { type: string; members?: string[] }>;
    expect(raw['_kombu.binding.celery']?.members).toEqual(['celery\x06\x16\x06\x16celery']);
    expect(raw.unacked?.type).toBe('hash');
    expect(raw.unacked_index?.type).toBe('zset');
    for (const [key, value] of Object.entries(raw).filter(([k]) => k.startsWith('_kombu.binding.'))) {
      for (const member of value.members ?? []) expect(member.split('\x06\x16'), key).toHaveLength(3);
    }
  });

  it.each(['redis/control-revoke-broadcast.json', 'amqp/control-revoke-broadcast.json'])('%s: the revoke broadcast body', (file) => {
    const fx = loadFixture(file);
    const raw = fx.raw as { data?: string }[] | { messages: AmqpRaw[] };
    const bodyText = Array.isArray(raw) ? fromKombuEnvelope(raw[0]!.data!).wire.body : raw.messages[0]!.body;
    const body = JSON.parse(bodyText) as { method: string; arguments: Record<string, unknown>; destination: unknown };
    expect(body.method).toBe('revoke');
    expect(Object.keys(body.arguments).sort()).toEqual(['signal', 'task_id', 'terminate']);
    expect(body.destination).toBeNull();
  });
});

describe('golden fixtures: result records', () => {
  it.each(fixtureFiles('backend').filter((f) => /result-(success|failure|retry|revoked)/.test(f)))('%s parses', (file) => {
    const fx = loadFixture(file);
    const meta = resultMetaSchema.parse(JSON.parse(fx.raw as string));
    expect(meta).toEqual(expect.objectContaining(fx.decoded as object));
    if (meta.status !== 'SUCCESS') {
      const err = decodeException(meta.task_id, meta.result, meta.traceback);
      const exc = (fx.decoded as { result: { exc_type: string; exc_message: string[] } }).result;
      expect(err.excType).toBe(exc.exc_type);
      expect(err.excArgs).toEqual(exc.exc_message);
      expect(err.remoteTraceback).toBe(meta.traceback);
    }
  });

  it('backend/result-group-saved.json parses as [[gid, null], [[[id, null], null], ...]]', () => {
    const fx = loadFixture('backend/result-group-saved.json');
    const value = JSON.parse(fx.raw as string) as { result: [[string, null], [[string, null], null][]] };
    expect(value.result[1].length).toBeGreaterThan(0);
    for (const [[id]] of value.result[1]) expect(id).toMatch(/^[0-9a-f-]{36}$/);
  });

  it.each(['backend/chord-counters-redis.json', 'backend/chord-counters-redis-add-to-chord.json'])('%s: join members are [1, id, state, result]', (file) => {
    const fx = loadFixture(file);
    const raw = fx.raw as Record<string, { type: string; members_with_scores?: [string, number][] }>;
    const j = Object.entries(raw).find(([k]) => k.endsWith('.j'))![1];
    const members = j.members_with_scores ?? [];
    expect(members.length).toBeGreaterThan(0);
    for (const [member, score] of members) {
      expect(Number.isInteger(score)).toBe(true);
      const [one, id, state] = JSON.parse(member) as [number, string, string];
      expect(one).toBe(1);
      expect(id).toMatch(/^[0-9a-f-]{36}$/);
      expect(state).toBe('SUCCESS');
    }
  });

  it('amqp/rpc-backend-replies.json: rpc replies parse as result records', () => {
    const fx = loadFixture('amqp/rpc-backend-replies.json');
    for (const m of (fx.raw as { messages: AmqpRaw[] }).messages) {
      const meta = resultMetaSchema.parse(JSON.parse(m.body));
      expect(meta.task_id).toBe(m.properties.correlation_id);
    }
  });
});

/** Drop what differs per run (ids, timestamps, origin, reply_to, lang) and keep the structure. */
function normalise(msg: TaskMessage): unknown {
  const { id: _i, root_id: _r, parent_id: _p, origin: _o, lang: _l, eta, expires, ...headers } = msg.headers;
  const { correlation_id: _c, reply_to: _rt, ...properties } = msg.properties;
  return {
    headers: { ...headers, eta: eta === null ? null : 'set', expires: expires === null ? null : 'set' },
    properties,
    body: JSON.parse(JSON.stringify(msg.body)),
  };
}

async function captureCeleriac(send: (app: ReturnType<typeof createApp>) => Promise<unknown>): Promise<TaskMessage> {
  const app = createApp({ broker: memoryUrl('golden') });
  try {
    // Record what the app hands to the transport (delayed messages included) — the seam is ours, not a client library.
    const transport = await app.transport();
    const published: WireMessage[] = [];
    const publish = transport.publish.bind(transport);
    transport.publish = async (queue, message, options) => {
      published.push(message);
      return publish(queue, message, options);
    };
    await send(app);
    expect(published).toHaveLength(1);
    return fromWire(published[0]!);
  } finally {
    await app.close();
  }
}

describe('golden fixtures: celeriac encodes the same message as Celery for the same call', () => {
  const onSuccess = new Signature({ task: 'tasks.on_task_success', args: ['print_task'] });
  const onError = new Signature({ task: 'tasks.on_task_error', args: ['broken_task'] });
  const cases: [string, (app: ReturnType<typeof createApp>) => Promise<unknown>][] = [
    ['task-delay.json', (app) => app.declareTask<[number, number], number>('tasks.add').delay(1, 1)],
    ['task-countdown.json', (app) => app.sendTask('tasks.add', [2, 2], {}, { countdown: 10_000 })],
    ['task-eta.json', (app) => app.sendTask('tasks.add', [2, 2], {}, { eta: new Date(Date.UTC(2030, 0, 2, 3, 4, 5, 678)) })],
    ['task-expires.json', (app) => app.sendTask('tasks.add', [2, 2], {}, { expires: 300_000 })],
    ['task-expires-past.json', (app) => app.sendTask('tasks.add', [2, 2], {}, { expires: new Date(Date.now() - 60_000) })],
    ['task-priority-5.json', (app) => app.sendTask('tasks.add', [2, 2], {}, { priority: 5 })],
    ['task-priority-9.json', (app) => app.sendTask('tasks.add', [2, 2], {}, { priority: 9 })],
    ['task-custom-headers.json', (app) => app.sendTask('tasks.add', [2, 2], {}, { headers: { 'x-tenant': 'acme', 'x-trace': { span: 1 } } })],
    ['task-link.json', (app) => app.sendTask('tasks.print_task', ['something'], {}, { link: onSuccess })],
    ['task-link-error.json', (app) => app.sendTask('tasks.broken_task', [], {}, { linkError: onError })],
    ['task-kwargs-unicode.json', (app) => app.sendTask('tasks.add', ['héllo '], { y: 'wörld 世界 🚀' })],
    ['task-send-task-by-name.json', (app) => app.sendTask('tasks.add', [1, 2], {}, { taskId: '00000000-0000-4000-8000-000000000001' })],
    [
      'task-all-options.json',
      (app) =>
        app.sendTask('tasks.add', [2, 2], {}, {
          countdown: 10_000,
          expires: 300_000,
          priority: 5,
          headers: { 'x-tenant': 'acme' },
          link: new Signature({ task: 'tasks.on_task_success', args: ['add'] }),
          linkError: new Signature({ task: 'tasks.on_task_error', args: ['add'] }),
        }),
    ],
  ];

  for (const transport of ['redis', 'amqp'] as const) {
    it.each(cases)(`${transport}/%s`, async (file, send) => {
      const celery = fromWire(wireMessagesOf(loadFixture(`${transport}/${file}`))[0]!);
      const ours = await captureCeleriac(send);
      expect(normalise(ours)).toEqual(normalise(celery));
      expect(ours.headers.lang).toBe('js');
      if (celery.headers.eta && file === 'task-eta.json') {
        expect(Math.abs(parseCeleryIso(ours.headers.eta!) - parseCeleryIso(celery.headers.eta))).toBeLessThan(1);
      }
      if (file === 'task-send-task-by-name.json') expect(ours.headers.id).toBe(celery.headers.id);
      expect(ours.headers.root_id).toBe(ours.headers.id);
    });
  }

  it('the kombu envelope round-trips byte for byte through base64', () => {
    const wire = toWire(buildTaskMessage({ task: 'tasks.add', id: 'x', args: ['héllo 🚀'], kwargs: {} }));
    const env = toKombuEnvelope(wire, { exchange: '', routingKey: 'celery' }, 'tag-1');
    expect(env.properties.body_encoding).toBe('base64');
    expect(env.properties.delivery_info).toEqual({ exchange: '', routing_key: 'celery' });
    const back = fromKombuEnvelope(JSON.stringify(env));
    expect(back.wire.body).toBe(wire.body);
    expect(back.deliveryTag).toBe('tag-1');
  });
});
