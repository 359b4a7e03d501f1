// Auditioning aids that sit beside app.js without changing it (issue 19):
//  - a "Spectrogram" button on every result: the server draws it on demand and caches it;
//  - tag chips shown on demand: with random or untrained label sets they cluttered every row,
//    so they are hidden until "Tags" in the header is switched on (remembered per browser).
(() => {
  const list = document.getElementById("results");
  if (!list) return;
  const KEY = "sfx-show-tags";

  const toggle = document.createElement("button");
  toggle.type = "button";
  toggle.id = "show-tags";
  toggle.title = "Show the tag chips of each result";
  const apply = () => {
    const on = localStorage.getItem(KEY) === "1";
    document.body.classList.toggle("hide-tags", !on);
    toggle.textContent = on ? "Tags: on" : "Tags: off";
    toggle.setAttribute("aria-pressed", String(on));
  };
  toggle.addEventListener("click", () => {
    localStorage.setItem(KEY, localStorage.getItem(KEY) === "1" ? "0" : "1");
    apply();
  });
  (document.querySelector("header.top") || document.body).append(toggle);
  apply();

  const style = document.createElement("style");
  style.textContent =
    "body.hide-tags .result .tags{display:none}" +
    ".result .spectrogram{display:block;width:100%;height:120px;margin-top:4px;image-rendering:pixelated;border-radius:4px}";
  document.head.append(style);

  function addButton(li) {
    const actions = li.querySelector(".actions");
    if (!actions || actions.querySelector(".spectro")) return;
    const b = document.createElement("button");
    b.type = "button";
    b.className = "spectro";
    b.textContent = "Spectrogram";
    b.title = "Show the spectrogram of the whole file (computed once, then cached)";
    b.addEventListener("click", (ev) => {
      ev.stopPropagation();
      const shown = li.querySelector("img.spectrogram");
      if (shown) {
        shown.remove();
        return;
      }
      const img = document.createElement("img");
      img.className = "spectrogram";
      img.alt = "spectrogram";
      const w = Math.min(2048, Math.max(64, Math.round(li.querySelector(".wave").clientWidth || 800)));
      img.src = `/api/files/${li.dataset.fileId}/spectrogram?w=${w}&h=160`;
      li.querySelector(".wave").after(img);
    });
    actions.prepend(b);
  }

  // A file cut off part way (an interrupted copy) is indexed up to where it breaks: say so.
  function markCut(li) {
    const r = (typeof state !== "undefined" ? state.results : [])[Number(li.dataset.index)];
    if (!r || r.truncated_at_s === null || r.truncated_at_s === undefined || li.querySelector(".chip.cut")) return;
    const c = document.createElement("span");
    c.className = "chip cut";
    c.title = "the file breaks off here (an interrupted copy?); what came before is indexed";
    c.textContent = `cut off at ${r.truncated_at_s.toFixed(1)} s`;
    li.querySelector(".meta")?.prepend(c);
  }

  new MutationObserver(() => list.querySelectorAll(".result").forEach((li) => { addButton(li); markCut(li); }))
    .observe(list, { childList: true, subtree: true });
})();
