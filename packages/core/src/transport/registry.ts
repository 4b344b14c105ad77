import type { ParsedUrl } from '../util/url.js';
import type { Transport } from './transport.js';
import type { ResultBackend } from '../backend/backend.js';
import { MemoryTransport } from './memory/memory-transport.js';
import { MemoryBackend } from '../backend/memory/memory-backend.js';

/**
 * URL scheme → implementation. Factories are async so a transport's client
 * library (ioredis, amqplib, better-sqlite3) is loaded only when its scheme is
 * used. A scheme is listed here only once it works end to end.
 */
export const TRANSPORT_FACTORIES: Readonly<Record<string, (url: ParsedUrl) => Promise<Transport>>> = Object.freeze({
  memory: async (url) => new MemoryTransport(memoryName(url)),
});

export const BACKEND_FACTORIES: Readonly<Record<string, (url: ParsedUrl) => Promise<ResultBackend>>> = Object.freeze({
  memory: async (url) => new MemoryBackend(memoryName(url)),
});

/** `memory://` and `memory://name` name an in-process broker/store; the empty name is `default`. */
function memoryName(url: ParsedUrl): string {
  return url.url.host || url.url.pathname.replace(/^\/+/, '') || 'default';
}
