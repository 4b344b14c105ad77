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

/**
 * The query options of one URL, checked against what its scheme accepts: an unknown key or a
 * value of the wrong form is a {@link ConfigError} `URL_INVALID` that names the key and the value,
 * shows the URL redacted and lists the accepted keys. Each driver's settings parser reads its
 * options through one of these, so `createApp` refuses a bad URL before anything connects.
 */
export class UrlOptions {
  private readonly params: URLSearchParams;

  constructor(
    private readonly url: ParsedUrl,
    readonly accepted: readonly string[],
  ) {
    this.params = url.url.searchParams;
    for (const key of new Set(this.params.keys())) {
      if (!accepted.includes(key)) {
        throw new ConfigError(
          `${url.redacted}: unknown option ${JSON.stringify(key)} in ${url.scheme}:// URL (accepted: ${accepted.length ? accepted.join(', ') : 'none'})`,
          { url: url.redacted, option: key, accepted },
          ErrorCodes.URL_INVALID,
        );
      }
    }
  }

  /** The text of an option, or undefined when absent. */
  string(name: string): string | undefined {
    return this.params.get(name) ?? undefined;
  }

  /** A whole number ≥ `min` (default 0); `fallback` when absent. */
  int(name: string, fallback: number, { min = 0, unit = '' }: { min?: number; unit?: string } = {}): number {
    const raw = this.params.get(name);
    if (raw === null) return fallback;
    const n = raw.trim() === '' ? NaN : Number(raw);
    if (!Number.isInteger(n) || n < min) {
      this.invalid(name, raw, `a whole number${unit ? ` of ${unit}` : ''}${min > 0 ? ` (≥ ${min})` : ''}`);
    }
    return n;
  }

  /** `true` or `false` (`1` / `0` too); `fallback` when absent. */
  bool(name: string, fallback = false): boolean {
    const raw = this.params.get(name);
    if (raw === null) return fallback;
    if (raw === 'true' || raw === '1') return true;
    if (raw === 'false' || raw === '0') return false;
    return this.invalid(name, raw, 'true or false');
  }

  /** Fail for option `name` with text `raw`: it must be `expected`. */
  invalid(name: string, raw: string, expected: string): never {
    throw new ConfigError(
      `${this.url.redacted}: option ${name} in ${this.url.scheme}:// URL must be ${expected}, got ${JSON.stringify(raw)} (accepted: ${this.accepted.join(', ')})`,
      { url: this.url.redacted, option: name, value: raw, accepted: this.accepted },
      ErrorCodes.URL_INVALID,
    );
  }
}
