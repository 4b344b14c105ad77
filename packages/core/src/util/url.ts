import { ConfigError, ErrorCodes } from '../errors.js';

/** A broker or backend URL, parsed once. `redacted` is the only form that may be logged. */
export interface ParsedUrl {
  readonly scheme: string;
  readonly url: URL;
  /** The URL with any password replaced by `***`: safe for logs and error messages. */
  readonly redacted: string;
}

/** Replace the password of a URL-like string by `***` without failing on malformed input. */
export function redactUrl(raw: string): string {
  try {
    const u = new URL(raw);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    // Not parseable: still hide anything that looks like `user:secret@`.
    return raw.replace(/\/\/([^/@:]*):[^/@]*@/, '//$1:***@');
  }
}

/**
 * Parse a broker/backend URL and check its scheme against the accepted list.
 * Errors name the option, show the URL redacted, and list what is accepted.
 */
export function parseUrl(option: string, raw: string, accepted: readonly string[]): ParsedUrl {
  const redacted = redactUrl(raw);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(
      `${option}: malformed URL ${JSON.stringify(redacted)}; expected <scheme>://..., with scheme one of: ${accepted.join(', ')}`,
      { option, url: redacted, accepted },
      ErrorCodes.URL_INVALID,
    );
  }
  const scheme = url.protocol.replace(/:$/, '');
  if (!accepted.includes(scheme)) {
    throw new ConfigError(
      `${option}: unsupported URL scheme ${JSON.stringify(scheme)} in ${JSON.stringify(redacted)}; accepted schemes: ${accepted.join(', ')}`,
      { option, url: redacted, scheme, accepted },
      ErrorCodes.URL_INVALID,
    );
  }
  return Object.freeze({ scheme, url, redacted });
}
