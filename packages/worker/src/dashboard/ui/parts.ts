/**
 * Small pieces every page uses: times, durations, state chips, the
 * "sign in to act" note and action buttons. Buttons carry what they act on
 * in `data-*` attributes (escaped) and the client script reads them on click —
 * no inline event handlers, so nothing from a task ever becomes code.
 */
import { html, type HtmlValue, type SafeHtml } from './html.js';

/** `2026-12-06 20:55:17`, in UTC as the search form reads times (a tooltip says so), inside a `<time>`. */
export function time(ms: number | null | undefined): SafeHtml {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return html`<span class="muted">—</span>`;
  const iso = new Date(ms).toISOString();
  return html`<time datetime="${iso}" title="UTC">${iso.slice(0, 19).replace('T', ' ')}</time>`;
}

/** Seconds as `850 ms`, `3.2 s`, `4 min 10 s`, `2 h 5 min`. */
export function duration(seconds: number | null | undefined): SafeHtml {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return html`<span class="muted">—</span>`;
  return html`${durationText(seconds)}`;
}

export function durationText(seconds: number): string {
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`;
}

/** A number, or a dash when unknown. */
export function num(n: number | null | undefined): SafeHtml {
  return n === null || n === undefined ? html`<span class="muted">—</span>` : html`${n.toLocaleString('en-US')}`;
}

/** Colour class of each state a chip may show (task states and worker states). */
const CHIP_CLASS: Readonly<Record<string, string>> = {
  SUCCESS: 'ok',
  running: 'ok',
  FAILURE: 'bad',
  REJECTED: 'bad',
  offline: 'bad',
  REVOKED: 'warn',
  RETRY: 'warn',
  suspended: 'warn',
  STARTED: 'info',
  RECEIVED: 'info',
  SENT: 'idle',
  PENDING: 'idle',
};

/** A coloured state label; the text is the state itself, so it reads without colour too. */
export function chip(state: string): SafeHtml {
  return html`<span class="chip chip-${CHIP_CLASS[state] ?? 'idle'}">${state}</span>`;
}

/** Monospace text (ids, reprs), or a dash. */
export function mono(text: string | null | undefined): SafeHtml {
  return text === null || text === undefined || text === '' ? html`<span class="muted">—</span>` : html`<code>${text}</code>`;
}

/** A link to a task's detail page, showing its id in monospace. */
export function taskLink(id: string, label?: string | null): SafeHtml {
  return html`<a class="mono" href="/tasks/${encodeURIComponent(id)}">${label ?? id}</a>`;
}

/** What a page shows instead of action buttons when the request is not authenticated. */
export function signInNote(): SafeHtml {
  return html`<p class="note" data-testid="sign-in-note">Read-only view: to act (revoke, purge, control workers), open the URL <code>celeriac dashboard</code> printed when it started — it carries <code>?token=…</code> and signs this browser in.</p>`;
}

export interface ButtonSpec {
  /** The client-side action name (see client.ts). */
  readonly action: string;
  readonly label: string;
  /** Extra `data-*` attributes: the target (ids, worker, queue) and options. */
  readonly data?: Readonly<Record<string, string | number | boolean>>;
  /** When set, the client asks this question in a dialog before acting. */
  readonly confirm?: string;
  readonly danger?: boolean;
}

/** An action button; what it acts on travels in escaped data attributes. */
export function button(spec: ButtonSpec): SafeHtml {
  const data: HtmlValue[] = Object.entries(spec.data ?? {}).map(([k, v]) => html` data-${k.replace(/[^a-z0-9-]/g, '')}="${String(v)}"`);
  return html`<button type="button" class="btn${spec.danger ? ' btn-danger' : ''}" data-action="${spec.action}"${data}${spec.confirm ? html` data-confirm="${spec.confirm}"` : ''}>${spec.label}</button>`;
}

/** A boxed message on a page (an error the page could not avoid, a 400's reason). */
export function alertBox(kind: 'error' | 'info', title: string, text: string): SafeHtml {
  return html`<div class="alert alert-${kind}" role="alert"><strong>${title}</strong> ${text}</div>`;
}
