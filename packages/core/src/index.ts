/**
 * @celeriac/core — the user API: define tasks, send them, await results,
 * compose canvases, and the errors they throw. Transports, result backends,
 * the protocol and the other pieces a worker or a plugin builds on are the SPI,
 * at `@celeriac/core/spi`.
 */
export { createApp, CeleriacApp, type RegisteredHandles, type DeclaredHandle } from './app/app.js';
export { type AppOptions, type ResolvedConfig, ENV_BROKER_URL, ENV_RESULT_BACKEND, DEFAULT_BROKER_URL } from './app/config.js';
export type { BeatEntryInput, ScheduleSpec } from './app/beat-entries.js';
export * from './errors.js';

export { task } from './task/decorator.js';
export type { TaskHandle, RemoteTaskHandle } from './task/task.js';
export type { TaskOptions, ResolvedTaskOptions, ApplyOptions, CallOptions, DeduplicateOptions, SignatureLike } from './task/options.js';
export type { StandardSchemaV1 } from './task/options.js';
export { currentTask, type TaskContext, type TaskLogger, type RetryOptions } from './task/context.js';
export type { PrefixOf, DropPrefix, SuffixOf, DropSuffix, AnyTaskFn } from './task/types.js';

export { Signature, type SignatureOptions } from './canvas/signature.js';
export { chain, group, chord, xmap, xstarmap, chunks, type GroupSignature } from './canvas/canvas.js';
export type { Sent } from './result/sent.js';
export { AsyncResult, type GetOptions } from './result/async-result.js';
export type { StateUpdate, StatesOptions } from './result/states.js';
export { GroupResult } from './result/group-result.js';
export { STATES, READY_STATES, type TaskState, type ResultMeta, type EncodedException } from './protocol/schema.js';
