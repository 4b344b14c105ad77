/**
 * The page shell: head, nav bar, the broker banner, the flash area where
 * actions' results appear, the confirmation dialog, and `<main>`. A request
 * with `X-Partial: 1` gets `<main>` alone — the client script swaps it in
 * on live events, so a page updates without a reload (and without JS it is
 * an ordinary page).
 */
import type { BrokerStatus } from '../model.js';
import { html, type SafeHtml } from './html.js';

export type PageName = 'overview' | 'tasks' | 'workers' | 'queues' | 'schedules';

const NAV: readonly (readonly [PageName, string, string])[] = [
  ['overview', '/', 'Overview'],
  ['tasks', '/tasks', 'Tasks'],
  ['workers', '/workers', 'Workers'],
  ['queues', '/queues', 'Queues'],
  ['schedules', '/schedules', 'Schedules'],
];

/** Event kinds (LiveEvent['kind']) after which a page's `<main>` is fetched again. */
export type LiveKind = 'task' | 'worker' | 'queues';

export interface MainSpec {
  readonly title: string;
  readonly body: SafeHtml;
  /** Which live events make this page refresh; none: it never refreshes by itself. */
  readonly live?: readonly LiveKind[];
  /** Only task events about this id refresh the page (the detail page). */
  readonly liveTaskId?: string;
  /**
   * Also refresh this often while the tab is visible: for what changes without an
   * event (heartbeat ages, a pool resized by a control command).
   */
  readonly pollMs?: number;
}

export interface PageSpec extends MainSpec {
  readonly active: PageName | null;
  readonly csrfToken: string;
  readonly broker: BrokerStatus;
  /** Extra scripts (served assets) the page needs, before the client script. */
  readonly scripts?: readonly string[];
  readonly styles?: readonly string[];
}

/** The `<main>` element: what a partial request returns and the client swaps in. */
export function mainElement(spec: MainSpec): SafeHtml {
  return html`<main id="main" data-title="${spec.title}" data-live="${(spec.live ?? []).join(' ')}"${spec.liveTaskId ? html` data-task-id="${spec.liveTaskId}"` : ''}${spec.pollMs ? html` data-poll-ms="${spec.pollMs}"` : ''}>
${spec.body}
</main>`;
}

/** The broker banner's text; the client script rewrites it from `broker` live events. */
export function brokerBanner(broker: BrokerStatus): SafeHtml {
  const text = broker.reachable ? '' : `broker unreachable: ${broker.error ?? 'no answer'}; history stays browsable`;
  return html`<div id="broker-banner" class="banner" role="alert"${broker.reachable ? html` hidden` : ''}>${text}</div>`;
}

/** A whole page. */
export function page(spec: PageSpec): SafeHtml {
  const nav = NAV.map(
    ([name, href, label]) => html`<a href="${href}"${spec.active === name ? html` class="active" aria-current="page"` : ''}>${label}</a>`,
  );
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="${spec.csrfToken}">
<title>${spec.title} · celeriac</title>
<link rel="stylesheet" href="/assets/dashboard.css">
${(spec.styles ?? []).map((href) => html`<link rel="stylesheet" href="${href}">`)}
</head>
<body>
<header class="topbar">
<a class="brand" href="/">celeriac</a>
<nav>${nav}</nav>
<span id="live-status" class="live-status" title="live updates">●</span>
</header>
${brokerBanner(spec.broker)}
<div id="flash" class="flash" role="status" aria-live="polite"></div>
${mainElement(spec)}
<dialog id="confirm-dialog">
<form method="dialog">
<p id="confirm-text"></p>
<div class="dialog-buttons"><button value="cancel" class="btn">Cancel</button> <button value="ok" class="btn btn-danger" id="confirm-ok">Confirm</button></div>
</form>
</dialog>
${(spec.scripts ?? []).map((src) => html`<script src="${src}"></script>`)}
<script src="/assets/dashboard.js"></script>
</body>
</html>`;
}
