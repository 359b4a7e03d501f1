// Library hygiene on the audition page (issue 16): measured loudness and peaks on each result,
// "+N copies" where near-duplicates were folded into a row, a file's duplicate group on demand,
// and a Duplicates view of the whole library. Reads app.js's `state` and the JSON API only.
"use strict";

(() => {
  const results = document.getElementById("results");
  const fmtDb = (v, unit) => (v === null || v === undefined ? null : `${v.toFixed(1)} ${unit}`);

  function chip(text, title, cls = "") {
    const s = document.createElement("span");
    s.className = `chip hygiene ${cls}`.trim();
    s.textContent = text;
    s.title = title;
    return s;
  }

  function decorate(li) {
    if (li.dataset.hygiene) return;
    li.dataset.hygiene = "1";
    const r = state.results[Number(li.dataset.index)];
    const meta = li.querySelector(".meta");
    if (!r || !meta) return;
    const at = meta.querySelector(".desc");
    const add = (el) => meta.insertBefore(el, at);
    const lufs = fmtDb(r.loudness_lufs, "LUFS");
    if (lufs) add(chip(lufs, "integrated loudness (BS.1770)", r.loudness_lufs < -50 ? "quiet" : ""));
    const tp = fmtDb(r.true_peak_dbtp, "dBTP");
    if (tp) add(chip(`peak ${tp}`, "true peak (4x oversampled)", r.true_peak_dbtp > -1 ? "hot" : ""));
    if (r.clipped_samples) add(chip(`clipped ×${r.clipped_samples}`, "samples in runs of 3+ at full scale", "hot"));
    if (r.copies && r.copies.length) {
      add(chip(`+${r.copies.length} copies`, r.copies.join("\n"), "copies"));
    }
    const btn = document.createElement("button");
    btn.type = "button";
    btn.className = "dups";
    btn.textContent = "Copies";
    btn.title = "Other copies of this sound in the library (another format, rate, level or trim)";
    btn.addEventListener("click", (ev) => { ev.stopPropagation(); showGroup(r, li); });
    li.querySelector(".actions")?.append(btn);
  }

  function groupList(g) {
    const ul = document.createElement("ul");
    ul.className = "dup-group";
    const keep = document.createElement("li");
    keep.textContent = `keep ${g.keep.path} — ${g.why}`;
    ul.append(keep);
    for (const c of g.copies) {
      const li = document.createElement("li");
      li.textContent = `copy ${c.path}: ${c.difference}`;
      ul.append(li);
    }
    return ul;
  }

  async function showGroup(r, li) {
    const old = li.querySelector(".dup-group, .dup-none");
    if (old) { old.remove(); return; }
    const resp = await fetch(`/api/files/${r.file_id}/duplicates`);
    const d = await resp.json();
    if (!d.group) {
      const p = document.createElement("div");
      p.className = "dup-none";
      p.textContent = "no other copy of this sound in the library";
      li.append(p);
      return;
    }
    li.append(groupList(d.group));
  }

  async function showAll() {
    const status = document.getElementById("status");
    status.textContent = "looking for near-duplicates…";
    const t = performance.now();
    const d = await (await fetch("/api/duplicates")).json();
    state.results = [];
    results.replaceChildren(...d.groups.map((g) => {
      const li = document.createElement("li");
      li.className = "result dup-view";
      li.append(groupList(g));
      return li;
    }));
    const copies = d.groups.reduce((n, g) => n + g.copies.length, 0);
    status.textContent = `${d.groups.length} groups of near-duplicates, ${copies} copies · ${Math.round(performance.now() - t)} ms`;
  }

  const form = document.getElementById("search-form");
  if (form) {
    const b = document.createElement("button");
    b.type = "button";
    b.id = "duplicates";
    b.textContent = "Duplicates";
    b.title = "Groups of files that are the same sound in another format, rate, level or trim";
    b.addEventListener("click", showAll);
    form.append(b);
  }
  // "Fold copies": near-duplicates of a result list become one row with "+N copies".
  const showLabel = document.getElementById("n")?.closest("label");
  if (showLabel && typeof filterParams === "function") {
    const label = document.createElement("label");
    label.title = "Fold near-duplicates (another format, rate, level or trim) into one row";
    const box = document.createElement("input");
    box.type = "checkbox";
    box.id = "collapse_copies";
    label.append("Fold copies ", box);
    showLabel.before(label);
    const plain = filterParams;
    filterParams = (params) => {  // app.js builds every search's parameters with this
      plain(params);
      if (box.checked) params.set("collapse_copies", "1");
      return params;
    };
  }

  new MutationObserver(() => results.querySelectorAll("li.result:not(.dup-view)").forEach(decorate))
    .observe(results, { childList: true });
})();
