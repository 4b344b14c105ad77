/**
 * Who may read and who may act. The model, like Jupyter's:
 *
 * - The dashboard binds 127.0.0.1 unless told otherwise; any other address
 *   needs a token (`--auth-token` / `CELERIAC_DASHBOARD_TOKEN`) or basic auth,
 *   or it refuses to start.
 * - On loopback with neither configured, reads are open (a developer's
 *   machine); with either configured, reads need it too.
 * - Actions always need an authenticated session. Without a configured token
 *   one is generated at start and printed in the URL (`/?token=…`); opening it
 *   sets an HttpOnly, SameSite=Strict session cookie and redirects to the clean URL.
 * - `Authorization: Bearer <token>` authenticates API clients; it needs no
 *   CSRF token (a browser never sends it by itself).
 * - A cookie or basic-auth request that changes state must carry the
 *   session's CSRF token as `X-CSRF-Token`, and its Origin (or Referer), when
 *   present, must match its Host.
 * - Bound to loopback, a Host header that is not a loopback name is refused
 *   (a DNS-rebinding page cannot read the open API).
 *
 * Sessions are stateless: the cookie is a nonce signed with a key derived from
 * the token, and its CSRF token another MAC of the nonce, so a dashboard
 * restarted with the same token keeps its sessions. Every comparison is constant-time.
 */
import { createHmac, randomBytes, timingSafeEqual, createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { ConfigError, ErrorCodes } from '@celeriac/core/spi';
import { DashboardError } from './errors.js';

export const SESSION_COOKIE = 'celeriac_dashboard_session';

export interface AuthOptions {
  readonly host: string;
  readonly token?: string | undefined;
  /** `user:pass`. */
  readonly basicAuth?: string | undefined;
}

export interface AuthConfig {
  /** The bearer token: the configured one, or one generated at start. */
  readonly token: string;
  readonly tokenConfigured: boolean;
  readonly basic: { readonly user: string; readonly pass: string } | null;
  /** Reads need authentication too (a token or basic auth was configured). */
  readonly readsNeedAuth: boolean;
  /** Bound to a loopback address: only loopback Host headers are served. */
  readonly loopback: boolean;
}

/** How a request authenticated: `none`, or by which credential (only cookie and basic need CSRF). */
export type AuthMethod = 'none' | 'bearer' | 'cookie' | 'basic';

export interface RequestAuth {
  readonly method: AuthMethod;
  /** The CSRF token of this session ('' when unauthenticated or by bearer). */
  readonly csrfToken: string;
}

export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1') return true;
  return isIP(h) === 4 && h.startsWith('127.');
}

/** Validate the auth options once, at start: a ConfigError says what to add. */
export function resolveAuth(options: AuthOptions): AuthConfig {
  const token = options.token?.trim() || undefined;
  if (token !== undefined && token.length < 16) throw new ConfigError('--auth-token must be at least 16 characters (e.g. `openssl rand -hex 24`)');
  let basic: AuthConfig['basic'] = null;
  if (options.basicAuth !== undefined) {
    const at = options.basicAuth.indexOf(':');
    if (at < 1 || at === options.basicAuth.length - 1) throw new ConfigError('--basic-auth must be user:password (both non-empty)');
    basic = { user: options.basicAuth.slice(0, at), pass: options.basicAuth.slice(at + 1) };
  }
  const loopback = isLoopback(options.host);
  if (!loopback && token === undefined && basic === null) {
    throw new ConfigError(
      `refusing to bind the dashboard to ${options.host} without authentication: anyone who can reach it could revoke tasks and stop workers. ` +
        'Give --auth-token (or CELERIAC_DASHBOARD_TOKEN) or --basic-auth user:password (or CELERIAC_DASHBOARD_BASIC_AUTH), or bind 127.0.0.1',
    );
  }
  return {
    token: token ?? randomBytes(24).toString('hex'),
    tokenConfigured: token !== undefined,
    basic,
    readsNeedAuth: token !== undefined || basic !== null,
    loopback,
  };
}

