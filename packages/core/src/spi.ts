/**
 * @celeriac/core/spi — what the worker, beat and plugins build on: the
 * transport and result-backend seams and their implementations, drivers, the
 * Celery protocol, canvas application, remote control and events. Everything in
 * the user API (`@celeriac/core`) is here too. Less stable than the user API.
 */
export * from './index.js';
export { createApp, CeleriacApp, type RegisteredHandles, type DeclaredHandle } from './app/app.js';
export { type AppOptions, type ResolvedConfig, configSchema, ENV_BROKER_URL, ENV_RESULT_BACKEND, ENV_BEAT_STORE, BEAT_STORE_SCHEMES, DEFAULT_BROKER_URL } from './app/config.js';
export { TaskRegistry, type RegisteredTask, resolveCallArgs, checkResult } from './app/registry.js';
export {
  BeatRegistry,
  parseBeatEntry,
  parseDuration,
  beatEntrySchema,
  type BeatEntry,
  type BeatEntryInput,
  type ScheduleSpec,
} from './app/beat-entries.js';
export * from './errors.js';

export { task } from './task/decorator.js';
export type { TaskHandle, RemoteTaskHandle } from './task/task.js';
export type { TaskOptions, ResolvedTaskOptions, ApplyOptions, CallOptions, DeduplicateOptions, MessageOptions, SignatureLike } from './task/options.js';
export type { Sent } from './result/sent.js';
export { currentTask, requestRetry, contextStorage, type TaskContext, type TaskLogger, type RetryOptions } from './task/context.js';
export type { PrefixOf, DropPrefix, SuffixOf, DropSuffix } from './task/types.js';

export { Signature, signatureList, type SignatureOptions } from './canvas/signature.js';
export { applyOptionsOf, signatureOptionsOf } from './canvas/apply.js';
export { applyCanvas, sendCanvas, prepare as prepareCanvas, chainSteps, finalTaskIds, type CanvasContext } from './canvas/run.js';
export type { CanvasHost } from './canvas/host.js';
export { continueAfter, type Continuation, type OutcomeStep, type Ending, type EndedMessage } from './canvas/continue.js';
export { CELERY_EXCEPTIONS, resultMeta, storableResult } from './result/records.js';
export { messageInitOf, resendOptionsOf, PROTOCOL_HEADERS, type SendContext } from './task/wire-options.js';
export { chain, group, chord, xmap, xstarmap, chunks, type GroupSignature } from './canvas/canvas.js';
export { GroupResult } from './result/group-result.js';
export { AsyncResult, type GetOptions, type ResultHost } from './result/async-result.js';
export { pollStates, type StateUpdate, type StatesOptions } from './result/states.js';

export * from './protocol/schema.js';
export { buildTaskMessage, toWire, fromWire, wireSize, type WireMessage, type TaskMessageInit } from './protocol/message.js';
export { toKombuEnvelope, fromKombuEnvelope, type KombuEnvelope } from './protocol/kombu.js';
export { encodeException, decodeException, tracebackOf, truncate, safeString, MAX_ERROR_TEXT } from './protocol/exceptions.js';
export { jsonDepth, MAX_JSON_DEPTH } from './protocol/message.js';
export { readKombuEnvelope, UNDECODABLE } from './protocol/kombu.js';
export { pyRepr, pyTupleRepr } from './protocol/repr.js';

export type {
  Transport,
  TransportCapabilities,
  Delivery,
  Consumer,
  PublishOptions,
  DeadLetterRecord,
  DeadLetterPage,
} from './transport/transport.js';
export type { ResultBackend, BackendCapabilities, StoreOptions, WaitOptions, ChordPart, FailedTaskRecord, FailedRetention } from './backend/backend.js';
export { MemoryTransport } from './transport/memory/memory-transport.js';
export { MemoryBackend } from './backend/memory/memory-backend.js';
export { SqliteTransport, type SqliteTransportOptions } from './transport/sqlite/sqlite-transport.js';
export { SqliteBackend } from './backend/sqlite/sqlite-backend.js';
export { RedisTransport, type RedisTransportOptions } from './transport/redis/redis-transport.js';
export { KEYS as REDIS_KEYS, queueKey as redisQueueKey } from './transport/redis/keys.js';
export { RedisBackend } from './backend/redis/redis-backend.js';
export { redisSettings, REDIS_URL_OPTIONS, type RedisSettings } from './drivers/redis/settings.js';
export { connectRedis } from './drivers/redis/connection.js';
export { AmqpTransport, DEAD_LETTERS as AMQP_DEAD_LETTERS, type AmqpTransportOptions } from './transport/amqp/amqp-transport.js';
export type { QueueDeclaration } from './transport/amqp/queue-declaration.js';
export { amqpSettings, AMQP_URL_OPTIONS, type AmqpSettings } from './drivers/amqp/settings.js';
export { RpcBackend, type RpcBackendOptions } from './backend/rpc/rpc-backend.js';
export { RELEASE_LOCK as REDIS_RELEASE_LOCK_SCRIPT } from './drivers/redis/scripts.js';
export { DEFAULT_SQLITE_URL, openDb, sqlitePath, sqliteSettings, type Db, type SqliteSettings } from './drivers/sqlite/db.js';
export { TRANSPORT_FACTORIES, BACKEND_FACTORIES, REPLY_BACKENDS, URL_SETTINGS, type FactoryContext } from './transport/registry.js';

export { Control, type BroadcastOptions, type ControlReply, type ControlCommand } from './control/control.js';
export { EventDispatcher, listenEvents, type CeleryEvent } from './control/events.js';
export { LamportClock } from './control/clock.js';
export { PIDBOX, PIDBOX_REPLY, EVENTS, bindingMatches, type Notice, type NoticeExchange, type NotifyOptions, type ListenOptions } from './transport/notice.js';
export { redactUrl, parseUrl, type ParsedUrl } from './util/url.js';
export { toCeleryIso, toNaiveUtcIso, parseCeleryIso } from './util/time.js';
export { newId } from './util/ids.js';
export { hasFailedRegistry, requeueFailed } from './app/failed-registry.js';
