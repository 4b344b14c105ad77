/**
 * Overview: workers online, failures in the last hour, tasks per state, the
 * succeeded/failed tasks-per-second chart (uPlot, drawn by the client script
 * from a JSON block; without JS the totals still read) and queue depths.
 */
import { TASK_STATES, type OverviewView, type QueuesView } from '../model.js';
import { html, jsonScript, type SafeHtml } from './html.js';
import type { MainSpec } from './layout.js';
import { button, chip, num } from './parts.js';

/** The chart's series as the client script reads them: seconds since epoch and tasks per second. */
export interface ChartData {
  readonly t: number[];
  readonly succeeded: number[];
  readonly failed: number[];
  readonly bucketS: number;
}

export function chartData(points: OverviewView['throughput']): ChartData {
  // The bucket is the step between points (the service's default is one minute).
  const bucketMs = points.length > 1 ? points[1]!.at - points[0]!.at : 60_000;
  const bucketS = bucketMs > 0 ? bucketMs / 1000 : 60;
  return {
    t: points.map((p) => Math.floor(p.at / 1000)),
    succeeded: points.map((p) => p.succeeded / bucketS),
    failed: points.map((p) => p.failed / bucketS),
    bucketS,
  };
}

function stat(label: string, value: SafeHtml, testid: string, tone = ''): SafeHtml {
  return html`<div class="stat${tone ? ` stat-${tone}` : ''}" data-testid="${testid}"><div class="stat-value">${value}</div><div class="stat-label">${label}</div></div>`;
}

/** The queue depth table, shared with the queues page (which adds a purge button per queue). */
export function queueTable(view: QueuesView | null, purge = false): SafeHtml {
  if (!view) return html`<p class="muted">Queue depths are unavailable while the broker does not answer.</p>`;
  if (view.queues.length === 0) return html`<p class="muted">No queues known yet (a queue shows up once a worker consumes from it).</p>`;
  const rows = view.queues.map(
    (q) => html`<tr data-queue="${q.name}"><td class="mono">${q.name}</td><td class="num">${num(q.ready)}</td><td class="num">${num(q.unacked)}</td><td class="num">${rate(q.readyRate)}</td>${purge ? html`<td>${purgeButton(q.name)}</td>` : ''}</tr>`,
  );
  return html`<table class="grid queues"><thead><tr><th>Queue</th><th class="num">Ready</th><th class="num">Unacked</th><th class="num">Ready change</th>${purge ? html`<th>Actions</th>` : ''}</tr></thead><tbody>${rows}</tbody></table>`;
}

function purgeButton(queue: string): SafeHtml {
  return button({ action: 'purge', label: 'Purge', data: { queue }, confirm: `Purge queue ${queue}? Every ready message in it is deleted; this cannot be undone.`, danger: true });
}

/** A rate per second, signed (negative: draining). */
export function rate(r: number | null): SafeHtml {
  if (r === null || !Number.isFinite(r)) return html`<span class="muted">—</span>`;
  const text = `${r > 0 ? '+' : ''}${Math.abs(r) < 10 ? r.toFixed(2) : r.toFixed(0)}/s`;
  return html`<span class="${r > 0 ? 'rate-up' : r < 0 ? 'rate-down' : ''}">${text}</span>`;
}

export function overviewMain(view: OverviewView): MainSpec {
  const data = chartData(view.throughput);
  const succeeded = view.throughput.reduce((s, p) => s + p.succeeded, 0);
  const failed = view.throughput.reduce((s, p) => s + p.failed, 0);
  const states = TASK_STATES.filter((s) => (view.stateCounts[s] ?? 0) > 0).map(
    (s) => html`<a class="state-count" href="/tasks?state=${s}">${chip(s)} ${num(view.stateCounts[s] ?? 0)}</a>`,
  );
  const body = html`<h1>Overview</h1>
<section class="stats">
${stat('workers online', html`<span data-testid="workers-online">${view.workersOnline}</span> <span class="muted">of ${view.workers}</span>`, 'stat-workers', view.workersOnline > 0 ? 'ok' : 'bad')}
${stat('failures in the last hour', html`<a href="/tasks?state=FAILURE">${view.failuresLastHour}</a>`, 'stat-failures', view.failuresLastHour > 0 ? 'bad' : '')}
${stat('dead letters', html`<a href="/queues#dead-letters">${num(view.queues?.deadLetters)}</a>`, 'stat-dead', (view.queues?.deadLetters ?? 0) > 0 ? 'warn' : '')}
${stat('delayed (countdown, eta, retry)', num(view.queues?.delayed), 'stat-delayed')}
</section>
<section>
<h2>Tasks per second, last hour</h2>
<div id="throughput-chart" class="chart" aria-label="succeeded and failed tasks per second"></div>
${jsonScript('throughput-data', data)}
<p class="muted chart-totals">Last hour: <span class="legend-ok">${succeeded} succeeded</span>, <span class="legend-bad">${failed} failed</span>.</p>
</section>
<section>
<h2>Tasks by state</h2>
${states.length ? html`<p class="state-counts">${states}</p>` : html`<p class="muted">No tasks in the history yet.</p>`}
</section>
<section>
<h2>Queues</h2>
${queueTable(view.queues)}
</section>`;
  return { title: 'Overview', body, live: ['task', 'worker', 'queues'] };
}
