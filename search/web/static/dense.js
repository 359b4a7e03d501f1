// A day of auditioning (issue 19), beside app.js without changing it (it uses app.js's
// globals: state, list, player, renderRow, select, play, show, getList, fmtTime, toast):
//  - a dense list (20+ rows on a laptop screen) with columns sortable by score, name, length, format;
//  - ctrl/shift-click picks several rows; "Download picked" saves their matching regions as WAV;
//  - volume, loop, and auto-play when moving with the arrow keys (a toggle), remembered;
//  - drag on a waveform to choose a region, then play it, download it as WAV, or find similar.
(() => {
  const store = (k, v) => (v === undefined ? localStorage.getItem(`sfx-${k}`) : localStorage.setItem(`sfx-${k}`, v));
  const bar = document.createElement("div");
  bar.id = "audition-bar";
  bar.innerHTML = `
    <label title="Compact rows: 20+ results on a laptop screen"><input type="checkbox" id="dense"> dense</label>
    <span id="sort" hidden>sort:
      <button type="button" data-key="score">score</button><button type="button" data-key="name">name</button><button type="button" data-key="duration_s">length</button><button type="button" data-key="format">format</button>
    </span>
    <label title="Volume"><input type="range" id="volume" min="0" max="1" step="0.05"></label>
    <label title="Loop what plays"><input type="checkbox" id="loop"> loop</label>
    <label title="Play each result as the arrow keys reach it"><input type="checkbox" id="autoplay"> auto-play</label>
    <button type="button" id="download-picked" hidden title="Download the matching region of each picked row as WAV">Download picked</button>`;
  (document.querySelector("header.top") || document.body).append(bar);
  const style = document.createElement("style");
  style.textContent = `
    #audition-bar{display:flex;gap:10px;align-items:center;font-size:12px;flex-wrap:wrap}
    #audition-bar #volume{width:80px}
    body.dense .results{gap:2px}
    body.dense .result{display:flex;align-items:center;gap:8px;padding:2px 8px}
    body.dense .result .head{flex:1 1 50%;min-width:0;align-items:center}
    body.dense .result .play{width:18px;height:18px;font-size:8px}
    body.dense .result .name{font-size:13px}
    body.dense .result .wave{flex:0 0 180px;height:18px;margin:0}
    body.dense .result .meta{flex:0 0 auto;margin:0;flex-wrap:nowrap;font-size:11px}
    body.dense .result .meta .desc,body.dense .result .meta .tags,body.dense .result .meta .actions{display:none}
    body.dense .result > :not(.head):not(.wave):not(.meta){display:none}
    .result.picked{outline:2px solid #d49a3a}
    .result .pick-region{position:absolute;top:0;bottom:0;background:rgba(80,160,255,.35);pointer-events:none}
    .result .region-menu{position:absolute;top:2px;z-index:5;display:flex;gap:4px}
    .result .wave{position:relative}`;
  document.head.append(style);

  const $ = (id) => document.getElementById(id);
  const dense = $("dense"), volume = $("volume"), loop = $("loop"), autoplay = $("autoplay");
  dense.checked = store("dense") === "1";
  volume.value = store("volume") ?? "1";
  loop.checked = store("loop") === "1";
  autoplay.checked = store("autoplay") === "1";
  const apply = () => {
    document.body.classList.toggle("dense", dense.checked);
    $("sort").hidden = !dense.checked;
    player.volume = Number(volume.value);
    player.loop = loop.checked;
  };
  dense.addEventListener("change", () => { store("dense", dense.checked ? "1" : "0"); apply(); });
  volume.addEventListener("input", () => { store("volume", volume.value); apply(); });
  loop.addEventListener("change", () => { store("loop", loop.checked ? "1" : "0"); apply(); });
  autoplay.addEventListener("change", () => store("autoplay", autoplay.checked ? "1" : "0"));
  apply();

  // ---------------------------------------------------------------- sorting
  let order = { key: "score", dir: -1 };
  $("sort").addEventListener("click", (ev) => {
    const key = ev.target.dataset?.key;
    if (!key) return;
    order = { key, dir: order.key === key ? -order.dir : (key === "name" || key === "format" ? 1 : -1) };
    const val = (r) => r[key] ?? "";
    state.results.sort((a, b) => (val(a) < val(b) ? -1 : val(a) > val(b) ? 1 : 0) * order.dir);
    picked.clear();
    list.replaceChildren(...state.results.map(renderRow));
    state.selected = -1;
    state.playing = -1;
    if (state.results.length) select(0, false);
    syncPicked();
  });

  // ---------------------------------------------------------------- multi-select
  const picked = new Set();
  let anchor = null;
  const syncPicked = () => {
    list.querySelectorAll(".result").forEach((li) => li.classList.toggle("picked", picked.has(Number(li.dataset.index))));
    const b = $("download-picked");
    b.hidden = picked.size === 0;
    b.textContent = `Download picked (${picked.size})`;
  };
  list.addEventListener("click", (ev) => {
    const li = ev.target.closest(".result");
    if (!li || !(ev.ctrlKey || ev.metaKey || ev.shiftKey)) return;
    ev.preventDefault();
    ev.stopPropagation();
    const i = Number(li.dataset.index);
    if (ev.shiftKey && anchor !== null) {
      for (let k = Math.min(anchor, i); k <= Math.max(anchor, i); k++) picked.add(k);
    } else if (picked.has(i)) picked.delete(i);
    else picked.add(i);
    anchor = i;
    syncPicked();
  }, true);
  new MutationObserver(() => { if (!list.querySelector(".result.picked") && picked.size) { picked.clear(); syncPicked(); } })
    .observe(list, { childList: true });
  $("download-picked").addEventListener("click", () => {
    for (const i of [...picked].sort((a, b) => a - b)) {
      const r = state.results[i];
      if (!r) continue;
      const a = document.createElement("a");
      a.href = `/api/files/${r.file_id}/audio?start=${r.offset_s}&end=${r.end_s}&download=1`;
      a.download = "";
      document.body.append(a);
      a.click();
      a.remove();
    }
  });

  // ---------------------------------------------------------------- auto-play on arrows
  document.addEventListener("keydown", (ev) => {
    if (!autoplay.checked || !["ArrowUp", "ArrowDown"].includes(ev.key)) return;
    if (ev.target.matches?.("input, select, textarea") && ev.target.id !== "q") return;
    setTimeout(() => { if (state.selected >= 0) play(state.selected); }, 0);
  });

  // ---------------------------------------------------------------- drag a region on a waveform
  let drag = null;
  list.addEventListener("mousedown", (ev) => {
    const wave = ev.target.closest(".wave");
    if (!wave || ev.button !== 0) return;
    const box = wave.getBoundingClientRect();
    drag = { wave, box, x0: ev.clientX, moved: false, li: wave.closest(".result") };
  });
  document.addEventListener("mousemove", (ev) => {
    if (!drag) return;
    if (Math.abs(ev.clientX - drag.x0) > 4) drag.moved = true;
    if (!drag.moved) return;
    let el = drag.wave.querySelector(".pick-region");
    if (!el) { el = document.createElement("div"); el.className = "pick-region"; drag.wave.append(el); }
    const a = Math.max(0, Math.min(drag.x0, ev.clientX) - drag.box.left);
    const b = Math.min(drag.box.width, Math.max(drag.x0, ev.clientX) - drag.box.left);
    el.style.left = `${a}px`;
    el.style.width = `${b - a}px`;
    drag.a = a / drag.box.width;
    drag.b = b / drag.box.width;
  });
  document.addEventListener("mouseup", () => {
    if (!drag) return;
    const d = drag;
    drag = null;
    if (!d.moved) return;
    // The click that ends a drag must not also seek (app.js plays from a click).
    d.wave.addEventListener("click", (e) => { e.stopPropagation(); e.preventDefault(); }, { capture: true, once: true });
    regionMenu(d.li, d.wave, d.a, d.b);
  });

  function regionMenu(li, wave, fa, fb) {
    const i = Number(li.dataset.index);
    const r = state.results[i];
    const dur = r.duration_s || r.end_s || 0;
    const a = +(fa * dur).toFixed(3), b = +(fb * dur).toFixed(3);
    wave.querySelector(".region-menu")?.remove();
    const m = document.createElement("span");
    m.className = "region-menu";
    m.style.left = `${fa * 100}%`;
    m.dataset.start = a;
    m.dataset.end = b;
    m.innerHTML = `<button type="button" class="region-play">▶ ${fmtTime(a)}–${fmtTime(b)}</button>` +
      `<a class="region-wav" href="/api/files/${r.file_id}/audio?start=${a}&end=${b}&download=1" download>WAV</a>` +
      `<button type="button" class="region-similar">Similar</button>`;
    for (const el of m.children) el.addEventListener("click", (e) => e.stopPropagation());
    m.querySelector(".region-play").addEventListener("click", () => {
      play(i, a);
      const stopAt = () => {
        if (player.currentTime >= b) {
          if (player.loop) player.currentTime = a;
          else { player.pause(); player.removeEventListener("timeupdate", stopAt); }
        }
      };
      player.addEventListener("timeupdate", stopAt);
    });
    m.querySelector(".region-similar").addEventListener("click", async () => {
      try {
        const data = await getList(`/api/similar?file_id=${r.file_id}&start=${a}`);
        if (!data) return;
        show(data.results, `${data.results.length} sounds like ${r.name} at ${fmtTime(a)}`, data.ms || 0);
      } catch (e) {
        toast(e.message);
      }
    });
    wave.append(m);
  }
})();
