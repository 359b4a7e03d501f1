// The audition page: search, filter, listen, pick. Talks only to the JSON API under /api/.
"use strict";

const config = JSON.parse(document.getElementById("config").textContent || "{}");
const $ = (id) => document.getElementById(id);
const player = $("player");
const list = $("results");
const rowTemplate = $("row-template");

const state = { results: [], selected: -1, playing: -1, context: null };

// ---------------------------------------------------------------- formatting

function fmtTime(s) {
  if (s == null || !isFinite(s)) return "–";
  const m = Math.floor(s / 60);
  const sec = s - m * 60;
  return `${m}:${sec < 10 ? "0" : ""}${sec.toFixed(1)}`;
}

function toast(text, ms = 2200) {
  const t = $("toast");
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, ms);
}

// ---------------------------------------------------------------- set-up from the page config

// The filter controls come from the filter declaration (config.filters, indexer/filterspec.py):
// a filter declared there appears here with nothing to add to this page.
const filters = config.filters || [];
const showLabel = $("n").closest("label");
for (const f of filters) {
  const label = document.createElement("label");
  label.id = `${f.name}-filter`;
  label.title = f.help;
  let control;
  if (f.control === "select") {
    control = document.createElement("select");
    control.add(new Option(f.placeholder || "any", ""));
    for (const [value, text] of f.options || []) control.add(new Option(text, value));
  } else if (f.control === "checkbox") {
    control = document.createElement("input");
    control.type = "checkbox";
  } else {
    control = document.createElement("input");
    control.type = f.control === "number" ? "number" : "text";
    control.placeholder = f.placeholder || "";
    if (f.control === "number") {
      if (f.min != null) control.min = f.min;
      if (f.max != null) control.max = f.max;
      if (f.step != null) control.step = f.step;
    }
  }
  control.id = f.name;
  label.append(`${f.label} `, control);
  if (f.suggest === "tags") {
    const list = document.createElement("datalist");
    list.id = `${f.name}-list`;
    control.setAttribute("list", list.id);
    label.append(list);
  }
  showLabel.before(label);
}
if (config.counts) {
  const c = config.counts;
  const files = c.files_ok ?? c.ok ?? c.files;
  if (files != null) $("library-info").textContent = `${files} files indexed`;
}
if (config.has_tags) {
  fetch("/api/tags").then((r) => (r.ok ? r.json() : { tags: [] })).then((d) => {
    for (const f of filters.filter((x) => x.suggest === "tags")) {
      for (const t of d.tags || []) $(`${f.name}-list`).append(new Option(`${t.label} (${t.count})`, t.label));
    }
  }).catch(() => {});
}

// ---------------------------------------------------------------- queries

function filterParams(params) {
  for (const f of filters) {
    const el = $(f.name);
    const v = f.control === "checkbox" ? (el.checked ? "1" : "") : el.value.trim();
    if (v) params.set(f.param, v);
  }
  params.set("n", $("n").value);
  return params;
}

async function getJSON(url, options) {
  const t0 = performance.now();
  const resp = await fetch(url, options);
  let data = {};
  try { data = await resp.json(); } catch (e) { data = { error: `${resp.status} ${resp.statusText}` }; }
  if (!resp.ok) throw new Error(data.error || `${resp.status} ${resp.statusText}`);
  data.ms = performance.now() - t0;
  return data;
}

// Only the newest request for the result list may fill it: a slow answer to an older
// query (say, a filter just cleared) must not overwrite the answer to a newer one.
let listTicket = 0;
async function getList(url, options) {
  const ticket = ++listTicket;
  try {
    const data = await getJSON(url, options);
    return ticket === listTicket ? data : null;
  } catch (e) {
    if (ticket === listTicket) throw e;
    return null;
  }
}

async function runSearch() {
  const q = $("q").value.trim();
  if (!q) { $("q").focus(); return; }
  const params = filterParams(new URLSearchParams({ q, mode: $("mode").value }));
  const not = $("not").value.trim();
  if (not) params.set("not", not);
  history.replaceState(null, "", `?${new URLSearchParams({ q })}`);
  setStatus(`Searching for “${q}”…`, "busy");
  try {
    const data = await getList(`/api/search?${params}`);
    if (!data) return;
    state.context = { kind: "search", q };
    show(data.results, `${data.results.length} results for “${q}”`, data.ms);
  } catch (e) {
    setStatus(e.message, "error");
  }
}

