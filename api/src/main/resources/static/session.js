// One session: its state and controls, live charts (history first, then live), checkpoints, events, log.

import {
  ApiError, FINAL, api, channel, context, escapeHtml, formatNumber, formatTime, participants, progressBar,
} from "./api.js";
import { LineChart } from "./charts.js";

const CONTROLS = {
  pause: ["QUEUED", "STARTING", "RUNNING"],
  resume: ["PAUSED"],
  cancel: ["QUEUED", "STARTING", "RUNNING", "PAUSING", "PAUSED"],
};

export async function sessionView(main, id) {
  let session;
  try {
    session = await api(`/api/sessions/${encodeURIComponent(id)}`);
  } catch (e) {
    main.innerHTML = `<div class="error-box">${escapeHtml(e instanceof ApiError ? e.message : e)}</div>`;
    return null;
  }
  const workflow = `${context.info.temporalWorkflows}/${encodeURIComponent(session.workflowId)}`;
  const nodes = session.request?.distributedConfig?.nodes || 1;
  main.innerHTML = `
    <h1>${escapeHtml(session.name)} <span id="status" class="status"></span></h1>
    <div class="card">
      <div class="summary" id="summary"></div>
      <div class="toolbar">
        <button id="pause">Pause</button><button id="resume">Resume</button>
        <button id="cancel" class="danger">Cancel</button>
        <a href="${escapeHtml(workflow)}" target="_blank" rel="noopener">Workflow in the Temporal UI ↗</a>
        <span class="muted" id="live"></span>
      </div>
      <div id="control-error" class="error-box" hidden></div>
      <div id="queue" class="notice" hidden></div>
      <div id="error" class="error-box" hidden></div>
    </div>
    <h2>Training</h2>
    <div class="charts">
      <div id="chart-loss"></div><div id="chart-accuracy"></div>
      <div id="chart-lr"></div><div id="chart-throughput"></div>
    </div>
    <div id="system-section" hidden><h2>Machine</h2><div class="charts">
      <div id="chart-gpu"></div><div id="chart-gpu-memory"></div><div id="chart-cpu"></div></div></div>
    <div id="diloco-section" hidden><h2>DiLoCo outer steps</h2><div class="charts">
      <div id="chart-participants"></div><div id="chart-sync"></div></div></div>
    <h2>Checkpoints</h2>
    <table id="checkpoints"><thead><tr><th>Step</th><th>Size</th><th>Eval loss</th><th>Written</th><th>Kept</th><th>Path</th></tr></thead><tbody></tbody></table>
    <h2>Events</h2>
    <table id="events"><thead><tr><th>At</th><th>Status</th><th>Cause</th><th>Attempt</th><th>Message</th></tr></thead><tbody></tbody></table>
    <h2>Trainer log ${nodes > 1 ? `<select id="log-node">${[...Array(nodes).keys()].map((n) => `<option value="${n}">node ${n}</option>`).join("")}</select>` : ""}</h2>
    <pre class="log" id="log"></pre>`;

  const charts = {
    loss: new LineChart(main.querySelector("#chart-loss"), "Loss", [
      { label: "loss" }, { label: "min", color: "#9db8ee", width: 1 }, { label: "max", color: "#9db8ee", width: 1 },
    ]),
    accuracy: new LineChart(main.querySelector("#chart-accuracy"), "Token accuracy", [{ label: "accuracy", color: "#2b8a3e" }]),
    lr: new LineChart(main.querySelector("#chart-lr"), "Learning rate", [{ label: "learning rate", color: "#ae3ec9" }]),
    throughput: new LineChart(main.querySelector("#chart-throughput"), "Throughput (tokens/s)", [{ label: "tokens/s", color: "#e8590c" }]),
  };
  let systemCharts = null;
  let dilocoCharts = null;
  let lastStep = -1;

  function renderState() {
    const status = main.querySelector("#status");
    status.className = `status ${session.status}`;
    status.textContent = session.status;
    const m = session.latestMetrics || {};
    const rows = [
      ["Progress", progressBar(session.progress, session.status)],
      ["Step", `${session.latestStep ?? 0} / ${session.totalSteps ?? "?"}`],
      ["Loss", formatNumber(m.loss)],
      ["Accuracy", formatNumber(m.accuracy)],
      ["Participants", participants(session)],
      ["Attempt", session.attempt],
      ["Owner", escapeHtml(session.owner)],
      ["Priority", session.priority],
      ["Architecture", escapeHtml(`${session.request.modelConfig.type} ${session.request.modelConfig.size} ${session.request.modelConfig.precision}`)],
      ["Strategy", escapeHtml(session.request.distributedConfig.strategy)],
      ["Created", formatTime(session.createdAt)],
      ["Finished", formatTime(session.finishedAt)],
    ];
    if (session.finalModelPath) rows.push(["Final model", `<code>${escapeHtml(session.finalModelPath)}</code>`]);
    if (session.request.modelName) {
      rows.push(["Model", `<a href="#/models/${encodeURIComponent(session.request.modelName)}">${escapeHtml(session.request.modelName)}</a>`]);
    }
    main.querySelector("#summary").innerHTML = rows.map(([k, v]) => `<div><span>${k}</span>${v}</div>`).join("");
    for (const [action, allowed] of Object.entries(CONTROLS)) {
      main.querySelector(`#${action}`).disabled = !allowed.includes(session.status);
    }
    const queue = main.querySelector("#queue");
    queue.hidden = !session.queue;
    if (session.queue) queue.textContent = `Queue position ${session.queue.position}: ${session.queue.reason}`;
    const error = main.querySelector("#error");
    error.hidden = !session.error;
    error.textContent = session.error || "";
  }

  // A client that falls behind gets only a session's newest progress (the relay coalesces frames
  // not yet sent), so a step after a gap means the API has the ones in between: reload the curve.
  let historyLoading = null;
  let historyAgain = false;
  function refillHistory() {
    if (historyLoading) {
      historyAgain = true;
      return;
    }
    historyLoading = loadHistory().catch(() => {}).finally(() => {
      historyLoading = null;
      if (historyAgain) {
        historyAgain = false;
        refillHistory();
      }
    });
  }

  function addStep(m) {
    if (m.step > Math.max(lastStep, 0) + 1) refillHistory();
    lastStep = Math.max(lastStep, m.step);
    charts.loss.append(m.step, [m.loss, null, null]);
    charts.accuracy.append(m.step, [m.metrics?.accuracy ?? null]);
    charts.lr.append(m.step, [m.metrics?.learningRate ?? null]);
    charts.throughput.append(m.step, [m.tokensPerSecond ?? null]);
  }

  async function loadHistory() {
    const { buckets } = await api(`/api/sessions/${id}/metrics/downsampled?points=1000`);
    const x = buckets.map((b) => b.toStep);
    charts.loss.set(x, [buckets.map((b) => b.lastLoss), buckets.map((b) => b.minLoss), buckets.map((b) => b.maxLoss)]);
    charts.accuracy.set([...x], [buckets.map((b) => b.lastAccuracy)]);
    charts.lr.set([...x], [buckets.map((b) => b.lastLearningRate)]);
    charts.throughput.set([...x], [buckets.map((b) => b.lastTokensPerSecond)]);
    if (x.length) lastStep = x[x.length - 1];
  }

  function addSample(s) {
    if (!systemCharts) {
      main.querySelector("#system-section").hidden = false;
      systemCharts = {
        gpu: new LineChart(main.querySelector("#chart-gpu"), "GPU utilization (%)", [{ label: "GPU %" }]),
        gpuMemory: new LineChart(main.querySelector("#chart-gpu-memory"), "GPU memory (GiB)", [{ label: "GiB", color: "#1098ad" }]),
        cpu: new LineChart(main.querySelector("#chart-cpu"), "Trainer CPU (%) and memory (GiB)", [
          { label: "CPU %", color: "#5c940d" }, { label: "RSS GiB", color: "#862e9c" },
        ]),
      };
    }
    if (s.node !== 0) return; // the charts follow node 0; the API lists every node's samples
    const gpus = s.gpus || [];
    const mean = (values) => (values.length ? values.reduce((a, b) => a + b, 0) / values.length : null);
    systemCharts.gpu.append(s.step, [mean(gpus.map((g) => g.utilization).filter((u) => u !== null))]);
    systemCharts.gpuMemory.append(s.step, [gpus.length ? gpus.reduce((a, g) => a + (g.memoryUsedBytes || 0), 0) / 2 ** 30 : null]);
    systemCharts.cpu.append(s.step, [s.cpuPercent, s.rssBytes == null ? null : s.rssBytes / 2 ** 30]);
  }

  function addSync(s) {
    if (!dilocoCharts) {
      main.querySelector("#diloco-section").hidden = false;
      dilocoCharts = {
        participants: new LineChart(main.querySelector("#chart-participants"), "Participants", [{ label: "participants" }], { xLabel: "outer step" }),
        sync: new LineChart(main.querySelector("#chart-sync"), "Sync time (s)", [{ label: "seconds", color: "#c92a2a" }], { xLabel: "outer step" }),
      };
    }
    dilocoCharts.participants.append(s.outerStep, [s.participants]);
    dilocoCharts.sync.append(s.outerStep, [s.seconds]);
  }

  async function loadMachineAndSyncs() {
    const { samples } = await api(`/api/sessions/${id}/system?limit=1000`);
    samples.forEach(addSample);
    const { syncs } = await api(`/api/sessions/${id}/syncs?limit=1000`);
    syncs.forEach(addSync);
  }

  async function loadCheckpoints() {
    const { checkpoints } = await api(`/api/sessions/${id}/checkpoints`);
    main.querySelector("#checkpoints tbody").innerHTML = checkpoints.length
      ? checkpoints.map((c) => `<tr class="${c.deletedAt ? "muted" : ""}"><td class="num">${c.step}</td>
          <td class="num">${(c.bytes / 2 ** 20).toFixed(1)} MiB</td><td class="num">${formatNumber(c.evalLoss)}</td>
          <td>${formatTime(c.createdAt)}</td><td>${c.deletedAt ? `deleted ${formatTime(c.deletedAt)}` : "kept"}</td>
          <td><code>${escapeHtml(c.path)}</code></td></tr>`).join("")
      : `<tr><td colspan="6" class="muted">none yet</td></tr>`;
  }

  const eventIds = new Set();
  function addEvent(e) {
    if (e.id == null || eventIds.has(e.id)) return;
    eventIds.add(e.id);
    const bad = e.status === "FAILED" || /fail|crash|lost|error/i.test(e.cause || "");
    const tr = document.createElement("tr");
    if (bad) tr.className = "event-error";
    tr.innerHTML = `<td>${formatTime(e.at)}</td><td><span class="status ${e.status}">${e.status}</span></td>
      <td>${escapeHtml(e.cause)}</td><td class="num">${e.attempt ?? ""}</td><td>${escapeHtml(e.message)}</td>`;
    main.querySelector("#events tbody").appendChild(tr);
  }

  async function loadEvents() {
    const { events } = await api(`/api/sessions/${id}/events`);
    events.forEach(addEvent);
  }

  async function loadLog() {
    const node = main.querySelector("#log-node")?.value || 0;
    const { lines } = await api(`/api/sessions/${id}/logs?lines=300&node=${node}`);
    const log = main.querySelector("#log");
    const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.innerHTML = lines.length
      ? lines.map((line) => {
        const kind = /^\[(error|critical)\]|Traceback|Error\b|Exception\b/.test(line) ? "err"
          : /^\[warning\]/.test(line) ? "warn" : "";
        return `<span class="${kind}">${escapeHtml(line)}</span>`;
      }).join("\n")
      : `<span class="muted">nothing logged yet</span>`;
    if (atBottom) log.scrollTop = log.scrollHeight;
  }

  async function refresh() {
    await Promise.all([loadCheckpoints(), loadLog()]).catch(() => {});
  }

  for (const action of Object.keys(CONTROLS)) {
    main.querySelector(`#${action}`).onclick = async () => {
      const box = main.querySelector("#control-error");
      box.hidden = true;
      try {
        const result = await api(`/api/sessions/${id}/${action}`, { method: "POST" });
        session.status = result.status;
        renderState();
      } catch (e) {
        box.hidden = false;
        box.textContent = e instanceof ApiError ? e.message : String(e);
      }
    };
  }
  main.querySelector("#log-node")?.addEventListener("change", loadLog);

  renderState();
  await Promise.all([loadHistory(), loadMachineAndSyncs(), loadEvents(), refresh()]).catch((e) => {
    const box = main.querySelector("#control-error");
    box.hidden = false;
    box.textContent = e.message;
  });

  const live = channel(
    () => `/ws/sessions/${id}?afterStep=${lastStep}`,
    (m) => {
      if (m.type === "training.progress") {
        addStep(m);
        session.latestStep = m.step;
        session.totalSteps = m.totalSteps ?? session.totalSteps;
        session.progress = m.progress ?? session.progress;
        session.latestMetrics = { loss: m.loss, accuracy: m.metrics?.accuracy, learningRate: m.metrics?.learningRate };
      } else if (m.type === "session.status") {
        session.status = m.status;
        session.attempt = m.attempt ?? session.attempt;
        if (m.progress != null) session.progress = m.progress;
        if (m.finalModelPath) session.finalModelPath = m.finalModelPath;
        if (m.status !== "QUEUED") session.queue = null;
        addEvent({ id: m.eventId, at: m.at, status: m.status, cause: m.cause, attempt: m.attempt, message: m.message });
        if (m.error || FINAL.includes(m.status)) {
          api(`/api/sessions/${id}`).then((s) => {
            session = s;
            renderState();
          }).catch(() => {});
        }
        refresh();
      } else if (m.type === "session.queue") {
        session.queue = { position: m.position, reason: m.reason };
      } else if (m.type === "system.metrics") {
        addSample(m);
      } else if (m.type === "diloco.sync") {
        addSync(m);
      }
      renderState();
    },
    (state) => (main.querySelector("#live").textContent = state === "live" ? "● live" : state),
  );
  const poll = setInterval(() => {
    if (!FINAL.includes(session.status)) refresh();
  }, 5000);

  return () => {
    live.close();
    clearInterval(poll);
    Object.values(charts).forEach((c) => c.destroy());
  };
}
