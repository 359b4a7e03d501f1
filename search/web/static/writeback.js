// Write-back on the audition page: per file current metadata and suggestions (accept / edit /
// reject), a batch of accepted values, a preview, and a confirm step before anything is written.
// Talks only to /api/writeback/*; every POST carries the token the server gave this page.
"use strict";

(() => {
  const FIELDS = ["cat_id", "fx_name", "description", "keywords", "notes"];
  const wb = { token: "", write: false, why: "", batch: new Map(), previewId: null };
  const el = (tag, attrs = {}, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "on") for (const [ev, fn] of Object.entries(v)) e.addEventListener(ev, fn);
      else if (k === "text") e.textContent = v;
      else if (v !== null && v !== undefined) e.setAttribute(k, v);
    }
    for (const kid of kids) if (kid != null) e.append(kid);
    return e;
  };

  async function call(url, body) {
    const opts = body === undefined ? {} : {
      method: "POST", body: JSON.stringify(body),
      headers: { "Content-Type": "application/json", "X-SFX-Token": wb.token },
    };
    const res = await fetch(url, opts);
    const data = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(data.error || `HTTP ${res.status}`);
    return data;
  }

  const panel = el("aside", { id: "wb-panel", class: "wb-panel", hidden: "" });
  const note = (text) => { const t = document.getElementById("toast"); t.textContent = text; t.hidden = false; setTimeout(() => { t.hidden = true; }, 3500); };

  function table(rows, cols) {
    return el("table", { class: "wb-table" },
      el("tr", {}, ...cols.map((c) => el("th", { text: c }))),
      ...rows.map((r) => el("tr", { class: r.status === "skipped" ? "wb-skip" : "" },
        ...cols.map((c) => el("td", { text: String(r[c] ?? (c === "old" && r.reason ? r.reason : "")) })))));
  }

  async function openFile(fileId) {
    panel.hidden = false;
    panel.replaceChildren(el("p", { text: "Reading the file…" }));
    let d;
    try { d = await call(`/api/writeback/files/${fileId}`); } catch (e) { panel.replaceChildren(el("p", { text: e.message })); return; }
    const inputs = {};
    const rows = FIELDS.map((f) => {
      const suggested = d.values[f] ?? "";
      const input = el("input", { type: "text", value: suggested || d.current[f] || "", "data-field": f });
      const take = el("input", { type: "checkbox", title: "accept this value" });
      if (suggested && suggested !== d.current[f]) take.checked = true;
      input.addEventListener("input", () => { take.checked = input.value !== (d.current[f] || ""); });
      inputs[f] = { input, take };
      const score = f === "cat_id" && d.ucs_score != null ? ` (${d.ucs_score.toFixed(2)})` : "";
      return el("tr", {}, el("th", { text: f }), el("td", { class: "wb-cur", text: d.current[f] || "—" }),
        el("td", {}, input, el("small", { text: score })), el("td", {}, take));
    });
    const tagList = el("ul", { class: "wb-tags" }, ...d.tags.map((t) => el("li", {},
      el("span", { text: `${t.label}${t.cat_id ? " · " + t.cat_id : ""} ${t.score.toFixed(2)}` }),
      el("span", { class: "wb-dec", text: t.decision ? ` ${t.decision}` : "" }),
      el("button", { type: "button", text: "✓", title: "accept this tag", on: { click: () => decide(fileId, t, true) } }),
      el("button", { type: "button", text: "✗", title: "reject this tag", on: { click: () => decide(fileId, t, false) } }))));
    panel.replaceChildren(
      el("header", {}, el("b", { text: d.path.split("/").pop() }), el("button", { type: "button", class: "wb-close", text: "×", on: { click: () => { panel.hidden = true; } } })),
      el("table", { class: "wb-fields" }, el("tr", {}, el("th", {}), el("th", { text: "in the file" }), el("th", { text: "new value" }), el("th", { text: "take" })), ...rows),
      d.tags.length ? el("h4", { text: "Suggested tags" }) : null, d.tags.length ? tagList : null,
      el("div", { class: "wb-actions" },
        el("button", { type: "button", text: "Add to batch", on: { click: () => {
          const values = {};
          for (const [f, { input, take }] of Object.entries(inputs)) if (take.checked) values[f] = input.value;
          if (!Object.keys(values).length) return note("Tick the values to write first");
          wb.batch.set(fileId, values);
          renderBatch(); note(`${wb.batch.size} files in the batch`);
        } } }),
        batchBox));
    renderBatch();
  }

  async function decide(fileId, t, accept) {
    try {
      await call("/api/writeback/decision", { file_id: fileId, label: t.label, cat_id: t.cat_id, accept });
      openFile(fileId);
    } catch (e) { note(e.message); }
  }

  const batchBox = el("div", { class: "wb-batch" });
  function renderBatch() {
    const items = [...wb.batch.entries()];
    batchBox.replaceChildren(
      el("span", { text: `Batch: ${items.length} files` }),
      el("button", { type: "button", text: "Preview", disabled: items.length ? null : "", on: { click: preview } }),
      el("button", { type: "button", text: "Clear", on: { click: () => { wb.batch.clear(); wb.previewId = null; renderBatch(); } } }));
  }

  const items = () => [...wb.batch.entries()].map(([file_id, values]) => ({ file_id: Number(file_id), values }));

  async function preview() {
    let d;
    try { d = await call("/api/writeback/preview", { items: items() }); } catch (e) { return note(e.message); }
    wb.previewId = d.preview_id;
    const confirm = el("button", { type: "button", class: "wb-confirm", text: `Write ${wb.batch.size} files`,
      on: { click: apply } });
    if (!wb.write) { confirm.disabled = true; confirm.title = wb.why; }
    panel.hidden = false;
    panel.replaceChildren(
      el("header", {}, el("b", { text: "Preview: nothing is written yet" }), el("button", { type: "button", class: "wb-close", text: "×", on: { click: () => { panel.hidden = true; } } })),
      table(d.rows.map((r) => ({ ...r, file: r.path.split("/").pop() })), ["file", "field", "old", "new", "status"]),
      el("div", { class: "wb-actions" }, confirm, el("button", { type: "button", text: "Cancel", on: { click: () => { panel.hidden = true; } } }),
        wb.write ? null : el("small", { text: wb.why })));
  }

  async function apply() {
    let d;
    try { d = await call("/api/writeback/apply", { items: items(), preview_id: wb.previewId }); } catch (e) { return note(e.message); }
    const written = d.rows.filter((r) => r.status === "written").length;
    wb.batch.clear(); wb.previewId = null;
    panel.replaceChildren(
      el("header", {}, el("b", { text: `Wrote ${written} files (change ${d.change || "—"})` }), el("button", { type: "button", class: "wb-close", text: "×", on: { click: () => { panel.hidden = true; } } })),
      table(d.rows, ["path", "status", "reason"]),
      d.change ? el("button", { type: "button", text: "Undo this change", on: { click: async () => {
        try { const u = await call("/api/writeback/undo", { change: d.change }); note(`Undid ${u.change}`); panel.hidden = true; } catch (e) { note(e.message); }
      } } }) : null);
  }

  // Batch view: the suggested UCS category and keywords of every shown result scoring at least
  // the threshold go into the batch, then the preview opens (still nothing written).
  async function suggestAll() {
    const min = Number(minScore.value) || 0;
    const ids = [...document.querySelectorAll("#results li.result")].map((li) => Number(li.dataset.fileId));
    let added = 0;
    for (const id of ids) {
      let d;
      try { d = await call(`/api/writeback/files/${id}`); } catch { continue; }
      if (!d.values.cat_id || (d.ucs_score ?? 0) < min || d.current.cat_id === d.values.cat_id) continue;
      const values = { cat_id: d.values.cat_id };
      if (d.values.keywords) values.keywords = d.values.keywords;
      wb.batch.set(id, values);
      added += 1;
    }
    renderBatch();
    if (!added) return note(`No shown result has a new UCS suggestion scoring ${min} or more`);
    preview();
  }
  const minScore = el("input", { type: "number", min: "0", max: "1", step: "0.05", value: "0.3", size: "4",
    title: "lowest UCS suggestion score taken" });
  document.getElementById("filters")?.append(el("label", { class: "wb-bulk" }, "UCS ≥ ", minScore,
    el("button", { type: "button", text: "Suggest for shown", title: "Batch the UCS suggestions of the shown results, then preview",
      on: { click: suggestAll } })));

  // A "Metadata" button on every result row (rows are rendered by app.js).
  function decorate(li) {
    const actions = li.querySelector(".actions");
    if (!actions || actions.querySelector(".wb-open")) return;
    actions.append(el("button", { type: "button", class: "wb-open", text: "Metadata", title: "Current and suggested metadata; write it into the file",
      on: { click: () => openFile(Number(li.dataset.fileId)) } }));
  }
  const results = document.getElementById("results");
  new MutationObserver(() => results.querySelectorAll("li.result").forEach(decorate)).observe(results, { childList: true });

  document.body.append(panel);
  call("/api/writeback/session").then((s) => { wb.token = s.token; wb.write = s.write; wb.why = s.why; }).catch(() => {});
})();