async function findSimilar(i) {
  const r = state.results[i];
  if (!r) return;
  // Like the moment being heard, else like the matching window.
  const at = state.playing === i && !player.paused ? player.currentTime : r.offset_s;
  const params = filterParams(new URLSearchParams({ file_id: r.file_id, start: at.toFixed(2) }));
  setStatus(`Looking for sounds like ${r.name}…`, "busy");
  try {
    const data = await getList(`/api/similar?${params}`);
    if (!data) return;
    state.context = { kind: "similar", file: r };
    show(data.results, `${data.results.length} sounds like ${r.name} at ${fmtTime(at)}`, data.ms);
  } catch (e) {
    setStatus(e.message, "error");
  }
}

function setStatus(text, kind = "") {
  const s = $("status");
  s.textContent = text;
  s.className = `status ${kind}`;
}

// ---------------------------------------------------------------- results

function show(results, title, ms) {
  stop();
  state.results = results;
  state.selected = -1;
  list.replaceChildren(...results.map(renderRow));
  setStatus(results.length ? `${title} · ${Math.round(ms)} ms` : `${title}: nothing matched; loosen the filters or describe it differently`);
  if (results.length) select(0, false);
}

function renderRow(r, i) {
  const li = rowTemplate.content.firstElementChild.cloneNode(true);
  li.dataset.index = i;
  li.dataset.fileId = r.file_id;
  li.dataset.offset = r.offset_s;
  const audioUrl = `/api/files/${r.file_id}/audio`;
  li.querySelector(".rank").textContent = r.rank;
  const name = li.querySelector(".name");
  name.textContent = r.name || r.path.split("/").pop();
  name.title = r.path;
  name.href = audioUrl;
  name.addEventListener("dragstart", (ev) => {
    const url = new URL(`${audioUrl}?start=0&download=1`, location.href);
    ev.dataTransfer.setData("DownloadURL", `audio/wav:${r.name.replace(/\.[^.]+$/, "")}.wav:${url}`);
    ev.dataTransfer.setData("text/plain", r.path);
  });
  li.querySelector(".folder").textContent = r.folder ? `in ${r.folder}` : "";
  li.querySelector(".folder").title = r.root || "";
  // Bars compare results within this list (raw cosines depend on the model and the query).
  const scores = state.results.map((x) => x.score);
  const hi = Math.max(...scores), lo = Math.min(0, ...scores);
  const rel = hi > lo ? (r.score - lo) / (hi - lo) : 1;
  li.querySelector(".score .bar i").style.width = `${Math.max(4, rel * 100).toFixed(0)}%`;
  li.querySelector(".score .num").textContent = r.score.toFixed(3);
  li.querySelector(".score").title = scoreTitle(r);
  li.querySelector(".match").textContent = `match ${fmtTime(r.offset_s)}–${fmtTime(r.end_s)}`;
  li.querySelector(".dur").textContent = `length ${fmtTime(r.duration_s)}`;
  li.querySelector(".fmt").textContent = `${(r.ext || r.container || "").toUpperCase()} ${r.format}`;
  li.querySelector(".desc").textContent = r.description || r.ucs || "";
  const tags = li.querySelector(".tags");
  for (const t of r.tags || []) {
    const s = document.createElement("span");
    s.className = "tag";
    s.textContent = t;
    tags.append(s);
  }
  const dur = r.duration_s || r.end_s || 1;
  const region = li.querySelector(".region");
  region.style.left = `${(100 * r.offset_s) / dur}%`;
  region.style.width = `${(100 * (Math.min(r.end_s, dur) - r.offset_s)) / dur}%`;
  const img = li.querySelector(".wave img");
  img.src = `/api/files/${r.file_id}/waveform?w=1200&h=96&start=${r.offset_s}&end=${r.end_s}`;
  img.addEventListener("error", () => li.querySelector(".wave").classList.add("broken"), { once: true });

  li.querySelector(".wave").addEventListener("click", (ev) => {
    const box = ev.currentTarget.getBoundingClientRect();
    const frac = Math.max(0, Math.min(1, (ev.clientX - box.left) / box.width));
    play(i, frac * dur);
  });
  li.querySelector(".play").addEventListener("click", (ev) => { ev.stopPropagation(); toggle(i); });
  li.querySelector(".similar").addEventListener("click", () => findSimilar(i));
  li.querySelector(".copy").addEventListener("click", () => copyPath(r.path));
  li.querySelector(".reveal").addEventListener("click", () => reveal(r));
  const dl = li.querySelector(".download");
  dl.href = `${audioUrl}?start=${r.offset_s}&end=${r.end_s}&download=1`;
  dl.setAttribute("download", "");
  li.addEventListener("mousedown", () => select(i, false));
  return li;
}

function rowEl(i) {
  return list.children[i] || null;
}

function select(i, scroll = true) {
  if (i < 0 || i >= state.results.length) return;
  rowEl(state.selected)?.classList.remove("selected");
  state.selected = i;
  const el = rowEl(i);
  el.classList.add("selected");
  if (scroll) el.scrollIntoView({ block: "nearest" });
}

