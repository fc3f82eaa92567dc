// Sessions: a live table with filters, fed by GET /api/sessions and the /ws/sessions channel.

import {
  api, channel, context, escapeHtml, formatNumber, formatTime, participants, progressBar,
} from "./api.js";

const STATUSES = ["QUEUED", "STARTING", "RUNNING", "PAUSING", "PAUSED", "CANCELLING", "EVALUATING", "COMPLETED", "FAILED", "CANCELLED"];

function options(values, selected) {
  return ['<option value="">all</option>', ...values.map((v) =>
    `<option value="${v}" ${v === selected ? "selected" : ""}>${v}</option>`)].join("");
}

export function sessionsView(main) {
  const filters = JSON.parse(sessionStorage.getItem("cotrain.filters") || "{}");
  main.innerHTML = `
    <h1>Sessions <span class="muted" id="total"></span></h1>
    <form class="filters" id="filters">
      <label>Status <select name="status">${options(STATUSES, filters.status)}</select></label>
      <label>Model <select name="modelType">${options(["llama2", "llama3", "bert"], filters.modelType)}</select></label>
      <label>Strategy <select name="strategy">${options(["ddp", "fsdp", "diloco"], filters.strategy)}</select></label>
      ${context.info.admin ? `<label>Owner <input name="owner" size="10" value="${escapeHtml(filters.owner)}"></label>` : ""}
      <label>Name <input name="q" size="16" placeholder="search" value="${escapeHtml(filters.q)}"></label>
      <button type="submit">Filter</button>
    </form>
    <div class="toolbar">
      <button id="compare" disabled>Compare selected</button>
      <span class="muted" id="live">connecting…</span>
    </div>
    <table id="sessions">
      <thead><tr><th></th><th>Name</th><th>Status</th><th>Progress</th><th>Loss</th><th>Participants</th>
        <th>Attempt</th><th>Owner</th><th>Queue</th><th>Created</th><th>Workflow</th></tr></thead>
      <tbody></tbody>
    </table>
    <div class="toolbar"><button id="more" hidden>Load more</button></div>
    <div id="list-error" class="error-box" hidden></div>`;

  const body = main.querySelector("#sessions tbody");
  const rows = new Map(); // session id -> {session, tr}
  const selected = new Set();
  let nextCursor = null;
  let reloadTimer = null;

  function query() {
    const form = new FormData(main.querySelector("#filters"));
    const params = new URLSearchParams();
    const saved = {};
    for (const [key, value] of form.entries()) {
      if (value) {
        params.set(key, value);
        saved[key] = value;
      }
    }
    sessionStorage.setItem("cotrain.filters", JSON.stringify(saved));
    return params;
  }

  function row(session) {
    const workflow = `${context.info.temporalWorkflows}/${encodeURIComponent(session.workflowId)}`;
    const queue = session.queue
      ? `<span title="${escapeHtml(session.queue.reason)}">#${session.queue.position}</span>` : "";
    return `
      <td><input type="checkbox" class="pick" ${selected.has(session.id) ? "checked" : ""} aria-label="select"></td>
      <td><a href="#/sessions/${session.id}">${escapeHtml(session.name)}</a></td>
      <td><span class="status ${session.status}">${session.status}</span></td>
      <td>${progressBar(session.progress, session.status)}</td>
      <td class="num loss">${formatNumber(session.latestMetrics?.loss)}</td>
      <td class="num">${participants(session)}</td>
      <td class="num">${session.attempt ?? ""}</td>
      <td>${escapeHtml(session.owner)}</td>
      <td class="queue">${queue}</td>
      <td>${formatTime(session.createdAt)}</td>
      <td><a href="${escapeHtml(workflow)}" target="_blank" rel="noopener">Temporal ↗</a></td>`;
  }

  function draw(entry) {
    entry.tr.innerHTML = row(entry.session);
    entry.tr.dataset.status = entry.session.status;
    entry.tr.querySelector(".pick").onchange = (event) => {
      if (event.target.checked) selected.add(entry.session.id);
      else selected.delete(entry.session.id);
      main.querySelector("#compare").disabled = selected.size < 2;
    };
  }

  function add(session) {
    const tr = document.createElement("tr");
    tr.dataset.id = session.id;
    const entry = { session, tr };
    rows.set(session.id, entry);
    draw(entry);
    body.appendChild(tr);
  }

  async function load(append) {
    const params = query();
    if (append && nextCursor) params.set("cursor", nextCursor);
    try {
      const page = await api(`/api/sessions?${params}`);
      if (!append) {
        rows.clear();
        body.innerHTML = "";
      }
      page.sessions.forEach(add);
      nextCursor = page.nextCursor;
      main.querySelector("#more").hidden = !nextCursor;
      main.querySelector("#total").textContent = `(${page.total})`;
      main.querySelector("#list-error").hidden = true;
    } catch (e) {
      const box = main.querySelector("#list-error");
      box.hidden = false;
      box.textContent = e.describe ? e.describe() : String(e);
    }
  }

  function reloadSoon() {
    clearTimeout(reloadTimer);
    reloadTimer = setTimeout(() => load(false), 300);
  }

  const live = channel(
    () => "/ws/sessions",
    (m) => {
      if (m.type === "sessions.subscribed") return load(false);
      const entry = rows.get(m.sessionId);
      if (!entry) {
        if (m.type === "session.status") reloadSoon(); // a new session, or one the filters may now show
        return;
      }
      const s = entry.session;
      if (m.type === "training.progress") {
        if (m.step < (s.latestStep ?? -1)) return;
        s.latestStep = m.step;
        s.progress = m.progress ?? s.progress;
        s.latestMetrics = { ...(s.latestMetrics || {}), loss: m.loss };
      } else if (m.type === "session.status") {
        s.status = m.status;
        if (m.progress !== null && m.progress !== undefined) s.progress = m.progress;
        if (m.attempt !== null && m.attempt !== undefined) s.attempt = m.attempt;
        if (m.status !== "QUEUED") s.queue = null;
        const wanted = new FormData(main.querySelector("#filters")).get("status");
        if (wanted && wanted !== m.status) reloadSoon();
      } else if (m.type === "session.queue") {
        s.queue = { position: m.position, reason: m.reason };
      }
      draw(entry);
    },
    (state) => (main.querySelector("#live").textContent = state === "live" ? "live" : state),
  );

  main.querySelector("#filters").onsubmit = (event) => {
    event.preventDefault();
    load(false);
  };
  main.querySelector("#filters").onchange = () => load(false);
  main.querySelector("#more").onclick = () => load(true);
  main.querySelector("#compare").onclick = () => {
    location.hash = `#/compare?ids=${[...selected].join(",")}`;
  };

  return () => {
    live.close();
    clearTimeout(reloadTimer);
  };
}
