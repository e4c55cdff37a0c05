// evstore web page: streams, a stream's events, an order with time travel, the live tail.
// Plain JavaScript, no dependencies; everything comes from this server's JSON API.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { stream: null, orderId: null, version: 0, maxVersion: 0, head: null, after: null };

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k === "dataset") Object.assign(e.dataset, v); else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c == null ? "" : String(c)));
  return e;
}

function showError(message) {
  const box = $("error");
  if (!message) { box.hidden = true; box.textContent = ""; return; }
  box.textContent = message;
  box.hidden = false;
}

// GET a JSON document; problem details become an Error carrying the server's detail.
async function getJson(path) {
  let r;
  try { r = await fetch(path, { headers: { Accept: "application/json" } }); }
  catch (e) { throw new Error(`cannot reach the server (${e.message})`); }
  const text = await r.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (_) { /* not JSON */ }
  if (!r.ok) {
    const err = new Error(body && body.detail ? `${body.title}: ${body.detail}` : `HTTP ${r.status}`);
    err.status = r.status;
    throw err;
  }
  return body;
}

// A time, short: the time of day for today, the date and time otherwise.
function when(ts) {
  if (!ts) return "";
  const d = new Date(ts);
  if (isNaN(d)) return ts;
  const today = new Date().toDateString() === d.toDateString();
  return today ? d.toLocaleTimeString(undefined, { hour12: false })
    : d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium", hour12: false });
}

function summary(e) {
  if (e.data_encoding === "base64") return `base64 ${e.data.length > 40 ? e.data.slice(0, 40) + "…" : e.data}`;
  const d = e.data;
  if (e.data_encoding === "order" && d) {
    switch (e.event_type) {
      case "OrderCreated": return `user ${d.user_id}`;
      case "ItemAddedToOrder": return `${d.quantity} × ${d.product_id} at ${d.price}`;
      case "OrderCancelled": return `reason: ${d.reason}`;
      default: return "";
    }
  }
  const s = JSON.stringify(d);
  return s.length > 120 ? s.slice(0, 120) + "…" : s;
}

// ---- figures and streams ------------------------------------------------------------------

async function loadFigures() {
  const [streams, log] = await Promise.all([getJson("/streams?limit=1"), getJson("/log?limit=1")]);
  $("fig-streams").textContent = streams.total;
  state.head = log.head;
  $("fig-head").textContent = log.head == null ? "empty" : log.head;
  $("fig-events").textContent = log.head == null ? 0 : log.head + 1;
}

async function loadStreams() {
  const page = await getJson("/streams?limit=200");
  const body = $("streams-table").querySelector("tbody");
  body.replaceChildren();
  for (const s of page.streams) {
    const tr = el("tr", { dataset: { stream: s.stream_id }, tabindex: "0" },
      el("td", { class: "mono" }, s.stream_id),
      el("td", { class: "num" }, s.events),
      el("td", {}, s.last_type),
      el("td", { class: "when", title: s.last_recorded_at }, when(s.last_recorded_at)));
    if (s.stream_id === state.stream) tr.classList.add("selected");
    tr.addEventListener("click", () => selectStream(s.stream_id));
    tr.addEventListener("keydown", (ev) => { if (ev.key === "Enter") selectStream(s.stream_id); });
    body.append(tr);
  }
  $("streams-empty").hidden = page.streams.length > 0;
  $("streams-table").hidden = page.streams.length === 0;
  $("streams-more").hidden = !page.next_after;
}

// ---- one stream ---------------------------------------------------------------------------

async function selectStream(stream) {
  state.stream = stream;
  history.replaceState(null, "", "#stream=" + encodeURIComponent(stream));
  for (const tr of $("streams-table").querySelectorAll("tbody tr")) {
    tr.classList.toggle("selected", tr.dataset.stream === stream);
  }
  $("stream-title").textContent = "Events of " + stream;
  try {
    await loadStreamEvents();
    if (stream.startsWith("Order-")) {
      state.orderId = stream.slice("Order-".length);
      await loadOrder(null);
    } else {
      state.orderId = null;
      $("order-panel").hidden = true;
    }
    showError(null);
  } catch (e) { showError(e.message); }
}

// An event's tags (DCB, issue #15) as small badges; nothing for an untagged event.
function tagList(tags) {
  if (!tags || tags.length === 0) return "";
  return el("span", { class: "tags" }, ...tags.map((t) => el("span", { class: "tag" }, t)));
}

async function loadStreamEvents() {
  const page = await getJson(`/streams/${encodeURIComponent(state.stream)}?limit=1000`);
  const body = $("events-table").querySelector("tbody");
  body.replaceChildren();
  for (const e of page.events) {
    body.append(el("tr", { dataset: { version: e.version } },
      el("td", { class: "num" }, e.version),
      el("td", { class: "num" }, e.position),
      el("td", {}, e.event_type, tagList(e.tags)),
      el("td", { class: "when", title: e.recorded_at }, when(e.recorded_at)),
      el("td", {}, el("pre", { class: "payload" }, summary(e)))));
  }
  $("events-table").hidden = false;
  $("stream-hint").hidden = true;
}

// ---- an order, at a version ---------------------------------------------------------------

