/**
 * One task: what it was called with, what came of it (result, or exception
 * and traceback), where and how long it ran, its event timeline, its canvas
 * relations (links to each), the lines it logged, and — signed in — revoke,
 * terminate and re-send. Also the 404 page for an id the history lacks.
 */
import { FINAL_STATES, type TaskDetail, type TaskRef, type TimelineEntry } from '../model.js';
import { html, type SafeHtml } from './html.js';
import type { MainSpec } from './layout.js';
import { button, chip, duration, durationText, mono, signInNote, taskLink, time } from './parts.js';

function pre(text: string | null, testid: string, cls = ''): SafeHtml {
  return text === null || text === '' ? html`<p class="muted">—</p>` : html`<pre class="repr ${cls}" data-testid="${testid}">${text}</pre>`;
}

function ref(r: TaskRef | null): SafeHtml {
  return r ? html`${taskLink(r.id)} <span class="mono">${r.name ?? ''}</span> ${chip(r.state)}` : html`<span class="muted">—</span>`;
}

function refList(refs: readonly TaskRef[]): SafeHtml {
  return refs.length ? html`<ul class="refs">${refs.map((r) => html`<li>${ref(r)}</li>`)}</ul>` : html`<span class="muted">—</span>`;
}

/** Shown elsewhere on the page (arguments, relations, traceback, log lines): left out of the timeline's rows. */
const OMITTED_FIELDS: ReadonlySet<string> = new Set(['traceback', 'logs', 'name', 'args', 'kwargs', 'root_id', 'parent_id', 'uuid']);
/** A longer field value is cut here; the full value is in the task's own fields above. */
const FIELD_MAX = 300;

/** An event's extra fields, compactly: `key=value` pairs, values as JSON (escaped by the template). */
function fields(f: TimelineEntry['fields']): string {
  return Object.entries(f)
    .filter(([k, v]) => v !== null && v !== undefined && v !== '' && !OMITTED_FIELDS.has(k))
    .map(([k, v]) => {
      const text = typeof v === 'string' ? v : JSON.stringify(v);
      return `${k}=${text.length > FIELD_MAX ? `${text.slice(0, FIELD_MAX)}…` : text}`;
    })
    .join('  ');
}

