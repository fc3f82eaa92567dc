// Compare: loss curves overlaid, configs and final metrics side by side, differences highlighted.

import { ApiError, api, escapeHtml, formatNumber } from "./api.js";
import { LineChart, color, join } from "./charts.js";

/** {"a.b": value} for every leaf of a JSON object. */
function flatten(value, prefix = "", out = {}) {
  if (value && typeof value === "object" && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else {
    out[prefix] = value;
  }
  return out;
}

function seconds(session) {
  if (!session.finishedAt) return null;
  return (new Date(session.finishedAt) - new Date(session.createdAt)) / 1000;
}

export async function compareView(main, ids) {
  if (ids.length < 2) {
    main.innerHTML = `<div class="notice">Pick two or more sessions in the <a href="#/sessions">list</a> to compare.</div>`;
    return null;
  }
  let loaded;
  try {
    loaded = await Promise.all(ids.map(async (id) => {
      const session = await api(`/api/sessions/${encodeURIComponent(id)}`);
      const { buckets } = await api(`/api/sessions/${encodeURIComponent(id)}/metrics/downsampled?points=500`);
      return { session, buckets };
    }));
  } catch (e) {
    main.innerHTML = `<div class="error-box">${escapeHtml(e instanceof ApiError ? e.message : e)}</div>`;
    return null;
  }
  const names = loaded.map(({ session }, i) =>
    `<th style="color:${color(i)}"><a href="#/sessions/${session.id}">${escapeHtml(session.name)}</a></th>`).join("");

  const finals = [
    ["status", (s) => s.status],
    ["steps", (s) => s.latestStep ?? 0],
    ["final loss", (s, b) => formatNumber(b.length ? b[b.length - 1].lastLoss : null)],
    ["lowest loss", (s, b) => formatNumber(b.length ? Math.min(...b.map((x) => x.minLoss)) : null)],
    ["final accuracy", (s, b) => formatNumber(b.length ? b[b.length - 1].lastAccuracy : null)],
    ["final tokens/s", (s, b) => formatNumber(b.length ? b[b.length - 1].lastTokensPerSecond : null)],
    ["attempts", (s) => s.attempt],
    ["wall time (s)", (s) => formatNumber(seconds(s))],
  ];
  const configs = loaded.map(({ session }) => flatten(session.request));
  const keys = [...new Set(configs.flatMap((c) => Object.keys(c)))].sort();

  function rows(entries) {
    return entries.map(([label, values]) => {
      const shown = values.map((v) => (v === undefined || v === null ? "" : String(v)));
      const differs = new Set(shown).size > 1;
      return `<tr class="${differs ? "diff" : ""}" data-key="${escapeHtml(label)}"><td>${escapeHtml(label)}</td>
        ${shown.map((v) => `<td>${escapeHtml(v)}</td>`).join("")}</tr>`;
    }).join("");
  }

  main.innerHTML = `
    <h1>Compare ${loaded.length} sessions</h1>
    <div id="chart-compare"></div>
    <h2>Final metrics</h2>
    <table id="compare-metrics"><thead><tr><th></th>${names}</tr></thead>
      <tbody>${rows(finals.map(([label, f]) => [label, loaded.map(({ session, buckets }) => f(session, buckets))]))}</tbody></table>
    <h2>Configuration <span class="muted">(differences highlighted)</span></h2>
    <table id="compare-config"><thead><tr><th></th>${names}</tr></thead>
      <tbody>${rows(keys.map((k) => [k, configs.map((c) => c[k])]))}</tbody></table>`;

  const chart = new LineChart(main.querySelector("#chart-compare"), "Loss",
    loaded.map(({ session }, i) => ({ label: session.name, color: color(i) })), { height: 320 });
  const joined = join(loaded.map(({ buckets }) => ({ x: buckets.map((b) => b.toStep), y: buckets.map((b) => b.lastLoss) })));
  chart.set(joined.x, joined.ys);
  return () => chart.destroy();
}
