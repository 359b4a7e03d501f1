// Label mode (docs/labels.md): name a label or pick a UCS CatID, answer yes/no per candidate
// (keys y / n, Space plays); after a few answers a head picks the next candidates and its
// cross-validated figures show. Builds on app.js: state, show(), getJSON(), setStatus().
"use strict";

const labelMode = { label: null, busy: false, ucsLoaded: false };

function labelPanel() {
  const panel = document.createElement("div");
  panel.id = "label-panel";
  panel.className = "label-panel";
  panel.hidden = true;
  panel.innerHTML = `
    <form id="label-form" autocomplete="off">
      <strong>Teach a label</strong>
      <input id="label-name" type="text" list="label-ucs" maxlength="200" placeholder="label name or UCS CatID (e.g. DOORWood)">
      <datalist id="label-ucs"></datalist>
      <button id="label-start" type="submit">Start</button>
      <button id="label-save" type="button" disabled title="Save the head: tag the library with sfx-search tag --head NAME">Save head</button>
      <button id="label-exit" type="button">Done</button>
    </form>
    <div class="label-stats"><span id="label-count">no answers yet</span> <span id="label-figures"></span></div>
    <div class="label-keys"><kbd>y</kbd> yes <kbd>n</kbd> no <kbd>Space</kbd> play</div>`;
  $("status").before(panel);
  return panel;
}

function labelBody(extra) {
  const v = $("label-name").value.trim();
  return JSON.stringify({ label: v, k: 10, ...extra });
}

async function labelPost(url, extra) {
  return getJSON(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: labelBody(extra) });
}

function showRound(d) {
  labelMode.label = d.label;
  $("label-count").textContent =
    `${d.answers} answer${d.answers === 1 ? "" : "s"} for “${d.label}” (${d.yes} yes, ${d.no} no)`;
  const f = d.figures;
  $("label-figures").textContent = f
    ? `· head, ${f.folds}-fold: accuracy ${f.accuracy.toFixed(2)}, macro-F1 ${f.macro_f1.toFixed(2)}, ` +
      `precision ${f.precision.toFixed(2)}, recall ${f.recall.toFixed(2)}`
    : `· the head trains once there are ${d.min_per_side} yes and ${d.min_per_side} no`;
  $("label-save").disabled = !f;
  state.context = { kind: "label", q: d.text };
  show(d.candidates, d.candidates.length ? `Is it “${d.label}”? Answer y / n` : `No candidates left for “${d.label}”`, d.ms);
}

async function labelStart() {
  if (!$("label-name").value.trim()) { $("label-name").focus(); return; }
  setStatus("Finding candidates…", "busy");
  try { showRound(await labelPost("/api/label/round")); } catch (e) { setStatus(e.message, "error"); }
}

async function labelAnswer(i, yes) {
  const r = state.results[i];
  if (!r || labelMode.busy || !labelMode.label) return;
  labelMode.busy = true;
  rowEl(i)?.classList.add(yes ? "answered-yes" : "answered-no");
  try {
    showRound(await labelPost("/api/label/answer", { file_id: r.file_id, yes }));
  } catch (e) {
    setStatus(e.message, "error");
  } finally {
    labelMode.busy = false;
  }
}

function decorateCandidates() {
  if (!document.body.classList.contains("label-mode")) return;
  for (const li of document.querySelectorAll("#results > .result")) {
    const r = state.results[Number(li.dataset.index)];
    const actions = li.querySelector(".actions");
    if (!r || !actions || actions.querySelector(".lb-yes")) continue;
    const why = document.createElement("span");
    why.className = "chip why";
    why.textContent = r.p == null ? r.why || "search" : `${r.why} · p ${r.p.toFixed(2)}`;
    li.querySelector(".meta").prepend(why);
    for (const [cls, text, yes] of [["lb-yes", "Yes (y)", true], ["lb-no", "No (n)", false]]) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = cls;
      b.textContent = text;
      b.addEventListener("click", (ev) => { ev.stopPropagation(); labelAnswer(Number(li.dataset.index), yes); });
      actions.prepend(b);
    }
  }
}

function enterLabelMode() {
  document.body.classList.add("label-mode");
  $("label-panel").hidden = false;
  $("label-name").focus();
  if (!labelMode.ucsLoaded) {
    labelMode.ucsLoaded = true;
    fetch("/api/label/ucs").then((r) => r.json()).then((d) => {
      for (const u of d.ucs || []) $("label-ucs").append(new Option(`${u.name}: ${u.text}`, u.cat_id));
    }).catch(() => {});
  }
}

function exitLabelMode() {
  document.body.classList.remove("label-mode");
  $("label-panel").hidden = true;
  labelMode.label = null;
  list.replaceChildren();
  state.results = [];
  setStatus("Type a description and press Enter.");
}

(function setUpLabelMode() {
  labelPanel();
  const b = document.createElement("button");
  b.id = "label-mode";
  b.type = "button";
  b.textContent = "Label";
  b.title = "Teach a label by answering yes / no";
  b.addEventListener("click", () => (document.body.classList.contains("label-mode") ? exitLabelMode() : enterLabelMode()));
  ($("refine") || $("go")).after(b);
  $("label-form").addEventListener("submit", (ev) => { ev.preventDefault(); labelStart(); });
  $("label-exit").addEventListener("click", exitLabelMode);
  $("label-save").addEventListener("click", async () => {
    try {
      const d = await labelPost("/api/label/save", {});
      toast(`Saved head “${d.name}”: sfx-search tag --head ${d.name}`, 5000);
    } catch (e) { toast(e.message, 5000); }
  });
  new MutationObserver(decorateCandidates).observe($("results"), { childList: true });
})();

document.addEventListener("keydown", (ev) => {
  if (!document.body.classList.contains("label-mode")) return;
  if (ev.target.matches("input, select, textarea") || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  if (ev.key === "y" || ev.key === "n") {
    ev.preventDefault();
    labelAnswer(state.selected, ev.key === "y");
  }
});
