// tracegate trace viewer. Plain JavaScript, no build step, no network
// access beyond this origin's /api/ paths.
//
// URLs: /ui/ is the trace list (filters as query parameters);
// /ui/?trace=<32 hex> is one trace, with an optional &span=<16 hex>.
//
// Test hooks (kept stable): list rows are tr[data-trace-id] in
// #trace-list; span rows are .span-row with data-span-id,
// data-parent-span-id, data-depth and data-service, showing the name in
// .span-name; #trace-view gets data-trace-id once a trace is drawn; the
// detail panel is #span-detail with data-span-id; span links are
// a[data-trace-link].
"use strict";

(() => {
  const $ = (sel, root = document) => root.querySelector(sel);
  const FILTERS = ["service", "method", "tool", "backend", "session", "min_duration", "limit", "error"];
  const TRACE_ID = /^[0-9a-fA-F]{32}$/;

  // ---------- formatting ----------

  const ESC = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ESC[c]);

  function fmtDur(ms) {
    if (!(ms > 0)) return "0";
    if (ms < 1) return `${+(ms * 1000).toPrecision(3)}µs`;
    if (ms < 10) return `${ms.toFixed(2)}ms`;
    if (ms < 100) return `${ms.toFixed(1)}ms`;
    if (ms < 1000) return `${Math.round(ms)}ms`;
    if (ms < 60000) return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)}s`;
    const m = Math.floor(ms / 60000);
    return `${m}m ${String(Math.round((ms % 60000) / 1000)).padStart(2, "0")}s`;
  }

  // fmtTick labels an axis tick in the unit of the step, with no
  // trailing zeros: 0, 50ms, 100ms; 0, 250µs, 500µs; 0, 500ms, 1s, 1.5s.
  function fmtTick(ms, step) {
    if (ms === 0) return "0";
    const trim = (x) => String(+x.toFixed(3));
    if (step < 1) return `${trim(ms * 1000)}µs`;
    if (ms < 1000) return `${trim(ms)}ms`;
    return `${trim(ms / 1000)}s`;
  }

  const pad = (n, w = 2) => String(n).padStart(w, "0");
  function fmtClock(d) {
    return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
  }
  function fmtDate(d) {
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  }
  const sameDay = (a, b) => a.toDateString() === b.toDateString();
  const fmtInt = (n) => n.toLocaleString("en-US");

  // breakDots escapes an attribute key and lets it wrap after its dots,
  // so that a long key breaks between namespaces, not inside a word.
  const breakDots = (k) => esc(k).replace(/\./g, ".<wbr>");

  function fmtValue(v) {
    return typeof v === "string" ? v : JSON.stringify(v);
  }

  // ---------- service colours ----------
  // A service keeps its colour everywhere: the palette index comes from a
  // hash of its name. Within one view, a collision moves the later name
  // (in sorted order) to the next free colour, so the legend stays readable.
  // Red is left out of the palette: it means error.

  // Neighbours differ in hue family, so a collision that moves a service
  // to the next colour still gives a clearly different one.
  const PALETTE = [
    "#2f74d0", "#e8871e", "#1f9e74", "#c94f9a", "#0fa3b8",
    "#d4a017", "#8a5cd1", "#7aa32b", "#b0653c", "#5b6b7f",
  ];
  function hash(s) {
    let h = 0x811c9dc5;
    for (let i = 0; i < s.length; i++) {
      h ^= s.charCodeAt(i);
      h = Math.imul(h, 0x01000193);
    }
    return h >>> 0;
  }
  function colourMap(names) {
    const used = new Set();
    const out = new Map();
    for (const n of [...new Set(names)].sort()) {
      let i = hash(n) % PALETTE.length;
      for (let k = 0; k < PALETTE.length && used.has(i); k++) i = (i + 1) % PALETTE.length;
      used.add(i);
      out.set(n, PALETTE[i]);
    }
    return out;
  }
  const colourOf = (map, name) => map.get(name) || PALETTE[hash(name) % PALETTE.length];

  function chip(name, colours, extra = "") {
    return `<span class="chip" data-service="${esc(name)}"><span class="dot" style="background:${colourOf(colours, name)}"></span>${esc(name)}${extra}</span>`;
  }

  // ---------- API ----------

  async function getJSON(url) {
    const res = await fetch(url, { headers: { Accept: "application/json" } });
    let body = null;
    try {
      body = await res.json();
    } catch (_) {
      // fall through with body null
    }
    if (!res.ok) {
      const err = new Error((body && body.error) || `${res.status} ${res.statusText}`);
      err.status = res.status;
      throw err;
    }
    return body;
  }

  // ---------- routing ----------

  function navigate(url, replace = false) {
    if (replace) history.replaceState(null, "", url);
    else history.pushState(null, "", url);
    route();
  }

  function route() {
    const q = new URLSearchParams(location.search);
    const id = q.get("trace");
    if (id) showTrace(id, q.get("span"));
    else showList(q);
  }

  // Same-origin links marked data-nav or data-trace-link stay in the page.
  document.addEventListener("click", (e) => {
    const a = e.target.closest("a[data-nav], a[data-trace-link]");
    if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(a.getAttribute("href"));
  });
  window.addEventListener("popstate", route);

  // ---------- trace list ----------

  const listView = $("#list-view");
  const traceView = $("#trace-view");
  const form = $("#filters");
  const listBody = $("#trace-list tbody");
  const listStatus = $("#list-status");
  const autoRefresh = $("#auto-refresh");
  let listSeq = 0;
  let lastListJSON = "";
  let refreshTimer = 0;

  function filtersFromForm() {
    const q = new URLSearchParams();
    for (const name of FILTERS) {
      const el = form.elements[name];
      if (el.type === "checkbox") {
        if (el.checked) q.set(name, "true");
      } else if (el.value.trim() !== "") {
        q.set(name, el.value.trim());
      }
    }
    return q;
  }

  function formFromFilters(q) {
    for (const name of FILTERS) {
      const el = form.elements[name];
      if (el.type === "checkbox") el.checked = q.get(name) === "true";
      else el.value = q.get(name) || "";
    }
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const q = filtersFromForm();
    navigate(q.toString() ? `/ui/?${q}` : "/ui/");
  });
  $("#reset-filters").addEventListener("click", () => {
    formFromFilters(new URLSearchParams());
    navigate("/ui/");
  });
  form.elements.error.addEventListener("change", () => form.requestSubmit());

  autoRefresh.checked = localStorage.getItem("tracegate.autoRefresh") === "1";
  autoRefresh.addEventListener("change", () => {
    localStorage.setItem("tracegate.autoRefresh", autoRefresh.checked ? "1" : "0");
    scheduleRefresh();
  });

  function scheduleRefresh() {
    clearInterval(refreshTimer);
    refreshTimer = 0;
    if (autoRefresh.checked && !listView.hidden) {
      refreshTimer = setInterval(() => {
        if (!document.hidden && !listView.hidden) loadList(new URLSearchParams(location.search), true);
      }, 2000);
    }
  }

  listBody.addEventListener("click", (e) => {
    const tr = e.target.closest("tr[data-trace-id]");
    if (!tr) return;
    if (e.target.closest("a") && (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0)) return;
    e.preventDefault();
    navigate(`/ui/?trace=${tr.dataset.traceId}`);
  });
  listBody.addEventListener("keydown", (e) => {
    const tr = e.target.closest("tr[data-trace-id]");
    if (!tr) return;
    if (e.key === "Enter") navigate(`/ui/?trace=${tr.dataset.traceId}`);
    else if (e.key === "ArrowDown" && tr.nextElementSibling) { e.preventDefault(); tr.nextElementSibling.focus(); }
    else if (e.key === "ArrowUp" && tr.previousElementSibling) { e.preventDefault(); tr.previousElementSibling.focus(); }
  });

  function showList(q) {
    traceView.hidden = true;
    listView.hidden = false;
    document.title = "tracegate · traces";
    formFromFilters(q);
    lastListJSON = "";
    loadList(q, false);
    loadServices();
    scheduleRefresh();
  }

  async function loadServices() {
    try {
      const body = await getJSON("/api/services");
      $("#service-names").innerHTML = body.services.map((s) => `<option value="${esc(s)}">`).join("");
    } catch (_) {
      // The datalist is a convenience only.
    }
  }

  async function loadList(q, quiet) {
    const seq = ++listSeq;
    if (!quiet) listStatus.textContent = "Loading…";
    let body;
    try {
      body = await getJSON(`/api/traces?${q}`);
    } catch (err) {
      if (seq !== listSeq) return;
      listStatus.textContent = err.message;
      listStatus.classList.add("error");
      return;
    }
    if (seq !== listSeq) return;
    listStatus.classList.remove("error");
    renderStats(body);
    const shown = body.traces.length;
    listStatus.textContent = shown
      ? `Showing ${fmtInt(shown)} of ${fmtInt(body.matched)} matching trace${body.matched === 1 ? "" : "s"}, newest first.`
      : "";
    const json = JSON.stringify(body.traces);
    if (json === lastListJSON) return; // nothing new: keep focus and scroll
    lastListJSON = json;
    listBody.innerHTML = shown ? renderListRows(body.traces) : renderEmpty(q);
    $("#trace-list").dataset.loaded = String(seq);
  }

  function renderStats(body) {
    let s = `${fmtInt(body.stored_traces)} traces · ${fmtInt(body.stored_spans)} / ${fmtInt(body.max_spans)} spans`;
    if (body.dropped_spans) s += ` · ${fmtInt(body.dropped_spans)} dropped`;
    $("#store-stats").textContent = s;
  }

  function renderEmpty(q) {
    const filtered = [...q.keys()].some((k) => FILTERS.includes(k));
    const msg = filtered
      ? "No trace matches these filters."
      : "No traces yet. Send a request through the gateway, for example with <code>tracegate demo -traffic</code>; traces appear here as their spans end.";
    return `<tr class="empty-row"><td colspan="5" class="empty">${msg}</td></tr>`;
  }

  function renderListRows(traces) {
    const now = new Date();
    const all = [];
    for (const t of traces) all.push(...t.services);
    const colours = colourMap(all);
    const maxDur = Math.max(...traces.map((t) => t.duration_ms), 0.001);
    let html = "";
    for (const t of traces) {
      const d = new Date(t.start_time);
      const date = sameDay(d, now) ? "" : `<span class="date">${fmtDate(d)}</span>`;
      const err = t.error
        ? `<span class="err-badge" title="${t.error_count} span${t.error_count === 1 ? "" : "s"} with errors"><span class="err-icon">!</span>${t.error_count} error${t.error_count === 1 ? "" : "s"}</span>`
        : "";
      const pct = Math.max((t.duration_ms / maxDur) * 100, 0.5);
      html += `<tr data-trace-id="${esc(t.trace_id)}" tabindex="0"${t.error ? ' class="err"' : ""}>` +
        `<td class="t-start" title="${esc(t.start_time)}">${date}${fmtClock(d)}</td>` +
        `<td class="t-root"><a href="/ui/?trace=${esc(t.trace_id)}" data-nav>${esc(t.root_name)}</a><span class="svc-of">${esc(t.root_service)}</span>${err}</td>` +
        `<td>${t.services.map((s) => chip(s, colours)).join("")}</td>` +
        `<td class="num">${fmtInt(t.span_count)}</td>` +
        `<td><div class="dur-cell"><div class="dur-track"><div class="dur-fill${t.error ? " err" : ""}" style="width:${pct.toFixed(2)}%"></div></div><span class="dur-num">${fmtDur(t.duration_ms)}</span></div></td>` +
        `</tr>`;
    }
    return html;
  }

  // ---------- trace view ----------

  const head = $("#trace-head");
  const rowsEl = $("#wf-rows");
  const axisEl = $("#wf-axis");
  const waterfall = $("#waterfall");
  const detail = $("#span-detail");
  let traceSeq = 0;
  // The trace on screen.
  let cur = null; // {id, data, rows:[{s, depth, end, kids}], byId, colours, collapsed:Set, sel}

  async function showTrace(id, spanID) {
    clearInterval(refreshTimer);
    listView.hidden = true;
    traceView.hidden = false;
    // Opened from a link, the page has not loaded the list that fills the
    // store's figures in the header: ask for them alone.
    if (!$("#store-stats").textContent) getJSON("/api/traces?limit=1").then(renderStats, () => {});
    if (cur && cur.id === id.toLowerCase()) {
      selectSpan(spanID, false);
      return;
    }
    const seq = ++traceSeq;
    delete traceView.dataset.traceId;
    cur = null;
    rowsEl.innerHTML = "";
    axisEl.innerHTML = "";
    detail.hidden = true;
    detail.innerHTML = "";
    if (!TRACE_ID.test(id)) {
      head.innerHTML = traceMessage(id, "This is not a trace ID: a trace ID is 32 hexadecimal digits.");
      return;
    }
    head.innerHTML = `<div class="crumbs"><a href="/ui/" data-nav>← All traces</a></div><div class="trace-msg">Loading trace <span class="mono">${esc(id)}</span>…</div>`;
    let data;
    try {
      data = await getJSON(`/api/traces/${encodeURIComponent(id)}`);
    } catch (err) {
      if (seq !== traceSeq) return;
      const msg = err.status === 404
        ? "This trace is not in the store. Its spans may not have arrived yet, or it was evicted to make room for newer traces."
        : err.message;
      head.innerHTML = traceMessage(id, msg);
      return;
    }
    if (seq !== traceSeq) return;
    renderTrace(data);
    selectSpan(spanID, false);
  }

  function traceMessage(id, msg) {
    return `<div class="crumbs"><a href="/ui/" data-nav>← All traces</a><span class="spacer"></span>` +
      `<button type="button" data-reload>Reload</button></div>` +
      `<div class="trace-msg"><div class="mono">${esc(id)}</div><p>${esc(msg)}</p></div>`;
  }

  head.addEventListener("click", (e) => {
    if (e.target.closest("[data-reload]")) {
      cur = null;
      route();
    }
  });

  // buildRows orders spans depth first, children by start time. Spans
  // whose parent is not here (it lives in a process that did not export to
  // this store) become roots; parent cycles cannot hang the walk.
  function buildRows(spans) {
    const byId = new Map();
    for (const s of spans) byId.set(s.span_id, { s, kids: [] });
    const roots = [];
    for (const n of byId.values()) {
      const p = n.s.parent_span_id ? byId.get(n.s.parent_span_id) : null;
      if (p && p !== n) p.kids.push(n);
      else roots.push(n);
    }
    const rows = [];
    const seen = new Set();
    const walk = (root) => {
      const stack = [[root, 0]];
      while (stack.length) {
        const [n, depth] = stack.pop();
        if (seen.has(n)) continue;
        seen.add(n);
        const row = { s: n.s, depth, end: 0, kids: n.kids.length, idx: rows.length, parentRow: null };
        rows.push(row);
        n.row = row;
        for (let i = n.kids.length - 1; i >= 0; i--) stack.push([n.kids[i], depth + 1]);
      }
    };
    for (const r of roots) walk(r);
    for (const n of byId.values()) if (!seen.has(n)) walk(n); // cycles
    // end: one past the last row of each subtree (subtrees are contiguous).
    const open = [];
    for (const row of rows) {
      while (open.length && open[open.length - 1].depth >= row.depth) open.pop().end = row.idx;
      open.push(row);
    }
    while (open.length) open.pop().end = rows.length;
    return { rows, byId };
  }

  function niceStep(raw) {
    const p = Math.pow(10, Math.floor(Math.log10(raw)));
    const f = raw / p;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
  }

  function renderTrace(data) {
    const { rows, byId } = buildRows(data.spans);
    const colours = colourMap(data.services);
    const total = Math.max(data.duration_ms, 0.001);
    cur = { id: data.trace_id, data, rows, byId, colours, total, collapsed: new Set(), sel: null };

    const root = rows[0].s;
    const errs = data.spans.filter((s) => s.error).length;
    const perSvc = new Map();
    for (const s of data.spans) perSvc.set(s.service, (perSvc.get(s.service) || 0) + 1);
    let maxDepth = 0;
    for (const r of rows) maxDepth = Math.max(maxDepth, r.depth);
    const start = new Date(data.start_time);
    document.title = `${root.name} · tracegate`;
    head.innerHTML =
      `<div class="crumbs"><a href="/ui/" data-nav>← All traces</a><span class="spacer"></span>` +
      `<button type="button" data-reload title="Fetch the trace again; spans from other processes may arrive late">Reload</button></div>` +
      `<h1>${esc(root.name)}${chip(root.service, colours)}${errs ? `<span class="err-badge"><span class="err-icon">!</span>${errs} error${errs === 1 ? "" : "s"}</span>` : ""}</h1>` +
      `<div class="meta">` +
      `<span>Trace <b class="mono">${esc(data.trace_id)}</b></span>` +
      `<span>Start <b>${fmtDate(start)} ${fmtClock(start)}</b></span>` +
      `<span>Duration <b>${fmtDur(data.duration_ms)}</b></span>` +
      `<span>Spans <b>${fmtInt(data.span_count)}</b></span>` +
      `<span>Depth <b>${maxDepth + 1}</b></span>` +
      `<span>Services <b>${data.services.length}</b></span>` +
      `<span class="${errs ? "err" : ""}">Errors <b>${errs}</b></span>` +
      `</div>` +
      `<div class="legend">${data.services.map((s) => chip(s, colours, ` <span class="n">${perSvc.get(s)}</span>`)).join("")}</div>`;

    // Time axis: about eight ticks at 1-2-5 steps.
    const step = niceStep(total / 8);
    let ticks = "";
    for (let t = 0; t <= total * 1.0001; t += step) {
      ticks += `<span class="tick" style="left:${((t / total) * 100).toFixed(3)}%">${fmtTick(t, step)}</span>`;
    }
    axisEl.innerHTML = ticks;
    waterfall.style.setProperty("--tick", `${((step / total) * 100).toFixed(4)}%`);

    // All rows as one string: one parse, one layout, fast at 1000s of spans.
    const parts = new Array(rows.length);
    for (let i = 0; i < rows.length; i++) parts[i] = rowHTML(rows[i], colours, total);
    rowsEl.innerHTML = parts.join("");
    traceView.dataset.traceId = data.trace_id;
  }

  function rowHTML(r, colours, total) {
    const s = r.s;
    const colour = colourOf(colours, s.service);
    const left = (s.offset_ms / total) * 100;
    const width = (s.duration_ms / total) * 100;
    const indent = Math.min(r.depth, 40) * 14;
    const label = fmtDur(s.duration_ms);
    // The label goes after the bar; the timeline keeps a right margin so
    // that it fits even for a bar that ends the trace.
    const dpos = `left:calc(${(left + width).toFixed(3)}% + 4px)`;
    const tog = r.kids
      ? `<button type="button" class="tog" aria-label="Collapse" aria-expanded="true">▼</button>`
      : `<span class="tog leaf"></span>`;
    return `<div class="span-row${s.error ? " err" : ""}" data-idx="${r.idx}" data-span-id="${esc(s.span_id)}" data-parent-span-id="${esc(s.parent_span_id)}" data-depth="${r.depth}" data-service="${esc(s.service)}" title="${esc(s.name)} · ${esc(s.service)} · ${label}">` +
      `<div class="nm"><span class="ind" style="width:${indent + 4}px"></span>${tog}` +
      `<span class="dot" style="background:${colour}"></span>` +
      (s.error ? `<span class="err-icon" title="error">!</span>` : "") +
      `<span class="svc">${esc(s.service)}</span>` +
      `<span class="span-name">${esc(s.name)}</span>` +
      `</div>` +
      `<div class="tl"><div class="bar${s.error ? " errbar" : ""}" style="left:${left.toFixed(3)}%;width:${width.toFixed(3)}%${s.error ? "" : `;background-color:${colour}`}"></div>` +
      `<span class="d" style="${dpos}">${label}</span></div>` +
      `</div>`;
  }

  function applyCollapse() {
    const els = rowsEl.children;
    let hideUntil = 0;
    for (let i = 0; i < cur.rows.length; i++) {
      const r = cur.rows[i];
      const hide = i < hideUntil;
      if (els[i].hidden !== hide) els[i].hidden = hide;
      const closed = cur.collapsed.has(r.s.span_id);
      if (!hide && closed) hideUntil = Math.max(hideUntil, r.end);
      if (r.kids) {
        const tog = els[i].querySelector(".tog");
        const want = closed ? "▶" : "▼";
        if (tog.textContent !== want) {
          tog.textContent = want;
          tog.setAttribute("aria-expanded", String(!closed));
          tog.setAttribute("aria-label", closed ? "Expand" : "Collapse");
        }
      }
    }
  }

  function toggle(spanID, open) {
    if (!cur) return;
    const isClosed = cur.collapsed.has(spanID);
    if (open === undefined) open = isClosed;
    if (open) cur.collapsed.delete(spanID);
    else cur.collapsed.add(spanID);
    applyCollapse();
  }

  $("#expand-all").addEventListener("click", () => {
    if (!cur) return;
    cur.collapsed.clear();
    applyCollapse();
  });
  $("#collapse-all").addEventListener("click", () => {
    if (!cur) return;
    for (const r of cur.rows) if (r.kids && r.depth > 0) cur.collapsed.add(r.s.span_id);
    applyCollapse();
  });

  rowsEl.addEventListener("click", (e) => {
    const row = e.target.closest(".span-row");
    if (!row) return;
    if (e.target.closest(".tog")) {
      toggle(row.dataset.spanId);
      return;
    }
    selectSpan(row.dataset.spanId, true);
  });

  waterfall.addEventListener("keydown", (e) => {
    if (!cur || !cur.sel) return;
    const i = cur.byId.get(cur.sel).row.idx;
    const els = rowsEl.children;
    const move = (dir) => {
      for (let j = i + dir; j >= 0 && j < els.length; j += dir) {
        if (!els[j].hidden) return selectSpan(els[j].dataset.spanId, true);
      }
    };
    switch (e.key) {
      case "ArrowDown": e.preventDefault(); move(1); break;
      case "ArrowUp": e.preventDefault(); move(-1); break;
      case "ArrowLeft": e.preventDefault(); toggle(cur.sel, false); break;
      case "ArrowRight": e.preventDefault(); toggle(cur.sel, true); break;
      case "Escape": selectSpan(null, true); break;
    }
  });

  function selectSpan(spanID, updateURL) {
    if (!cur) return;
    const prev = cur.sel && cur.byId.get(cur.sel);
    if (prev) rowsEl.children[prev.row.idx].classList.remove("sel");
    const n = spanID && cur.byId.get(spanID);
    cur.sel = n ? spanID : null;
    if (updateURL) {
      const url = `/ui/?trace=${cur.id}${n ? `&span=${spanID}` : ""}`;
      history.replaceState(null, "", url);
    }
    if (!n) {
      detail.hidden = true;
      delete detail.dataset.spanId;
      return;
    }
    // Reveal a span hidden inside a collapsed subtree.
    for (const r of cur.rows) {
      if (cur.collapsed.has(r.s.span_id) && r.idx < n.row.idx && n.row.idx < r.end) cur.collapsed.delete(r.s.span_id);
    }
    applyCollapse();
    const el = rowsEl.children[n.row.idx];
    el.classList.add("sel");
    el.scrollIntoView({ block: "nearest" });
    renderDetail(n.s);
  }

  function kvTable(attrs) {
    const keys = Object.keys(attrs || {}).sort();
    if (!keys.length) return `<div class="none">None</div>`;
    return `<table class="kv"><tbody>${keys.map((k) => {
      const v = fmtValue(attrs[k]);
      return `<tr data-k="${esc(k.toLowerCase())}" data-v="${esc(v.toLowerCase())}"><td class="k">${breakDots(k)}</td><td class="v">${esc(v)}</td></tr>`;
    }).join("")}</tbody></table>`;
  }

  function renderDetail(s) {
    const parent = s.parent_span_id && cur.byId.get(s.parent_span_id);
    const nattrs = Object.keys(s.attributes || {}).length;
    const status = s.status.code === "Error"
      ? `<div class="status-line err"><b>Error</b>${s.status.message ? `: ${esc(s.status.message)}` : ""}</div>`
      : s.error
        ? `<div class="status-line err"><b>Failed</b>: error.type=${esc(fmtValue(s.attributes["error.type"]))}</div>`
        : `<div class="status-line muted">Status: ${esc(s.status.code)}${s.status.message ? `: ${esc(s.status.message)}` : ""}</div>`;
    let html =
      `<div class="d-head"><button type="button" class="close" title="Close (Esc)" aria-label="Close">×</button>` +
      `<h2>${esc(s.name)}</h2>` +
      `<div class="d-meta">${chip(s.service, cur.colours)}<span class="kind">${esc(s.kind)}</span>` +
      `<span>Duration <b>${fmtDur(s.duration_ms)}</b></span><span>Starts at <b>${fmtDur(s.offset_ms)}</b></span></div>` +
      status + `</div>`;
    html +=
      `<section><table class="kv"><tbody>` +
      `<tr><td class="k">span ID</td><td class="v">${esc(s.span_id)}</td></tr>` +
      `<tr><td class="k">parent span ID</td><td class="v">${s.parent_span_id ? esc(s.parent_span_id) + (parent ? "" : " (not in store)") : "none (root)"}</td></tr>` +
      `<tr><td class="k">start</td><td class="v">${esc(s.start_time)}</td></tr>` +
      `<tr><td class="k">end</td><td class="v">${esc(s.end_time)}</td></tr>` +
      `</tbody></table></section>`;
    html +=
      `<section class="attrs"><h3>Attributes (${nattrs})<input type="search" class="attr-filter" placeholder="Filter keys and values" aria-label="Filter attributes"></h3>${kvTable(s.attributes)}</section>`;
    html += `<section><h3>Events (${s.events.length})</h3>`;
    html += s.events.length
      ? s.events.map((ev) =>
        `<div class="ev${ev.name === "exception" ? " exception" : ""}"><div class="ev-h"><b>${esc(ev.name)}</b><span class="t">+${fmtDur(ev.offset_ms - s.offset_ms)}</span></div>${Object.keys(ev.attributes || {}).length ? kvTable(ev.attributes) : ""}</div>`).join("")
      : `<div class="none">None</div>`;
    html += `</section><section><h3>Links (${s.links.length})</h3>`;
    html += s.links.length
      ? s.links.map((l) => {
        const href = `/ui/?trace=${esc(l.trace_id)}&span=${esc(l.span_id)}`;
        const target = l.present
          ? `<a href="${href}" data-trace-link="${esc(l.trace_id)}" title="Open the linked trace">${esc(l.trace_id)}</a>`
          : `<span class="mono">${esc(l.trace_id)}</span><span class="gone">not in store</span>`;
        return `<div class="lk"><div class="lk-h">${target}</div>` +
          `<table class="kv"><tbody><tr><td class="k">span ID</td><td class="v">${esc(l.span_id)}</td></tr></tbody></table>` +
          `${Object.keys(l.attributes || {}).length ? kvTable(l.attributes) : ""}</div>`;
      }).join("")
      : `<div class="none">None</div>`;
    html += `</section>`;
    const q = detail.querySelector(".attr-filter");
    const keep = q ? q.value : "";
    detail.innerHTML = html;
    detail.dataset.spanId = s.span_id;
    detail.hidden = false;
    if (keep) {
      const f = detail.querySelector(".attr-filter");
      f.value = keep;
      filterAttrs(f);
    }
  }

  function filterAttrs(input) {
    const q = input.value.trim().toLowerCase();
    for (const tr of input.closest("section").querySelectorAll("tr[data-k]")) {
      tr.hidden = q !== "" && !tr.dataset.k.includes(q) && !tr.dataset.v.includes(q);
    }
  }

  detail.addEventListener("input", (e) => {
    if (e.target.classList.contains("attr-filter")) filterAttrs(e.target);
  });
  detail.addEventListener("click", (e) => {
    if (e.target.closest(".close")) selectSpan(null, true);
  });
  route();
})();
