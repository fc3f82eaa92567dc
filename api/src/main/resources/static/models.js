// Models: the registry's models, a model's versions with evaluations and aliases, and a comparison.

import { ApiError, api, escapeHtml, formatNumber, formatTime, token } from "./api.js";
import { LineChart, color, join } from "./charts.js";

function size(bytes) {
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(2)} GiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

function failure(main, e) {
  main.innerHTML = `<div class="error-box">${escapeHtml(e instanceof ApiError ? e.message : e)}</div>`;
  return null;
}

export async function modelsView(main) {
  let models;
  try {
    ({ models } = await api("/api/models"));
  } catch (e) {
    return failure(main, e);
  }
  main.innerHTML = `
    <h1>Models <span class="muted">(${models.length})</span></h1>
    <table id="models"><thead><tr><th>Name</th><th>Versions</th><th>Size</th><th>Owner</th><th>Created</th></tr></thead>
      <tbody>${models.map((m) => `<tr data-name="${escapeHtml(m.name)}">
        <td><a href="#/models/${encodeURIComponent(m.name)}">${escapeHtml(m.name)}</a></td>
        <td class="num">${m.versions}</td><td class="num">${size(m.bytes)}</td>
        <td>${escapeHtml(m.owner)}</td><td>${formatTime(m.createdAt)}</td></tr>`).join("")
        || `<tr><td colspan="5" class="muted">no model yet: a completed session registers one</td></tr>`}</tbody></table>`;
  return null;
}

export async function modelView(main, name) {
  let model;
  try {
    model = await api(`/api/models/${encodeURIComponent(name)}`);
  } catch (e) {
    return failure(main, e);
  }
  const loss = (v) => v.evaluations.find((e) => e.evalSet === "validation")?.loss;
  main.innerHTML = `
    <h1>${escapeHtml(model.name)} <span class="muted">${size(model.bytes)}</span></h1>
    <div class="toolbar"><button id="compare-versions" disabled>Compare selected</button>
      <span class="muted">aliases: ${Object.entries(model.aliases).map(([a, v]) => `${escapeHtml(a)} → v${v}`).join(", ") || "none"}</span></div>
    <div id="model-error" class="error-box" hidden></div>
    <table id="versions"><thead><tr><th></th><th>Version</th><th>Created</th><th>Parameters</th><th>Size</th>
      <th>Evaluation</th><th>Eval loss</th><th>Other sets</th><th>Aliases</th><th>Session</th><th></th></tr></thead>
      <tbody>${model.versions.map((v) => `<tr data-version="${v.version}">
        <td><input type="checkbox" class="pick" aria-label="select"></td>
        <td class="num">v${v.version}</td><td>${formatTime(v.createdAt)}</td>
        <td class="num">${v.parameters == null ? "" : v.parameters.toLocaleString("en")}</td>
        <td class="num">${size(v.bytes)}</td>
        <td><span class="status ${v.evaluation === "FAILED" ? "FAILED" : v.evaluation === "EVALUATED" ? "COMPLETED" : "QUEUED"}"
          title="${escapeHtml(v.evaluationError || "")}">${v.evaluation}</span></td>
        <td class="num eval-loss">${formatNumber(loss(v))}</td>
        <td>${v.evaluations.filter((e) => e.evalSet !== "validation").map((e) => `${escapeHtml(e.evalSet)} ${formatNumber(e.loss)}`).join(", ")}</td>
        <td>${v.aliases.map(escapeHtml).join(", ")}</td>
        <td><a href="#/sessions/${v.sessionId}">session</a></td>
        <td><button class="download">Download</button></td></tr>`).join("")}</tbody></table>`;
  const picked = new Set();
  main.querySelectorAll("#versions tbody tr").forEach((tr) => {
    const version = tr.dataset.version;
    tr.querySelector(".pick").onchange = (event) => {
      if (event.target.checked) picked.add(version);
      else picked.delete(version);
      main.querySelector("#compare-versions").disabled = picked.size < 2;
    };
    tr.querySelector(".download").onclick = () => download(main, name, version);
  });
  main.querySelector("#compare-versions").onclick = () => {
    location.hash = `#/models-compare?versions=${[...picked].map((v) => `${name}/${v}`).join(",")}`;
  };
  return null;
}

/** The tar of a version: fetched with the token, then saved by the browser. */
async function download(main, name, version) {
  const response = await fetch(`/api/models/${encodeURIComponent(name)}/versions/${version}/download`, {
    headers: { Authorization: `Bearer ${token()}` },
  });
  if (!response.ok) {
    const box = main.querySelector("#model-error");
    box.hidden = false;
    box.textContent = `download failed: HTTP ${response.status}`;
    return;
  }
  const url = URL.createObjectURL(await response.blob());
  const link = Object.assign(document.createElement("a"), { href: url, download: `${name}-v${version}.tar` });
  link.click();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

export async function modelsCompareView(main, versions) {
  let comparison;
  try {
    comparison = await api(`/api/models/compare?versions=${encodeURIComponent(versions.join(","))}`);
  } catch (e) {
    return failure(main, e);
  }
  const labels = comparison.versions.map((v) => `${v.model} v${v.version}`);
  const header = labels.map((l, i) => `<th style="color:${color(i)}">${escapeHtml(l)}</th>`).join("");
  const sets = Object.entries(comparison.evalLoss);
  main.innerHTML = `
    <h1>Compare ${labels.length} versions</h1>
    <div id="chart-models"></div>
    <h2>Eval loss</h2>
    <table id="models-eval"><thead><tr><th>set</th>${header}</tr></thead><tbody>${sets.map(([set, losses]) =>
      `<tr><td>${escapeHtml(set)}</td>${comparison.versions.map((v) => `<td class="num">${formatNumber(losses[`${v.model}/${v.version}`])}</td>`).join("")}</tr>`).join("")}</tbody></table>
    <h2>Configuration differences</h2>
    <table id="models-diff"><thead><tr><th></th>${header}</tr></thead><tbody>${comparison.configDifferences.map((d) =>
      `<tr class="diff" data-key="${escapeHtml(d.field)}"><td>${escapeHtml(d.field)}</td>${d.values.map((v) => `<td>${escapeHtml(v === null ? "" : JSON.stringify(v))}</td>`).join("")}</tr>`).join("")
      || `<tr><td colspan="${labels.length + 1}" class="muted">the same configuration</td></tr>`}</tbody></table>`;
  const chart = new LineChart(main.querySelector("#chart-models"), "Loss",
    labels.map((label, i) => ({ label, color: color(i) })), { height: 320 });
  const joined = join(comparison.curves.map((c) => ({ x: c.buckets.map((b) => b.toStep), y: c.buckets.map((b) => b.lastLoss) })));
  chart.set(joined.x, joined.ys);
  return () => chart.destroy();
}
