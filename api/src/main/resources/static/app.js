// The dashboard: a page per hash route, over the REST API and the WebSocket channels.

import { ApiError, api, context, escapeHtml, setToken, token, whenUnauthorized } from "./api.js";
import { sessionsView } from "./sessions.js";
import { newSessionView } from "./form.js";
import { sessionView } from "./session.js";
import { compareView } from "./compare.js";
import { modelView, modelsCompareView, modelsView } from "./models.js";

const main = document.getElementById("main");
let current = null; // the shown view's cleanup

whenUnauthorized((reason) => {
  setToken(null);
  context.info = null;
  show(() => signInView(reason));
});

function route() {
  const hash = location.hash || "#/sessions";
  const [path, query] = hash.slice(1).split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean);
  if (parts[0] === "new") return () => newSessionView(main);
  if (parts[0] === "compare") return () => compareView(main, (params.get("ids") || "").split(",").filter(Boolean));
  if (parts[0] === "sessions" && parts[1]) return () => sessionView(main, parts[1]);
  if (parts[0] === "models" && parts[1]) return () => modelView(main, decodeURIComponent(parts[1]));
  if (parts[0] === "models") return () => modelsView(main);
  if (parts[0] === "models-compare") {
    return () => modelsCompareView(main, (params.get("versions") || "").split(",").filter(Boolean));
  }
  return () => sessionsView(main);
}

async function show(view) {
  if (current) current();
  current = null;
  main.innerHTML = "";
  current = (await view()) || null;
}

async function signIn(candidate) {
  setToken(candidate);
  try {
    context.info = await api("/api/info");
    renderWho();
    return true;
  } catch (e) {
    setToken(null);
    context.info = null;
    throw e;
  }
}

function renderWho() {
  const who = document.getElementById("who");
  document.getElementById("nav").hidden = !context.info;
  if (!context.info) {
    who.innerHTML = "";
    return;
  }
  who.innerHTML = `signed in as <b>${escapeHtml(context.info.owner)}</b>${context.info.admin ? " (admin)" : ""}
    <button id="sign-out">Sign out</button>`;
  who.querySelector("#sign-out").onclick = () => {
    setToken(null);
    context.info = null;
    renderWho();
    show(() => signInView());
  };
}

function signInView(reason) {
  renderWho();
  main.innerHTML = `
    <div class="signin card">
      <h1>Sign in</h1>
      <p>Paste an API token. It is kept for this browser tab only.</p>
      <form id="signin-form">
        <input id="token" type="password" autocomplete="off" placeholder="cotrain_…" aria-label="API token">
        <button class="primary" type="submit">Sign in</button>
      </form>
      <div id="signin-error" class="error-box" hidden></div>
      <p class="muted">The API's admin token is in the file <code>admin-token</code> under the storage root
        (with <code>./cotrain up</code>: <code>cat var/cotrain/admin-token</code>); an admin creates tokens
        for others with <code>POST /api/tokens</code>.</p>
    </div>`;
  const error = main.querySelector("#signin-error");
  if (reason) {
    error.hidden = false;
    error.textContent = reason;
  }
  main.querySelector("#signin-form").onsubmit = async (event) => {
    event.preventDefault();
    const value = main.querySelector("#token").value.trim();
    try {
      await signIn(value);
      show(route());
    } catch (e) {
      error.hidden = false;
      error.textContent = e instanceof ApiError ? e.message : String(e);
    }
  };
}

async function start() {
  if (token()) {
    try {
      await signIn(token());
    } catch (e) {
      return show(() => signInView(e.message));
    }
    show(route());
  } else {
    show(() => signInView());
  }
}

window.addEventListener("hashchange", () => {
  if (context.info) show(route());
});

start();
