/**
 * Workers: every worker the fleet monitor has seen (celeriac and Python),
 * its state, heartbeat age, pool and counts, queues and registered tasks;
 * signed in, the remote-control actions. The page refreshes on worker events,
 * so a worker that stops heartbeating turns "offline" in front of the person.
 */
import type { WorkerView } from '../model.js';
import { html, type SafeHtml } from './html.js';
import type { MainSpec } from './layout.js';
import { alertBox, button, chip, durationText, num, signInNote } from './parts.js';

/** Heartbeat ages and counts change without a state change (no live event): the page re-reads itself this often. */
const WORKERS_POLL_MS = 5000;

function age(s: number | null): SafeHtml {
  return s === null ? html`<span class="muted">never</span>` : html`${durationText(s)} ago`;
}

function list(items: readonly string[], what: string): SafeHtml {
  if (!items.length) return html`<span class="muted">—</span>`;
  if (items.length <= 3) return html`<span class="mono">${items.join(', ')}</span>`;
  return html`<details><summary>${items.length} ${what}</summary><ul class="mono plain">${items.map((i) => html`<li>${i}</li>`)}</ul></details>`;
}

function actions(w: WorkerView): SafeHtml {
  if (w.state === 'offline') return html`<span class="muted">—</span>`;
  const host = { worker: w.hostname };
  const rateForm = html`<span class="rate-limit" data-worker="${w.hostname}">
<select name="task_name" aria-label="task to rate-limit">${w.registered.map((t) => html`<option value="${t}">${t}</option>`)}</select>
<input name="rate_limit" size="6" placeholder="10/m" aria-label="rate limit">
${button({ action: 'worker', label: 'Set rate', data: { ...host, command: 'rate_limit' } })}
</span>`;
  return html`<div class="actions">
${w.state === 'suspended' ? button({ action: 'worker', label: 'Resume', data: { ...host, command: 'resume' } }) : button({ action: 'worker', label: 'Suspend', data: { ...host, command: 'suspend' }, confirm: `Stop ${w.hostname} consuming new tasks?` })}
${button({ action: 'worker', label: 'Pool +1', data: { ...host, command: 'pool_grow' } })}
${button({ action: 'worker', label: 'Pool −1', data: { ...host, command: 'pool_shrink' } })}
${button({ action: 'worker', label: 'Shut down', data: { ...host, command: 'shutdown' }, confirm: `Shut down worker ${w.hostname}? It finishes its running tasks (warm shutdown) and exits.`, danger: true })}
</div>
${w.registered.length ? rateForm : ''}`;
}

function row(w: WorkerView, authenticated: boolean): SafeHtml {
  return html`<tr data-worker="${w.hostname}" data-state="${w.state}">
<td class="mono"><a href="/tasks?worker=${encodeURIComponent(w.hostname)}">${w.hostname}</a><div class="muted small">${w.software ?? ''}</div></td>
<td data-testid="worker-state">${chip(w.state)}</td>
<td>${age(w.heartbeatAgoS)}</td>
<td class="mono">${w.pool ?? '—'}</td>
<td class="num">${num(w.concurrency)}</td>
<td class="num">${num(w.active)}</td>
<td class="num">${num(w.processed)}</td>
<td>${list(w.queues, 'queues')}</td>
<td>${list(w.registered, 'tasks')}</td>
<td class="mono small">${w.loadavg ? w.loadavg.map((l) => l.toFixed(2)).join(' ') : '—'}</td>
${authenticated ? html`<td>${actions(w)}</td>` : ''}
</tr>`;
}

/** `error` is set when the worker list could not be read (the broker is down and nothing is known yet). */
export function workersMain(workers: readonly WorkerView[], authenticated: boolean, error?: string): MainSpec {
  const online = workers.filter((w) => w.state !== 'offline').length;
  const table = workers.length
    ? html`<table class="grid workers"><thead><tr><th>Worker</th><th>State</th><th>Heartbeat</th><th>Pool</th><th class="num">Concurrency</th><th class="num">Active</th><th class="num">Processed</th><th>Queues</th><th>Registered</th><th>Load</th>${authenticated ? html`<th>Actions</th>` : ''}</tr></thead><tbody>${workers.map((w) => row(w, authenticated))}</tbody></table>`
    : html`<p class="muted" data-testid="no-workers">No worker seen yet. Workers appear here once they send a heartbeat (start them with <code>-E</code> / events enabled).</p>`;
  const body = html`<h1>Workers <span class="muted small" data-testid="workers-summary">${online} online of ${workers.length}</span></h1>
${error ? alertBox('error', 'Workers unavailable:', error) : ''}
${authenticated ? '' : signInNote()}
${table}`;
  return { title: 'Workers', body, live: ['worker'], pollMs: WORKERS_POLL_MS };
}
