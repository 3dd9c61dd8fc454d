// The live funnel page: reads `funnel` every POLL_MS and redraws, without reloading.
"use strict";

const POLL_MS = 2000;
const KEY_STORE = "collectors-key";
const AFTER_QUEUE = [
  ["posted", "posted"], ["duplicate", "duplicates"], ["dead_lettered", "dead-lettered"], ["dropped", "dropped"],
];

function element(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (name === "class") node.className = value; else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function number(n) { return Math.round(Number(n || 0)).toLocaleString("en-US"); }

function row(kind, label, count, seen, extra) {
  const width = seen > 0 ? Math.min(100, (100 * count) / seen) : 0;
  const fill = element("div", { class: "fill" });
  fill.style.width = width.toFixed(1) + "%";
  return element("div", { class: `row ${kind} ${extra || ""}`, "data-row": label },
    element("span", { class: "name", title: label }, label),
    element("div", { class: "bar" }, fill),
    element("span", { class: "count", "data-count": kind === "out" ? `out:${label}` : kind }, number(count)));
}

function card(collector) {
  const seen = collector.seen || 0;
  const paused = collector.status === "paused";
  const rates = collector.rates || {};
  const body = element("div", { class: "card", "data-collector": collector.id },
    element("h3", {}, collector.id),
    element("div", { class: "status" + (paused ? " paused" : "") }, collector.status),
    element("div", { class: "rates" },
      `seen ${number(rates.seen)}/min · queued ${number(rates.queued)}/min · posted ${number(rates.posted)}/min`),
    row("seen", "seen", seen, seen));
  for (const step of collector.out) {
    body.append(row("out", (step.stage === "post" ? "after queue: " : "") + step.step, step.count, seen));
  }
  body.append(row("queued", "queued", collector.queued, seen));
  for (const [field, label] of AFTER_QUEUE) {
    body.append(row(field, label, collector[field], seen, "after"));
  }
  return body;
}

function fillTable(id, rows, columns) {
  const body = document.querySelector(`#${id} tbody`);
  body.replaceChildren();
  if (rows.length === 0) {
    body.append(element("tr", {}, element("td", { class: "empty", colspan: String(columns) }, "none")));
  }
  for (const cells of rows) {
    body.append(element("tr", {}, ...cells.map(([text, cls]) => element("td", cls ? { class: cls } : {}, text))));
  }
}

function render(reading) {
  const events = reading.events || {};
  document.getElementById("summary").textContent =
    `app id ${reading.app_id} · ${number(events.events)} events read, ${number(events.decoded)} decoded, ` +
    `${number(events.dead_lettered)} invalid · ${reading.collectors.length} collectors · updated ${reading.at}`;
  document.getElementById("collectors").replaceChildren(...reading.collectors.map(card));
  const paused = reading.collectors.filter((c) => c.status === "paused");
  const list = document.getElementById("paused");
  list.replaceChildren(...paused.map((c) =>
    element("li", { "data-paused": c.id }, element("strong", {}, c.id), ": ", c.last_error || "paused by its owner")));
  if (paused.length === 0) list.append(element("li", { class: "empty" }, "none"));
  fillTable("lag", reading.lag.map((p) => [[p.topic], [String(p.partition), "num"], [number(p.end), "num"],
    [p.committed === null ? "–" : number(p.committed), "num"], [number(p.lag), "num"]]), 5);
  fillTable("dead-letters", reading.dead_letters.map((d) => [[d.collector || "(undecodable events)"], [d.reason],
    [number(d.count), "num"]]), 3);
}

function showProblem(text) {
  const problem = document.getElementById("problem");
  problem.hidden = !text;
  problem.textContent = text || "";
}

async function poll() {
  const headers = {};
  const key = sessionStorage.getItem(KEY_STORE);
  if (key) headers.Authorization = `Key ${key}`;
  try {
    const response = await fetch("funnel", { headers, cache: "no-store" });
    const body = await response.json();
    if (response.status === 401) {
      sessionStorage.removeItem(KEY_STORE);
      document.getElementById("key-form").hidden = false;
      showProblem(body.status ? body.status.details : "a key is needed");
      return;
    }
    if (!response.ok) {
      showProblem(body.status ? `${body.status.description}: ${body.status.details}` : `HTTP ${response.status}`);
      return;
    }
    showProblem("");
    render(body);
  } catch (error) {
    showProblem(`the management API did not answer (${error.message}); retrying`);
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

document.getElementById("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(KEY_STORE, document.getElementById("key").value);
  document.getElementById("key-form").hidden = true;
});

poll();