async function loadOrder(version) {
  const id = encodeURIComponent(state.orderId);
  let order;
  if (version == null) {
    const now = await getJson(`/orders/${id}/history`);
    const last = now.steps.length - 1;
    order = now.steps[last].order;
    order.current_version = last;
  } else {
    order = await getJson(`/orders/${id}?at_version=${version}`);
  }
  state.version = order.version;
  state.maxVersion = order.current_version == null ? order.version : order.current_version;
  renderOrder(order);
}

function renderOrder(o) {
  $("order-panel").hidden = false;
  $("order-id").textContent = o.order_id;
  const badge = $("order-status");
  badge.textContent = o.status;
  badge.className = "badge " + o.status;
  $("order-total").textContent = o.total_amount;
  const slider = $("order-slider");
  slider.max = state.maxVersion;
  slider.value = state.version;
  $("order-version").textContent = `version ${state.version} of ${state.maxVersion}`;
  $("order-prev").disabled = state.version <= 0;
  $("order-next").disabled = state.version >= state.maxVersion;
  const body = $("order-items").querySelector("tbody");
  body.replaceChildren();
  for (const i of o.items || []) {
    body.append(el("tr", {},
      el("td", { class: "mono" }, i.product_id),
      el("td", { class: "num" }, i.quantity),
      el("td", { class: "num" }, i.price),
      el("td", { class: "num" }, i.line_total)));
  }
  const none = !(o.items && o.items.length);
  $("order-items").hidden = none;
  $("order-items-empty").hidden = !none;
  $("order-meta").textContent = `user ${o.user_id} · ${o.line_count} line(s), ${o.item_count} unit(s) · updated ${when(o.updated_at)}` +
    (o.cancel_reason ? ` · cancelled: ${o.cancel_reason}` : "");
  for (const tr of $("events-table").querySelectorAll("tbody tr")) {
    tr.classList.toggle("selected", Number(tr.dataset.version) === state.version);
  }
}

async function stepTo(version) {
  if (state.orderId == null) return;
  const v = Math.max(0, Math.min(state.maxVersion, version));
  try { await loadOrder(v); showError(null); } catch (e) { showError(e.message); }
}

// ---- live tail ----------------------------------------------------------------------------

const TAIL_MAX = 50;
let refreshTimer = null;

function addTail(e, fresh) {
  const list = $("tail-list");
  if (list.querySelector(`li[data-position="${e.position}"]`)) return;
  const li = el("li", { dataset: { position: e.position }, class: fresh ? "fresh" : "" },
    el("div", { class: "line1" },
      el("span", { class: "pos" }, "#" + e.position),
      el("span", { class: "type" }, e.event_type),
      tagList(e.tags),
      el("span", { class: "payload" }, summary(e))),
    el("div", { class: "stream" }, `${e.stream_id} v${e.version} · ${when(e.recorded_at)}`));
  list.prepend(li);
  while (list.children.length > TAIL_MAX) list.lastElementChild.remove();
  $("tail-empty").hidden = true;
}

let lateTimer = null;

function scheduleRefresh(e) {
  clearTimeout(refreshTimer);
  clearTimeout(lateTimer);
  // Once soon, and once more a moment later: the stream catalog is a read model that may
  // trail the event that triggered the refresh by a few milliseconds.
  lateTimer = setTimeout(() => Promise.all([loadFigures(), loadStreams()]).catch((err) => showError(err.message)), 1500);
  refreshTimer = setTimeout(async () => {
    try {
      await Promise.all([loadFigures(), loadStreams()]);
      if (state.stream && e && e.stream_id === state.stream) {
        await loadStreamEvents();
        // Follow the order live only when looking at its newest version.
        if (state.orderId != null && state.version === state.maxVersion) await loadOrder(null);
      }
    } catch (err) { showError(err.message); }
  }, 150);
}

function startTail() {
  const from = state.head == null ? 0 : Math.max(0, state.head - 19);
  const source = new EventSource(`/events?from=${from}`);
  const pill = $("tail-status");
  source.onopen = () => { pill.textContent = "live"; pill.className = "pill live"; };
  source.onerror = () => { pill.textContent = "reconnecting"; pill.className = "pill down"; };
  source.onmessage = (m) => {
    let e;
    try { e = JSON.parse(m.data); } catch (_) { return; }
    const fresh = state.head == null || e.position > state.head;
    addTail(e, fresh);
    if (fresh) scheduleRefresh(e);
  };
}

// ---- start --------------------------------------------------------------------------------

async function start() {
  $("curl-hint").textContent = `curl -X POST '${location.origin}/orders?user_id=alice'`;
  $("order-prev").addEventListener("click", () => stepTo(state.version - 1));
  $("order-next").addEventListener("click", () => stepTo(state.version + 1));
  $("order-slider").addEventListener("change", (ev) => stepTo(Number(ev.target.value)));
  try {
    await Promise.all([loadFigures(), loadStreams()]);
    showError(null);
  } catch (e) { showError(e.message); }
  startTail();
  await followHash();
  // Links and the back button change the hash without a reload.
  window.addEventListener("hashchange", followHash);
}

// `#stream=<id>` selects that stream.
async function followHash() {
  const m = location.hash.match(/^#stream=(.+)$/);
  if (m && decodeURIComponent(m[1]) !== state.stream) await selectStream(decodeURIComponent(m[1]));
}

start();
