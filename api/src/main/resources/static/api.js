// The REST API and the WebSocket channels, with the token of this browser session.

const TOKEN_KEY = "cotrain.token";

export const FINAL = ["COMPLETED", "FAILED", "CANCELLED"];

/** Who is signed in: `info` is GET /api/info's answer. */
export const context = { info: null };

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** An answer other than 2xx: `problem` is the problem+json body (or null). */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }

  /** The field errors of a 400, as {field, message}. */
  get fields() {
    return this.problem?.fields || [];
  }

  /** One readable line: the detail and every field's message. */
  describe() {
    const fields = this.fields.map((f) => `${f.field}: ${f.message}`);
    return [this.message, ...fields].join("\n");
  }
}

/** Called when the API refuses the token (401), to show the sign-in again. */
let onUnauthorized = () => {};
export function whenUnauthorized(callback) {
  onUnauthorized = callback;
}

export async function api(path, { method = "GET", body } = {}) {
  const headers = { Authorization: `Bearer ${token()}`, Accept: "application/json, application/problem+json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const type = response.headers.get("Content-Type") || "";
  const data = type.includes("json") ? await response.json() : null;
  if (response.status === 401) {
    onUnauthorized(data?.detail || "the API token is unknown or revoked");
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

/**
 * A WebSocket channel that reconnects by itself (after 1, 2, 4 … 15 s) until closed. `path()` is
 * asked for the URL at each (re)connect, so a session channel can pass the last step it drew.
 */
export function channel(path, onMessage, onState = () => {}) {
  let socket = null;
  let closed = false;
  let delay = 1000;
  let timer = null;

  function open() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${location.host}${path()}`, ["cotrain.v1", `bearer.${token()}`]);
    socket.onopen = () => {
      delay = 1000;
      onState("live");
    };
    socket.onmessage = (event) => onMessage(JSON.parse(event.data));
    socket.onclose = (event) => {
      if (closed) return;
      if (event.code === 1008) {
        onState(`closed: ${event.reason}`);
        return;
      }
      onState("reconnecting");
      timer = setTimeout(open, delay);
      delay = Math.min(delay * 2, 15000);
    };
  }

  open();
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      if (socket) socket.close();
    },
  };
}

export function escapeHtml(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function formatNumber(value, digits = 4) {
  if (value === null || value === undefined || Number.isNaN(value)) return "";
  if (Math.abs(value) >= 1000) return Math.round(value).toLocaleString("en");
  return Number(value).toPrecision(digits).replace(/\.?0+$/, "");
}

export function formatTime(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

export function participants(session) {
  const d = session.request?.distributedConfig;
  return d ? d.nodes * d.gpusPerNode : "";
}

/** A progress bar of `percent` (0..100). */
export function progressBar(percent, status) {
  const p = Math.max(0, Math.min(100, Number(percent) || 0));
  return `<div class="progress-cell"><div class="bar ${status === "COMPLETED" ? "done" : ""}"
    role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow="${p.toFixed(1)}">
    <span style="width:${p}%"></span></div><span class="bar-label">${p.toFixed(1)} %</span></div>`;
}
