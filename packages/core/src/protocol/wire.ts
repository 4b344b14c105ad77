/**
 * A message as it crosses the transport seam: the body is still JSON text.
 * Transports store and carry this; only core reads inside it.
 */
export interface WireMessage {
  readonly body: string;
  readonly contentType: string;
  readonly contentEncoding: string;
  readonly headers: Readonly<Record<string, unknown>>;
  readonly properties: Readonly<Record<string, unknown>>;
}

/**
 * Content type a transport gives a message whose envelope could not be read
 * (its reason in `properties.error`), so the worker dead-letters it with the
 * reason instead of the transport stopping on it.
 */
export const UNDECODABLE = 'application/x-celeriac-undecodable';
