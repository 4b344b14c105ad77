/**
 * Tasks: the search form (a plain GET form, so a search is a URL one can
 * share), the result table with sortable headers and pagination, and —
 * when signed in — checkboxes and a bulk revoke.
 */
import { TASK_STATES, type TaskPage, type TaskRecord, type TaskSortKey } from '../model.js';
import { html, queryString, type SafeHtml } from './html.js';
import type { MainSpec } from './layout.js';
import { alertBox, button, chip, duration, signInNote, taskLink, time } from './parts.js';

/** The search form's fields, as the URL carries them (strings, unvalidated). */
export const FILTER_FIELDS = ['id', 'name', 'state', 'worker', 'queue', 'from', 'to', 'text'] as const;
export type FilterParams = Partial<Record<(typeof FILTER_FIELDS)[number] | 'sort' | 'order' | 'offset' | 'limit', string>>;

const COLUMNS: readonly (readonly [string, TaskSortKey | null])[] = [
  ['ID', null],
  ['Name', 'name'],
  ['State', 'state'],
  ['Worker', 'worker'],
  ['Queue', 'queue'],
  ['Updated', 'updatedAt'],
  ['Runtime', 'runtime'],
];

function field(name: keyof FilterParams, label: string, params: FilterParams, placeholder = '', type = 'text'): SafeHtml {
  return html`<label>${label}<input type="${type}" name="${name}" value="${params[name] ?? ''}" placeholder="${placeholder}"></label>`;
}

function searchForm(params: FilterParams): SafeHtml {
  const chosen = new Set((params.state ?? '').split(',').filter(Boolean));
  const states = TASK_STATES.map(
    (s) => html`<label class="check"><input type="checkbox" name="state" value="${s}"${chosen.has(s) ? html` checked` : ''}>${chip(s)}</label>`,
  );
  return html`<form class="search" method="get" action="/tasks" role="search">
<div class="fields">
${field('id', 'Task id', params, 'id or prefix (4+ chars)')}
${field('name', 'Name', params, 'tasks.add or tasks.*')}
${field('worker', 'Worker', params, 'celeriac@host')}
${field('queue', 'Queue', params, 'celery')}
${field('from', 'From', params, '2026-12-06T20:00Z or epoch ms')}
${field('to', 'To', params, '2026-12-06T21:00Z or epoch ms')}
${field('text', 'Text in args / result', params, 'substring')}
</div>
<fieldset class="states"><legend>State</legend>${states}</fieldset>
<input type="hidden" name="sort" value="${params.sort ?? ''}"><input type="hidden" name="order" value="${params.order ?? ''}">
<div class="form-buttons"><button type="submit" class="btn btn-primary">Search</button> <a class="btn" href="/tasks">Clear</a></div>
</form>`;
}

/** Link params: the current filter, with some keys changed. */
function withParams(params: FilterParams, patch: FilterParams): string {
  return `/tasks${queryString({ ...params, ...patch })}`;
}

function header(params: FilterParams, page: TaskPage | null, authenticated: boolean): SafeHtml {
  const sort = params.sort || 'updatedAt';
  const order = params.order || 'desc';
  const cells = COLUMNS.map(([label, key]) => {
    if (!key) return html`<th>${label}</th>`;
    const current = key === sort;
    const next = current && order === 'desc' ? 'asc' : 'desc';
    const arrow = current ? (order === 'desc' ? ' ▼' : ' ▲') : '';
    return html`<th${current ? html` aria-sort="${order === 'desc' ? 'descending' : 'ascending'}"` : ''}><a href="${withParams(params, { sort: key, order: next, offset: '0' })}">${label}${arrow}</a></th>`;
  });
  const all = authenticated && page?.tasks.length ? html`<th class="select"><input type="checkbox" data-select-all aria-label="select all"></th>` : authenticated ? html`<th></th>` : '';
  return html`<thead><tr>${all}${cells}</tr></thead>`;
}

function row(t: TaskRecord, authenticated: boolean): SafeHtml {
  const select = authenticated ? html`<td class="select"><input type="checkbox" name="ids" value="${t.id}" aria-label="select ${t.id}"></td>` : '';
  return html`<tr data-task-id="${t.id}">${select}<td>${taskLink(t.id)}</td><td class="mono">${t.name ?? '—'}</td><td>${chip(t.state)}</td><td class="mono">${t.worker ?? '—'}</td><td class="mono">${t.queue ?? '—'}</td><td>${time(t.updatedAt)}</td><td class="num">${duration(t.runtime)}</td></tr>`;
}

function pagination(params: FilterParams, page: TaskPage): SafeHtml {
  const from = page.total === 0 ? 0 : page.offset + 1;
  const to = Math.min(page.offset + page.tasks.length, page.total);
  const prev = page.offset > 0 ? html`<a class="btn" rel="prev" href="${withParams(params, { offset: String(Math.max(0, page.offset - page.limit)) })}">← Previous</a>` : '';
  const next = page.offset + page.limit < page.total ? html`<a class="btn" rel="next" href="${withParams(params, { offset: String(page.offset + page.limit) })}">Next →</a>` : '';
  return html`<nav class="pager" aria-label="pages"><span data-testid="task-count">${from}–${to} of ${page.total}</span> ${prev} ${next}</nav>`;
}

/**
 * The tasks page: `page` is null when the filter was refused (then `error`
 * says why, and the form stays so the person can fix it).
 */
export function tasksMain(params: FilterParams, page: TaskPage | null, authenticated: boolean, error?: string): MainSpec {
  const table = page
    ? page.tasks.length
      ? html`<table class="grid tasks">${header(params, page, authenticated)}<tbody>${page.tasks.map((t) => row(t, authenticated))}</tbody></table>${pagination(params, page)}`
      : html`<p class="muted" data-testid="no-tasks">No task matches this search.</p>`
    : '';
  const bulk = authenticated
    ? page?.tasks.length
      ? html`<div class="bulk">${button({ action: 'revoke-selected', label: 'Revoke selected', confirm: 'Revoke the selected tasks?', danger: true })} ${button({ action: 'revoke-selected', label: 'Terminate selected', data: { terminate: true }, confirm: 'Revoke the selected tasks and terminate those running (SIGTERM)?', danger: true })}</div>`
      : ''
    : signInNote();
  const body = html`<h1>Tasks</h1>
${searchForm(params)}
${error ? alertBox('error', 'Invalid search (400):', error) : ''}
${bulk}
${table}`;
  return { title: 'Tasks', body, live: ['task'] };
}
