// tracegate trace viewer. Plain JavaScript, no build step, no network
// access beyond this origin's /api/ paths.
//
// URLs: /ui/ is the trace list (filters as query parameters);
// /ui/?trace=<32 hex> is one trace, with an optional &span=<16 hex>.
//
// Test hooks (kept stable): list rows are tr[data-trace-id] in
// #trace-list; span rows are .span-row with data-span-id,
// data-parent-span-id, data-depth and data-service, showing the name in
// .span-name, and data-idx, which orders them (the page may hold them in
// another order); #trace-view gets data-trace-id once a trace is drawn; the
// detail panel is #span-detail with data-span-id; span links are
// a[data-trace-link].
"use strict";

(() => {
  const $ = (sel, root = document) => root.querySelector(sel);
  // Form fields that map one to one to /api/traces parameters; attr,
  // start, end and sort are converted (see filtersFromForm).
  const FILTERS = ["service", "method", "tool", "backend", "session", "min_duration", "max_duration", "lookback", "limit", "error"];
  const SEARCH_PARAMS = [...FILTERS, "attr", "start", "end", "sort", "order"];
  const TRACE_ID = /^[0-9a-fA-F]{32}$/;

  // ---------- formatting ----------

  const ESC = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ESC[c]);

  // Durations read as people write them: 850 µs, 1.5 ms, 12.3 ms, 2.04 s.
  function fmtDur(ms) {
    if (!(ms > 0)) return "0";
    if (ms < 1) return `${+(ms * 1000).toPrecision(3)} µs`;
    if (ms < 10) return `${+ms.toFixed(2)} ms`;
    if (ms < 100) return `${+ms.toFixed(1)} ms`;
    if (ms < 1000) return `${Math.round(ms)} ms`;
    if (ms < 60000) return `${+(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
    const m = Math.floor(ms / 60000);
    return `${m}m ${String(Math.round((ms % 60000) / 1000)).padStart(2, "0")}s`;
  }

  // fmtTick labels an axis tick in the largest unit the value reaches,
  // with no trailing zeros: 0, 250 µs, 500 µs, 750 µs, 1 ms, 1.25 ms; 0,
  // 500 ms, 1 s, 1.5 s.
  function fmtTick(ms) {
    if (ms === 0) return "0";
    const trim = (x) => String(+x.toFixed(3));
    if (ms < 1) return `${trim(ms * 1000)} µs`;
    if (ms < 1000) return `${trim(ms)} ms`;
    return `${trim(ms / 1000)} s`;
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

  // The views: one section each; route shows one and hides the others.
  const VIEWS = ["list", "trace", "compare", "sessions", "tools", "backends"];
  function showOnly(name) {
    for (const v of VIEWS) $(`#${v}-view`).hidden = v !== name;
    const tab = name === "list" || name === "trace" || name === "compare" ? "traces" : name;
    for (const a of document.querySelectorAll("#tabs a")) a.classList.toggle("on", a.dataset.tab === tab);
  }

  function route() {
    const q = new URLSearchParams(location.search);
    const id = q.get("trace");
    const view = q.get("view");
    if (id) showTrace(id, q.get("span"));
    else if (q.get("compare")) showCompare(q.get("compare"));
    else if (view === "sessions") showSessions(q);
    else if (view === "tools") showTools(q);
    else if (view === "backends") showBackends(q);
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

  // parseAttrs reads "key=value key2=\"a value\"" into ["key=value", "key2=a value"].
  function parseAttrs(text) {
    const out = [];
    const re = /\s*([^\s=]+)=(?:"((?:[^"\\]|\\.)*)"|(\S*))/gy;
    let m;
    while ((m = re.exec(text)) !== null) {
      out.push(`${m[1]}=${m[2] !== undefined ? m[2].replace(/\\(.)/g, "$1") : m[3]}`);
      if (re.lastIndex >= text.length) break;
    }
    const rest = text.slice(re.lastIndex).trim();
    if (rest) out.push(rest); // not key=value: the API says why
    return out;
  }
  function formatAttrs(list) {
    return list.map((a) => {
      const i = a.indexOf("=");
      const k = a.slice(0, i), v = a.slice(i + 1);
      return /[\s"]/.test(v) || v === "" ? `${k}="${v.replace(/["\\]/g, "\\$&")}"` : `${k}=${v}`;
    }).join(" ");
  }
  // datetime-local inputs hold local time without a zone.
  const toISO = (local) => new Date(local).toISOString();
  function toLocal(iso) {
    const d = new Date(iso);
    if (isNaN(d)) return "";
    return `${fmtDate(d)}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

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
    for (const a of parseAttrs(form.elements.attr.value)) q.append("attr", a);
    for (const name of ["start", "end"]) {
      const v = form.elements[name].value;
      if (v) q.set(name, toISO(v));
    }
    const [sort, order] = form.elements.sort.value.split(":");
    if (sort) q.set("sort", sort);
    if (order) q.set("order", order);
    return q;
  }

  function formFromFilters(q) {
    for (const name of FILTERS) {
      const el = form.elements[name];
      if (el.type === "checkbox") el.checked = q.get(name) === "true";
      else el.value = q.get(name) || "";
    }
    form.elements.attr.value = formatAttrs(q.getAll("attr"));
    form.elements.start.value = q.get("start") ? toLocal(q.get("start")) : "";
    form.elements.end.value = q.get("end") ? toLocal(q.get("end")) : "";
    const sort = q.get("sort") ? q.get("sort") + (q.get("order") === "asc" ? ":asc" : "") : (q.get("order") === "asc" ? "start:asc" : "");
    form.elements.sort.value = sort;
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
  form.elements.sort.addEventListener("change", () => form.requestSubmit());
  form.elements.lookback.addEventListener("change", () => form.requestSubmit());

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

  // Two checked traces can be compared.
  const checked = new Set();
  const compareBtn = $("#compare-btn");
  listBody.addEventListener("change", (e) => {
    const box = e.target.closest("input.cmp");
    if (!box) return;
    if (box.checked) checked.add(box.dataset.traceId);
    else checked.delete(box.dataset.traceId);
    while (checked.size > 2) checked.delete(checked.values().next().value);
    for (const b of listBody.querySelectorAll("input.cmp")) b.checked = checked.has(b.dataset.traceId);
    compareBtn.hidden = checked.size !== 2;
  });
  compareBtn.addEventListener("click", () => {
    if (checked.size === 2) navigate(`/ui/?compare=${[...checked].join(",")}`);
  });

  listBody.addEventListener("click", (e) => {
    if (e.target.closest("input.cmp")) return;
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
    showOnly("list");
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
    if (!quiet) {
      listStatus.textContent = "Loading…";
      delete $("#trace-list").dataset.loaded; // until this search's rows are drawn
    }
    let body;
    try {
      body = await getJSON(`/api/traces?${q}`);
    } catch (err) {
      if (seq !== listSeq) return;
      listStatus.textContent = err.message;
      listStatus.classList.add("error");
      listBody.innerHTML = "";
      $("#scatter").innerHTML = "";
      $("#trace-list").dataset.loaded = String(seq);
      return;
    }
    if (seq !== listSeq) return;
    listStatus.classList.remove("error");
    renderStats(body);
    const shown = body.traces.length;
    const order = { start: "newest first", duration: "longest first", spans: "most spans first" }[q.get("sort") || "start"];
    const asc = { start: "oldest first", duration: "shortest first", spans: "fewest spans first" }[q.get("sort") || "start"];
    listStatus.textContent = shown
      ? `Showing ${fmtInt(body.offset + 1)}–${fmtInt(body.offset + shown)} of ${fmtInt(body.matched)} matching trace${body.matched === 1 ? "" : "s"}, ${q.get("order") === "asc" ? asc : order}.`
      : "";
    renderPager(q, body);
    loadScatter(q, seq);
    const json = JSON.stringify(body.traces);
    if (json === lastListJSON) return; // nothing new: keep focus and scroll
    lastListJSON = json;
    listBody.innerHTML = shown ? renderListRows(body.traces) : renderEmpty(q);
    $("#trace-list").dataset.loaded = String(seq);
  }

  // ---------- pages ----------

  function renderPager(q, body) {
    const limit = +(q.get("limit") || 100);
    const off = body.offset;
    $("#page-prev").disabled = off === 0;
    $("#page-next").disabled = off + body.traces.length >= body.matched;
    $("#pager").hidden = body.matched <= limit && off === 0;
    $("#page-info").textContent = body.matched ? `Page ${Math.floor(off / limit) + 1} of ${Math.max(1, Math.ceil(body.matched / limit))}` : "";
  }
  function page(dir) {
    const q = new URLSearchParams(location.search);
    const limit = +(q.get("limit") || 100);
    const off = Math.max(0, +(q.get("offset") || 0) + dir * limit);
    if (off) q.set("offset", String(off));
    else q.delete("offset");
    navigate(`/ui/?${q}`);
  }
  $("#page-prev").addEventListener("click", () => page(-1));
  $("#page-next").addEventListener("click", () => page(1));

  // ---------- scatter plot ----------
  // Every matching trace (up to 1000, the newest) as a dot: start time
  // across, duration up (log scale), errors in red. A click opens it.

  async function loadScatter(q, seq) {
    const sq = new URLSearchParams(q);
    for (const k of ["offset", "limit", "sort", "order"]) sq.delete(k);
    sq.set("limit", "1000");
    let body;
    try {
      body = await getJSON(`/api/traces?${sq}`);
    } catch (_) {
      return;
    }
    if (seq !== listSeq) return;
    renderScatter(body.traces);
  }

  function renderScatter(traces) {
    scatterTraces = traces;
    const el = $("#scatter");
    if (!traces.length) {
      el.innerHTML = "";
      el.dataset.dots = "0";
      return;
    }
    // Drawn at the element's own pixel size, so that dots stay round.
    // (The element itself has no width while it is empty.)
    const W = Math.max(el.parentElement.clientWidth - 32, 300), H = 120, padL = 56, padR = 12, padT = 8, padB = 20;
    const ts = traces.map((t) => Date.parse(t.start_time));
    const t0 = Math.min(...ts), t1 = Math.max(...ts, t0 + 1);
    const ds = traces.map((t) => Math.max(t.duration_ms, 0.001));
    const lo = Math.log10(Math.min(...ds)), hi = Math.max(Math.log10(Math.max(...ds)), lo + 1);
    const x = (t) => padL + ((t - t0) / (t1 - t0)) * (W - padL - padR);
    const y = (d) => H - padB - ((Math.log10(d) - lo) / (hi - lo)) * (H - padT - padB);
    let svg = `<svg width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img">`;
    for (const v of [lo, (lo + hi) / 2, hi]) {
      const ms = Math.pow(10, v);
      svg += `<line class="grid" x1="${padL}" x2="${W - padR}" y1="${y(ms)}" y2="${y(ms)}"/><text class="lbl" x="${padL - 4}" y="${y(ms) + 3}" text-anchor="end">${fmtDur(ms)}</text>`;
    }
    svg += `<text class="lbl" x="${padL}" y="${H - 4}">${fmtClock(new Date(t0))}</text><text class="lbl" x="${W - padR}" y="${H - 4}" text-anchor="end">${fmtClock(new Date(t1))}</text>`;
    traces.forEach((t, i) => {
      svg += `<circle class="dot${t.error ? " err" : ""}" data-trace-id="${esc(t.trace_id)}" cx="${x(ts[i]).toFixed(1)}" cy="${y(ds[i]).toFixed(1)}" r="4"><title>${esc(t.root_name)} · ${fmtDur(t.duration_ms)}</title></circle>`;
    });
    el.innerHTML = svg + "</svg>";
    el.dataset.dots = String(traces.length);
  }
  let scatterTraces = null;
  window.addEventListener("resize", () => { if (scatterTraces && !listView.hidden) renderScatter(scatterTraces); });
  $("#scatter").addEventListener("click", (e) => {
    const dot = e.target.closest("circle[data-trace-id]");
    if (dot) navigate(`/ui/?trace=${dot.dataset.traceId}`);
  });

  function renderStats(body) {
    const mb = (n) => `${+(n / (1 << 20)).toFixed(n < 10 << 20 ? 1 : 0)} MB`;
    let s = `${fmtInt(body.stored_traces)} traces · ${fmtInt(body.stored_spans)} / ${fmtInt(body.max_spans)} spans`;
    if (body.max_bytes) s += ` · ${mb(body.stored_bytes)} / ${mb(body.max_bytes)}`;
    if (body.dropped_spans) s += ` · ${fmtInt(body.dropped_spans)} dropped`;
    $("#store-stats").textContent = s;
  }

  function renderEmpty(q) {
    const filtered = [...q.keys()].some((k) => SEARCH_PARAMS.includes(k) && k !== "limit" && k !== "sort" && k !== "order");
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
        `<td class="t-start" title="${esc(t.start_time)}"><input type="checkbox" class="cmp" data-trace-id="${esc(t.trace_id)}" title="Check two traces to compare them"${checked.has(t.trace_id) ? " checked" : ""}>${date}${fmtClock(d)}</td>` +
        `<td class="t-root"><div class="rc"><a href="/ui/?trace=${esc(t.trace_id)}" data-nav>${esc(t.root_name)}</a><span class="svc-of">${esc(t.root_service)}</span>${err}</div></td>` +
        `<td>${t.services.map((s) => chip(s, colours)).join("")}</td>` +
        `<td class="num">${fmtInt(t.span_count)}</td>` +
        `<td><div class="dur-cell"><div class="dur-track"><div class="dur-fill${t.error ? " err" : ""}" style="width:${pct.toFixed(2)}%"></div></div><span class="dur-num">${fmtDur(t.duration_ms)}</span></div></td>` +
        `</tr>`;
    }
    return html;
  }

  // ---------- comparison ----------
  // Two traces side by side, span by span: spans are matched by their path
  // (service and name of each ancestor, then their own), so that the same
  // call in two requests lines up; time is the sum over matched spans.

  async function showCompare(ids) {
    clearInterval(refreshTimer);
    showOnly("compare");
    document.title = "tracegate · compare";
    const view = $("#compare-view");
    delete view.dataset.loaded;
    const head = $("#compare-head");
    const tbody = $("#compare-table tbody");
    tbody.innerHTML = "";
    const [a, b] = ids.split(",");
    if (!TRACE_ID.test(a || "") || !TRACE_ID.test(b || "")) {
      head.innerHTML = `<div class="trace-msg">compare= takes two trace IDs of 32 hexadecimal digits, separated by a comma.</div>`;
      return;
    }
    head.innerHTML = `<div class="trace-msg">Loading…</div>`;
    let A, B;
    try {
      [A, B] = await Promise.all([getJSON(`/api/traces/${a}`), getJSON(`/api/traces/${b}`)]);
    } catch (err) {
      head.innerHTML = `<div class="crumbs"><a href="/ui/" data-nav>← All traces</a></div><div class="trace-msg">${esc(err.message)}</div>`;
      return;
    }
    const side = (t, label) => `<span class="cmp-side"><b>${label}</b> <a href="/ui/?trace=${esc(t.trace_id)}" data-nav data-trace-id="${esc(t.trace_id)}">${esc(buildRows(t.spans).rows[0].s.name)}</a> <span class="muted">${fmtDur(t.duration_ms)} · ${fmtInt(t.span_count)} spans</span></span>`;
    head.innerHTML = `<div class="crumbs"><a href="/ui/" data-nav>← All traces</a></div><h1>Comparison</h1><div class="meta">${side(A, "A")}${side(B, "B")}<span>B − A <b class="${B.duration_ms >= A.duration_ms ? "slower" : "faster"}">${fmtDelta(B.duration_ms - A.duration_ms)}</b></span></div>`;
    const groups = new Map();
    const add = (t, which) => {
      const { rows } = buildRows(t.spans);
      const path = [];
      for (const r of rows) {
        path.length = r.depth;
        path.push(`${r.s.service} ${r.s.name}`);
        const key = path.join(" › ");
        let g = groups.get(key);
        if (!g) groups.set(key, g = { key, depth: r.depth, label: path[path.length - 1], n: [0, 0], ms: [0, 0], err: [0, 0] });
        g.n[which]++;
        g.ms[which] += r.s.duration_ms;
        if (r.s.error) g.err[which]++;
      }
    };
    add(A, 0);
    add(B, 1);
    tbody.innerHTML = [...groups.values()].map((g) => {
      const only = !g.n[0] ? " only-b" : !g.n[1] ? " only-a" : "";
      const d = g.ms[1] - g.ms[0];
      return `<tr class="cmp-row${only}" data-key="${esc(g.key)}">` +
        `<td class="t-root"><div class="rc" style="padding-left:${Math.min(g.depth, 30) * 14}px"><span class="nm">${esc(g.label)}</span>${only ? `<span class="kind-tag">${only === " only-a" ? "only in A" : "only in B"}</span>` : ""}</div></td>` +
        `<td class="num">${g.n[0] || "–"}${g.err[0] ? ` <span class="err-link">(${g.err[0]} failed)</span>` : ""}</td><td class="num">${g.n[0] ? fmtDur(g.ms[0]) : "–"}</td>` +
        `<td class="num">${g.n[1] || "–"}${g.err[1] ? ` <span class="err-link">(${g.err[1]} failed)</span>` : ""}</td><td class="num">${g.n[1] ? fmtDur(g.ms[1]) : "–"}</td>` +
        `<td class="num delta ${d > 0 ? "slower" : d < 0 ? "faster" : ""}" data-delta-ms="${d}">${fmtDelta(d)}</td></tr>`;
    }).join("");
    view.dataset.loaded = "1";
  }

  function fmtDelta(ms) {
    if (Math.abs(ms) < 0.0005) return "0";
    return `${ms > 0 ? "+" : "−"}${fmtDur(Math.abs(ms))}`;
  }

  // ---------- MCP views ----------
  // Sessions, tools and backends: each a table over its /api/ path,
  // refreshed with the list's auto-refresh setting.

  let viewSeq = 0;
  async function loadView(name, url, render) {
    const seq = ++viewSeq;
    const status = $(`#${name}-status`);
    if (!status.textContent) status.textContent = "Loading…";
    let body;
    try {
      body = await getJSON(url);
    } catch (err) {
      if (seq !== viewSeq) return;
      status.textContent = err.message;
      status.classList.add("error");
      return;
    }
    if (seq !== viewSeq) return;
    status.classList.remove("error");
    render(body, status);
    $(`#${name}-view`).dataset.loaded = String(seq);
    if (!$("#store-stats").textContent) getJSON("/api/traces?limit=1").then(renderStats, () => {});
  }

  function viewRefresh(fn) {
    clearInterval(refreshTimer);
    if (autoRefresh.checked) refreshTimer = setInterval(() => { if (!document.hidden) fn(); }, 2000);
  }

  // A trace list URL for the given search parameters.
  function searchURL(params) {
    const q = new URLSearchParams();
    for (const [k, v] of params) if (v !== undefined && v !== "") q.append(k, v);
    return `/ui/?${q}`;
  }

  function showSessions(q) {
    showOnly("sessions");
    document.title = "tracegate · sessions";
    const load = () => loadView("sessions", `/api/sessions?${q}`, renderSessions);
    load();
    viewRefresh(load);
  }

  // A session's traces: stateful ones by session ID; a stateless client
  // by its name and address.
  function sessionTracesURL(se) {
    if (!se.stateless) return searchURL([["session", se.session_id]]);
    const p = [];
    if (se.client_name) p.push(["attr", `tracegate.client.name=${se.client_name}`]);
    if (se.client_address) p.push(["attr", `client.address=${se.client_address}`]);
    if (se.identity) p.push(["attr", `enduser.id=${se.identity}`]);
    return searchURL(p);
  }

  function renderSessions(body, status) {
    status.textContent = body.matched
      ? `${fmtInt(body.matched)} session${body.matched === 1 ? "" : "s"} and stateless client${body.matched === 1 ? "" : "s"}, most recent first${body.sessions.length < body.matched ? `; showing ${fmtInt(body.sessions.length)}` : ""}.`
      : "";
    const tbody = $("#session-list tbody");
    if (!body.sessions.length) {
      tbody.innerHTML = `<tr class="empty-row"><td colspan="7" class="empty">No client sessions in the store yet. Sessions appear as clients send requests through the gateway.</td></tr>`;
      return;
    }
    tbody.innerHTML = body.sessions.map((se) => {
      const client = se.client_name ? `${esc(se.client_name)}${se.client_version ? ` <span class="muted">${esc(se.client_version)}</span>` : ""}` : `<span class="muted">unknown client</span>`;
      const who = [se.identity && `<span class="chip">${esc(se.identity)}</span>`, se.client_address && `<span class="muted">${esc(se.client_address)}</span>`].filter(Boolean).join(" ");
      const sid = se.stateless ? `<span class="kind-tag">stateless</span>` : `<span class="mono" title="${esc(se.session_id)}">${esc(se.session_id.length > 18 ? se.session_id.slice(0, 16) + "…" : se.session_id)}</span>`;
      const total = Math.max(se.duration_ms, 0.001);
      const dots = se.timeline.map((c) =>
        `<a class="tl-dot${c.error ? " err" : ""}" href="/ui/?trace=${esc(c.trace_id)}&span=${esc(c.span_id)}" data-nav data-trace-id="${esc(c.trace_id)}" style="left:${((c.offset_ms / total) * 100).toFixed(2)}%" title="${esc(c.name)} · ${fmtDur(c.duration_ms)}${c.error ? " · error" : ""}"></a>`).join("");
      return `<tr data-session="${esc(se.key)}" data-href="${esc(sessionTracesURL(se))}" tabindex="0"${se.errors ? ' class="err"' : ""}>` +
        `<td class="t-client"><div class="rc"><span class="nm">${client}</span> ${who}</div></td>` +
        `<td>${sid} ${se.protocol_version ? `<span class="muted">${esc(se.protocol_version)}</span>` : ""}</td>` +
        `<td class="num"><a href="${esc(sessionTracesURL(se))}" data-nav class="traces-link" title="Open this session's ${se.traces} trace${se.traces === 1 ? "" : "s"}">${fmtInt(se.requests)}</a></td>` +
        `<td class="num">${se.errors ? `<a class="err-link" href="${esc(searchURL([...new URLSearchParams(sessionTracesURL(se).slice(5)), ["error", "true"]]))}" data-nav>${fmtInt(se.errors)}</a>` : "0"}</td>` +
        `<td>${fmtDur(se.duration_ms)}</td>` +
        `<td class="t-start" title="${esc(se.last_seen)}">${fmtClock(new Date(se.last_seen))}</td>` +
        `<td class="c-timeline"><div class="timeline">${dots}</div></td></tr>`;
    }).join("");
  }

  // A click on a row opens its traces; links and dots inside go where
  // they point.
  for (const sel of ["#session-list tbody", "#tool-list tbody"]) {
    $(sel).addEventListener("click", (e) => {
      if (e.target.closest("a")) return;
      const tr = e.target.closest("tr[data-href]");
      if (tr) navigate(tr.dataset.href);
    });
    $(sel).addEventListener("keydown", (e) => {
      const tr = e.target.closest("tr[data-href]");
      if (tr && e.key === "Enter") navigate(tr.dataset.href);
    });
  }

  let toolsBody = null;
  let toolSort = { key: "calls", asc: false };

  function showTools(q) {
    showOnly("tools");
    document.title = "tracegate · tools";
    const load = () => loadView("tools", `/api/tools?${q}`, (body, status) => {
      toolsBody = body;
      status.textContent = body.tools.length
        ? `${body.tools.length} tool${body.tools.length === 1 ? "" : "s"} over the store's window, ${fmtClock(new Date(body.window_start))} to ${fmtClock(new Date(body.window_end))}. Click a row for its slowest traces, an error rate for its failures.`
        : "";
      renderTools();
    });
    load();
    viewRefresh(load);
  }

  function sparkline(counts, errs) {
    const W = 120, H = 22, n = counts.length;
    const top = Math.max(...counts, 1);
    const pt = (c, i) => `${((i + 0.5) / n * W).toFixed(1)},${(H - 2 - (c / top) * (H - 4)).toFixed(1)}`;
    let svg = `<svg class="spark" viewBox="0 0 ${W} ${H}" preserveAspectRatio="none"><polyline points="${counts.map(pt).join(" ")}"/>`;
    errs.forEach((c, i) => { if (c) svg += `<rect class="e" x="${(i / n * W).toFixed(1)}" y="${(H - 2 - (c / top) * (H - 4)).toFixed(1)}" width="${(W / n).toFixed(1)}" height="${((c / top) * (H - 4)).toFixed(1)}"/>`; });
    return svg + "</svg>";
  }

  function renderTools() {
    const tbody = $("#tool-list tbody");
    const body = toolsBody;
    if (!body) return;
    if (!body.tools.length) {
      tbody.innerHTML = `<tr class="empty-row"><td colspan="9" class="empty">No tool calls in the store yet. Tools appear here as the gateway calls its backends.</td></tr>`;
      return;
    }
    const { key, asc } = toolSort;
    const rows = [...body.tools].sort((a, b) => {
      const x = a[key], y = b[key];
      const c = typeof x === "string" ? x.localeCompare(y) : x - y;
      return (asc ? c : -c) || a.tool.localeCompare(b.tool);
    });
    for (const th of document.querySelectorAll("#tool-list th[data-sort]")) {
      th.classList.toggle("sorted", th.dataset.sort === key);
      th.dataset.dir = th.dataset.sort === key ? (asc ? "asc" : "desc") : "";
    }
    tbody.innerHTML = rows.map((t) => {
      const slow = searchURL([["tool", t.tool], ["backend", t.backend], ["sort", "duration"]]);
      const failing = searchURL([["tool", t.tool], ["backend", t.backend], ["error", "true"]]);
      return `<tr data-tool="${esc(t.tool)}" data-backend="${esc(t.backend)}" data-href="${esc(slow)}" tabindex="0"${t.errors ? ' class="err"' : ""}>` +
        `<td class="t-root"><div class="rc"><a href="${esc(slow)}" data-nav title="Slowest traces">${esc(t.tool)}</a></div></td>` +
        `<td>${esc(t.backend)}</td><td class="num">${fmtInt(t.calls)}</td><td class="num">${+t.rate_per_min.toFixed(t.rate_per_min < 10 ? 2 : 0)}</td>` +
        `<td class="num">${t.errors ? `<a class="err-link" href="${esc(failing)}" data-nav title="Failing traces">${+t.error_pct.toFixed(1)}%</a>` : "0%"}</td>` +
        `<td class="num">${fmtDur(t.p50_ms)}</td><td class="num">${fmtDur(t.p95_ms)}</td><td class="num">${fmtDur(t.p99_ms)}</td>` +
        `<td class="c-spark">${sparkline(t.spark, t.spark_errors)}</td></tr>`;
    }).join("");
  }

  $("#tool-list thead").addEventListener("click", (e) => {
    const th = e.target.closest("th[data-sort]");
    if (!th) return;
    const key = th.dataset.sort;
    toolSort = { key, asc: toolSort.key === key ? !toolSort.asc : key === "tool" || key === "backend" };
    renderTools();
  });

  function showBackends(q) {
    showOnly("backends");
    document.title = "tracegate · backends";
    const load = () => loadView("backends", "/api/backends", renderBackends);
    load();
    viewRefresh(load);
  }

  const STATE_CLASS = { ready: "ok", degraded: "warn", down: "down", connecting: "conn" };

  function renderBackends(body, status) {
    status.textContent = body.backends.length ? `${body.backends.length} backend${body.backends.length === 1 ? "" : "s"}.` : "";
    const el = $("#backend-list");
    if (!body.backends.length) {
      el.innerHTML = `<div class="empty">No backends yet: the gateway reports their states as it connects.</div>`;
      return;
    }
    const now = Date.now();
    el.innerHTML = body.backends.map((b) => {
      const hist = b.history;
      let bar = "";
      if (hist.length) {
        const t0 = Date.parse(hist[0].at), t1 = Math.max(now, t0 + 1);
        hist.forEach((h, i) => {
          const a = Date.parse(h.at), z = i + 1 < hist.length ? Date.parse(hist[i + 1].at) : t1;
          bar += `<span class="seg ${STATE_CLASS[h.state] || ""}" style="left:${((a - t0) / (t1 - t0) * 100).toFixed(2)}%;width:${Math.max((z - a) / (t1 - t0) * 100, 0.4).toFixed(2)}%" title="${esc(h.state)} at ${esc(h.at)}${h.detail ? ": " + esc(h.detail) : ""}"></span>`;
        });
      }
      const ops = b.operations.map((o) =>
        `<li><a href="/ui/?trace=${esc(o.trace_id)}" data-nav data-trace-id="${esc(o.trace_id)}">${esc(o.kind)}</a> <span class="muted">${fmtClock(new Date(o.start_time))}</span> ${fmtDur(o.duration_ms)}${o.error ? ` <span class="err-badge"><span class="err-icon">!</span>failed</span>` : ""}</li>`).join("");
      const calls = searchURL([["backend", b.name], ["sort", "duration"]]);
      return `<section class="backend" data-backend="${esc(b.name)}">` +
        `<h2>${esc(b.name)} ${b.state ? `<span class="state ${STATE_CLASS[b.state] || ""}">${esc(b.state)}</span>` : `<span class="muted">no state reported</span>`}` +
        `${b.since ? `<span class="muted since">since ${fmtClock(new Date(b.since))}</span>` : ""}</h2>` +
        (b.detail ? `<div class="status-line err">${esc(b.detail)}</div>` : "") +
        `<div class="meta"><span>Restarts <b>${fmtInt(b.restarts)}</b></span>` +
        `<span>Calls <b><a href="${esc(calls)}" data-nav>${fmtInt(b.calls)}</a></b></span>` +
        `<span class="${b.errors ? "err" : ""}">Errors <b>${b.errors ? `<a class="err-link" href="${esc(searchURL([["backend", b.name], ["error", "true"]]))}" data-nav>${fmtInt(b.errors)} (${+b.error_pct.toFixed(1)}%)</a>` : "0"}</b></span>` +
        `<span>p50 <b>${fmtDur(b.p50_ms)}</b></span><span>p95 <b>${fmtDur(b.p95_ms)}</b></span><span>p99 <b>${fmtDur(b.p99_ms)}</b></span></div>` +
        (hist.length ? `<div class="history" aria-label="State history">${bar}</div>` : "") +
        `<h3>Connect and relist traces</h3>${ops ? `<ul class="ops">${ops}</ul>` : `<div class="none">None in the store.</div>`}` +
        `</section>`;
    }).join("");
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
    showOnly("trace");
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
    clearRows();
    axisEl.innerHTML = "";
    $("#minimap").hidden = true;
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

  // criticalPath returns the span IDs the trace's end waited on: from
  // the root, the child that ends last, then the child that ends last
  // before that one started, and so on down each chosen child.
  function criticalPath(rows, byId) {
    const crit = new Set();
    if (!rows.length) return crit;
    const end = (n) => n.s.offset_ms + n.s.duration_ms;
    const stack = [byId.get(rows[0].s.span_id)];
    while (stack.length) {
      const n = stack.pop();
      crit.add(n.s.span_id);
      const kids = [...n.kids].sort((a, b) => end(b) - end(a));
      let t = end(n);
      for (const k of kids) {
        if (k.s.offset_ms >= t) continue; // starts after the frontier: not waited on
        stack.push(k);
        t = k.s.offset_ms;
      }
    }
    return crit;
  }

  $("#crit-toggle").addEventListener("change", (e) => waterfall.classList.toggle("no-crit", !e.target.checked));

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
    // Spans whose parent is not here: their process did not export to
    // this store, or the parent has not arrived yet.
    const orphans = data.spans.filter((s) => s.parent_span_id && !byId.has(s.parent_span_id));
    cur.orphans = new Set(orphans.map((s) => s.span_id));
    cur.crit = criticalPath(rows, byId);
    head.innerHTML =
      `<div class="crumbs"><a href="/ui/" data-nav>← All traces</a><span class="spacer"></span>` +
      `<a class="btn" href="/api/traces/${esc(data.trace_id)}/otlp" download="trace-${esc(data.trace_id)}.otlp.json" data-download title="Download as OTLP/JSON, to attach to a bug report; drop the file on the viewer to open it again">Download</a>` +
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
      `<div class="legend">${data.services.map((s) => chip(s, colours, ` <span class="n">${perSvc.get(s)}</span>`)).join("")}</div>` +
      (orphans.length
        ? `<div class="warn-line" id="missing-parents">⚠ ${orphans.length} span${orphans.length === 1 ? " has a parent" : "s have parents"} not in this trace, shown as root${orphans.length === 1 ? "" : "s"}: the parent's process may not export here, or its span has not arrived yet.</div>`
        : "");

    cur.zoom = [0, total];
    drawAxis();
    $("#minimap").hidden = false;
    drawMinimap();

    waterfall.scrollTop = 0;
    computeVisible();
    measure();
    renderWindow(true);
    waterfall.classList.toggle("no-crit", !$("#crit-toggle").checked);
    traceView.dataset.traceId = data.trace_id;
  }

  // drawAxis labels the zoomed range with about eight ticks at 1-2-5 steps.
  function drawAxis() {
    const [z0, z1] = cur.zoom;
    const span = Math.max(z1 - z0, 0.001);
    const step = niceStep(span / 8);
    let ticks = "";
    for (let t = Math.ceil(z0 / step - 1e-9) * step; t <= z1 + span * 0.0001; t += step) {
      ticks += `<span class="tick" style="left:${(((t - z0) / span) * 100).toFixed(3)}%">${fmtTick(t)}</span>`;
    }
    axisEl.innerHTML = ticks;
    waterfall.style.setProperty("--tick", `${((step / span) * 100).toFixed(4)}%`);
    const zoomed = z0 > 0 || z1 < cur.total;
    waterfall.classList.toggle("zoomed", zoomed);
    $("#zoom-reset").hidden = !zoomed;
    const z = $("#mm-zoom");
    z.hidden = !zoomed;
    if (zoomed) {
      z.style.left = `${(z0 / cur.total) * 100}%`;
      z.style.width = `${((z1 - z0) / cur.total) * 100}%`;
    }
  }

  // drawMinimap draws every span, one pixel row per span (scaled), over
  // the whole trace's time.
  function drawMinimap() {
    const canvas = $("#minimap-canvas");
    const W = canvas.width = Math.max(canvas.parentElement.clientWidth, 100);
    const H = canvas.height;
    const g = canvas.getContext("2d");
    g.clearRect(0, 0, W, H);
    const n = cur.rows.length;
    const h = Math.max(H / n, 1);
    for (const r of cur.rows) {
      const s = r.s;
      g.fillStyle = s.error ? "#cf222e" : colourOf(cur.colours, s.service);
      g.fillRect((s.offset_ms / cur.total) * W, (r.idx / n) * H, Math.max((s.duration_ms / cur.total) * W, 1), h);
    }
  }

  function zoomTo(z0, z1) {
    if (!cur) return;
    z0 = Math.max(0, z0);
    z1 = Math.min(cur.total, z1);
    if (z1 - z0 < cur.total / 10000) return;
    cur.zoom = [z0, z1];
    drawAxis();
    renderWindow(true);
  }

  {
    const mm = $("#minimap");
    const sel = $("#mm-sel");
    let from = null;
    const frac = (e) => Math.min(Math.max((e.clientX - mm.getBoundingClientRect().left) / mm.clientWidth, 0), 1);
    mm.addEventListener("pointerdown", (e) => {
      if (!cur || e.button !== 0 || e.target.closest("button")) return;
      from = { x: frac(e), y: (e.clientY - mm.getBoundingClientRect().top) / mm.clientHeight };
      mm.setPointerCapture(e.pointerId);
    });
    mm.addEventListener("pointermove", (e) => {
      if (!from) return;
      const x = frac(e);
      sel.hidden = false;
      sel.style.left = `${Math.min(from.x, x) * 100}%`;
      sel.style.width = `${Math.abs(x - from.x) * 100}%`;
    });
    mm.addEventListener("pointerup", (e) => {
      if (!from) return;
      const x = frac(e);
      sel.hidden = true;
      const start = from;
      from = null;
      if (Math.abs(x - start.x) * mm.clientWidth > 4) {
        zoomTo(Math.min(start.x, x) * cur.total, Math.max(start.x, x) * cur.total);
        return;
      }
      // A click: scroll to the span drawn at that height.
      const r = cur.rows[Math.min(Math.floor(start.y * cur.rows.length), cur.rows.length - 1)];
      const p = cur.vis.indexOf(r.idx);
      if (p >= 0) {
        waterfall.scrollTop = geom.rowsTop + p * ROW_H - geom.viewH / 3;
        renderWindow(false);
      }
    });
    mm.addEventListener("dblclick", () => zoomTo(0, cur ? cur.total : 0));
    $("#zoom-reset").addEventListener("click", () => zoomTo(0, cur.total));
    window.addEventListener("resize", () => { if (cur && !traceView.hidden) drawMinimap(); });
  }

  // ---------- waterfall rows ----------
  // The waterfall keeps a pool of row nodes and reuses them as it scrolls,
  // so that a frame costs the same for 10,000 spans as for ten. Rows are
  // ROW_H pixels high (the CSS's --row-h), each placed by a transform
  // inside #wf-rows, which has the full height and its own compositing
  // layer (see the CSS). A trace of up to FULL_ROWS visible rows gets a
  // node per row, filled once, so that the whole tree is in the page; a
  // larger one gets nodes for the viewport and OVERSCAN rows on each side.
  // The node of position p is pool[p % pool.length]: scrolling by k rows
  // refills the k nodes whose rows left the window with the rows that
  // entered it, in place. No HTML is parsed, no node moves in the page
  // (moving one rebuilds its layout), and the other rows are not touched;
  // so in a large trace the page holds the rows in rotated order, and
  // data-idx, not the order in the page, orders them.
  const ROW_H = 24;
  const FULL_ROWS = 2000;
  const OVERSCAN = 10;

  // geom is measured when a trace is drawn and when the waterfall is
  // resized, never while it scrolls, so that a scroll reads no layout but
  // scrollTop: rowsTop is #wf-rows's top in the scrolled content (the
  // height of the sticky header above it), viewH the viewport's height.
  const geom = { rowsTop: 0, viewH: 0 };
  function measure() {
    geom.rowsTop = rowsEl.offsetTop;
    geom.viewH = waterfall.clientHeight;
  }

  let pool = []; // the row nodes
  let poolFrom = 0; // the first position in cur.vis that the pool shows

  function clearRows() {
    pool = [];
    poolFrom = 0;
    rowsEl.textContent = "";
    rowsEl.style.height = "0";
  }

  const rowTemplate = document.createElement("div");
  rowTemplate.className = "span-row";
  rowTemplate.innerHTML =
    `<div class="nm"><span class="ind"></span><button type="button" class="tog"></button><span class="dot"></span>` +
    `<span class="orphan">⚠</span><span class="err-icon" title="error">!</span><span class="svc"></span><span class="span-name"></span></div>` +
    `<div class="tl"><div class="bar"></div><span class="d"></span></div>`;

  // newRow makes an empty row node; fillRow gives it a span.
  function newRow() {
    const el = rowTemplate.cloneNode(true);
    const q = (sel) => el.querySelector(sel);
    el.parts = {
      ind: q(".ind"), tog: q(".tog"), dot: q(".dot"), orphan: q(".orphan"), errIcon: q(".err-icon"),
      svc: q(".svc"), name: q(".span-name"), bar: q(".bar"), d: q(".d"),
    };
    return el;
  }

  // fillRow makes el the row at position pos of the visible rows.
  function fillRow(el, pos) {
    const r = cur.rows[cur.vis[pos]];
    const s = r.s;
    const p = el.parts;
    el.style.transform = `translateY(${pos * ROW_H}px)`;
    el.className = `span-row${s.error ? " err" : ""}${cur.crit.has(s.span_id) ? " crit" : ""}${cur.sel === s.span_id ? " sel" : ""}`;
    const d = el.dataset;
    d.idx = r.idx;
    d.spanId = s.span_id;
    d.parentSpanId = s.parent_span_id;
    d.depth = r.depth;
    d.service = s.service;
    const label = fmtDur(s.duration_ms);
    el.title = `${s.name} · ${s.service} · ${label}`;
    p.ind.style.width = `${Math.min(r.depth, 40) * 14 + 4}px`;
    const closed = cur.collapsed.has(s.span_id);
    p.tog.disabled = !r.kids;
    p.tog.classList.toggle("leaf", !r.kids);
    p.tog.textContent = r.kids ? (closed ? "▶" : "▼") : "";
    if (r.kids) {
      p.tog.setAttribute("aria-label", closed ? "Expand" : "Collapse");
      p.tog.setAttribute("aria-expanded", String(!closed));
    } else {
      p.tog.removeAttribute("aria-label");
      p.tog.removeAttribute("aria-expanded");
    }
    const colour = colourOf(cur.colours, s.service);
    p.dot.style.background = colour;
    const orphan = cur.orphans.has(s.span_id);
    p.orphan.hidden = !orphan;
    p.orphan.title = orphan ? `Parent ${s.parent_span_id} is not in this trace` : "";
    p.errIcon.hidden = !s.error;
    p.svc.textContent = s.service;
    p.name.textContent = s.name;
    // Zoomed, a bar is cut to the range; one wholly outside it is not drawn.
    const [z0, z1] = cur.zoom;
    const zspan = Math.max(z1 - z0, 0.001);
    const from = ((s.offset_ms - z0) / zspan) * 100;
    const to = from + (s.duration_ms / zspan) * 100;
    const outside = to < 0 || from > 100;
    const left = outside ? 0 : Math.max(from, 0);
    const width = outside ? 0 : Math.min(to, 100) - left;
    p.bar.className = `bar${s.error ? " errbar" : ""}${outside ? " out" : ""}`;
    p.bar.dataset.from = from.toFixed(3);
    p.bar.style.left = `${left.toFixed(3)}%`;
    p.bar.style.width = `${width.toFixed(3)}%`;
    p.bar.style.backgroundColor = s.error ? "" : colour;
    // The label goes after the bar; the timeline keeps a right margin so
    // that it fits even for a bar that ends the trace.
    p.d.textContent = label;
    p.d.style.left = `calc(${(left + width).toFixed(3)}% + 4px)`;
  }

  // computeVisible lists the rows not inside a collapsed subtree.
  function computeVisible() {
    const vis = [];
    let hideUntil = 0;
    for (let i = 0; i < cur.rows.length; i++) {
      if (i < hideUntil) continue;
      vis.push(i);
      const r = cur.rows[i];
      if (r.kids && cur.collapsed.has(r.s.span_id)) hideUntil = Math.max(hideUntil, r.end);
    }
    cur.vis = vis;
  }

  // renderWindow places the pool over the rows in view. force refills
  // every node, for a change of the rows themselves (a collapse, a zoom).
  function renderWindow(force) {
    if (!cur || !cur.vis) return;
    const vis = cur.vis;
    const size = vis.length <= FULL_ROWS ? vis.length : Math.min(vis.length, Math.ceil(geom.viewH / ROW_H) + 1 + 2 * OVERSCAN);
    let from = 0;
    if (size < vis.length) {
      const first = Math.floor((waterfall.scrollTop - geom.rowsTop) / ROW_H);
      from = Math.min(Math.max(first - OVERSCAN, 0), vis.length - size);
    }
    if (force || size !== pool.length) {
      rowsEl.style.height = `${vis.length * ROW_H}px`;
      if (pool.length < size) {
        const add = [];
        while (pool.length + add.length < size) add.push(newRow());
        pool.push(...add);
        rowsEl.append(...add);
      }
      while (pool.length > size) pool.pop().remove();
      for (let p = from; p < from + size; p++) fillRow(pool[p % size], p);
      poolFrom = from;
      return;
    }
    const d = from - poolFrom;
    if (d === 0) return;
    // Only the positions that entered the window are filled.
    const jump = Math.abs(d) >= size;
    const lo = jump || d < 0 ? from : poolFrom + size;
    const hi = jump || d > 0 ? from + size : poolFrom;
    for (let p = lo; p < hi; p++) fillRow(pool[p % size], p);
    poolFrom = from;
  }

  waterfall.addEventListener("scroll", () => {
    if (cur && cur.vis && cur.vis.length > pool.length) renderWindow(false);
  }, { passive: true });
  // A resize (of the window, or of the trace's header above the
  // waterfall) changes how many rows are in view.
  new ResizeObserver(() => {
    if (!cur || !cur.vis || traceView.hidden) return;
    measure();
    renderWindow(false);
  }).observe(waterfall);

  function applyCollapse() {
    computeVisible();
    renderWindow(true);
  }

  // rowEl returns the drawn row of spanID, or null.
  const rowEl = (spanID) => rowsEl.querySelector(`.span-row[data-span-id="${spanID}"]`);

  // scrollToRow brings the visible row at position p into view, below
  // the sticky header.
  function scrollToRow(p) {
    const top = p * ROW_H;
    const st = waterfall.scrollTop;
    if (top < st) waterfall.scrollTop = top;
    else if (geom.rowsTop + top + ROW_H > st + geom.viewH) waterfall.scrollTop = geom.rowsTop + top + ROW_H - geom.viewH;
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
    const p = cur.vis.indexOf(cur.byId.get(cur.sel).row.idx);
    const move = (dir) => {
      const q = p + dir;
      if (q >= 0 && q < cur.vis.length) selectSpan(cur.rows[cur.vis[q]].s.span_id, true);
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
    const prev = cur.sel && rowEl(cur.sel);
    if (prev) prev.classList.remove("sel");
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
    let opened = false;
    for (const r of cur.rows) {
      if (cur.collapsed.has(r.s.span_id) && r.idx < n.row.idx && n.row.idx < r.end) {
        cur.collapsed.delete(r.s.span_id);
        opened = true;
      }
    }
    if (opened) computeVisible();
    scrollToRow(cur.vis.indexOf(n.row.idx));
    renderWindow(opened);
    const el = rowEl(spanID);
    if (el) el.classList.add("sel");
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

  // errorMessage says why a span failed: the JSON-RPC error's message when
  // there is one (the status description), "tool returned isError" for a
  // tool result flagged so (MCP semantic conventions: error.type
  // tool_error, whose description repeats the type), never result content.
  function errorMessage(s) {
    const type = s.attributes["error.type"];
    const msg = s.status.message;
    if (type === "tool_error" && (!msg || msg === "tool_error")) return "tool returned isError";
    if (msg && msg !== type) {
      const code = s.attributes["rpc.response.status_code"];
      return code !== undefined && code === type ? `${msg} (JSON-RPC ${code})` : msg;
    }
    return type !== undefined ? `error.type=${fmtValue(type)}` : msg || "status Error";
  }

  function renderDetail(s) {
    const parent = s.parent_span_id && cur.byId.get(s.parent_span_id);
    const nattrs = Object.keys(s.attributes || {}).length;
    const status = s.error
      ? `<div class="status-line err" data-error-message><b>Error</b>: ${esc(errorMessage(s))}</div>`
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
    const res = (cur.data.resources || [])[s.resource] || {};
    html += `<section class="res-attrs"><h3>Resource (${Object.keys(res).length})</h3>${kvTable(res)}</section>`;
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
  // ---------- open a downloaded trace ----------
  // A file downloaded from the trace view is OTLP/JSON: posting it to this
  // viewer's own OTLP receiver stores it again, and the trace opens.

  async function importFile(file) {
    const text = await file.text();
    let id = "";
    try {
      const body = JSON.parse(text);
      id = body.resourceSpans[0].scopeSpans[0].spans[0].traceId;
    } catch (_) {
      id = "";
    }
    const fail = (msg) => {
      showOnly("trace");
      head.innerHTML = traceMessage(file.name, msg);
      clearRows();
    };
    if (!TRACE_ID.test(id || "")) return fail("This file is not a trace downloaded as OTLP/JSON: no trace ID in resourceSpans[0].scopeSpans[0].spans[0].");
    const res = await fetch("/v1/traces", { method: "POST", headers: { "Content-Type": "application/json" }, body: text });
    if (!res.ok) return fail(`The viewer refused the file: ${res.status} ${await res.text()}`);
    cur = null;
    navigate(`/ui/?trace=${id.toLowerCase()}`);
  }

  $("#open-file").addEventListener("change", (e) => {
    const f = e.target.files[0];
    e.target.value = "";
    if (f) importFile(f);
  });
  document.addEventListener("dragover", (e) => {
    if ([...e.dataTransfer.types].includes("Files")) {
      e.preventDefault();
      document.body.classList.add("dropping");
    }
  });
  document.addEventListener("dragleave", (e) => { if (!e.relatedTarget) document.body.classList.remove("dropping"); });
  document.addEventListener("drop", (e) => {
    document.body.classList.remove("dropping");
    const f = e.dataTransfer.files[0];
    if (!f) return;
    e.preventDefault();
    importFile(f);
  });

  route();
})();
