//===----------------------------------------------------------------------===//
//
// This source file is part of the task-status-bridge open source project.
// Licensed under the Apache License v2.0; see LICENSE.txt.
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

/// The status page served at `GET /` (``PageRoute``): one HTML document with its CSS and
/// JavaScript inline, no CDN, no build step. It lists tasks from `GET /v2026/task-status` (filters
/// by status, type, launcher and id; paging with `X-Total-Count`), keeps them live from the same
/// URL asked as `text/event-stream` (read with `fetch`, so that it can send the token and
/// `Last-Event-ID`; from the list's `X-Last-Event-Id`, listing again on `event: reset`; paused
/// while the tab is hidden), and shows a task's every property in a dialog. With authentication
/// on, it asks for a token and keeps it in `sessionStorage`. It runs under the route's
/// Content-Security-Policy: no `eval`, no inline event-handler attributes.
enum StatusPage {
    static let html = #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Task status</title>
        <link rel="icon" href="data:,">
        <style>
        :root {
          color-scheme: light dark;
          --bg: #f5f6f8; --fg: #1b2330; --muted: #5b6677; --card: #ffffff; --line: #dfe3e9; --hover: #f0f4fb;
          --accent: #1f5bd6; --accent-fg: #ffffff; --track: #e6e9ee;
          --run: #1f5bd6; --run-bg: #e4ecfc; --ok: #1b7a36; --ok-bg: #e1f3e6; --warn: #8a5a00; --warn-bg: #fdf0d2;
          --err: #b8232a; --err-bg: #fbe3e4; --term: #4e5868; --term-bg: #e9ecf0; --temp: #a5430b; --temp-bg: #fde7d8;
          --flash: rgba(31, 91, 214, 0.14);
          font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
          font-size: 15px; line-height: 1.45;
        }
        @media (prefers-color-scheme: dark) {
          :root {
            --bg: #0f1318; --fg: #e3e7ed; --muted: #9aa4b2; --card: #171c23; --line: #2a313c; --hover: #1d2430;
            --accent: #6f9bff; --accent-fg: #0f1318; --track: #2a313c;
            --run: #8cb0ff; --run-bg: #1b2a47; --ok: #6fd08c; --ok-bg: #15301f; --warn: #f1c25c; --warn-bg: #3a2e12;
            --err: #ff8a8f; --err-bg: #3c1a1d; --term: #b3bcc8; --term-bg: #262d37; --temp: #ffab73; --temp-bg: #3b2415;
            --flash: rgba(111, 155, 255, 0.18);
          }
        }
        * { box-sizing: border-box; }
        body { margin: 0; background: var(--bg); color: var(--fg); }
        .mono, code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace; font-size: 0.86em; }
        [hidden] { display: none !important; }
        .top { display: flex; align-items: center; gap: 16px; flex-wrap: wrap; padding: 14px 24px; background: var(--card); border-bottom: 1px solid var(--line); }
        .top h1 { font-size: 1.25rem; margin: 0 auto 0 0; letter-spacing: -0.01em; }
        .live { display: inline-flex; align-items: center; gap: 8px; color: var(--muted); font-size: 0.9rem; }
        .live .dot { width: 9px; height: 9px; border-radius: 50%; background: var(--term); }
        .live[data-mode="live"] .dot { background: var(--ok); box-shadow: 0 0 0 3px var(--ok-bg); }
        .live[data-mode="connecting"] .dot, .live[data-mode="reconnecting"] .dot, .live[data-mode="polling"] .dot { background: var(--warn); }
        .live[data-mode="error"] .dot, .live[data-mode="auth"] .dot { background: var(--err); }
        main { padding: 20px 24px 40px; max-width: 1500px; margin: 0 auto; }
        button, input, select { font: inherit; color: inherit; }
        button { cursor: pointer; border: 1px solid var(--accent); background: var(--accent); color: var(--accent-fg); border-radius: 6px; padding: 6px 14px; }
        button.secondary { background: var(--card); color: var(--fg); border-color: var(--line); }
        button:disabled { opacity: 0.45; cursor: default; }
        input, select { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 6px 8px; min-height: 34px; }
        :focus-visible { outline: 2px solid var(--accent); outline-offset: 2px; }
        label { font-size: 0.8rem; font-weight: 600; color: var(--muted); }
        .check { display: inline-flex; align-items: center; gap: 6px; font-size: 0.9rem; font-weight: 500; color: var(--fg); }
        .filters { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-end; margin-bottom: 16px; padding: 14px 16px; background: var(--card); border: 1px solid var(--line); border-radius: 10px; }
        .field { display: flex; flex-direction: column; gap: 4px; }
        .field.grow { flex: 1 1 220px; }
        .field input[type="text"], .field input[type="search"] { min-width: 180px; }
        .actions { display: flex; gap: 8px; }
        .banner { padding: 10px 14px; border-radius: 8px; margin-bottom: 14px; }
        .error { background: var(--err-bg); color: var(--err); border: 1px solid var(--err); }
        .notice { background: var(--run-bg); color: var(--run); border: 1px solid var(--run); display: flex; align-items: center; gap: 12px; }
        .auth { max-width: 520px; margin: 0 auto 20px; padding: 18px 20px; background: var(--card); border: 1px solid var(--line); border-radius: 10px; }
        .auth h2 { margin: 0 0 6px; font-size: 1.1rem; }
        .auth .row { display: flex; gap: 8px; margin-top: 6px; }
        .auth input { flex: 1; }
        .hint { color: var(--muted); font-size: 0.85rem; }
        .card { background: var(--card); border: 1px solid var(--line); border-radius: 10px; overflow: auto; }
        table { width: 100%; border-collapse: collapse; }
        caption { text-align: left; padding: 12px 16px; color: var(--muted); font-size: 0.9rem; caption-side: top; }
        th { text-align: left; font-size: 0.78rem; text-transform: uppercase; letter-spacing: 0.04em; color: var(--muted); font-weight: 600; padding: 8px 12px; border-bottom: 1px solid var(--line); white-space: nowrap; }
        td { padding: 9px 12px; border-bottom: 1px solid var(--line); vertical-align: middle; }
        td:first-child { min-width: 15em; }
        tbody tr { cursor: pointer; }
        tbody tr:hover { background: var(--hover); }
        tbody tr:last-child td { border-bottom: 0; }
        tbody tr.stale { opacity: 0.5; }
        table[aria-busy="true"] tbody { opacity: 0.6; transition: opacity 0.2s 0.15s; }
        .name { border: 0; background: none; color: var(--fg); padding: 0; font-weight: 600; text-align: left; border-radius: 3px; }
        .name:hover { text-decoration: underline; color: var(--accent); }
        .sub { color: var(--muted); font-size: 0.8rem; margin-top: 2px; overflow-wrap: anywhere; }
        .time { white-space: nowrap; font-size: 0.88rem; font-variant-numeric: tabular-nums; }
        .nil { color: var(--muted); }
        .badge { display: inline-block; padding: 2px 9px; border-radius: 999px; font-size: 0.78rem; font-weight: 600; white-space: nowrap; border: 1px solid transparent; }
        .s-running { color: var(--run); background: var(--run-bg); }
        .s-success { color: var(--ok); background: var(--ok-bg); }
        .s-warning { color: var(--warn); background: var(--warn-bg); }
        .s-error { color: var(--err); background: var(--err-bg); }
        .s-terminated { color: var(--term); background: var(--term-bg); }
        .s-temperror { color: var(--temp); background: var(--temp-bg); }
        .l-info { color: var(--run); background: var(--run-bg); }
        .l-warn { color: var(--warn); background: var(--warn-bg); }
        .l-error { color: var(--err); background: var(--err-bg); }
        .progress { min-width: 180px; }
        .progress .line { display: flex; align-items: center; gap: 8px; }
        .bar { flex: 1; height: 8px; border-radius: 999px; background: var(--track); overflow: hidden; }
        .fill { height: 100%; width: 0; border-radius: 999px; background: var(--run); transition: width 0.3s ease; }
        .bar[data-status="success"] .fill { background: var(--ok); }
        .bar[data-status="warning"] .fill { background: var(--warn); }
        .bar[data-status="error"] .fill { background: var(--err); }
        .bar[data-status="terminated"] .fill { background: var(--term); }
        .bar[data-status="temperror"] .fill { background: var(--temp); }
        .pct { font-size: 0.82rem; font-variant-numeric: tabular-nums; width: 3.2em; text-align: right; color: var(--muted); }
        .empty { padding: 28px 16px; text-align: center; color: var(--muted); }
        .pager { display: flex; align-items: center; justify-content: space-between; gap: 12px; margin-top: 14px; }
        .pager span { color: var(--muted); font-size: 0.9rem; }
        dialog { width: min(920px, calc(100vw - 32px)); max-height: calc(100vh - 48px); padding: 0; border: 1px solid var(--line); border-radius: 12px; background: var(--card); color: var(--fg); box-shadow: 0 20px 60px rgba(0, 0, 0, 0.25); }
        dialog::backdrop { background: rgba(15, 20, 28, 0.45); }
        .d-head { position: sticky; top: 0; display: flex; align-items: flex-start; gap: 12px; padding: 16px 20px; background: var(--card); border-bottom: 1px solid var(--line); z-index: 1; }
        .d-head h2 { margin: 0; font-size: 1.15rem; }
        .d-head .grow { flex: 1; min-width: 0; }
        .d-body { padding: 8px 20px 20px; }
        .d-body h3 { font-size: 0.82rem; text-transform: uppercase; letter-spacing: 0.05em; color: var(--muted); margin: 20px 0 8px; }
        .d-body table { border: 1px solid var(--line); border-radius: 8px; }
        .d-body td, .d-body th { padding: 6px 10px; font-size: 0.9rem; vertical-align: top; }
        dl.props { display: grid; grid-template-columns: max-content 1fr; gap: 6px 18px; margin: 0; }
        dl.props dt { color: var(--muted); font-size: 0.88rem; }
        dl.props dd { margin: 0; overflow-wrap: anywhere; }
        pre { margin: 0; padding: 12px; background: var(--bg); border: 1px solid var(--line); border-radius: 8px; overflow: auto; max-height: 420px; white-space: pre; }
        .cell-json { white-space: pre-wrap; overflow-wrap: anywhere; }
        .visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
        @media (prefers-reduced-motion: reduce) { .fill { transition: none; } }
        </style>
        </head>
        <body>
        <header class="top">
          <h1>Task status</h1>
          <div class="live" id="live" data-mode="connecting" role="status" aria-live="polite"><span class="dot" aria-hidden="true"></span><span id="live-text">Connecting…</span></div>
          <label class="check"><input type="checkbox" id="live-toggle" checked> Live updates</label>
          <button type="button" id="signout" class="secondary" hidden>Forget token</button>
        </header>
        <main>
          <section id="auth" class="auth" hidden aria-labelledby="auth-title">
            <form id="auth-form">
              <h2 id="auth-title">A token is needed</h2>
              <p id="auth-reason" class="hint"></p>
              <label for="auth-token">Bearer token (JWT)</label>
              <div class="row">
                <input id="auth-token" type="password" autocomplete="off" spellcheck="false" required>
                <button type="submit">Use token</button>
              </div>
              <p class="hint">Kept in this tab only (sessionStorage) and sent in the Authorization header.</p>
            </form>
          </section>
          <form id="filters" class="filters" role="search" aria-label="Filter tasks">
            <div class="field">
              <label for="f-status">Status</label>
              <select id="f-status">
                <option value="">All</option>
                <option value="running">Running</option>
                <option value="SUCCESS">Success</option>
                <option value="WARNING">Warning</option>
                <option value="ERROR">Error</option>
                <option value="TERMINATED">Terminated</option>
                <option value="TEMPERROR">Temporary error</option>
              </select>
            </div>
            <div class="field">
              <label for="f-type">Type</label>
              <select id="f-type">
                <option value="">All</option>
                <option value="QUARTZ">QUARTZ</option>
                <option value="QPOC">QPOC</option>
                <option value="QUEUED_TASK">QUEUED_TASK</option>
              </select>
            </div>
            <div class="field">
              <label for="f-launcher">Launcher</label>
              <input id="f-launcher" type="text" list="launchers" autocomplete="off" placeholder="exact name">
              <datalist id="launchers"></datalist>
            </div>
            <div class="field grow">
              <label for="f-id">Task id</label>
              <input id="f-id" type="search" autocomplete="off" spellcheck="false" placeholder="exact id">
            </div>
            <div class="field">
              <label for="f-limit">Per page</label>
              <select id="f-limit">
                <option value="10">10</option>
                <option value="25" selected>25</option>
                <option value="50">50</option>
                <option value="100">100</option>
                <option value="250">250</option>
              </select>
            </div>
            <div class="actions">
              <button type="submit">Apply</button>
              <button type="button" id="f-clear" class="secondary">Clear</button>
            </div>
          </form>
          <div id="error" class="banner error" role="alert" hidden></div>
          <div id="notice" class="banner notice" hidden><span id="notice-text"></span><button type="button" id="notice-go" class="secondary">Show newest</button></div>
          <div class="card">
            <table id="tasks">
              <caption id="summary">Loading…</caption>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Type</th>
                  <th scope="col">Launcher</th>
                  <th scope="col">Status</th>
                  <th scope="col">Progress</th>
                  <th scope="col">Created</th>
                  <th scope="col">Modified</th>
                  <th scope="col">Completed</th>
                </tr>
              </thead>
              <tbody id="rows"></tbody>
            </table>
            <p id="empty" class="empty" hidden>No tasks match these filters.</p>
          </div>
          <nav class="pager" aria-label="Pages">
            <button type="button" id="prev" class="secondary" disabled>← Newer</button>
            <span id="range" aria-live="polite"></span>
            <button type="button" id="next" class="secondary" disabled>Older →</button>
          </nav>
        </main>
        <dialog id="detail" aria-labelledby="d-title">
          <div class="d-head">
            <div class="grow">
              <h2 id="d-title">Task</h2>
              <div id="d-sub" class="sub mono"></div>
            </div>
            <button type="button" id="d-copy" class="secondary">Copy JSON</button>
            <button type="button" id="d-close" class="secondary" aria-label="Close details">Close</button>
          </div>
          <div id="d-body" class="d-body"></div>
        </dialog>
        <script>
        'use strict';
        (() => {
          const API = '/v2026/task-status';
          const TOKEN_KEY = 'taskstatus.token';
          const STATUSES = ['SUCCESS', 'WARNING', 'ERROR', 'TERMINATED', 'TEMPERROR'];
          const TYPES = ['QUARTZ', 'QPOC', 'QUEUED_TASK'];
          const LIMITS = [10, 25, 50, 100, 250];
          const STATUS_LABEL = {
            running: 'Running', success: 'Success', warning: 'Warning', error: 'Error',
            terminated: 'Terminated', temperror: 'Temporary error',
          };
          const SUMMARY_KEYS = ['completionStatus', 'percentComplete', 'progress', 'created', 'modified', 'launched', 'completed'];
          const POLL_MS = 5000;
          const WATCHDOG_MS = 45000;
          const MAX_MESSAGES = 200;
          const $ = (id) => document.getElementById(id);

          const state = {
            filters: { status: '', type: '', launcher: '', id: '' },
            offset: 0,
            limit: 25,
            order: [],             // task ids in display order
            tasks: new Map(),      // id -> TaskStatus
            revs: new Map(),       // id -> { rev, exact }: the highest revision seen
            stale: new Set(),      // shown, but no longer matching the filters
            total: null,
            lastEventId: null,
            generation: 0,         // bumped by every list: late answers of older ones are dropped
            watch: null,           // AbortController of the live stream
            timer: 0,              // the one pending reconnect, poll or retry
            watchdog: 0,
            attempt: 0,
            retryMs: 2000,
            noStream: false,       // the server answered the watch without a stream: poll instead
            newer: 0,              // tasks created while a later page is shown
            selected: null,
            detailTask: null,      // the selected task when it is not in the list
            refetching: new Set(),
            launchers: new Set(),
          };

          class HttpError extends Error {
            constructor(status, message, retryAfter) {
              super(message);
              this.status = status;
              this.retryAfter = retryAfter;
            }
          }

          // ---------- helpers ----------

          function h(tag, attrs, ...children) {
            const el = document.createElement(tag);
            if (attrs) {
              for (const [k, v] of Object.entries(attrs)) {
                if (v === null || v === undefined || v === false) continue;
                if (k === 'class') el.className = v;
                else if (k === 'text') el.textContent = v;
                else el.setAttribute(k, v === true ? '' : String(v));
              }
            }
            for (const c of children) {
              if (c === null || c === undefined || c === false) continue;
              el.append(c instanceof Node ? c : String(c));
            }
            return el;
          }

          function setText(el, text) {
            const t = text === null || text === undefined ? '' : String(text);
            if (el.textContent !== t) el.textContent = t;
          }

          function setAttr(el, name, value) {
            const v = String(value);
            if (el.getAttribute(name) !== v) el.setAttribute(name, v);
          }

          function clone(v) {
            return v === undefined ? undefined : JSON.parse(JSON.stringify(v));
          }

          function statusKey(t) {
            const s = t && t.completionStatus;
            return s ? String(s).toLowerCase() : 'running';
          }

          function percent(t) {
            const n = Number(t && t.percentComplete);
            if (!Number.isFinite(n)) return 0;
            return Math.max(0, Math.min(100, Math.round(n)));
          }

          const dateFormat = new Intl.DateTimeFormat(undefined, {
            year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit',
          });
          const thisYearFormat = new Intl.DateTimeFormat(undefined, {
            month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit',
          });

          // Local time; the year only when it is not this one.
          function formatTime(iso) {
            if (!iso) return '';
            const d = new Date(iso);
            if (Number.isNaN(d.getTime())) return String(iso);
            return (d.getFullYear() === new Date().getFullYear() ? thisYearFormat : dateFormat).format(d);
          }

          function timeMs(iso) {
            const n = iso ? Date.parse(iso) : NaN;
            return Number.isNaN(n) ? null : n;
          }

          function quote(s) {
            return '"' + String(s).replace(/\\/g, '\\\\').replace(/"/g, '\\"') + '"';
          }

          // A query string with spaces as %20: the bridge does not read + as a space.
          function queryString(params) {
            return Object.entries(params).map(([k, v]) => encodeURIComponent(k) + '=' + encodeURIComponent(v)).join('&');
          }

          function filterString() {
            const f = state.filters;
            const terms = [];
            if (f.status === 'running') terms.push('completionStatus isnull');
            else if (f.status) terms.push('completionStatus eq ' + quote(f.status));
            if (f.type) terms.push('type eq ' + quote(f.type));
            if (f.launcher) terms.push('launcher eq ' + quote(f.launcher));
            if (f.id) terms.push('id eq ' + quote(f.id));
            return terms.join(' and ');
          }

          function matches(t) {
            const f = state.filters;
            if (f.status === 'running' && t.completionStatus) return false;
            if (f.status && f.status !== 'running' && String(t.completionStatus || '').toUpperCase() !== f.status) return false;
            if (f.type && String(t.type || '').toUpperCase() !== f.type) return false;
            if (f.launcher && t.launcher !== f.launcher) return false;
            if (f.id && t.id !== f.id) return false;
            return true;
          }

          // Newest first, as the list's -created sorter.
          function newer(a, b) {
            const ca = timeMs(a.created) || 0;
            const cb = timeMs(b.created) || 0;
            if (ca !== cb) return ca > cb;
            return String(a.id) > String(b.id);
          }

          // ---------- token ----------

          function token() {
            try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch (e) { return ''; }
          }

          function askForToken(reason) {
            stopLive();
            setLive('auth', 'Token needed');
            $('auth').hidden = false;
            setText($('auth-reason'), (token() ? 'The token was refused' : 'This bridge requires a token') + (reason ? ': ' + reason : '.'));
            $('signout').hidden = !token();
            const input = $('auth-token');
            input.value = '';
            input.focus();
          }

          // ---------- HTTP ----------

          async function readError(res) {
            let body = null;
            try { body = await res.json(); } catch (e) { body = null; }
            const texts = [];
            if (body && typeof body === 'object') {
              for (const key of ['causes', 'messages']) {
                if (Array.isArray(body[key])) {
                  for (const m of body[key]) if (m && m.text) texts.push(m.text);
                }
                if (key === 'causes' && texts.length) break;
              }
              if (!texts.length && body.error) texts.push(body.error);
              if (!texts.length && body.message) texts.push(String(body.message).trim());
            }
            return texts.join(' ') || ('HTTP ' + res.status + ' ' + res.statusText);
          }

          async function api(url, options) {
            const opts = options || {};
            const headers = new Headers(opts.headers || {});
            headers.set('X-SailPoint-Experimental', 'true');
            const t = token();
            if (t) headers.set('Authorization', 'Bearer ' + t);
            const res = await fetch(url, { headers, signal: opts.signal, cache: 'no-store', credentials: 'same-origin' });
            if (res.status === 401) {
              const reason = await readError(res);
              askForToken(reason);
              throw new HttpError(401, reason);
            }
            if (!res.ok && !(opts.accept && opts.accept.includes(res.status))) {
              const retry = parseInt(res.headers.get('Retry-After') || '', 10);
              throw new HttpError(res.status, await readError(res), Number.isFinite(retry) ? retry : undefined);
            }
            return res;
          }

          function taskUrl(id) {
            return API + '/' + encodeURIComponent(id);
          }

          function revFromETag(res) {
            const m = /"?(\d+)"?/.exec(res.headers.get('ETag') || '');
            return m ? parseInt(m[1], 10) : 0;
          }

          // ---------- live indicator, errors ----------

          function setLive(mode, text) {
            const el = $('live');
            setAttr(el, 'data-mode', mode);
            setText($('live-text'), text);
          }

          function showError(text) {
            const el = $('error');
            setText(el, text);
            el.hidden = !text;
          }

          function clearTimer() {
            if (state.timer) clearTimeout(state.timer);
            state.timer = 0;
          }

          function stopLive() {
            clearTimer();
            if (state.watchdog) clearTimeout(state.watchdog);
            state.watchdog = 0;
            if (state.watch) state.watch.abort();
            state.watch = null;
          }

          function liveWanted() {
            return $('live-toggle').checked && document.visibilityState !== 'hidden' && $('auth').hidden;
          }

          // ---------- list ----------

          async function list() {
            const gen = ++state.generation;
            stopLive();
            const params = { limit: state.limit, offset: state.offset, count: 'true', sorters: '-created' };
            const f = filterString();
            if (f) params.filters = f;
            setAttr($('tasks'), 'aria-busy', 'true');
            let res;
            let tasks;
            try {
              res = await api(API + '?' + queryString(params));
              tasks = await res.json();
            } catch (e) {
              if (gen !== state.generation || e.name === 'AbortError') return;
              $('tasks').removeAttribute('aria-busy');
              if (e.status === 401) {
                setText($('summary'), 'A token is needed to list the tasks.');
                return;
              }
              showError('Could not list the tasks: ' + e.message);
              if (e.status === 400) { setLive('error', 'Filters refused'); return; }
              setLive('error', 'Disconnected');
              retryLater(list, e.retryAfter ? e.retryAfter * 1000 : backoff());
              return;
            }
            if (gen !== state.generation) return;
            $('tasks').removeAttribute('aria-busy');
            showError('');
            state.attempt = 0;
            if (!Array.isArray(tasks)) tasks = [];
            const total = parseInt(res.headers.get('X-Total-Count') || '', 10);
            state.total = Number.isFinite(total) ? total : null;
            state.lastEventId = res.headers.get('X-Last-Event-Id') || null;
            state.tasks = new Map();
            state.order = [];
            state.stale.clear();
            state.newer = 0;
            for (const t of tasks) {
              if (!t || typeof t.id !== 'string' || state.tasks.has(t.id)) continue;
              state.tasks.set(t.id, t);
              state.order.push(t.id);
              const known = state.revs.get(t.id);
              // The list carries no revision: keep the highest seen as a floor, not as the copy's own.
              state.revs.set(t.id, { rev: known ? known.rev : 0, exact: false });
              if (t.launcher) state.launchers.add(t.launcher);
            }
            trimRevs();
            if (state.selected && state.tasks.has(state.selected)) refetch(state.selected);
            schedule(null);
            startLive(gen);
          }

          function trimRevs() {
            if (state.revs.size < 5000) return;
            for (const id of [...state.revs.keys()]) if (!state.tasks.has(id)) state.revs.delete(id);
          }

          function backoff() {
            state.attempt += 1;
            const base = Math.min(15000, state.retryMs * Math.pow(2, Math.min(state.attempt - 1, 3)));
            return Math.round(base * (0.8 + Math.random() * 0.4));
          }

          function retryLater(fn, ms) {
            clearTimer();
            state.timer = setTimeout(() => { state.timer = 0; fn(); }, ms);
          }

          function startLive(gen) {
            if (gen !== state.generation) return;
            if (!liveWanted()) {
              if ($('auth').hidden) setLive('paused', $('live-toggle').checked ? 'Paused' : 'Live updates off');
              return;
            }
            if (state.noStream) {
              setLive('polling', 'Refreshing every ' + POLL_MS / 1000 + ' s');
              retryLater(list, POLL_MS);
              return;
            }
            watch(gen);
          }

          // ---------- the live stream (Server-Sent Events over fetch) ----------

          async function watch(gen) {
            stopLive();
            const ctrl = new AbortController();
            state.watch = ctrl;
            const f = filterString();
            const query = f ? queryString({ filters: f }) : '';
            const headers = { Accept: 'text/event-stream' };
            if (state.lastEventId) headers['Last-Event-ID'] = state.lastEventId;
            if (state.attempt > 0) setLive('reconnecting', 'Reconnecting…');
            else setLive('connecting', 'Connecting…');
            let res;
            try {
              res = await api(API + (query ? '?' + query : ''), { signal: ctrl.signal, headers, accept: [204] });
            } catch (e) {
              if (ctrl.signal.aborted || gen !== state.generation || e.status === 401) return;
              if (e.status === 400) {
                // The position is unknown to the server: list again, then watch from the new one.
                state.lastEventId = null;
                retryLater(list, backoff());
                return;
              }
              if (e.status === 410) { list(); return; }
              reconnect(gen, e.retryAfter ? e.retryAfter * 1000 : undefined);
              return;
            }
            if (res.status === 204) {
              setLive('paused', 'The server ended live updates');
              return;
            }
            const type = (res.headers.get('Content-Type') || '').toLowerCase();
            if (!type.startsWith('text/event-stream') || !res.body) {
              try { await res.body.cancel(); } catch (e) { /* already closed */ }
              if (ctrl.signal.aborted || gen !== state.generation) return;
              state.noStream = true;
              startLive(gen);
              return;
            }
            const reader = res.body.getReader();
            const decoder = new TextDecoder();
            const parser = sseParser((event) => onEvent(event, gen));
            armWatchdog(ctrl);
            state.attempt = 0;
            setLive('live', 'Live');
            try {
              for (;;) {
                const { value, done } = await reader.read();
                if (done) break;
                if (gen !== state.generation || ctrl.signal.aborted) return;
                armWatchdog(ctrl);
                if (!parser(decoder.decode(value, { stream: true }))) return;
              }
            } catch (e) {
              if (ctrl.signal.aborted || gen !== state.generation) return;
            }
            if (ctrl.signal.aborted || gen !== state.generation) return;
            reconnect(gen);
          }

          function armWatchdog(ctrl) {
            if (state.watchdog) clearTimeout(state.watchdog);
            // Heartbeats come every ~15 s: a stream silent for longer is dead.
            state.watchdog = setTimeout(() => {
              state.watchdog = 0;
              if (state.watch === ctrl) {
                ctrl.abort();
                state.watch = null;
                reconnect(state.generation);
              }
            }, WATCHDOG_MS);
          }

          function reconnect(gen, delay) {
            if (gen !== state.generation) return;
            if (state.watch) state.watch.abort();
            state.watch = null;
            if (state.watchdog) clearTimeout(state.watchdog);
            state.watchdog = 0;
            if (!liveWanted()) return;
            const ms = delay || backoff();
            setLive('reconnecting', 'Reconnecting in ' + Math.max(1, Math.round(ms / 1000)) + ' s');
            retryLater(() => watch(gen), ms);
          }

          // The WHATWG event-stream format: returns push(text), which answers false once told to stop.
          function sseParser(dispatch) {
            let buffer = '';
            let data = [];
            let event = '';
            let id = null;
            let going = true;
            function line(l) {
              if (l === '') {
                if (id !== null) state.lastEventId = id;
                if (data.length || event) going = dispatch({ type: event || 'message', data: data.join('\n'), id }) !== false;
                data = [];
                event = '';
                return;
              }
              if (l[0] === ':') return;
              const colon = l.indexOf(':');
              const field = colon < 0 ? l : l.slice(0, colon);
              let value = colon < 0 ? '' : l.slice(colon + 1);
              if (value[0] === ' ') value = value.slice(1);
              if (field === 'data') data.push(value);
              else if (field === 'event') event = value;
              else if (field === 'id') { if (!value.includes('\u0000')) id = value; }
              else if (field === 'retry') { if (/^\d+$/.test(value)) state.retryMs = Math.max(500, parseInt(value, 10)); }
            }
            return function push(text) {
              buffer += text;
              let pos = 0;
              let cr = buffer.indexOf('\r');
              while (going && pos < buffer.length) {
                if (cr !== -1 && cr < pos) cr = buffer.indexOf('\r', pos);
                const nl = buffer.indexOf('\n', pos);
                let end;
                let next;
                if (cr !== -1 && (nl === -1 || cr < nl)) {
                  if (cr === buffer.length - 1) break; // a \n may follow in the next chunk
                  end = cr;
                  next = buffer[cr + 1] === '\n' ? cr + 2 : cr + 1;
                } else if (nl !== -1) {
                  end = nl;
                  next = nl + 1;
                } else {
                  break;
                }
                line(buffer.slice(pos, end));
                pos = next;
              }
              buffer = buffer.slice(pos);
              return going;
            };
          }

          function onEvent(event, gen) {
            if (gen !== state.generation) return false;
            state.attempt = 0;
            if (event.type === 'reset') {
              // The server cannot resume from our position: list again and watch from the new one.
              list();
              return false;
            }
            if (event.type !== 'message' || !event.data) return true;
            let change;
            try { change = JSON.parse(event.data); } catch (e) { return true; }
            applyChange(change);
            return true;
          }

          // ---------- changes ----------

          function applyChange(c) {
            if (!c || typeof c.id !== 'string' || !Number.isInteger(c.rev)) return;
            const known = state.revs.get(c.id);
            if (known && c.rev <= known.rev) return;
            const current = state.tasks.get(c.id);
            if (!c.summary || typeof c.summary !== 'object') {
              // A repeated old announcement: the copy we hold may be newer; ask for the task itself.
              if (current) refetch(c.id);
              return;
            }
            let next = null;
            let exact = true;
            const patch = Array.isArray(c.patch) ? c.patch : [];
            if (c.task && typeof c.task === 'object') {
              next = c.task;
            } else if (patch.length === 1 && patch[0] && patch[0].op === 'add' && patch[0].path === '' && patch[0].value) {
              next = patch[0].value;
            } else if (current) {
              const m = timeMs(c.summary.modified);
              const mine = timeMs(current.modified);
              if (m !== null && mine !== null && m < mine) return; // older than our copy
              if (!known || !known.exact || c.rev === known.rev + 1) {
                try { next = applyPatch(current, patch); } catch (e) { next = null; }
              }
              if (!next) {
                next = Object.assign(clone(current), pickSummary(c.summary));
                exact = false;
                refetch(c.id);
              }
            }
            if (current || next || c.id === state.selected) state.revs.set(c.id, { rev: c.rev, exact: exact && next !== null });
            if (current) {
              if (!next) return;
              state.tasks.set(c.id, next);
              const fits = matches(next);
              if (!fits && !state.stale.has(c.id)) {
                state.stale.add(c.id);
                if (state.total !== null) state.total = Math.max(0, state.total - 1);
              } else if (fits && state.stale.has(c.id)) {
                state.stale.delete(c.id);
                if (state.total !== null) state.total += 1;
              }
              schedule(c.id);
              return;
            }
            if (next) {
              arrive(next, c.rev === 1);
            } else if (state.offset === 0 && summaryMayFit(c.summary)) {
              // Not shown, and announced without the whole task: it may belong at the top.
              fetchArrival(c.id, c.rev === 1);
            }
          }

          function pickSummary(s) {
            const out = {};
            for (const k of SUMMARY_KEYS) if (Object.prototype.hasOwnProperty.call(s, k)) out[k] = s[k];
            return out;
          }

          function summaryMayFit(s) {
            const f = state.filters;
            if (f.status === 'running' && s.completionStatus) return false;
            if (f.status && f.status !== 'running' && String(s.completionStatus || '').toUpperCase() !== f.status) return false;
            return withinFirstPage(s);
          }

          function withinFirstPage(t) {
            if (state.order.length < state.limit) return true;
            const last = state.tasks.get(state.order[state.order.length - 1]);
            return !last || newer(t, last);
          }

          // A task not shown that now matches: a creation, or one that came into the filters.
          function arrive(task, created) {
            if (!task || typeof task.id !== 'string' || !matches(task)) return;
            if (task.launcher) state.launchers.add(task.launcher);
            if (state.offset > 0) {
              if (created) {
                state.newer += 1;
                if (state.total !== null) state.total += 1;
                schedule(null);
              }
              return;
            }
            if (!withinFirstPage(task)) {
              // Older than this page's last row: a creation counts; an update of a task on a later page
              // was counted already.
              if (created && state.total !== null) {
                state.total += 1;
                schedule(null);
              }
              return;
            }
            let i = 0;
            while (i < state.order.length && !newer(task, state.tasks.get(state.order[i]))) i += 1;
            state.order.splice(i, 0, task.id);
            state.tasks.set(task.id, task);
            if (state.total !== null) state.total += 1;
            while (state.order.length > state.limit) {
              const gone = state.order.pop();
              state.tasks.delete(gone);
              state.stale.delete(gone);
            }
            schedule(null);
            schedule(task.id);
          }

          async function fetchArrival(id, created) {
            const gen = state.generation;
            try {
              const res = await api(taskUrl(id));
              const task = await res.json();
              if (gen !== state.generation || state.tasks.has(id)) return;
              const rev = revFromETag(res);
              const known = state.revs.get(id);
              if (rev && (!known || rev >= known.rev)) state.revs.set(id, { rev, exact: true });
              arrive(task, created);
            } catch (e) { /* shown at the next list */ }
          }

          async function refetch(id) {
            if (state.refetching.has(id)) return;
            state.refetching.add(id);
            const gen = state.generation;
            try {
              const res = await api(taskUrl(id), { accept: [404] });
              if (res.status === 404) {
                if (id === state.selected && !state.tasks.has(id)) {
                  setText($('d-body'), 'There is no task with this id.');
                  return;
                }
                if (gen === state.generation && state.tasks.has(id)) {
                  state.stale.add(id);
                  schedule(id);
                }
                return;
              }
              const task = await res.json();
              const rev = revFromETag(res);
              const known = state.revs.get(id);
              if (id === state.selected && !state.tasks.has(id)) {
                state.detailTask = task;
                if (rev) state.revs.set(id, { rev, exact: true });
                schedule(id);
                return;
              }
              if (gen !== state.generation || !state.tasks.has(id)) return;
              if (known && rev && rev < known.rev) return;
              state.tasks.set(id, task);
              state.revs.set(id, { rev: rev || (known ? known.rev : 0), exact: rev > 0 });
              schedule(id);
            } catch (e) {
              /* the next change or list repairs it */
            } finally {
              state.refetching.delete(id);
            }
          }

          // ---------- JSON Patch (RFC 6902) on a copy ----------

          function pointer(p) {
            if (p === '') return [];
            if (typeof p !== 'string' || p[0] !== '/') throw new Error('bad pointer');
            return p.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
          }

          function index(key, length) {
            if (!/^(0|[1-9][0-9]*)$/.test(key)) throw new Error('bad index');
            const i = parseInt(key, 10);
            if (i >= length) throw new Error('index out of range');
            return i;
          }

          function resolve(root, path) {
            let cur = root;
            for (const key of path) {
              if (Array.isArray(cur)) cur = cur[index(key, cur.length)];
              else if (cur && typeof cur === 'object' && Object.prototype.hasOwnProperty.call(cur, key)) cur = cur[key];
              else throw new Error('no such path');
            }
            return cur;
          }

          function define(obj, key, value) {
            Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true });
          }

          function put(root, path, value, insert) {
            if (!path.length) return value;
            const parent = resolve(root, path.slice(0, -1));
            const key = path[path.length - 1];
            if (Array.isArray(parent)) {
              if (insert) parent.splice(key === '-' ? parent.length : index(key, parent.length + 1), 0, value);
              else parent[index(key, parent.length)] = value;
            } else if (parent && typeof parent === 'object') {
              if (!insert && !Object.prototype.hasOwnProperty.call(parent, key)) throw new Error('no such path');
              define(parent, key, value);
            } else {
              throw new Error('no such path');
            }
            return root;
          }

          function remove(root, path) {
            if (!path.length) throw new Error('cannot remove the document');
            const parent = resolve(root, path.slice(0, -1));
            const key = path[path.length - 1];
            if (Array.isArray(parent)) parent.splice(index(key, parent.length), 1);
            else if (parent && typeof parent === 'object' && Object.prototype.hasOwnProperty.call(parent, key)) delete parent[key];
            else throw new Error('no such path');
            return root;
          }

          function applyPatch(doc, ops) {
            let root = clone(doc);
            for (const op of ops) {
              if (!op || typeof op !== 'object') throw new Error('bad operation');
              const path = pointer(op.path);
              switch (op.op) {
                case 'add': root = put(root, path, clone(op.value), true); break;
                case 'replace': root = put(root, path, clone(op.value), false); break;
                case 'remove': root = remove(root, path); break;
                case 'move': {
                  const from = pointer(op.from);
                  const value = resolve(root, from);
                  root = remove(root, from);
                  root = put(root, path, value, true);
                  break;
                }
                case 'copy': root = put(root, path, clone(resolve(root, pointer(op.from))), true); break;
                case 'test':
                  if (JSON.stringify(resolve(root, path)) !== JSON.stringify(op.value)) throw new Error('test failed');
                  break;
                default: throw new Error('unknown op');
              }
            }
            if (!root || typeof root !== 'object' || Array.isArray(root)) throw new Error('not a task');
            return root;
          }

          // ---------- rendering, at most once per frame ----------

          const rowEls = new Map();
          const dirty = new Set();
          let redrawAll = false;
          let frame = 0;

          function schedule(id) {
            if (id === null) redrawAll = true;
            else dirty.add(id);
            if (!frame) frame = requestAnimationFrame(render);
          }

          function render() {
            frame = 0;
            const all = redrawAll;
            redrawAll = false;
            const changed = new Set(dirty);
            dirty.clear();
            const tbody = $('rows');
            if (all) {
              const keep = new Set(state.order);
              for (const [id, tr] of rowEls) {
                if (!keep.has(id)) { tr.remove(); rowEls.delete(id); }
              }
              state.order.forEach((id, i) => {
                let tr = rowEls.get(id);
                if (!tr) { tr = createRow(id); rowEls.set(id, tr); }
                updateRow(tr, state.tasks.get(id));
                if (tbody.children[i] !== tr) tbody.insertBefore(tr, tbody.children[i] || null);
              });
              renderLaunchers();
            }
            renderSummary();
            for (const id of changed) {
              const tr = rowEls.get(id);
              const task = state.tasks.get(id);
              if (tr && task) {
                updateRow(tr, task);
                if (!all) flash(tr);
              }
            }
            if (state.selected && (all || changed.has(state.selected))) renderDetail();
          }

          function flash(tr) {
            if (!tr.animate || window.matchMedia('(prefers-reduced-motion: reduce)').matches) return;
            tr.animate([{ backgroundColor: getComputedStyle(document.documentElement).getPropertyValue('--flash') }, { backgroundColor: 'transparent' }], { duration: 900, easing: 'ease-out' });
          }

          function createRow(id) {
            const name = h('button', { type: 'button', class: 'name' });
            const tr = h('tr', { 'data-task-id': id },
              h('td', null, name, h('div', { class: 'sub mono', text: id })),
              h('td', { class: 'mono' }),
              h('td'),
              h('td', null, h('span', { class: 'badge' })),
              h('td', { class: 'progress' }, progressBar(), h('div', { class: 'sub' })),
              h('td', { class: 'time' }),
              h('td', { class: 'time' }),
              h('td', { class: 'time' }));
            return tr;
          }

          function progressBar() {
            return h('div', { class: 'line' },
              h('div', { class: 'bar', role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': '0' },
                h('div', { class: 'fill' })),
              h('span', { class: 'pct' }));
          }

          function updateProgress(line, task, label) {
            const bar = line.querySelector('.bar');
            const value = percent(task);
            const status = statusKey(task);
            setAttr(bar, 'aria-valuenow', value);
            setAttr(bar, 'aria-valuetext', value + '%' + (task.progress ? ', ' + task.progress : ''));
            setAttr(bar, 'aria-label', 'Progress of ' + label);
            setAttr(bar, 'data-status', status);
            const width = value + '%';
            const fill = bar.firstChild;
            if (fill.style.width !== width) fill.style.width = width;
            const raw = task.percentComplete;
            setText(line.querySelector('.pct'), value + '%');
            if (raw !== value) setAttr(line.querySelector('.pct'), 'title', 'percentComplete: ' + raw);
          }

          function setTime(td, iso) {
            const el = td.firstChild;
            if (el && (iso ? el.getAttribute('datetime') === iso : el.tagName !== 'TIME')) return;
            td.replaceChildren();
            if (!iso) { td.append(h('span', { class: 'nil', text: '—' })); return; }
            td.append(h('time', { datetime: iso, title: iso, text: formatTime(iso) }));
          }

          function updateRow(tr, task) {
            if (!task) return;
            const cells = tr.children;
            const status = statusKey(task);
            const name = task.uniqueName || task.id;
            setText(cells[0].firstChild, name);
            setAttr(cells[0].firstChild, 'aria-label', 'Details of ' + name);
            setText(cells[1], task.type || '');
            setText(cells[2], task.launcher || '');
            const badge = cells[3].firstChild;
            setAttr(badge, 'class', 'badge s-' + status);
            setText(badge, STATUS_LABEL[status] || String(task.completionStatus));
            setAttr(tr, 'data-status', status);
            updateProgress(cells[4].firstChild, task, name);
            setText(cells[4].lastChild, task.progress || '');
            setTime(cells[5], task.created);
            setTime(cells[6], task.modified);
            setTime(cells[7], task.completed);
            const stale = state.stale.has(task.id);
            tr.classList.toggle('stale', stale);
            if (stale) setAttr(tr, 'title', 'No longer matches the filters');
            else tr.removeAttribute('title');
          }

          function renderSummary() {
            const shown = state.order.length;
            $('empty').hidden = shown > 0;
            let text;
            if (!shown) text = state.total ? 'No tasks on this page.' : 'No tasks.';
            else {
              const from = state.offset + 1;
              const to = state.offset + shown;
              text = 'Tasks ' + from + '–' + to + (state.total !== null ? ' of ' + state.total : '') + ', newest first';
            }
            const f = filterString();
            setText($('summary'), text + (f ? ' (filters: ' + f + ')' : ''));
            setText($('range'), shown ? 'Page ' + (Math.floor(state.offset / state.limit) + 1) + (state.total !== null ? ' of ' + Math.max(1, Math.ceil(state.total / state.limit)) : '') : '');
            $('prev').disabled = state.offset === 0;
            $('next').disabled = state.total !== null ? state.offset + state.limit >= state.total : shown < state.limit;
            const notice = $('notice');
            notice.hidden = !(state.newer > 0 && state.offset > 0);
            setText($('notice-text'), state.newer === 1 ? '1 new task since this page was listed.' : state.newer + ' new tasks since this page was listed.');
          }

          function renderLaunchers() {
            const list = $('launchers');
            if (list.children.length === state.launchers.size) return;
            list.replaceChildren(...[...state.launchers].sort().map((l) => h('option', { value: l })));
          }

          // ---------- detail ----------

          function openDetail(id) {
            state.selected = id;
            state.detailTask = null;
            writeHash();
            renderDetail();
            const dialog = $('detail');
            if (!dialog.open) dialog.showModal();
            $('d-close').focus();
            refetch(id);
          }

          function closeDetail() {
            const dialog = $('detail');
            if (dialog.open) dialog.close();
          }

          function json(v) {
            return JSON.stringify(v, null, 2);
          }

          function valueNode(v) {
            if (v === null || v === undefined) return h('span', { class: 'nil', text: 'null' });
            if (typeof v === 'object') return h('code', { class: 'cell-json', text: JSON.stringify(v) });
            return String(v);
          }

          function props(entries) {
            const dl = h('dl', { class: 'props' });
            for (const [k, v] of entries) dl.append(h('dt', { text: k }), h('dd', null, v));
            return dl;
          }

          function table(headings, rows) {
            return h('table', null,
              h('thead', null, h('tr', null, ...headings.map((t) => h('th', { scope: 'col', text: t })))),
              h('tbody', null, ...rows.map((cells) => h('tr', null, ...cells.map((c) => h('td', null, c))))));
          }

          function timeNode(iso) {
            if (!iso) return h('span', { class: 'nil', text: 'null' });
            return h('time', { datetime: iso, title: formatTime(iso), text: iso });
          }

          function renderDetail() {
            const id = state.selected;
            const task = state.tasks.get(id) || (state.detailTask && state.detailTask.id === id ? state.detailTask : null);
            setText($('d-title'), task ? task.uniqueName || id : id);
            setText($('d-sub'), id);
            const body = $('d-body');
            if (!task) {
              body.replaceChildren(h('p', { class: 'hint', text: 'Loading this task…' }));
              return;
            }
            const status = statusKey(task);
            const known = state.revs.get(id);
            const head = h('div', { class: 'progress' }, progressBar());
            updateProgress(head.firstChild, task, task.uniqueName || id);
            const parts = [
              h('h3', { text: 'Status' }),
              props([
                ['completionStatus', h('span', { class: 'badge s-' + status, text: STATUS_LABEL[status] || String(task.completionStatus) })],
                ['progress', valueNode(task.progress)],
                ['percentComplete', h('div', null, String(task.percentComplete), head)],
                ['revision', known && known.rev ? String(known.rev) : h('span', { class: 'nil', text: 'unknown' })],
              ]),
              h('h3', { text: 'Properties' }),
              props([
                ['id', h('span', { class: 'mono', text: task.id })],
                ['type', valueNode(task.type)],
                ['uniqueName', valueNode(task.uniqueName)],
                ['description', valueNode(task.description)],
                ['parentName', valueNode(task.parentName)],
                ['launcher', valueNode(task.launcher)],
                ['created', timeNode(task.created)],
                ['launched', timeNode(task.launched)],
                ['modified', timeNode(task.modified)],
                ['completed', timeNode(task.completed)],
              ]),
              h('h3', { text: 'Target' }),
              task.target
                ? props([['id', valueNode(task.target.id)], ['type', valueNode(task.target.type)], ['name', valueNode(task.target.name)]])
                : h('p', { class: 'hint', text: 'No target.' }),
            ];
            const messages = Array.isArray(task.messages) ? task.messages : [];
            parts.push(h('h3', { text: 'Messages (' + messages.length + ')' }));
            if (messages.length) {
              const shown = messages.slice(-MAX_MESSAGES);
              if (shown.length < messages.length) parts.push(h('p', { class: 'hint', text: 'The last ' + shown.length + ' of ' + messages.length + '; the raw JSON below has them all.' }));
              parts.push(table(['Level', 'Message', 'Key', 'Parameters'], shown.map((m) => {
                const level = String((m && m.type) || '').toUpperCase();
                const text = m && m.localizedText && m.localizedText.message;
                return [
                  h('span', { class: 'badge l-' + level.toLowerCase(), text: level || '?' }),
                  text ? String(text) : h('span', { class: 'nil', text: 'no localized text' }),
                  h('span', { class: 'mono', text: (m && m.key) || '' }),
                  valueNode(m ? m.parameters : null),
                ];
              })));
            } else {
              parts.push(h('p', { class: 'hint', text: 'No messages.' }));
            }
            const returns = Array.isArray(task.returns) ? task.returns : [];
            parts.push(h('h3', { text: 'Returns (' + returns.length + ')' }));
            parts.push(returns.length
              ? table(['Name', 'Attribute name'], returns.map((r) => [valueNode(r && r.name), valueNode(r && r.attributeName)]))
              : h('p', { class: 'hint', text: 'No returns.' }));
            const attributes = task.attributes && typeof task.attributes === 'object' ? Object.entries(task.attributes) : [];
            parts.push(h('h3', { text: 'Attributes (' + attributes.length + ')' }));
            parts.push(attributes.length
              ? table(['Name', 'Value'], attributes.map(([k, v]) => [h('span', { class: 'mono', text: k }), valueNode(v)]))
              : h('p', { class: 'hint', text: 'No attributes.' }));
            if (task.taskDefinitionSummary) {
              parts.push(h('h3', { text: 'Task definition' }));
              parts.push(h('pre', { text: json(task.taskDefinitionSummary) }));
            }
            parts.push(h('h3', { text: 'Raw JSON' }));
            parts.push(h('pre', { id: 'd-json', tabindex: '0', 'aria-label': 'Raw JSON of the task', text: json(task) }));
            body.replaceChildren(...parts);
          }

          // ---------- filters, paging, URL ----------

          function readForm() {
            state.filters = {
              status: $('f-status').value,
              type: $('f-type').value,
              launcher: $('f-launcher').value.trim(),
              id: $('f-id').value.trim(),
            };
            state.limit = parseInt($('f-limit').value, 10) || 25;
          }

          function writeForm() {
            $('f-status').value = state.filters.status;
            $('f-type').value = state.filters.type;
            $('f-launcher').value = state.filters.launcher;
            $('f-id').value = state.filters.id;
            $('f-limit').value = String(state.limit);
          }

          function writeHash() {
            const p = new URLSearchParams();
            for (const [k, v] of Object.entries(state.filters)) if (v) p.set(k, v);
            if (state.limit !== 25) p.set('limit', String(state.limit));
            if (state.offset) p.set('offset', String(state.offset));
            if (state.selected) p.set('task', state.selected);
            const hash = p.toString();
            const url = location.pathname + location.search + (hash ? '#' + hash : '');
            if (url !== location.pathname + location.search + location.hash) history.replaceState(null, '', url);
          }

          function readHash() {
            const p = new URLSearchParams(location.hash.slice(1));
            const status = p.get('status') || '';
            const type = p.get('type') || '';
            state.filters = {
              status: status === 'running' || STATUSES.includes(status) ? status : '',
              type: TYPES.includes(type) ? type : '',
              launcher: p.get('launcher') || '',
              id: p.get('id') || '',
            };
            const limit = parseInt(p.get('limit') || '25', 10);
            state.limit = LIMITS.includes(limit) ? limit : 25;
            const offset = parseInt(p.get('offset') || '0', 10);
            state.offset = Number.isFinite(offset) && offset > 0 ? offset : 0;
            return p.get('task');
          }

          function applyFilters(force) {
            const before = JSON.stringify([state.filters, state.limit]);
            readForm();
            if (force !== true && JSON.stringify([state.filters, state.limit]) === before) return;
            state.offset = 0;
            writeHash();
            list();
          }

          let typing = 0;

          function bind() {
            $('filters').addEventListener('submit', (e) => { e.preventDefault(); clearTimeout(typing); applyFilters(true); });
            for (const id of ['f-status', 'f-type', 'f-limit']) $(id).addEventListener('change', applyFilters);
            for (const id of ['f-launcher', 'f-id']) {
              $(id).addEventListener('input', () => { clearTimeout(typing); typing = setTimeout(applyFilters, 600); });
              $(id).addEventListener('change', () => { clearTimeout(typing); applyFilters(); });
            }
            $('f-clear').addEventListener('click', () => {
              clearTimeout(typing);
              for (const id of ['f-status', 'f-type', 'f-launcher', 'f-id']) $(id).value = '';
              applyFilters();
            });
            $('prev').addEventListener('click', () => { state.offset = Math.max(0, state.offset - state.limit); writeHash(); list(); });
            $('next').addEventListener('click', () => { state.offset += state.limit; writeHash(); list(); });
            $('notice-go').addEventListener('click', () => { state.offset = 0; writeHash(); list(); });
            $('rows').addEventListener('click', (e) => {
              const tr = e.target.closest('tr[data-task-id]');
              if (!tr) return;
              if (e.target.closest('button') === null && String(window.getSelection() || '') !== '') return; // selecting text
              openDetail(tr.getAttribute('data-task-id'));
            });
            $('d-close').addEventListener('click', closeDetail);
            $('detail').addEventListener('close', () => {
              const id = state.selected;
              state.selected = null;
              writeHash();
              const tr = id && rowEls.get(id);
              if (tr) tr.querySelector('.name').focus();
            });
            $('detail').addEventListener('click', (e) => { if (e.target === $('detail')) closeDetail(); });
            $('d-copy').addEventListener('click', async () => {
              const task = state.tasks.get(state.selected);
              if (!task) return;
              try {
                await navigator.clipboard.writeText(json(task));
                setText($('d-copy'), 'Copied');
              } catch (e) {
                const pre = $('d-json');
                if (pre) window.getSelection().selectAllChildren(pre);
                setText($('d-copy'), 'Selected');
              }
              setTimeout(() => setText($('d-copy'), 'Copy JSON'), 1500);
            });
            $('auth-form').addEventListener('submit', (e) => {
              e.preventDefault();
              const value = $('auth-token').value.trim().replace(/^Bearer\s+/i, '');
              if (!value) return;
              try { sessionStorage.setItem(TOKEN_KEY, value); } catch (err) { /* private mode: kept for this call only */ }
              $('auth').hidden = true;
              $('signout').hidden = false;
              list();
            });
            $('signout').addEventListener('click', () => {
              try { sessionStorage.removeItem(TOKEN_KEY); } catch (e) { /* nothing kept */ }
              $('signout').hidden = true;
              list();
            });
            $('live-toggle').addEventListener('change', () => {
              if ($('live-toggle').checked) list();
              else { stopLive(); setLive('off', 'Live updates off'); }
            });
            document.addEventListener('visibilitychange', () => {
              if (!$('auth').hidden) return;
              if (document.visibilityState === 'hidden') {
                stopLive();
                if ($('live-toggle').checked) setLive('paused', 'Paused while hidden');
              } else if ($('live-toggle').checked) {
                list();
              }
            });
          }

          bind();
          const selected = readHash();
          writeForm();
          $('signout').hidden = !token();
          list().then(() => { if (selected) openDetail(selected); });
        })();
        </script>
        </body>
        </html>
        """#
}