// ---------------------------------------------------------------- playback

function play(i, at) {
  const r = state.results[i];
  if (!r) return;
  select(i, false);
  const start = at ?? r.offset_s;
  const src = `/api/files/${r.file_id}/audio`;
  rowEl(state.playing)?.classList.remove("playing");
  state.playing = i;
  rowEl(i).classList.add("playing");
  const go = () => {
    player.currentTime = start;
    player.play().catch((e) => { if (e.name !== "AbortError") toast(`cannot play: ${e.message}`); });
  };
  if (player.dataset.fileId === String(r.file_id) && player.readyState >= 1) {
    go();
  } else {
    player.dataset.fileId = r.file_id;
    player.src = src;
    player.addEventListener("loadedmetadata", go, { once: true });
    player.load();
  }
}

function stop() {
  player.pause();
  rowEl(state.playing)?.classList.remove("playing");
  state.playing = -1;
}

function toggle(i) {
  if (state.playing === i && !player.paused) stop();
  else play(i);
}

player.addEventListener("ended", stop);
player.addEventListener("error", () => {
  if (player.src) toast("this file cannot be played (see the server log)");
  stop();
});

function tick() {
  const el = rowEl(state.playing);
  if (el && player.duration) {
    const r = state.results[state.playing];
    const dur = r.duration_s || player.duration;
    el.querySelector(".playhead").style.left = `${Math.min(100, (100 * player.currentTime) / dur)}%`;
  }
  requestAnimationFrame(tick);
}
requestAnimationFrame(tick);

// ---------------------------------------------------------------- actions

async function copyPath(path) {
  try {
    await navigator.clipboard.writeText(path);
  } catch (e) {
    const ta = document.createElement("textarea");
    ta.value = path;
    document.body.append(ta);
    ta.select();
    document.execCommand("copy");
    ta.remove();
  }
  toast(`Copied ${path}`);
}

async function reveal(r) {
  try {
    const d = await getJSON(`/api/files/${r.file_id}/reveal`, { method: "POST" });
    toast(d.opened ? `Opened ${d.folder}` : `No file manager found: ${d.folder}`, 4000);
  } catch (e) {
    toast(`${e.message}: ${r.path}`, 5000);
  }
}

// ---------------------------------------------------------------- keyboard

$("search-form").addEventListener("submit", (ev) => { ev.preventDefault(); runSearch(); });
// Choices and numbers search again at once; typed text waits for Enter.
for (const id of [...filters.filter((f) => f.control !== "text").map((f) => f.name), "n"]) {
  $(id).addEventListener("change", () => { if (state.context?.kind === "search") runSearch(); });
}

document.addEventListener("keydown", (ev) => {
  const typing = ev.target.matches("input, select, textarea");
  if (typing) {
    if (ev.key === "ArrowDown" && ev.target.id === "q" && state.results.length) {
      ev.preventDefault();
      ev.target.blur();
      select(Math.max(0, state.selected));
    } else if (ev.key === "Escape") {
      ev.target.blur();
    }
    return;
  }
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
  // A clicked button keeps focus: the keys below must mean the same whatever was clicked last.
  if (ev.target.matches("button, a") && (ev.key === " " || ev.key === "Enter")) ev.target.blur();
  switch (ev.key) {
    case "ArrowDown": ev.preventDefault(); select(Math.min(state.results.length - 1, state.selected + 1)); break;
    case "ArrowUp": ev.preventDefault(); select(Math.max(0, state.selected - 1)); break;
    case " ": ev.preventDefault(); if (state.selected >= 0) toggle(state.selected); break;
    case "Enter": ev.preventDefault(); if (state.selected >= 0) findSimilar(state.selected); break;
    case "Escape": stop(); break;
    case "/": ev.preventDefault(); $("q").focus(); $("q").select(); break;
    default: return;
  }
});

// A shared link (?q=...) searches at once.
const initial = new URLSearchParams(location.search).get("q");
if (initial) {
  $("q").value = initial;
  runSearch();
}

// What the score of a row is, in its mode (the same words as `sfx-search query --help`).
function scoreTitle(r) {
  const num = (x) => (x === null || x === undefined ? "–" : x.toFixed(3));
  if (!r.found_by) return "sound: cosine similarity of the best moment (CLAP)";
  if (r.found_by === "keyword" && r.sound_score === null) {
    return `keyword: BM25 relevance of name (x4), description (x2.5), folder (x1); higher is better, within this query`;
  }
  return `fused rank score (1 = first for both halves); found by ${r.found_by}: ` +
    `sound ${num(r.sound_score)} (cosine), keyword ${num(r.keyword_score)} (BM25: name > description > folder)`;
}
