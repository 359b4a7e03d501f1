// Relevance feedback in the audition page (docs/feedback.md): mark results "more like this" /
// "not this", then Refine ranks the library again from the stored vectors (POST /api/refine).
// Builds on app.js (loaded first): its state, show(), getJSON(), setStatus() and the row list.
"use strict";

const feedback = {
  marks: new Map(), // file_id -> {kind: "like" | "unlike", start, row}
  refineButton: null,
};

function feedbackKey(r) { return String(r.file_id); }

function markResult(i, kind) {
  const r = state.results[i];
  if (!r) return;
  const key = feedbackKey(r);
  const had = feedback.marks.get(key);
  if (had && had.kind === kind) feedback.marks.delete(key); // a second press clears the mark
  else feedback.marks.set(key, { kind, start: r.offset_s, row: r });
  decorateAll();
}

function decorateRow(li) {
  const i = Number(li.dataset.index);
  const r = state.results[i];
  if (!r) return;
  const actions = li.querySelector(".actions");
  if (actions && !actions.querySelector(".fb-like")) {
    const like = document.createElement("button");
    like.type = "button";
    like.className = "fb-like";
    like.title = "More like this (+)";
    like.textContent = "More like this";
    like.addEventListener("click", (ev) => { ev.stopPropagation(); markResult(Number(li.dataset.index), "like"); });
    const unlike = document.createElement("button");
    unlike.type = "button";
    unlike.className = "fb-unlike";
    unlike.title = "Not this (-)";
    unlike.textContent = "Not this";
    unlike.addEventListener("click", (ev) => { ev.stopPropagation(); markResult(Number(li.dataset.index), "unlike"); });
    actions.prepend(like, unlike);
  }
  const mark = feedback.marks.get(feedbackKey(r));
  li.classList.toggle("liked", mark?.kind === "like");
  li.classList.toggle("disliked", mark?.kind === "unlike");
  li.dataset.mark = mark ? mark.kind : "";
  li.querySelector(".fb-like")?.setAttribute("aria-pressed", String(mark?.kind === "like"));
  li.querySelector(".fb-unlike")?.setAttribute("aria-pressed", String(mark?.kind === "unlike"));
}

function decorateAll() {
  for (const li of document.querySelectorAll("#results > .result")) decorateRow(li);
  const n = feedback.marks.size;
  const b = feedback.refineButton;
  if (b) {
    b.disabled = n === 0;
    b.textContent = n ? `Refine (${n})` : "Refine";
  }
}

function pageFilters() {
  // The same values app.js sends with a search (filterParams reads every declared control).
  const params = filterParams(new URLSearchParams());
  const f = {};
  for (const spec of filters) {
    const v = params.get(spec.param);
    if (v) f[spec.param] = spec.multiple ? [v] : v;
  }
  return f;
}

async function refine() {
  if (!feedback.marks.size) { toast("Mark results with + (more like this) or - (not this) first"); return; }
  const marks = [...feedback.marks.values()];
  const example = (m) => ({ file_id: m.row.file_id, start: m.start });
  const q = state.context?.q || $("q").value.trim();
  const body = {
    q: q || null,
    not: $("not").value.trim() || null,
    n: Number($("n").value) || 50,
    like: marks.filter((m) => m.kind === "like").map(example),
    unlike: marks.filter((m) => m.kind === "unlike").map(example),
    filters: pageFilters(),
  };
  setStatus("Refining…", "busy");
  try {
    const data = await getList("/api/refine", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    if (!data) return;
    // Judged results that fell out of the list stay visible at its end, marked.
    const shown = new Set(data.results.map(feedbackKey));
    const kept = marks.filter((m) => !shown.has(feedbackKey(m.row))).map((m) => ({ ...m.row, rank: "·" }));
    const likes = body.like.length, unlikes = body.unlike.length;
    state.context = { kind: "refine", q };
    show([...data.results, ...kept],
      `${data.results.length} results refined with ${likes} more-like-this and ${unlikes} not-this` +
      (q ? ` for “${q}”` : ""), data.ms);
    decorateAll();
  } catch (e) {
    setStatus(e.message, "error");
  }
}

// The Refine button beside Search; new rows get their mark buttons as they are rendered.
(function setUpFeedback() {
  const b = document.createElement("button");
  b.id = "refine";
  b.type = "button";
  b.title = "Rank the library again with your marks (r)";
  b.addEventListener("click", refine);
  $("go").after(b);
  feedback.refineButton = b;
  new MutationObserver(decorateAll).observe($("results"), { childList: true });
  decorateAll();
  const hint = document.createElement("span");
  hint.innerHTML = "<kbd>+</kbd><kbd>-</kbd> more like this / not this · <kbd>r</kbd> refine";
  document.querySelector("footer.keys #library-info")?.before(hint);
})();

document.addEventListener("keydown", (ev) => {
  if (ev.target.matches("input, select, textarea") || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  if (document.body.classList.contains("label-mode")) return; // label mode has its own keys
  if (ev.key === "+" || ev.key === "=") { ev.preventDefault(); markResult(state.selected, "like"); }
  else if (ev.key === "-") { ev.preventDefault(); markResult(state.selected, "unlike"); }
  else if (ev.key === "r") { ev.preventDefault(); refine(); }
});
