// Collections in the audition page (docs/collections.md): "Keep" (k) puts a result's matched
// moment into the current collection; the panel lists it, reorders, removes, and exports
// (M3U, CSV downloads; region WAVs into a folder on this machine). Builds on app.js.
"use strict";

const pulls = { current: "", items: [] };

function pullsPost(url, body) {
  return getJSON(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
}

function pullName() {
  return $("pull-name").value.trim();
}

async function refreshCollections() {
  try {
    const d = await getJSON("/api/collections");
    const dl = $("pull-list");
    dl.replaceChildren(...d.collections.map((c) => new Option(`${c.items} items`, c.name)));
  } catch (e) { /* the list is a convenience */ }
}

function renderPull(d) {
  pulls.current = d.name;
  pulls.items = d.items;
  const ol = $("pull-items");
  ol.replaceChildren(...d.items.map((it) => {
    const li = document.createElement("li");
    li.className = `pull-item ${it.status}`;
    const name = document.createElement("span");
    name.className = "pull-name";
    name.textContent = it.path.split("/").pop();
    name.title = it.path + (it.status === "moved" ? ` (moved from ${it.last_seen})` : "");
    const at = document.createElement("span");
    at.className = "chip";
    at.textContent = it.start_s == null ? "whole file" : `${fmtTime(it.start_s)}–${fmtTime(it.end_s)}`;
    const buttons = [["↑", "Move up", () => movePull(it.position, it.position - 1)],
      ["↓", "Move down", () => movePull(it.position, it.position + 1)],
      ["✕", "Remove from the collection", () => removePull(it.position)]].map(([t, title, fn]) => {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = t;
      b.title = title;
      b.addEventListener("click", fn);
      return b;
    });
    li.append(name, at, ...buttons);
    if (it.status === "missing") li.append(" (missing)");
    return li;
  }));
  $("pull-count").textContent = `${d.items.length} item${d.items.length === 1 ? "" : "s"} in “${d.name}”`;
  const q = encodeURIComponent(d.name);
  $("pull-m3u").href = `/api/collections/export?name=${q}&format=m3u`;
  $("pull-csv").href = `/api/collections/export?name=${q}&format=csv`;
  for (const id of ["pull-m3u", "pull-csv", "pull-wavs"]) $(id).classList.toggle("off", !d.items.length);
}

async function loadPull() {
  const name = pullName();
  if (!name) return;
  try { renderPull(await getJSON(`/api/collections/items?name=${encodeURIComponent(name)}`)); }
  catch (e) { renderPull({ name, items: [] }); }
}

async function keepResult(i) {
  const r = state.results[i];
  if (!r) return;
  const name = pullName();
  if (!name) { togglePulls(true); $("pull-name").focus(); toast("Name the collection first"); return; }
  try {
    const d = await pullsPost("/api/collections/add",
      { name, items: [{ file_id: r.file_id, start: r.offset_s, end: r.end_s }] });
    renderPull(d);
    rowEl(i)?.classList.add("kept");
    toast(`Kept ${r.name || r.path} in “${name}”`);
    refreshCollections();
  } catch (e) { toast(e.message, 4000); }
}

async function movePull(position, to) {
  if (to < 1 || to > pulls.items.length) return;
  try { renderPull(await pullsPost("/api/collections/move", { name: pulls.current, position, to })); }
  catch (e) { toast(e.message, 4000); }
}

async function removePull(position) {
  try {
    await pullsPost("/api/collections/remove", { name: pulls.current, positions: [position] });
    loadPull();
  } catch (e) { toast(e.message, 4000); }
}

async function exportWavs() {
  if (!pulls.items.length) return;
  const dir = prompt("Folder (outside the library) for the region WAVs:", "");
  if (!dir) return;
  try {
    const d = await pullsPost("/api/collections/export-wav", { name: pulls.current, dir });
    toast(`Wrote ${d.files.length} WAV files to ${d.dir}`, 5000);
  } catch (e) { toast(e.message, 6000); }
}

function togglePulls(open) {
  const panel = $("pull-panel");
  panel.hidden = open === undefined ? !panel.hidden : !open;
  if (!panel.hidden) { refreshCollections(); loadPull(); }
}

function decorateKeep() {
  for (const li of document.querySelectorAll("#results > .result")) {
    const actions = li.querySelector(".actions");
    if (!actions || actions.querySelector(".keep")) continue;
    const b = document.createElement("button");
    b.type = "button";
    b.className = "keep";
    b.title = "Keep this moment in the current collection (k)";
    b.textContent = "Keep";
    b.addEventListener("click", (ev) => { ev.stopPropagation(); keepResult(Number(li.dataset.index)); });
    actions.append(b);
  }
}

(function setUpCollections() {
  const panel = document.createElement("aside");
  panel.id = "pull-panel";
  panel.className = "pull-panel";
  panel.hidden = true;
  panel.innerHTML = `
    <div class="pull-head">
      <label>Collection <input id="pull-name" list="pull-list" maxlength="200" value="My pull"></label>
      <datalist id="pull-list"></datalist>
      <span id="pull-count"></span>
    </div>
    <ol id="pull-items" class="pull-items"></ol>
    <div class="pull-export">Export:
      <a id="pull-m3u" download>M3U</a> <a id="pull-csv" download>CSV</a>
      <button id="pull-wavs" type="button" title="Region WAVs into a folder outside the library">WAVs to a folder…</button>
    </div>`;
  $("status").before(panel);
  const b = document.createElement("button");
  b.id = "pulls";
  b.type = "button";
  b.textContent = "Collections";
  b.title = "Show the current collection";
  b.addEventListener("click", () => togglePulls());
  ($("label-mode") || $("refine") || $("go")).after(b);
  $("pull-name").addEventListener("change", loadPull);
  $("pull-wavs").addEventListener("click", exportWavs);
  new MutationObserver(decorateKeep).observe($("results"), { childList: true });
  const hint = document.createElement("span");
  hint.innerHTML = "<kbd>k</kbd> keep in collection";
  document.querySelector("footer.keys #library-info")?.before(hint);
})();

document.addEventListener("keydown", (ev) => {
  if (ev.target.matches("input, select, textarea") || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  if (document.body.classList.contains("label-mode")) return;
  if (ev.key === "k") { ev.preventDefault(); keepResult(state.selected); }
});