/** Equal, in time independent of where they differ (both sides hashed first, so lengths match too). */
export function safeEqual(a: string, b: string): boolean {
  const h = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(h(a), h(b)) && a.length === b.length;
}

export class Authenticator {
  private readonly key: Buffer;

  constructor(readonly config: AuthConfig) {
    this.key = createHmac('sha256', config.token).update('celeriac-dashboard-session').digest();
  }

  private mac(text: string): string {
    return createHmac('sha256', this.key).update(text).digest('base64url');
  }

  /** Whether `?token=` is this dashboard's token. */
  tokenMatches(given: string): boolean {
    return safeEqual(given, this.config.token);
  }

  /** A new session cookie value. */
  newSession(): string {
    const nonce = randomBytes(18).toString('base64url');
    return `${nonce}.${this.mac(`session.${nonce}`)}`;
  }

  private sessionCsrf(cookie: string | undefined): string | null {
    if (!cookie) return null;
    const [nonce, sig, extra] = cookie.split('.');
    if (!nonce || !sig || extra !== undefined) return null;
    return safeEqual(sig, this.mac(`session.${nonce}`)) ? this.mac(`csrf.${nonce}`) : null;
  }

  /** Authenticate a request from its headers and session cookie. */
  identify(headers: { authorization?: string | undefined }, cookie: string | undefined): RequestAuth {
    const authz = headers.authorization ?? '';
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(authz);
    if (bearer && this.tokenMatches(bearer[1]!)) return { method: 'bearer', csrfToken: '' };
    const basic = /^Basic\s+(\S+)\s*$/i.exec(authz);
    if (basic && this.config.basic) {
      const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
      const at = decoded.indexOf(':');
      const user = at < 0 ? decoded : decoded.slice(0, at);
      const pass = at < 0 ? '' : decoded.slice(at + 1);
      // Both compared, always: no early exit telling which half was wrong.
      const ok = [safeEqual(user, this.config.basic.user), safeEqual(pass, this.config.basic.pass)].every(Boolean);
      if (ok) return { method: 'basic', csrfToken: this.mac(`basic.${user}`) };
    }
    const csrf = this.sessionCsrf(cookie);
    if (csrf) return { method: 'cookie', csrfToken: csrf };
    return { method: 'none', csrfToken: '' };
  }

  /**
   * May this request change state? Throws AUTH_REQUIRED (401) without a
   * session; 403 (code AUTH_REQUIRED, `details.status`) for a missing or wrong
   * CSRF token or a cross-origin request.
   */
  checkAction(auth: RequestAuth, request: { csrf: string | undefined; origin: string | undefined; referer: string | undefined; host: string | undefined }): void {
    if (auth.method === 'none') {
      throw new DashboardError(ErrorCodes.AUTH_REQUIRED, 'actions need an authenticated session: open the URL the dashboard printed (…/?token=…), or send Authorization: Bearer <token>');
    }
    if (auth.method === 'bearer') return;
    if (!request.csrf || !safeEqual(request.csrf, auth.csrfToken)) {
      throw new DashboardError(ErrorCodes.AUTH_REQUIRED, 'missing or wrong X-CSRF-Token header (reload the page)', { status: 403 });
    }
    const from = request.origin ?? request.referer;
    if (from !== undefined && from !== 'null') {
      let host: string | null = null;
      try {
        host = new URL(from).host;
      } catch {
        host = null;
      }
      if (!host || !request.host || host.toLowerCase() !== request.host.toLowerCase()) {
        throw new DashboardError(ErrorCodes.AUTH_REQUIRED, 'cross-origin request refused (Origin/Referer does not match Host)', { status: 403 });
      }
    } else if (from === 'null') {
      throw new DashboardError(ErrorCodes.AUTH_REQUIRED, 'cross-origin request refused (Origin: null)', { status: 403 });
    }
  }

  /** Bound to loopback, only loopback names are served (DNS rebinding). */
  hostAllowed(host: string | undefined): boolean {
    if (!this.config.loopback) return true;
    if (!host) return false;
    const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.split(':')[0]!;
    return isLoopback(name);
  }
}
