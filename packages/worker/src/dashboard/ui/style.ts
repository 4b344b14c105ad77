/** The dashboard's stylesheet, served at `/assets/dashboard.css` (a string: no build step, no file to copy). */
export const DASHBOARD_CSS = `
:root {
  --bg: #f6f7f9; --panel: #fff; --text: #1d2330; --muted: #6b7385; --line: #e2e5eb; --accent: #2f6f4e;
  --ok: #1f7a45; --ok-bg: #e3f4ea; --bad: #b42318; --bad-bg: #fdecea; --warn: #9a6700; --warn-bg: #fff4d6;
  --info: #1d5fa8; --info-bg: #e6f0fb; --idle: #5b6270; --idle-bg: #eef0f3;
  --mono: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace;
}
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: var(--text); background: var(--bg); }
a { color: var(--info); text-decoration: none; }
a:hover { text-decoration: underline; }
code, .mono, pre { font-family: var(--mono); font-size: 12.5px; }
.muted { color: var(--muted); }
.small { font-size: 12px; }
h1 { font-size: 22px; margin: 4px 0 16px; display: flex; gap: 10px; align-items: center; flex-wrap: wrap; }
h1 .mono { font-size: 20px; }
h2 { font-size: 16px; margin: 24px 0 8px; }
h3 { font-size: 13px; margin: 12px 0 4px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
.topbar { display: flex; align-items: center; gap: 24px; padding: 0 24px; height: 48px; background: #1d2330; color: #fff; }
.topbar .brand { color: #9be3b8; font-weight: 700; font-size: 16px; letter-spacing: .02em; }
.topbar nav { display: flex; gap: 4px; }
.topbar nav a { color: #d6dae3; padding: 6px 12px; border-radius: 6px; }
.topbar nav a.active, .topbar nav a:hover { background: #333b4d; color: #fff; text-decoration: none; }
.live-status { margin-left: auto; color: #6b7385; font-size: 12px; }
.live-status.on { color: #5fd08d; }
.banner { background: var(--bad); color: #fff; padding: 10px 24px; font-weight: 600; }
.banner[hidden] { display: none; }
.flash { position: fixed; right: 16px; bottom: 16px; display: flex; flex-direction: column; gap: 8px; z-index: 10; max-width: 480px; }
.flash .msg { background: var(--panel); border-left: 4px solid var(--ok); box-shadow: 0 2px 10px rgba(0,0,0,.15); padding: 10px 14px; border-radius: 6px; }
.flash .msg.error { border-left-color: var(--bad); }
main { padding: 20px 24px 48px; max-width: 1400px; }
section { margin-bottom: 8px; }
.stats { display: flex; gap: 12px; flex-wrap: wrap; margin-bottom: 12px; }
.stat { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; min-width: 180px; }
.stat-value { font-size: 24px; font-weight: 650; }
.stat-label { color: var(--muted); font-size: 12px; }
.stat-value a { color: inherit; }
.stat-ok .stat-value { color: var(--ok); } .stat-bad .stat-value { color: var(--bad); } .stat-warn .stat-value { color: var(--warn); }
.chart { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 8px; min-height: 40px; }
.legend-ok { color: var(--ok); } .legend-bad { color: var(--bad); }
.state-counts { display: flex; gap: 14px; flex-wrap: wrap; }
.state-count { color: var(--text); }
table.grid { width: 100%; border-collapse: collapse; background: var(--panel); border: 1px solid var(--line); border-radius: 8px; overflow: hidden; }
.grid th, .grid td { text-align: left; padding: 7px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
.grid th { background: #fafbfc; font-weight: 600; font-size: 12px; color: var(--muted); white-space: nowrap; }
.grid th a { color: inherit; }
.grid tbody tr:hover { background: #fafcff; }
.grid .num, .num { text-align: right; font-variant-numeric: tabular-nums; }
.grid .select { width: 28px; }
.fields { max-width: 640px; white-space: pre-wrap; word-break: break-all; }
.pre-wrap { white-space: pre-wrap; }
.nowrap, .grid.workers td:first-child, .grid.workers td:nth-child(3), .grid time { white-space: nowrap; }
.chip { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 11.5px; font-weight: 600; letter-spacing: .02em; }
.chip-ok { color: var(--ok); background: var(--ok-bg); } .chip-bad { color: var(--bad); background: var(--bad-bg); }
.chip-warn { color: var(--warn); background: var(--warn-bg); } .chip-info { color: var(--info); background: var(--info-bg); }
.chip-idle { color: var(--idle); background: var(--idle-bg); }
.event { font-family: var(--mono); font-size: 12px; }
.event-task-failed, .event-task-rejected { color: var(--bad); } .event-task-succeeded { color: var(--ok); } .event-task-retried, .event-task-revoked { color: var(--warn); }
.level-error, .level-critical { color: var(--bad); } .level-warning, .level-warn { color: var(--warn); }
pre.repr { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; margin: 0; overflow: auto; max-height: 420px; white-space: pre-wrap; word-break: break-word; }
pre.exception { color: var(--bad); font-weight: 600; }
pre.traceback { background: #1d2330; color: #e6e9ef; border-color: #1d2330; }
.task-id { color: var(--muted); margin: -10px 0 12px; }
.crumbs { margin: 0; color: var(--muted); }
.args-grid { display: grid; grid-template-columns: 1fr 1fr; gap: 12px; }
.args-grid h3 { margin-top: 0; }
.cols { display: flex; gap: 24px; flex-wrap: wrap; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0; background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; min-width: 320px; }
dl.facts dt { color: var(--muted); } dl.facts dd { margin: 0; }
ul.refs, ul.plain { margin: 0; padding: 0; list-style: none; }
form.search { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; margin-bottom: 12px; }
form.search .fields { display: grid; grid-template-columns: repeat(auto-fill, minmax(200px, 1fr)); gap: 8px 12px; max-width: none; white-space: normal; word-break: normal; }
form.search label { display: flex; flex-direction: column; font-size: 12px; color: var(--muted); gap: 2px; }
form.search label.check { flex-direction: row; align-items: center; gap: 4px; }
fieldset.states { border: 0; padding: 0; margin: 10px 0; display: flex; flex-wrap: wrap; gap: 8px; }
fieldset.states legend { font-size: 12px; color: var(--muted); padding: 0; margin-bottom: 4px; }
input, select { font: inherit; padding: 4px 6px; border: 1px solid #c9ced8; border-radius: 5px; background: #fff; }
.btn { display: inline-block; font: inherit; font-size: 13px; padding: 4px 12px; border: 1px solid #c9ced8; border-radius: 6px; background: #fff; color: var(--text); cursor: pointer; }
.btn:hover { background: #f1f3f6; text-decoration: none; }
.btn-primary { background: var(--accent); border-color: var(--accent); color: #fff; } .btn-primary:hover { background: #265c40; }
.btn-danger { color: var(--bad); border-color: #e8b4ae; }
.btn[disabled] { opacity: .5; cursor: wait; }
.actions { display: flex; gap: 6px; flex-wrap: wrap; margin: 4px 0 12px; }
.grid .actions { margin: 0; }
.rate-limit { display: flex; gap: 4px; margin-top: 6px; }
.bulk { margin: 8px 0; display: flex; gap: 8px; }
.pager { display: flex; gap: 10px; align-items: center; margin-top: 10px; color: var(--muted); }
.note { background: var(--info-bg); color: var(--info); padding: 8px 12px; border-radius: 6px; }
.alert { padding: 10px 14px; border-radius: 6px; margin: 8px 0 12px; }
.alert-error { background: var(--bad-bg); color: var(--bad); } .alert-info { background: var(--info-bg); color: var(--info); }
.rate-up { color: var(--warn); } .rate-down { color: var(--ok); }
dialog { border: 1px solid var(--line); border-radius: 10px; padding: 18px 20px; max-width: 480px; box-shadow: 0 10px 40px rgba(0,0,0,.25); }
dialog::backdrop { background: rgba(20, 24, 33, .45); }
.dialog-buttons { display: flex; justify-content: flex-end; gap: 8px; }
details summary { cursor: pointer; color: var(--info); }
`;