function timeline(t: TaskDetail): SafeHtml {
  if (!t.timeline.length) return html`<p class="muted">No events recorded for this task.</p>`;
  const first = t.timeline[0]!.at;
  const rows = t.timeline.map(
    (e) => html`<tr><td>${time(e.at)}</td><td class="num muted">+${durationText(Math.max(0, e.at - first) / 1000)}</td><td><span class="event event-${e.type.replace(/[^a-z-]/g, '')}">${e.type}</span></td><td class="mono">${e.hostname ?? '—'}</td><td class="mono fields">${fields(e.fields)}</td></tr>`,
  );
  return html`<table class="grid timeline" data-testid="timeline"><thead><tr><th>At</th><th class="num">Since first</th><th>Event</th><th>From</th><th>Fields</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function logs(t: TaskDetail): SafeHtml {
  if (!t.logs.length) return html`<p class="muted">The task logged nothing.</p>`;
  const rows = t.logs.map((l) => html`<tr><td>${time(l.at)}</td><td><span class="level level-${l.level.replace(/[^a-z]/gi, '').toLowerCase()}">${l.level}</span></td><td class="mono pre-wrap">${l.msg}</td></tr>`);
  return html`<table class="grid logs" data-testid="logs"><thead><tr><th>At</th><th>Level</th><th>Message</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function actions(t: TaskDetail, authenticated: boolean): SafeHtml {
  if (!authenticated) return signInNote();
  const open = !FINAL_STATES.has(t.state);
  return html`<div class="actions">
${open ? button({ action: 'revoke', label: 'Revoke', data: { ids: t.id }, confirm: `Revoke task ${t.id}?`, danger: true }) : ''}
${open ? button({ action: 'revoke', label: 'Terminate', data: { ids: t.id, terminate: true }, confirm: `Revoke task ${t.id} and terminate it if running (SIGTERM)?`, danger: true }) : ''}
${t.name ? button({ action: 'resend', label: 'Re-send', data: { id: t.id }, confirm: `Send ${t.name} again with the same arguments?` }) : ''}
</div>`;
}

export function taskDetailMain(t: TaskDetail, authenticated: boolean): MainSpec {
  const outcome =
    t.state === 'FAILURE' || t.state === 'RETRY' || t.exception
      ? html`<h2>Exception</h2>${pre(t.exception, 'exception', 'exception')}<h3>Traceback</h3>${pre(t.traceback, 'traceback', 'traceback')}`
      : html`<h2>Result</h2>${pre(t.result, 'result')}`;
  const body = html`<p class="crumbs"><a href="/tasks">Tasks</a> /</p>
<h1><span class="mono">${t.name ?? 'unknown task'}</span> ${chip(t.state)}</h1>
<p class="mono task-id" data-testid="task-id">${t.id}</p>
${actions(t, authenticated)}
<section class="cols">
<dl class="facts">
<dt>Worker</dt><dd class="mono">${t.worker ?? '—'}</dd>
<dt>Queue</dt><dd class="mono">${t.queue ?? '—'}</dd>
<dt>Retries</dt><dd data-testid="retries">${t.retries}</dd>
<dt>Runtime</dt><dd>${duration(t.runtime)}</dd>
<dt>Queue wait</dt><dd>${duration(t.queueWaitMs === null ? null : t.queueWaitMs / 1000)}</dd>
<dt>ETA</dt><dd>${mono(t.eta)}</dd>
<dt>Expires</dt><dd>${mono(t.expires)}</dd>
</dl>
<dl class="facts">
<dt>Sent</dt><dd>${time(t.sentAt)}</dd>
<dt>Received</dt><dd>${time(t.receivedAt)}</dd>
<dt>Started</dt><dd>${time(t.startedAt)}</dd>
<dt>Ended</dt><dd>${time(t.endedAt)}</dd>
<dt>Updated</dt><dd>${time(t.updatedAt)}</dd>
</dl>
</section>
${outcome}
<h2>Arguments</h2>
<div class="args-grid"><div><h3>args</h3>${pre(t.args, 'args')}</div><div><h3>kwargs</h3>${pre(t.kwargs, 'kwargs')}</div></div>
<h2>Timeline</h2>
${timeline(t)}
<h2>Canvas</h2>
<dl class="facts relations">
<dt>Parent</dt><dd data-testid="relation-parent">${ref(t.relations.parent)}</dd>
<dt>Root</dt><dd data-testid="relation-root">${t.relations.root && t.relations.root.id !== t.id ? ref(t.relations.root) : html`<span class="muted">this task</span>`}</dd>
<dt>Children</dt><dd data-testid="relation-children">${refList(t.relations.children)}</dd>
<dt>Group${t.groupId ? html` <span class="mono muted">${t.groupId}</span>` : ''}</dt><dd data-testid="relation-group">${refList(t.relations.group)}</dd>
</dl>
<h2>Log lines</h2>
${logs(t)}`;
  return { title: `${t.name ?? 'Task'} ${t.id}`, body, live: ['task'], liveTaskId: t.id };
}

/**
 * The page for a task id the history does not know (served with status 404).
 * It stays live for that id: a task just sent appears as soon as its first event is stored.
 */
export function taskNotFoundMain(id: string): MainSpec {
  const body = html`<h1>Task not found</h1>
<p data-testid="not-found">No task with id <code>${id}</code> is in the history. It may not have been sent yet, or retention removed it.</p>
<p><a href="/tasks">Search the tasks</a></p>`;
  return { title: 'Task not found', body, live: ['task'], liveTaskId: id };
}
