/**
 * The browser side, served at `/assets/dashboard.js`: draws the overview's
 * chart with uPlot, sends the action buttons' POSTs (with the page's CSRF
 * token) and shows their results, and keeps the page live from the SSE
 * stream — the broker banner from `broker` events, and `<main>` re-fetched
 * (`X-Partial: 1`, throttled) after events the page lists in `data-live`.
 *
 * Plain ES2020 in a string, no build step. Everything it writes from data
 * goes through textContent; the only markup it inserts is `<main>` as the
 * server rendered (and escaped) it.
 */
export const DASHBOARD_JS = String.raw`(() => {
  'use strict';
  const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || '';
  const REFRESH_MIN_MS = 1000;
  let chart = null;

  // --- flash messages: what an action did, per line ---
  function flash(text, kind, link) {
    const box = document.getElementById('flash');
    if (!box) return;
    const msg = document.createElement('div');
    msg.className = 'msg' + (kind === 'error' ? ' error' : '');
    msg.setAttribute('data-testid', 'flash');
    msg.textContent = text;
    if (link) {
      const a = document.createElement('a');
      a.href = link.href;
      a.textContent = link.text;
      msg.append(' ', a);
    }
    msg.addEventListener('click', () => msg.remove());
    box.append(msg);
    setTimeout(() => msg.remove(), 12000);
  }

  // --- the overview chart ---
  function drawChart() {
    const el = document.getElementById('throughput-chart');
    const dataEl = document.getElementById('throughput-data');
    if (chart) { chart.destroy(); chart = null; }
    if (!el || !dataEl || typeof window.uPlot !== 'function') return;
    const d = JSON.parse(dataEl.textContent || '{}');
    let t = d.t || [], ok = d.succeeded || [], bad = d.failed || [];
    if (t.length === 0) { const now = Math.floor(Date.now() / 1000); t = [now - 3600, now]; ok = [0, 0]; bad = [0, 0]; }
    const opts = {
      width: Math.max(300, el.clientWidth - 16),
      height: 220,
      scales: { x: { time: true } },
      series: [
        {},
        { label: 'succeeded/s', stroke: '#1f7a45', fill: 'rgba(31,122,69,0.10)', width: 2, points: { show: false } },
        { label: 'failed/s', stroke: '#b42318', fill: 'rgba(180,35,24,0.10)', width: 2, points: { show: false } },
      ],
      axes: [{}, { label: 'tasks/s', size: 60 }],
    };
    chart = new window.uPlot(opts, [t, ok, bad], el);
  }
  window.addEventListener('resize', () => {
    const el = document.getElementById('throughput-chart');
    if (chart && el) chart.setSize({ width: Math.max(300, el.clientWidth - 16), height: 220 });
  });

  // --- live refresh of <main> ---
  let lastRefresh = 0, timer = null, inFlight = false, pending = false;
  function busy() {
    const a = document.activeElement;
    const dialog = document.getElementById('confirm-dialog');
    return (dialog && dialog.open) || (a && a.closest && a.closest('main') && /^(INPUT|SELECT|TEXTAREA)$/.test(a.tagName) && a.type !== 'checkbox');
  }
  function scheduleRefresh() {
    if (timer) return;
    const wait = Math.max(0, lastRefresh + REFRESH_MIN_MS - Date.now());
    timer = setTimeout(() => { timer = null; refresh().catch(() => setLive(false)); }, wait);
  }
  async function refresh() {
    if (inFlight) { pending = true; return; }
    if (busy()) { setTimeout(scheduleRefresh, REFRESH_MIN_MS); return; }
    inFlight = true;
    lastRefresh = Date.now();
    try {
      const res = await fetch(location.href, { headers: { 'X-Partial': '1' }, credentials: 'same-origin' });
      const tpl = document.createElement('template');
      tpl.innerHTML = await res.text();
      const next = tpl.content.querySelector('main');
      const current = document.querySelector('main');
      if (!next || !current) return;
      // What the person was doing survives the swap: ticked boxes, open <details>.
      const checked = new Set([...current.querySelectorAll('input[type=checkbox]:checked')].map((c) => c.name + '=' + c.value));
      const open = new Set([...current.querySelectorAll('details[open]')].map(detailsKey));
      next.querySelectorAll('input[type=checkbox]').forEach((c) => { if (checked.has(c.name + '=' + c.value)) c.checked = true; });
      next.querySelectorAll('details').forEach((d) => { if (open.has(detailsKey(d))) d.open = true; });
      current.replaceWith(next);
      if (next.dataset.title) document.title = next.dataset.title + ' · celeriac';
      drawChart();
    } finally {
      inFlight = false;
      if (pending) { pending = false; scheduleRefresh(); }
    }
  }
  function detailsKey(d) {
    const row = d.closest('tr');
    const id = row ? row.getAttribute('data-worker') || row.getAttribute('data-dead-id') || '' : '';
    return id + '|' + ((d.querySelector('summary') || {}).textContent || '');
  }
  setInterval(() => {
    const main = document.querySelector('main');
    const every = main ? Number(main.dataset.pollMs || 0) : 0;
    if (every > 0 && !document.hidden && Date.now() - lastRefresh >= every) scheduleRefresh();
  }, 1000);
  function relevant(kind, data) {
    const main = document.querySelector('main');
    if (!main) return false;
    const kinds = (main.dataset.live || '').split(' ');
    if (!kinds.includes(kind)) return false;
    if (kind === 'task' && main.dataset.taskId) return data && data.id === main.dataset.taskId;
    return true;
  }
  function setLive(on) {
    const dot = document.getElementById('live-status');
    if (dot) { dot.classList.toggle('on', on); dot.title = on ? 'live updates on' : 'live updates reconnecting'; }
  }
  function banner(status) {
    const el = document.getElementById('broker-banner');
    if (!el || !status) return;
    el.hidden = !!status.reachable;
    el.textContent = status.reachable ? '' : 'broker unreachable: ' + (status.error || 'no answer') + '; history stays browsable';
  }
  if (typeof EventSource === 'function') {
    const es = new EventSource('/api/stream');
    es.onopen = () => {
      setLive(true);
      // Events between this page's render and the stream's (re)opening were missed: catch up once.
      const main = document.querySelector('main');
      if (main && main.dataset.live) scheduleRefresh();
    };
    es.onerror = () => setLive(false);
    for (const kind of ['task', 'worker', 'queues']) {
      es.addEventListener(kind, (e) => {
        let data = null;
        try { data = JSON.parse(e.data); } catch { return; }
        if (relevant(kind, data)) scheduleRefresh();
      });
    }
    es.addEventListener('broker', (e) => {
      try { banner(JSON.parse(e.data).status); } catch { /* a malformed event changes nothing */ }
    });
  }

  // --- actions ---
  function ask(question) {
    const dialog = document.getElementById('confirm-dialog');
    if (!question) return Promise.resolve(true);
    if (!dialog || typeof dialog.showModal !== 'function') return Promise.resolve(window.confirm(question));
    document.getElementById('confirm-text').textContent = question;
    dialog.returnValue = '';
    dialog.showModal();
    return new Promise((resolve) => dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true }));
  }
  async function post(path, body) {
    const res = await fetch(path, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
      body: JSON.stringify(body || {}),
    });
    let data = null;
    try { data = await res.json(); } catch { data = null; }
    if (!res.ok || (data && data.error)) {
      const err = (data && data.error) || {};
      throw new Error((err.code ? err.code + ': ' : '') + (err.message || 'HTTP ' + res.status));
    }
    return data || {};
  }
  function report(data, fallback) {
    if (data && typeof data.message === 'string') { flash(data.message, data.ok === false ? 'error' : 'ok'); return; }
    if (data && typeof data.purged === 'number') return flash('Purged ' + data.purged + ' message(s).');
    if (data && typeof data.requeued === 'number') return flash('Requeued ' + data.requeued + ' dead letter(s).');
    if (data && typeof data.discarded === 'number') return flash('Discarded ' + data.discarded + ' dead letter(s).');
    if (data && typeof data.enabled === 'boolean' && typeof data.name === 'string') return flash('Schedule ' + data.name + (data.enabled ? ' enabled.' : ' disabled.'));
    if (data && typeof data.id === 'string') return flash('Re-sent as a new task:', 'ok', { href: '/tasks/' + encodeURIComponent(data.id), text: data.id });
    flash(fallback);
  }
  function selected(name) {
    return [...document.querySelectorAll('input[name="' + name + '"]:checked')].map((c) => c.value);
  }
  const enc = encodeURIComponent;
  async function perform(btn) {
    const d = btn.dataset;
    switch (d.action) {
      case 'revoke': case 'revoke-selected': {
        const ids = d.action === 'revoke' ? [d.ids] : selected('ids');
        if (!ids.length) return flash('Select the tasks to revoke first.', 'error');
        const body = { ids };
        if (d.terminate === 'true') { body.terminate = true; body.signal = 'SIGTERM'; }
        return report(await post('/api/tasks/revoke', body), 'Revoked.');
      }
      case 'resend': return report(await post('/api/tasks/' + enc(d.id) + '/resend'), 'Re-sent.');
      case 'worker': {
        let args;
        if (d.command === 'pool_grow' || d.command === 'pool_shrink') args = { n: 1 };
        if (d.command === 'rate_limit') {
          const box = btn.closest('.rate-limit');
          args = { task_name: box.querySelector('[name=task_name]').value, rate_limit: box.querySelector('[name=rate_limit]').value.trim() || null };
        }
        return report(await post('/api/workers/' + enc(d.worker) + '/' + enc(d.command), args ? { args } : {}), 'Done.');
      }
      case 'purge': return report(await post('/api/queues/' + enc(d.queue) + '/purge'), 'Purged.');
      case 'requeue': case 'requeue-selected': case 'discard': case 'discard-selected': {
        const ids = d.action.endsWith('-selected') ? selected('dead-ids') : [d.ids];
        if (!ids.length) return flash('Select the dead letters first.', 'error');
        return report(await post('/api/dead-letters/' + (d.action.startsWith('requeue') ? 'requeue' : 'discard'), { ids }), 'Done.');
      }
      case 'schedule': return report(await post('/api/schedules/' + enc(d.name) + '/' + (d.enable === 'true' ? 'enable' : 'disable')), 'Done.');
    }
  }
  document.addEventListener('click', (e) => {
    const btn = e.target.closest && e.target.closest('button[data-action]');
    if (!btn || btn.disabled) return;
    e.preventDefault();
    ask(btn.dataset.confirm).then(async (yes) => {
      if (!yes) return;
      btn.disabled = true;
      try { await perform(btn); } catch (err) { flash(String(err && err.message || err), 'error'); } finally { btn.disabled = false; }
      await refresh();
    }).catch((err) => flash(String(err && err.message || err), 'error'));
  });
  document.addEventListener('change', (e) => {
    const all = e.target.closest && e.target.closest('input[data-select-all]');
    if (!all) return;
    const name = all.dataset.selectAll || 'ids';
    document.querySelectorAll('input[name="' + name + '"]').forEach((c) => { c.checked = all.checked; });
  });

  drawChart();
})();
`;
