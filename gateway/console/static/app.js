// The console page: log in with the admin access key, then poll the JSON documents every
// POLL_MS and redraw each section. Usage scans metadata, so it is asked less often.

import * as views from "./views.js";

const POLL_MS = 2000;
const USAGE_EVERY_POLLS = 5;

const page = {
  timer: null,
  polls: 0,
  tenant: null,
  usage: null,
  errors: null,
  rebalance: null,
  names: {},       // node addr -> name, from the last cluster map
};

class Unauthorized extends Error {}

async function api(path, options = {}) {
  const response = await fetch(`api/${path}`, { credentials: "same-origin", ...options });
  if (response.status === 401) throw new Unauthorized();
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

function $(id) {
  return document.getElementById(id);
}

// Replace a section's content; functions among the items run once the nodes are in place
// (a canvas has no size before that).
function fill(id, items) {
  const list = items.flat().filter((x) => x !== null && x !== undefined);
  $(id).replaceChildren(...list.filter((x) => typeof x !== "function"));
  list.filter((x) => typeof x === "function").forEach((draw) => draw());
  $(id).closest("section")?.classList.remove("stale");
}

function stale(id, error) {
  const section = $(id).closest("section");
  section.classList.add("stale");
  section.querySelector(".section-error").textContent = error ? String(error.message || error) : "";
}

function showLogin(message = "") {
  clearTimeout(page.timer);
  page.timer = null;
  document.body.dataset.view = "login";
  $("login-error").textContent = message;
  $("secret-key").value = "";
}

function showDashboard(accessKey) {
  document.body.dataset.view = "dashboard";
  $("who").textContent = accessKey;
  page.polls = 0;
  poll();
}

function drawUsage() {
  if (!page.usage) return;
  fill("usage", views.usageView(page.usage, page.tenant, (tenant) => {
    page.tenant = tenant;
    drawUsage();
  }));
}

async function section(id, load, draw) {
  try {
    const doc = await load();
    draw(doc);
    $(id).closest("section").querySelector(".section-error").textContent = "";
    return doc;
  } catch (error) {
    if (error instanceof Unauthorized) throw error;
    stale(id, error);
    return null;
  }
}

async function poll() {
  try {
    const usageDue = page.polls % USAGE_EVERY_POLLS === 0;
    page.polls += 1;
    const [cluster] = await Promise.all([
      section("map", () => api("cluster"), (doc) => {
        page.names = views.nodeNames(doc);
        fill("map", views.clusterMap(doc));
      }),
      section("rebalance", () => api("rebalance"), (doc) => {
        page.rebalance = doc;
        fill("rebalance", views.rebalanceView(doc, page.names));
      }),
      section("rings", () => api("rings"), (doc) => fill("rings", views.ringsView(doc))),
      section("errors", () => api("errors?limit=50"), (doc) => {
        page.errors = doc;
        fill("errors", views.errorsView(doc));
      }),
      usageDue ? section("usage", () => api("usage?hours=24"), (doc) => {
        page.usage = doc;
        drawUsage();
      }) : null,
    ]);
    if (cluster) fill("summary", views.summary(cluster, page.rebalance, page.errors));
    $("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
    document.body.dataset.loaded = "true";
  } catch (error) {
    if (error instanceof Unauthorized) {
      showLogin("session ended: log in again");
      return;
    }
  }
  if (document.body.dataset.view === "dashboard") page.timer = setTimeout(poll, POLL_MS);
}

async function login(event) {
  event.preventDefault();
  const button = $("login-button");
  button.disabled = true;
  $("login-error").textContent = "";
  try {
    const response = await fetch("api/login", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ access_key: $("access-key").value.trim(),
        secret_key: $("secret-key").value }),
    });
    if (response.status === 401) {
      showLogin("wrong access key or secret (the admin tenant's key is needed)");
      return;
    }
    if (!response.ok) {
      showLogin(`login failed: HTTP ${response.status}`);
      return;
    }
    const body = await response.json();
    $("secret-key").value = "";
    showDashboard(body.access_key);
  } catch (error) {
    showLogin(`login failed: ${error.message}`);
  } finally {
    button.disabled = false;
  }
}

async function logout() {
  try {
    await fetch("api/logout", { method: "POST", credentials: "same-origin" });
  } finally {
    showLogin("logged out");
  }
}

async function start() {
  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", logout);
  window.addEventListener("resize", () => drawUsage());
  try {
    const session = await api("session");
    if (session.access_key) {
      showDashboard(session.access_key);
      return;
    }
  } catch (error) {
    // not logged in: the form below
  }
  showLogin();
}

document.addEventListener("DOMContentLoaded", start);
