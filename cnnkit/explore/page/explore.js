// cnnkit explore: the page. It asks the JSON API (cnnkit/explore/app.py) for everything; a static page
// (cnnkit explore --static) carries the same answers in CNNKIT_STATIC and works out a clicked unit itself
// from the layer's embedded input and weights, with the same formulas as cnnkit/explore/unit.py.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { image: null, layers: [], starts: {}, filterStart: 0, about: null };

function fmt(v) {
  if (v === null || v === undefined) return "·";
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(3) : (Math.round(v * 1e4) / 1e4).toString();
}
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v; else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}
function status(text, error = false) { const s = $("status"); s.textContent = text; s.className = error ? "error" : ""; }

// ---- the API, or its static answers -----------------------------------------------------------------------------
async function api(path, params = {}) {
  if (CNNKIT_STATIC) return staticApi(path, params);
  const query = new URLSearchParams(params).toString();
  const response = await fetch(path + (query ? "?" + query : ""));
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function staticApi(path, p) {
  const D = CNNKIT_STATIC;
  const need = (v, what) => { if (v === undefined) throw new Error(what + " is not in this static page; use `cnnkit explore` for it"); return v; };
  if (path === "/api/model") return D.about;
  if (path === "/api/images") return D.images;
  if (path.startsWith("/api/images/")) return need(D.image[path.slice(12)], "this image");
  if (path === "/api/predict") return D.predict[p.image];
  if (path === "/api/layers") return D.layers;
  if (path === "/api/maps") {
    const all = need(D.maps[p.image][p.layer], "layer " + p.layer);
    if (!all.maps) return all;
    const start = Number(p.start || 0), count = Number(p.count || 8);
    return Object.assign({}, all, { start, maps: all.maps.filter((m) => m.channel >= start && m.channel < start + count) });
  }
  if (path === "/api/attribution") return need(D.attribution[p.image][p.method], p.method);
  if (path === "/api/filters") {
    const all = need(D.filters[p.layer], "the filters of " + p.layer);
    const start = Number(p.start || 0), count = Number(p.count || 16);
    return Object.assign({}, all, { start, filters: all.filters.filter((f) => f.filter >= start && f.filter < start + count) });
  }
  if (path === "/api/unit") return staticUnit(D, p.image, p.layer, p.at.split(",").map(Number));
  throw new Error("unknown " + path);
}

// ---- a unit worked in the page (static pages only): the formulas of cnnkit/explore/unit.py ---------------------
function floats(b64) {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  return new Float32Array(bytes.buffer);
}
function at(arr, shape, idx) { let k = 0; for (let d = 0; d < shape.length; d++) k = k * shape[d] + idx[d]; return arr[k]; }

function staticUnit(D, image, layer, unit) {
  const spec = D.units[layer];
  const data = (D.unitData[image] || {})[layer];
  if (!spec || !data) throw new Error("layer " + layer + " is too large to be worked in a static page; run `cnnkit explore` to click it");
  const x = floats(data.x), out = floats(data.out), xs = data.x_shape, os = data.out_shape;
  if (unit.length !== os.length || unit.some((u, d) => u < 0 || u >= os[d])) throw new Error("unit outside the layer");
  const result = { layer, type: spec.type, unit, pytorch: at(out, os, unit), kind: spec.kind };
  if (spec.kind === "conv") {
    const w = floats(spec.weight), ws = spec.weight_shape, [o, i, j] = unit;
    const [top, , left] = spec.padding, [kh, kw] = spec.kernel, [sh, sw] = spec.stride, [dh, dw] = spec.dilation;
    const perGroup = xs[0] / spec.groups, first = Math.floor(o / (ws[0] / spec.groups)) * perGroup;
    let total = 0; result.channels = [];
    for (let k = 0; k < perGroup; k++) {
      const window = [], kernel = []; let sum = 0;
      for (let u = 0; u < kh; u++) {
        const wr = [], kr = [];
        for (let v = 0; v < kw; v++) {
          const y = i * sh + u * dh - top, xx = j * sw + v * dw - left;
          const value = y >= 0 && y < xs[1] && xx >= 0 && xx < xs[2] ? at(x, xs, [first + k, y, xx]) : 0;
          const weight = at(w, ws, [o, k, u, v]);
          wr.push(value); kr.push(weight); sum += value * weight;
        }
        window.push(wr); kernel.push(kr);
      }
      total += sum; result.channels.push({ input_channel: first + k, window, kernel, sum });
    }
    result.bias = spec.bias ? floats(spec.bias)[o] : 0;
    result.total = total + result.bias;
    Object.assign(result, { kernel: spec.kernel, stride: spec.stride, dilation: spec.dilation, groups: spec.groups,
      padding: spec.padding, origin: [i * sh - top, j * sw - left] });
  } else if (spec.kind === "pool") {
    const [c, i, j] = unit, [kh, kw] = spec.kernel, [sh, sw] = spec.stride, [ph, pw] = spec.padding;
    const y0 = i * sh - ph, x0 = j * sw - pw, window = [], inside = [];
    for (let u = 0; u < kh; u++) {
      const row = [];
      for (let v = 0; v < kw; v++) {
        const y = y0 + u * spec.dilation[0], xx = x0 + v * spec.dilation[1];
        const value = y >= 0 && y < xs[1] && xx >= 0 && xx < xs[2] ? at(x, xs, [c, y, xx]) : null;
        row.push(value); if (value !== null) inside.push(value);
      }
      window.push(row);
    }
    Object.assign(result, { pool: spec.pool, kernel: spec.kernel, stride: spec.stride, padding: spec.padding, origin: [y0, x0], window });
    if (spec.pool === "average") {
      const hEnd = Math.min(y0 + kh, xs[1] + ph), wEnd = Math.min(x0 + kw, xs[2] + pw);
      const divisor = spec.count_include_pad ? (hEnd - y0) * (wEnd - x0) : inside.length;
      result.sum = inside.reduce((a, b) => a + b, 0); result.divisor = divisor; result.total = result.sum / divisor;
    } else {
      const best = spec.pool === "max" ? Math.max(...inside) : Math.min(...inside);
      result.total = best;
      outer: for (let u = 0; u < kh; u++) for (let v = 0; v < kw; v++) if (window[u][v] === best) { result.winner = [u, v]; break outer; }
    }
  } else if (spec.kind === "dense") {
    const w = floats(spec.weight), n = xs.reduce((a, b) => a * b, 1), o = unit[0];
    const products = []; let sum = 0;
    for (let k = 0; k < n; k++) { const p = x[k] * w[o * n + k]; sum += p; products.push({ input: k, x: x[k], w: w[o * n + k], product: p }); }
    products.sort((a, b) => Math.abs(b.product) - Math.abs(a.product));
    result.bias = spec.bias ? floats(spec.bias)[o] : 0;
    Object.assign(result, { inputs: n, top: products.slice(0, 12), sum, total: sum + result.bias });
  } else if (spec.kind === "pointwise") {
    Object.assign(result, { input: at(x, xs, unit), total: at(out, os, unit), formula: spec.formula });
  } else {
    result.note = spec.note;
  }
  let before = result.pytorch; // each pointwise step reads the output of the one before it
  result.then = (data.then || []).map((step) => {
    const value = at(floats(step.out), os, unit), worked = { layer: step.layer, type: step.type, kind: "pointwise",
      formula: step.formula, input: before, total: value, pytorch: value };
    before = value;
    return worked;
  });
  result.final = result.then.length ? result.then[result.then.length - 1].pytorch : result.pytorch;
  result.receptive_field = null;
  return result;
}

// ---- choosing an image ----------------------------------------------------------------------------------------------
async function loadGallery() {
  const images = await api("/api/images");
  const gallery = $("gallery"); gallery.textContent = "";
  for (const item of images) {
    const button = el("button", { type: "button", role: "listitem", "aria-pressed": "false", "data-id": item.id,
      title: item.title, onclick: () => choose(item.id) });
    const picture = el("img", { alt: item.title + (item.label_name ? ", true class " + item.label_name : "") });
    button.append(picture); gallery.append(button);
    api("/api/images/" + encodeURIComponent(item.id)).then((d) => { picture.src = d.png; }).catch(() => {});
  }
  return images;
}

async function upload(blob, name) {
  status("uploading " + name + " …");
  try {
    const response = await fetch("/api/images", { method: "POST", body: blob, headers: { "X-Filename": encodeURIComponent(name) } });
    const body = await response.json();
    if (!response.ok) { status(body.error, true); return; }
    await loadGallery();
    await choose(body.id);
  } catch (error) { status(error.message, true); }
}

async function choose(id) {
  state.image = id; state.starts = {};
  for (const b of $("gallery").querySelectorAll("button")) b.setAttribute("aria-pressed", b.dataset.id === id ? "true" : "false");
  status("computing …");
  const t0 = performance.now();
  try {
    const [image, prediction] = await Promise.all([api("/api/images/" + encodeURIComponent(id)), api("/api/predict", { image: id })]);
    $("input").src = image.png; $("input").alt = "the prepared input: " + image.title;
    $("input-caption").textContent = `${image.title}: ${image.shape.join("x")}, values ${fmt(image.min)} to ${fmt(image.max)} after normalisation`;
    $("rf").hidden = true;
    showPrediction(prediction);
    await showColumns();
    status(`ready (${Math.round(performance.now() - t0)} ms)`);
    document.body.dataset.ready = id;
    showAttribution().catch((e) => { $("overlay-note").textContent = e.message; });
  } catch (error) { status(error.message, true); }
}

function showPrediction(p) {
  const box = $("prediction"); box.textContent = "";
  box.append(el("h3", { text: p.classes.length ? "Prediction" : "Output" }));
  if (!p.classes.length) { box.append(el("p", { text: p.note })); return; }
  for (const c of p.classes) {
    const row = el("div", { class: "bar" + (c.index === p.predicted ? " top" : "") + (c.index === p.label ? " truth" : ""),
      "data-class": c.name });
    row.append(el("span", { class: "name", text: c.name + (c.index === p.label ? " (true)" : "") }),
      el("span", { class: "fill", style: `width:${Math.max(1, Math.round(c.probability * 150))}px` }),
      el("span", { text: (100 * c.probability).toFixed(1) + "%" }));
    box.append(row);
  }
  const verdict = p.label === null ? "" : p.label === p.predicted ? " (right)" : ` (wrong: it is ${p.label_name})`;
  box.append(el("p", { id: "predicted", "data-class": p.predicted_name, text: "predicted: " + p.predicted_name + verdict }));
  const target = $("target"); const keep = target.value; target.textContent = "";
  target.append(el("option", { value: "", text: "predicted" }));
  for (const c of p.classes) target.append(el("option", { value: String(c.index), text: c.name }));
  target.value = [...target.options].some((o) => o.value === keep) ? keep : "";
}

async function showAttribution() {
  const params = { image: state.image, method: $("method").value };
  if ($("target").value) params.target = $("target").value;
  const a = await api("/api/attribution", params);
  $("overlay").src = a.png; $("overlay").alt = `${a.method} for ${a.target_name}`;
  $("overlay-note").textContent = `${a.method} for ${a.target_name} (${(100 * a.probability).toFixed(1)}%)` +
    (a.layer ? ` at ${a.layer}` : "") + (a.caution ? ". " + a.caution : "");
}

// ---- the layers ------------------------------------------------------------------------------------------------------
async function showColumns() {
  const params = { image: state.image }; if ($("depth").value) params.depth = $("depth").value;
  const info = await api("/api/layers", params);
  state.layers = info.layers;
  showSummary(info);
  const box = $("columns"); box.textContent = "";
  const per = Number($("per").value);
  const jobs = info.layers.map(async (layer) => {
    const col = el("div", { class: "col", "data-layer": layer.id });
    col.append(el("h3", { text: layer.id }), el("div", { class: "shape", text: `${layer.type} ${layer.output_shape.join("x")}` }));
    box.append(col);
    await fillColumn(col, layer, per);
  });
  await Promise.all(jobs.slice(0, 6)); // the first layers before the page says it is ready; the rest follow
  Promise.all(jobs.slice(6)).catch((e) => status(e.message, true));
}

async function fillColumn(col, layer, per) {
  const start = state.starts[layer.id] || 0;
  const m = await api("/api/maps", { image: state.image, layer: layer.id, start, count: per });
  for (const old of col.querySelectorAll(".maps, .values, .nav")) old.remove();
  if (m.maps) {
    const maps = el("div", { class: "maps" });
    for (const map of m.maps) {
      const img = el("img", { src: map.png, alt: `${layer.id} channel ${map.channel}, ${fmt(map.min)} to ${fmt(map.max)}`,
        title: `channel ${map.channel}`, tabindex: "0", "data-channel": String(map.channel) });
      img.addEventListener("click", (e) => {
        const r = img.getBoundingClientRect();
        const y = Math.min(m.shape[1] - 1, Math.floor((e.clientY - r.top) / r.height * m.shape[1]));
        const x = Math.min(m.shape[2] - 1, Math.floor((e.clientX - r.left) / r.width * m.shape[2]));
        showUnit(layer.id, [map.channel, y, x]);
      });
      img.addEventListener("keydown", (e) => { if (e.key === "Enter") showUnit(layer.id, [map.channel, Math.floor(m.shape[1] / 2), Math.floor(m.shape[2] / 2)]); });
      maps.append(img);
    }
    col.append(maps);
    if (m.channels > per) {
      const nav = el("div", { class: "nav" });
      const page = (delta) => { state.starts[layer.id] = Math.max(0, Math.min(m.channels - 1, start + delta)); fillColumn(col, layer, per); };
      nav.append(el("button", { type: "button", "aria-label": `previous maps of ${layer.id}`, text: "◀", onclick: () => page(-per) }),
        el("span", { text: `${start}-${Math.min(start + per, m.channels) - 1} of ${m.channels}` }),
        el("button", { type: "button", "aria-label": `next maps of ${layer.id}`, text: "▶", onclick: () => page(per) }));
      col.append(nav);
    }
  } else {
    const values = el("div", { class: "values" });
    m.values.slice(0, 200).forEach((v, k) => values.append(el("button", { type: "button", text: `${k}: ${fmt(v)}`,
      "data-index": String(k), onclick: () => showUnit(layer.id, [k]) })));
    col.append(values);
  }
}

function showSummary(info) {
  const table = $("summary-table"); table.textContent = "";
  const head = el("tr"); for (const h of ["layer", "type", "output", "kernel", "stride", "padding", "parameters", "MACs", "receptive field"]) head.append(el("th", { scope: "col", text: h }));
  table.append(head);
  for (const l of info.layers) {
    const rf = l.receptive_field === null ? "" : Array.isArray(l.receptive_field) ? l.receptive_field.join("x") : l.receptive_field;
    const row = el("tr");
    for (const v of [l.id, l.type, l.output_shape.join("x"), l.kernel, l.stride, l.padding, l.params.toLocaleString(),
      l.macs === null ? "" : l.macs.toLocaleString(), rf]) row.append(el("td", { text: String(v) }));
    table.append(row);
  }
  table.append(el("caption", { text: `${info.total_params.toLocaleString()} parameters in all; depth ${info.depth} of ${info.max_depth}` }));
  const select = $("filter-layer");
  if (!select.options.length) {
    const convs = info.layers.filter((l) => l.filters);
    for (const l of convs) select.append(el("option", { value: l.id, text: l.id }));
    if (convs.length) showFilters(); else $("filters-note").textContent = "no convolution shown at this depth";
  }
}

// ---- one unit ----------------------------------------------------------------------------------------------------------
function matrix(rows, highlight) {
  const t = el("table", { class: "m" });
  rows.forEach((row, u) => { const tr = el("tr"); row.forEach((v, w) => tr.append(el("td", { class: v === null ? "pad" : highlight && highlight[0] === u && highlight[1] === w ? "win" : "", text: fmt(v) }))); t.append(tr); });
  return t;
}

async function showUnit(layer, unit) {
  const body = $("unit-body");
  try {
    const u = await api("/api/unit", { image: state.image, layer, at: unit.join(",") });
    body.textContent = "";
    const where = u.unit.length === 3 ? `channel ${u.unit[0]}, row ${u.unit[1]}, column ${u.unit[2]}` : `unit ${u.unit[0]}`;
    body.append(el("h3", { text: `${u.layer} (${u.type}), ${where}` }));
    if (u.kind === "conv") {
      body.append(el("p", { text: `kernel ${u.kernel.join("x")}, stride ${u.stride.join("x")}, dilation ${u.dilation.join("x")}, ` +
        `padding top/bottom/left/right ${u.padding.join("/")}, groups ${u.groups}; the window starts at row ${u.origin[0]}, column ${u.origin[1]} of the layer's input` }));
      const worked = el("div", { class: "worked" });
      const shown = u.channels.slice().sort((a, b) => Math.abs(b.sum) - Math.abs(a.sum)).slice(0, 12);
      for (const c of shown) worked.append(el("div", { class: "channel" }, el("div", { text: `input channel ${c.input_channel}` }),
        el("div", { text: "window" }), matrix(c.window), el("div", { text: "kernel" }), matrix(c.kernel),
        el("div", { text: `sum of products = ${fmt(c.sum)}` })));
      body.append(worked);
      if (u.channels.length > shown.length) body.append(el("p", { text: `${u.channels.length - shown.length} more input channels (the ${shown.length} largest sums shown; all are counted)` }));
      body.append(el("p", { class: "total", text: `sum over ${u.channels.length} channel(s) ${u.channels.map((c) => fmt(c.sum)).slice(0, 8).join(" + ")}${u.channels.length > 8 ? " + …" : ""} + bias ${fmt(u.bias)} = ` },
        el("strong", { id: "unit-total", "data-value": String(u.total), text: fmt(u.total) })));
    } else if (u.kind === "pool") {
      body.append(el("p", { text: `${u.pool} pooling, ${u.kernel.join("x")} window, stride ${u.stride.join("x")}, padding ${u.padding.join("x")} (grey: outside the input)` }), matrix(u.window, u.winner));
      body.append(el("p", { class: "total", text: u.pool === "average" ? `sum ${fmt(u.sum)} / ${u.divisor} = ` : `the ${u.pool} of the window = ` },
        el("strong", { id: "unit-total", "data-value": String(u.total), text: fmt(u.total) })));
    } else if (u.kind === "dense") {
      const t = el("table", { class: "m" }); t.append(el("tr", {}, el("td", { text: "input" }), el("td", { text: "x" }), el("td", { text: "w" }), el("td", { text: "w·x" })));
      for (const c of u.top) t.append(el("tr", {}, el("td", { text: String(c.input) }), el("td", { text: fmt(c.x) }), el("td", { text: fmt(c.w) }), el("td", { text: fmt(c.product) })));
      body.append(el("p", { text: `the ${u.top.length} largest of ${u.inputs} products:` }), t);
      body.append(el("p", { class: "total", text: `sum of all ${u.inputs} products ${fmt(u.sum)} + bias ${fmt(u.bias)} = ` },
        el("strong", { id: "unit-total", "data-value": String(u.total), text: fmt(u.total) })));
    } else if (u.kind === "pointwise") {
      body.append(el("p", { class: "total", text: `${u.formula} with x = ${fmt(u.input)}: ` },
        el("strong", { id: "unit-total", "data-value": String(u.total), text: fmt(u.total) })));
    } else {
      body.append(el("p", { text: `value ${fmt(u.pytorch)}. ${u.note}` }));
    }
    for (const s of u.then) body.append(el("p", { text: `then ${s.layer} (${s.type}): ${s.formula} of ${fmt(s.input)} = ${fmt(s.total)}` }));
    body.append(el("p", { id: "unit-pytorch", "data-value": String(u.pytorch), "data-final": String(u.final),
      text: `PyTorch's value at this unit: ${fmt(u.pytorch)}` + (u.then.length ? `; after ${u.then.map((s) => s.type).join(", ")}: ${fmt(u.final)}` : "") }));
    const rf = $("rf");
    if (u.receptive_field) {
      const [y0, x0, y1, x1] = u.receptive_field.box, [, h, w] = state.about.input_shape;
      const scale = 224 / Math.max(h, w), offY = (224 - h * scale) / 2, offX = (224 - w * scale) / 2;
      Object.assign(rf.style, { top: `${offY + y0 * scale}px`, left: `${offX + x0 * scale}px`, height: `${(y1 - y0 + 1) * scale}px`, width: `${(x1 - x0 + 1) * scale}px` });
      rf.hidden = false;
      body.append(el("p", { text: `It depends on input rows ${y0}-${y1}, columns ${x0}-${x1} (${u.receptive_field.pixels} pixels with a non-zero gradient), outlined on the input.` }));
    } else rf.hidden = true;
  } catch (error) { body.textContent = ""; body.append(el("p", { class: "error", text: error.message })); }
}

// ---- filters --------------------------------------------------------------------------------------------------------
async function showFilters() {
  const layer = $("filter-layer").value; if (!layer) return;
  try {
    const f = await api("/api/filters", { layer, start: state.filterStart, count: 16 });
    const grid = $("filter-grid"); grid.textContent = "";
    for (const item of f.filters) {
      const box = el("div", { class: "filter" }, el("div", { text: `filter ${item.filter}` + (item.bias === null ? "" : `, bias ${fmt(item.bias)}`) }));
      item.channels.forEach((png, c) => box.append(el("img", { src: png, alt: `filter ${item.filter}, input channel ${c}` })));
      grid.append(box);
    }
    $("filters-note").textContent = `${f.shape.join("x")} (filters x input channels x height x width); filters ${f.start}-${f.start + f.filters.length - 1}; blue negative, red positive`;
  } catch (error) { $("filters-note").textContent = error.message; }
}

// ---- drawing --------------------------------------------------------------------------------------------------------
function setUpDrawing() {
  const canvas = $("draw"), ctx = canvas.getContext("2d");
  const clear = () => { ctx.fillStyle = "#000"; ctx.fillRect(0, 0, canvas.width, canvas.height); };
  clear();
  let drawing = false;
  const point = (e) => { const r = canvas.getBoundingClientRect(); return [(e.clientX - r.left) * canvas.width / r.width, (e.clientY - r.top) * canvas.height / r.height]; };
  canvas.addEventListener("pointerdown", (e) => { drawing = true; const [x, y] = point(e); ctx.beginPath(); ctx.moveTo(x, y); });
  canvas.addEventListener("pointermove", (e) => { if (!drawing) return; const [x, y] = point(e); ctx.lineTo(x, y); ctx.strokeStyle = "#fff"; ctx.lineWidth = 22; ctx.lineCap = "round"; ctx.stroke(); });
  window.addEventListener("pointerup", () => { drawing = false; });
  $("draw-clear").addEventListener("click", clear);
  $("draw-use").addEventListener("click", () => canvas.toBlob((blob) => upload(blob, "drawing.png"), "image/png"));
}

async function start() {
  try {
    const about = state.about = await api("/api/model");
    $("net-name").textContent = about.name;
    $("net-facts").textContent = `${about.kind}${about.pretrained ? " (trained weights)" : " (untrained weights)"}, task ${about.task}, ` +
      `input ${about.input_shape.join("x")} (${about.fit}), ${about.classes} classes`;
    for (let d = 1; d <= about.max_depth; d++) $("depth").append(el("option", { value: String(d), text: String(d), ...(d === about.depth ? { selected: "" } : {}) }));
    if (CNNKIT_STATIC) { $("depth").disabled = true; $("upload-row").hidden = true; $("target").disabled = true; }
    else { $("draw-box").hidden = !about.drawable; if (about.drawable) setUpDrawing(); }
    $("upload").addEventListener("change", (e) => { const file = e.target.files[0]; if (file) upload(file, file.name); });
    $("method").addEventListener("change", () => showAttribution().catch((e) => { $("overlay-note").textContent = e.message; }));
    $("target").addEventListener("change", () => showAttribution().catch((e) => { $("overlay-note").textContent = e.message; }));
    $("depth").addEventListener("change", () => { $("filter-layer").textContent = ""; showColumns().catch((e) => status(e.message, true)); });
    $("per").addEventListener("change", () => showColumns().catch((e) => status(e.message, true)));
    $("filter-layer").addEventListener("change", () => { state.filterStart = 0; showFilters(); });
    $("filters-prev").addEventListener("click", () => { state.filterStart = Math.max(0, state.filterStart - 16); showFilters(); });
    $("filters-next").addEventListener("click", () => { state.filterStart += 16; showFilters(); });
    const images = await loadGallery();
    if (images.length) await choose(images[0].id);
  } catch (error) { status(error.message, true); }
}
start();
