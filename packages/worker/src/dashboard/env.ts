/**
 * What the HTTP layer (`server.ts`) hands to every route, pages included:
 * the session's CSRF token (pages put it in a `<meta name="csrf-token">`
 * and send it back as `X-CSRF-Token` on every POST) and whether the request
 * is authenticated (pages hide action buttons when it is not).
 */
export interface DashboardEnv {
  Variables: {
    csrfToken: string;
    authenticated: boolean;
  };
}
