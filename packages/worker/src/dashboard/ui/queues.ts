/**
 * Queues: depth and rate per queue, delayed and dead-letter counts; signed
 * in, purge (confirmed first). Below, the dead letters — why each was parked,
 * its task and arguments, the raw message — with requeue and discard, one by
 * one or for the selected ones.
 */
import type { DeadLetterView, QueuesView } from '../model.js';
import { html, queryString, type SafeHtml } from './html.js';
import type { MainSpec } from './layout.js';
import { queueTable } from './overview.js';
import { alertBox, button, mono, num, signInNote, time } from './parts.js';

export interface DeadLetterPageView {
  readonly total: number;
  readonly items: readonly DeadLetterView[];
  readonly offset: number;
  readonly limit: number;
}

function deadRow(d: DeadLetterView, authenticated: boolean): SafeHtml {
  const acts = authenticated
    ? html`<td class="select"><input type="checkbox" name="dead-ids" value="${d.id}" aria-label="select ${d.id}"></td>`
    : '';
  const buttons = authenticated
    ? html`<td><div class="actions">${button({ action: 'requeue', label: 'Requeue', data: { ids: d.id } })} ${button({ action: 'discard', label: 'Discard', data: { ids: d.id }, confirm: `Discard dead letter ${d.id}? The message is deleted.`, danger: true })}</div></td>`
    : '';
  return html`<tr data-dead-id="${d.id}">${acts}
<td class="mono">${d.id}</td>
<td class="mono">${d.taskName ?? '—'}</td>
<td class="mono">${d.queue}</td>
<td><code class="reason">${d.reason}</code></td>
<td>${time(d.failedAt)}</td>
<td class="num">${d.deliveryCount}</td>
<td><details><summary>show</summary><dl class="facts"><dt>args</dt><dd>${mono(d.args)}</dd><dt>kwargs</dt><dd>${mono(d.kwargs)}</dd></dl>${d.traceback ? html`<pre class="repr traceback">${d.traceback}</pre>` : ''}<pre class="repr">${d.message}</pre></details></td>
${buttons}</tr>`;
}

function deadLetters(page: DeadLetterPageView | null, authenticated: boolean, error?: string): SafeHtml {
  if (error) return alertBox('error', 'Dead letters unavailable:', error);
  if (!page) return html``;
  if (!page.items.length) return html`<p class="muted" data-testid="no-dead-letters">No dead letters.</p>`;
  const bulk = authenticated
    ? html`<div class="bulk">${button({ action: 'requeue-selected', label: 'Requeue selected' })} ${button({ action: 'discard-selected', label: 'Discard selected', confirm: 'Discard the selected dead letters? The messages are deleted.', danger: true })}</div>`
    : '';
  const prev = page.offset > 0 ? html`<a class="btn" rel="prev" href="/queues${queryString({ offset: Math.max(0, page.offset - page.limit) })}#dead-letters">← Previous</a>` : '';
  const next = page.offset + page.limit < page.total ? html`<a class="btn" rel="next" href="/queues${queryString({ offset: page.offset + page.limit })}#dead-letters">Next →</a>` : '';
  return html`${bulk}<table class="grid dead-letters"><thead><tr>${authenticated ? html`<th class="select"><input type="checkbox" data-select-all="dead-ids" aria-label="select all"></th>` : ''}<th>Id</th><th>Task</th><th>Queue</th><th>Reason</th><th>Parked</th><th class="num">Deliveries</th><th>Message</th>${authenticated ? html`<th>Actions</th>` : ''}</tr></thead>
<tbody>${page.items.map((d) => deadRow(d, authenticated))}</tbody></table>
<nav class="pager" aria-label="pages"><span>${page.offset + 1}–${page.offset + page.items.length} of ${page.total}</span> ${prev} ${next}</nav>`;
}

export interface QueuesPageInput {
  readonly queues: QueuesView | null;
  readonly queuesError?: string;
  readonly dead: DeadLetterPageView | null;
  readonly deadError?: string;
}

export function queuesMain(input: QueuesPageInput, authenticated: boolean): MainSpec {
  const v = input.queues;
  const body = html`<h1>Queues</h1>
${input.queuesError ? alertBox('error', 'Queue depths unavailable:', input.queuesError) : ''}
${authenticated ? '' : signInNote()}
<section class="stats">
<div class="stat"><div class="stat-value">${num(v?.delayed)}</div><div class="stat-label">delayed (countdown, eta, retry)</div></div>
<div class="stat${(v?.deadLetters ?? 0) > 0 ? ' stat-warn' : ''}"><div class="stat-value" data-testid="dead-letter-count">${num(v?.deadLetters)}</div><div class="stat-label">dead letters</div></div>
</section>
${v ? html`<p class="muted small">Sampled ${time(v.sampledAt)} UTC.</p>` : ''}
${queueTable(v, authenticated)}
<h2 id="dead-letters">Dead letters</h2>
${deadLetters(input.dead, authenticated, input.deadError)}`;
  return { title: 'Queues', body, live: ['queues'] };
}
