/**
 * Schedules: beat's entries — the task each sends, its schedule, last and
 * next run, whether it is enabled; signed in, enable / disable.
 */
import type { ScheduleView } from '../model.js';
import { html, type SafeHtml } from './html.js';
import type { MainSpec } from './layout.js';
import { alertBox, button, signInNote, time } from './parts.js';

function row(s: ScheduleView, authenticated: boolean): SafeHtml {
  const toggle = s.enabled
    ? button({ action: 'schedule', label: 'Disable', data: { name: s.name, enable: false }, confirm: `Disable schedule ${s.name}? Beat stops sending ${s.task} for it.` })
    : button({ action: 'schedule', label: 'Enable', data: { name: s.name, enable: true } });
  return html`<tr data-schedule="${s.name}">
<td class="mono">${s.name}</td>
<td class="mono"><a href="/tasks?name=${encodeURIComponent(s.task)}">${s.task}</a></td>
<td class="mono">${s.schedule}</td>
<td>${time(s.lastRunAt)}</td>
<td>${s.enabled ? time(s.nextRunAt) : html`<span class="muted">—</span>`}</td>
<td><span class="chip ${s.enabled ? 'chip-ok' : 'chip-idle'}">${s.enabled ? 'enabled' : 'disabled'}</span></td>
${authenticated ? html`<td>${toggle}</td>` : ''}
</tr>`;
}

export function schedulesMain(schedules: readonly ScheduleView[], authenticated: boolean, error?: string): MainSpec {
  const table = schedules.length
    ? html`<table class="grid schedules"><thead><tr><th>Entry</th><th>Task</th><th>Schedule</th><th>Last run</th><th>Next run</th><th>Enabled</th>${authenticated ? html`<th>Actions</th>` : ''}</tr></thead><tbody>${schedules.map((s) => row(s, authenticated))}</tbody></table>`
    : html`<p class="muted" data-testid="no-schedules">No beat schedule known. Entries appear when the dashboard loads an app with a beat schedule (<code>-A</code>) or beat keeps its state where the dashboard can read it.</p>`;
  const body = html`<h1>Schedules</h1>
${error ? alertBox('error', 'Schedules unavailable:', error) : ''}
${authenticated ? '' : signInNote()}
${table}`;
  return { title: 'Schedules', body };
}
