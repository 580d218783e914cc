// harness playground: the page. Plain JavaScript and canvas; everything it needs comes from this server.
//
// The page holds settings and draws; the server trains. Settings go to PUT /api/sessions/{id} (a 422 is shown
// in the red bar, naming the control, which is outlined; the session keeps its old settings) and, once accepted,
// into the address (address.js); frames come over Server-Sent Events from /api/sessions/{id}/events: a `setup`
// per network (points, layout) and `frame`s (both engines' state; the diagram's weights, drawn by network.js).
"use strict";

const $ = (id) => document.getElementById(id);
const ENGINES = ["scratch", "torch"];
const RATES = [0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3];
const L2S = [0, 0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1];
const MOMENTA = [0, 0.5, 0.9, 0.95, 0.99];
const NEW_LAYER_UNITS = 4;
const SESSION_BUTTONS = ["play", "step", "reset"];  // enabled once the server holds a session (save and export: once played)
// TF Playground's colours: orange for negative (class 0), a light grey in the middle, blue for positive (class 1)
const ORANGE = [245, 147, 34], MIDDLE = [232, 234, 235], BLUE = [8, 119, 189];

const page = {
  options: null, settings: null, id: null, source: null, setup: null, frame: null, state: null,
  curves: null, saving: false, pending: null, wasPlaying: false, sending: Promise.resolve(),
  hovered: null, errorFrom: null,  // the node shown large; what the red bar's message is about ("settings", "lab")
};
const LOG_SPAN = 100;  // a loss curve spanning more than two decades is drawn on a log axis
// the element outlined when the server refuses a setting, by the setting's key (else the element of that id)
const CONTROL_ELEMENTS = { output_activation: "output", loss: "output", hidden: "network", features: "features",
  dataset: "datasets" };

// ---------------------------------------------------------------------------- colours and drawing

function colour(t) {  // t in [0, 1] -> [r, g, b]
  const [a, b, u] = t < 0.5 ? [ORANGE, MIDDLE, t * 2] : [MIDDLE, BLUE, (t - 0.5) * 2];
  return [0, 1, 2].map((i) => Math.round(a[i] + (b[i] - a[i]) * u));
}

function bytes(b64) {
  const s = atob(b64), out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

function paint(canvas, values, n, smooth) {  // values: n*n bytes 0-255, row by row from the top
  const cells = document.createElement("canvas");
  cells.width = cells.height = n;
  const ctx = cells.getContext("2d"), img = ctx.createImageData(n, n);
  for (let i = 0; i < n * n; i++) {
    const [r, g, b] = colour(values[i] / 255);
    img.data.set([r, g, b, 255], i * 4);
  }
  ctx.putImageData(img, 0, 0);
  const out = canvas.getContext("2d");
  out.imageSmoothingEnabled = smooth;
  out.clearRect(0, 0, canvas.width, canvas.height);
  out.drawImage(cells, 0, 0, canvas.width, canvas.height);
}

function valueGrid(n, fn, range) {  // fn(x1, x2) in [-1, 1] over the plane -> bytes for `paint`
  const out = new Uint8Array(n * n);
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < n; c++) {
      const x1 = -range + (2 * range * (c + 0.5)) / n, x2 = range - (2 * range * (r + 0.5)) / n;
      const v = Math.max(-1, Math.min(1, fn(x1, x2)));
      out[r * n + c] = Math.round((v + 1) * 127.5);
    }
  }
  return out;
}

function drawPoints(canvas, points, scale, range, stroke) {
  const ctx = canvas.getContext("2d"), w = canvas.width, h = canvas.height;
  const [lo, hi] = scale;
  for (let i = 0; i < points.y.length; i++) {
    const x = ((points.x[2 * i] + range) / (2 * range)) * w, y = ((range - points.x[2 * i + 1]) / (2 * range)) * h;
    const [r, g, b] = colour(Math.max(0, Math.min(1, (points.y[i] - lo) / (hi - lo))));
    ctx.beginPath();
    ctx.arc(x, y, 3.2, 0, 2 * Math.PI);
    ctx.fillStyle = `rgb(${r},${g},${b})`;
    ctx.fill();
    ctx.lineWidth = 1;
    ctx.strokeStyle = stroke;
    ctx.stroke();
  }
}

function lossAxis(values) {  // {log, lo, hi}: log when the positive losses span more than LOG_SPAN, else 0 to top
  let lo = Infinity, hi = 0;
  for (const v of values) {
    if (v === null || !isFinite(v)) continue;
    if (v > hi) hi = v;
    if (v > 0 && v < lo) lo = v;
  }
  if (hi > 0 && lo < Infinity && hi / lo > LOG_SPAN) return { log: true, lo, hi };
  return { log: false, lo: 0, hi: hi || 1 };
}

function drawCurve(canvas, c) {
  const ctx = canvas.getContext("2d"), w = canvas.width, h = canvas.height, pad = 4;
  ctx.clearRect(0, 0, w, h);
  const n = c.train.length;
  if (n === 0) return;
  const axis = lossAxis(c.train.concat(c.test));
  canvas.dataset.axis = axis.log ? "log" : "linear";
  const height = (v) => {  // 0 (bottom) to 1 (top); NaN for a value that cannot be drawn
    if (v === null || !isFinite(v) || (axis.log && v <= 0)) return NaN;
    return axis.log ? Math.log(v / axis.lo) / Math.log(axis.hi / axis.lo) : v / axis.hi;
  };
  const line = (values, style, dash) => {
    ctx.beginPath();
    ctx.setLineDash(dash);
    ctx.strokeStyle = style;
    ctx.lineWidth = 1.5;
    const stride = Math.max(1, Math.floor(n / w));
    for (let i = 0; i < n; i += stride) {
      const x = pad + (n === 1 ? 0 : (i / (n - 1)) * (w - 2 * pad));
      const y = h - pad - height(values[i]) * (h - 2 * pad);
      if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
    }
    ctx.stroke();
    ctx.setLineDash([]);
  };
  line(c.test, "#999", [4, 3]);
  line(c.train, "#333", []);
  ctx.fillStyle = "#666";
  ctx.font = "10px sans-serif";
  ctx.fillText(axis.log ? `${fmt(axis.hi)} (log axis)` : `${fmt(axis.hi)}`, pad + 2, 12);
  if (axis.log) ctx.fillText(fmt(axis.lo), pad + 2, h - 6);
  ctx.fillText(`epoch ${page.curves.epochs}`, w - 70, h - 6);
}

// ---------------------------------------------------------------------------- dataset and feature previews

const PREVIEWS = {  // what each dataset looks like, for its button: f(x1, x2) in [-1, 1]
  circle: (a, b) => { const r = Math.hypot(a, b); return r < 2.5 ? 1 : r > 3.5 && r < 5 ? -1 : 0; },
  xor_plane: (a, b) => (Math.abs(a) < 5.3 && Math.abs(b) < 5.3 ? Math.sign(a * b) : 0),
  gaussians: (a, b) => Math.exp(-((a - 2) ** 2 + (b - 2) ** 2) / 2) - Math.exp(-((a + 2) ** 2 + (b + 2) ** 2) / 2),
  spiral: (a, b) => {
    const r = Math.hypot(a, b), t = Math.atan2(a, b);  // the arm of class 1 is at angle 1.75 * 2pi * r / 5
    if (r > 5.2) return 0;
    const phase = (((t - (1.75 * 2 * Math.PI * r) / 5) % (2 * Math.PI)) + 2 * Math.PI) % (2 * Math.PI);
    return Math.cos(phase) > 0.6 ? 1 : Math.cos(phase) < -0.6 ? -1 : 0;
  },
  plane: (a, b) => (a + b) / 12,
  surface: (a, b) => {
    let best = 0;
    for (const [x, y, s] of [[-4, 2.5, 1], [0, 2.5, -1], [4, 2.5, 1], [-4, -2.5, -1], [0, -2.5, 1], [4, -2.5, -1]]) {
      const v = s * Math.max(0, 1 - Math.hypot(a - x, b - y) / 2);
      if (Math.abs(v) > Math.abs(best)) best = v;
    }
    return best;
  },
};

const FEATURES = {  // each feature over the plane, scaled to [-1, 1] for its thumbnail
  "x1": (a) => a / 6, "x2": (a, b) => b / 6, "x1^2": (a) => (a * a) / 18 - 1, "x2^2": (a, b) => (b * b) / 18 - 1,
  "x1*x2": (a, b) => (a * b) / 18, "sin(x1)": (a) => Math.sin(a), "sin(x2)": (a, b) => Math.sin(b),
};

// ---------------------------------------------------------------------------- the server

async function call(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["content-type"] = "application/json";
  }
  const r = await fetch(path, init);
  let data = null;
  try { data = await r.json(); } catch (e) { data = null; }
  return { ok: r.ok, status: r.status, data };
}

function showError(message, from, control) {  // from: "settings" or "lab"; control: the refused setting's key
  const bar = $("error");
  bar.textContent = message || "";
  bar.hidden = !message;
  page.errorFrom = message ? from : null;
  document.querySelectorAll(".refused").forEach((el) => el.classList.remove("refused"));
  const el = control ? $(CONTROL_ELEMENTS[control] || control) : null;
  if (el) (el.closest("label") || el).classList.add("refused");
}

function refusal(r) {  // a refused request's message, and the setting it names
  return [r.data && r.data.detail ? r.data.detail : `the server answered ${r.status}`, r.data && r.data.control];
}

async function createSession(linked) {
  // A session of page.settings; a setting the server refuses (from the address, or kept from before) is put back
  // to its default, and the page says so, naming its control. linked: {error} of the address's settings, if read.
  const origin = linked ? "From the link: " : "";
  let r = await call("POST", "/api/sessions", page.settings);
  let refused = linked && linked.error ? `${origin}${linked.error} (the default is used instead)` : null;
  for (let tries = 0; !r.ok && r.status === 422 && tries < 20; tries++) {
    const [message, control] = refusal(r);
    refused = refused || `${origin}${message} (the default is used instead)`;
    const keys = control === "output_activation" || control === "loss" ? ["output_activation", "loss"]
      : control ? [control] : Object.keys(page.options.defaults);
    for (const key of keys) page.settings[key] = JSON.parse(JSON.stringify(page.options.defaults[key]));
    r = await call("POST", "/api/sessions", page.settings);
  }
  if (!r.ok) {
    showError(refusal(r)[0], "settings");
    return false;
  }
  page.id = r.data.id;
  page.settings = r.data.settings;
  writeAddress(page.settings);
  renderControls();
  showError(refused, "settings");
  for (const id of SESSION_BUTTONS) $(id).disabled = false;
  listen();
  return true;
}

function writeAddress(settings) {  // the accepted settings (and the speed) into the address: a reload keeps them
  history.replaceState(null, "", settingsQuery(settings, $("pace").value));
}

function listen() {
  if (page.source) page.source.close();
  const source = new EventSource(`/api/sessions/${page.id}/events`);
  page.source = source;
  source.addEventListener("setup", (e) => onSetup(JSON.parse(e.data)));
  source.addEventListener("frame", (e) => onFrame(JSON.parse(e.data)));
  source.onerror = async () => {
    if (source.readyState !== EventSource.CLOSED) return;  // the browser reconnects by itself
    const r = await call("GET", `/api/sessions/${page.id}`);
    if (r.status === 404) await createSession(); else setTimeout(listen, 1000);
  };
}

async function control(action) {
  if (!page.id) return;
  const path = action === "play" ? `/api/sessions/${page.id}/play?pace=${$("pace").value}`
    : `/api/sessions/${page.id}/${action}`;
  const r = await call("POST", path);
  if (r.status === 404) await createSession();
  else if (!r.ok) showError(r.data && r.data.detail, "lab");
  else { page.state = r.data; showPlaying(r.data.playing); showSpeed(r.data); }
}

function changed() {  // settings changed: send them after a short pause, so that a slider sends once
  clearTimeout(page.pending);
  page.pending = setTimeout(sendSettings, 200);
  renderControls();
}

function sendSettings() {  // one PUT at a time, in order: a slow reply must not land after a newer one
  page.sending = page.sending.then(putSettings, putSettings);
}

async function putSettings() {
  const sent = JSON.parse(JSON.stringify(page.settings));
  const r = await call("PUT", `/api/sessions/${page.id}`, sent);
  if (r.status === 404) { await createSession(); return; }
  if (!r.ok) {
    const [message, control] = refusal(r);
    showError(message, "settings", control);
    return;
  }
  writeAddress(sent);
  showError("");  // a playing session plays on with the new settings
}

// ---------------------------------------------------------------------------- controls

function fillSelect(select, values, label) {
  select.innerHTML = "";
  for (const v of values) {
    const o = document.createElement("option");
    o.value = String(v);
    o.textContent = label ? label(v) : String(v);
    select.appendChild(o);
  }
}

function bindSelect(id, key, parse) {
  $(id).addEventListener("change", () => { page.settings[key] = parse($(id).value); changed(); });
}

function buildControls() {
  const o = page.options;
  fillSelect($("learning_rate"), RATES);
  fillSelect($("activation"), o.activations);
  fillSelect($("optimizer"), o.optimizers);
  fillSelect($("momentum"), MOMENTA);
  fillSelect($("l2"), L2S, (v) => (v === 0 ? "none" : String(v)));
  fillSelect($("init"), o.initializers);
  bindSelect("learning_rate", "learning_rate", Number);
  bindSelect("activation", "activation", String);
  bindSelect("optimizer", "optimizer", String);
  bindSelect("momentum", "momentum", Number);
  bindSelect("l2", "l2", Number);
  bindSelect("init", "init", String);
  for (const key of ["batch_size", "seed"]) {
    $(key).addEventListener("change", () => { page.settings[key] = Number($(key).value); changed(); });
  }
  $("noise").addEventListener("input", () => { page.settings.noise = Number($("noise").value) / 100; changed(); });
  for (const key of ["train_size", "test_size"]) {
    $(key).addEventListener("input", () => { page.settings[key] = Number($(key).value); changed(); });
  }
  $("output").addEventListener("change", () => {
    const [act, loss] = $("output").value.split("|");
    page.settings.output_activation = act;
    page.settings.loss = loss;
    changed();
  });

  const datasets = $("datasets");
  for (const [name, info] of Object.entries(o.datasets)) {
    const b = document.createElement("button");
    b.className = "dataset";
    b.id = `dataset-${name}`;
    b.title = info.description;
    const c = document.createElement("canvas");
    c.width = c.height = 56;
    paint(c, valueGrid(28, PREVIEWS[name] || (() => 0), o.range), 28, false);
    b.appendChild(c);
    b.appendChild(document.createTextNode(name.replace("_plane", "")));
    b.addEventListener("click", () => chooseDataset(name));
    datasets.appendChild(b);
  }

  const features = $("features");
  for (const [name, label] of Object.entries(o.features)) {
    const row = document.createElement("label");
    row.className = "feature";
    row.id = `feature-${name}`;
    row.dataset.feature = name;
    const box = document.createElement("input");
    box.type = "checkbox";
    box.value = name;
    const c = document.createElement("canvas");
    c.width = c.height = 28;
    paint(c, valueGrid(28, FEATURES[name] || (() => 0), o.range), 28, false);
    row.append(box, document.createTextNode(label), c);
    c.addEventListener("mouseenter", () => hoverNode({ feature: name }));
    c.addEventListener("mouseleave", () => hoverNode(null));
    box.addEventListener("change", () => {
      const on = Object.keys(o.features).filter((f) => (f === name ? box.checked : page.settings.features.includes(f)));
      page.settings.features = on;
      changed();
    });
    features.appendChild(row);
  }

  $("add-layer").addEventListener("click", () => { page.settings.hidden.push(NEW_LAYER_UNITS); changed(); });
  $("remove-layer").addEventListener("click", () => { page.settings.hidden.pop(); changed(); });
  $("play").addEventListener("click", () => control(page.state && page.state.playing ? "pause" : "play"));
  $("step").addEventListener("click", () => control("step"));
  $("reset").addEventListener("click", () => control("reset"));
  $("pace").addEventListener("change", () => {
    if (page.id) writeAddress(page.settings);
    if (page.state && page.state.playing) control("play");
  });
  window.addEventListener("resize", drawLinks);
  $("network").addEventListener("scroll", hideTooltip);
  $("show-test").addEventListener("change", drawBoundaries);
  $("save").addEventListener("click", save);
  $("export").addEventListener("click", exportFile);

  const L = o.limits;
  $("limits").textContent = `Limits of this server: at most ${L.hidden_layers} hidden layers of ${L.units} units, `
    + `${L.points.toLocaleString()} points (training and test together), ${L.epochs.toLocaleString()} epochs per `
    + `session and ${L.sessions} sessions (tabs) at once. Settings are checked by the same rules as an experiment `
    + "file; a mistake is shown in the red bar above and the network keeps its last good settings.";
}

function chooseDataset(name) {
  const task = page.options.datasets[name].task;
  page.settings.dataset = name;
  const pairs = page.options.outputs[task];
  if (!pairs.some(([a, l]) => a === page.settings.output_activation && l === page.settings.loss)) {
    [page.settings.output_activation, page.settings.loss] = pairs[0];
  }
  changed();
}

function renderControls() {  // the controls as the settings say
  const s = page.settings, o = page.options;
  for (const key of ["learning_rate", "activation", "optimizer", "momentum", "l2", "init"]) $(key).value = String(s[key]);
  $("batch_size").value = s.batch_size;
  $("seed").value = s.seed;
  $("noise").value = Math.round(s.noise * 100);
  $("noise-value").textContent = `${Math.round(s.noise * 100)}`;
  for (const key of ["train_size", "test_size"]) {
    $(key).value = s[key];
    $(`${key}-value`).textContent = s[key];
  }
  $("momentum-box").hidden = s.optimizer !== "sgd";  // SGD's alone: Adam and AdamW have no momentum setting
  $("units-hint").hidden = s.hidden.length === 0;
  for (const name of Object.keys(o.datasets)) $(`dataset-${name}`).classList.toggle("selected", name === s.dataset);
  for (const name of Object.keys(o.features)) {
    const row = $(`feature-${name}`), on = s.features.includes(name);
    row.querySelector("input").checked = on;
    row.classList.toggle("off", !on);
  }
  const task = o.datasets[s.dataset] ? o.datasets[s.dataset].task : "classification";
  fillSelect($("output"), o.outputs[task].map(([a, l]) => `${a}|${l}`), (v) => v.replace("|", " + "));
  for (const [id, values] of [["learning_rate", RATES], ["momentum", MOMENTA], ["l2", L2S]]) {
    if (!values.includes(s[id])) values.push(s[id]);  // a value from a link that the list lacks: offered too
    if ($(id).options.length !== values.length) fillSelect($(id), values.sort((a, b) => a - b),
      id === "l2" ? (v) => (v === 0 ? "none" : String(v)) : undefined);
    $(id).value = String(s[id]);
  }
  $("output").value = `${s.output_activation}|${s.loss}`;
  const n = s.hidden.length;
  $("layer-count").textContent = `${n} hidden layer${n === 1 ? "" : "s"}`;
  $("add-layer").disabled = n >= o.limits.hidden_layers;
  $("remove-layer").disabled = n === 0;
  renderLayers();
}

function renderLayers() {  // a column per hidden layer: +/- units and a thumbnail per unit
  const box = $("layers");
  box.innerHTML = "";
  page.settings.hidden.forEach((units, k) => {
    const col = document.createElement("div");
    col.className = "layer";
    col.id = `layer-${k}`;
    const head = document.createElement("div");
    head.className = "units";
    const minus = document.createElement("button"), plus = document.createElement("button");
    minus.className = plus.className = "round";
    minus.textContent = "\u2212";
    plus.textContent = "+";
    minus.disabled = units <= 1;
    plus.disabled = units >= page.options.limits.units;
    minus.title = "One unit fewer";
    plus.title = "One unit more";
    minus.addEventListener("click", () => { page.settings.hidden[k] = units - 1; changed(); });
    plus.addEventListener("click", () => { page.settings.hidden[k] = units + 1; changed(); });
    const count = document.createElement("span");
    count.textContent = `${units}`;
    head.append(minus, count, plus);
    col.appendChild(head);
    for (let j = 0; j < units; j++) {
      const c = document.createElement("canvas");
      c.width = c.height = 16;
      c.title = `layer ${k + 1}, unit ${j + 1}`;
      c.addEventListener("mouseenter", () => hoverNode({ layer: k, unit: j }));
      c.addEventListener("mouseleave", () => hoverNode(null));
      col.appendChild(c);
    }
    box.appendChild(col);
  });
  drawNeurons();
  drawLinks();
}

// ---------------------------------------------------------------------------- frames

function onSetup(setup) {
  page.setup = setup;
  if (page.errorFrom === "lab") showError("");  // a new lab (a reset, new settings): what stopped the last one is gone
  page.curves = { epochs: 0, scratch: { train: [], test: [] }, torch: { train: [], test: [] } };
  document.querySelectorAll(".metric-name").forEach((el) => {
    el.textContent = setup.metric === "accuracy" ? "Test accuracy" : `Test ${setup.metric.toUpperCase()}`;
  });
}

function onFrame(data) {
  page.state = data.state;
  showPlaying(data.state.playing);
  showSpeed(data.state);
  if (data.curves) {
    for (const e of ENGINES) {
      page.curves[e].train.push(...data.curves[e].train_loss);
      page.curves[e].test.push(...data.curves[e].test_loss);
    }
    page.curves.epochs = data.curves.epochs.length ? data.curves.epochs[data.curves.epochs.length - 1]
      : page.curves.epochs;
  }
  if (data.frame) page.frame = data.frame;
  render();
}

function fmt(v) {
  if (v === null || v === undefined) return "\u2013";
  if (v !== 0 && (Math.abs(v) < 0.001 || Math.abs(v) >= 1e5)) return v.toExponential(2);
  return v.toPrecision(4);
}

function render() {
  const f = page.frame;
  if (!f || !page.setup) return;
  if (f.error) showError(f.error, "lab");
  $("epoch").textContent = f.epoch.toLocaleString();
  $("epoch").dataset.playing = String(f.playing);  // false: the frame was made after a pause, it is the last
  for (const id of ["save", "export"]) {  // nothing to keep before an epoch is played
    $(id).disabled = f.epoch === 0 || (id === "save" && page.saving);
    $(id).title = f.epoch === 0 ? "Play or step first: nothing is played yet" : $(id).dataset.title;
  }
  for (const e of ENGINES) {
    const s = f.engines[e], d = s.diverged;
    $(`${e}-epoch`).textContent = `epoch ${s.epoch.toLocaleString()}`;
    $(`engine-${e}`).classList.toggle("diverged", Boolean(d));
    $(`${e}-status`).hidden = !d;
    $(`${e}-status`).textContent = d ? `Diverged in epoch ${d.epoch.toLocaleString()} (training loss became ${d.loss}); `
      + `showing epoch ${s.epoch.toLocaleString()}, its last good state.` : "";
    $(`${e}-train_loss`).textContent = fmt(s.train_loss);
    $(`${e}-test_loss`).textContent = fmt(s.test_loss);
    $(`${e}-test_metric`).textContent = s.test_metric === null ? "\u2013"
      : page.setup.metric === "accuracy" ? `${(s.test_metric * 100).toFixed(1)}%` : fmt(s.test_metric);
    $(`${e}-steps_per_s`).textContent = s.steps_per_s === null ? "\u2013" : Math.round(s.steps_per_s).toLocaleString();
    drawCurve($(`curve-${e}`), page.curves[e]);
  }
  drawBoundaries();
  drawNeurons();
  drawLinks();
  const c = f.compare, diverged = ENGINES.filter((e) => f.engines[e].diverged);
  $("compare-figures").hidden = c.epoch === null;
  $("compare-note").hidden = c.epoch !== null;
  $("compare-note").textContent = diverged.length === 0 ? ""
    : `Not compared: ${diverged.length === ENGINES.length ? "both engines" : diverged[0]} diverged `
      + `(${diverged.map((e) => `${e} in epoch ${f.engines[e].diverged.epoch}`).join(", ")}); `
      + "each panel keeps its last good state.";
  const share = (v) => (v === null ? "\u2013" : `${(v * 100).toFixed(1)}%`);
  $("max_param_diff").textContent = c.max_param_diff === null ? "\u2013"
    : c.max_param_diff === 0 ? "0 (identical)" : c.max_param_diff.toExponential(1);
  $("worst_param").textContent = c.max_param_diff === 0 || c.max_param_diff === null ? "" : `(in ${c.worst_param})`;
  $("agreement_test").textContent = share(c.agreement_test);
  $("agreement_grid").textContent = share(c.agreement_grid);
}

function drawBoundaries() {  // each engine's output over the plane; a hovered node large in the NumPy panel
  const f = page.frame, s = page.setup;
  if (!f || !s) return;
  const hovered = hoveredImage();
  for (const e of ENGINES) {
    const canvas = $(`boundary-${e}`);
    if (e === "scratch" && hovered) {
      paint(canvas, hovered.values, hovered.n, true);
      canvas.dataset.showing = hovered.name;
      const ctx = canvas.getContext("2d");
      ctx.fillStyle = "rgba(255,255,255,0.85)";
      ctx.fillRect(0, 0, canvas.width, 22);
      ctx.fillStyle = "#222";
      ctx.font = "13px sans-serif";
      ctx.fillText(hovered.name, 6, 15);
    } else {
      paint(canvas, bytes(f.engines[e].grid), s.grid, true);
      canvas.dataset.showing = "output";
    }
    drawPoints(canvas, s.train, s.scale, s.range, "#fff");
    if ($("show-test").checked) drawPoints(canvas, s.test, s.scale, s.range, "#000");
  }
  paint($("output-node"), bytes(f.engines.scratch.grid), s.grid, true);
}

function drawNeurons() {
  const f = page.frame;
  if (!f || !page.setup) return;
  f.neurons.forEach((units, k) => {
    const col = $(`layer-${k}`);
    if (!col) return;
    const canvases = col.querySelectorAll("canvas");
    units.forEach((b64, j) => { if (canvases[j]) paint(canvases[j], bytes(b64), page.setup.thumb, false); });
  });
}

function showSpeed(state) {  // the epochs per second reached beside the chosen speed, and a word when it falls short
  const el = $("speed-actual"), rate = state.playing ? state.epochs_per_s : null;
  el.textContent = rate === null || rate === undefined ? "\u2013"
    : `${rate < 10 ? rate.toFixed(1) : Math.round(rate).toLocaleString()} epochs/s`
      + (state.below_pace ? `, below the chosen ${state.pace}: the machine trains no faster` : "");
  el.classList.toggle("below", Boolean(rate !== null && rate !== undefined && state.below_pace));
}

function showPlaying(playing) {
  $("play").innerHTML = playing ? "&#x275a;&#x275a; Pause" : "&#x25b6; Play";
  $("play").title = playing ? "Stop training (the network keeps what it learnt)" : "Train both engines, epoch after epoch";
}

// ---------------------------------------------------------------------------- save and export

async function save() {
  if (page.saving) return;
  page.saving = true;  // before the request: a second click while it is on its way saves nothing
  $("save").disabled = true;
  const status = $("save-status");
  status.classList.remove("failed");
  const r = await call("POST", `/api/sessions/${page.id}/save`)
    .catch((e) => ({ ok: false, status: 0, data: { detail: `the server did not answer (${e.message})` } }));
  if (!r.ok) {
    page.saving = false;
    $("save").disabled = false;
    status.classList.add("failed");
    status.textContent = r.data ? r.data.detail : `the server answered ${r.status}`;
    return;
  }
  status.textContent = `Saving ${r.data.epochs} epochs to MLflow: harness bench runs each engine in a fresh process\u2026`;
  const poll = async () => {
    const s = await call("GET", `/api/sessions/${page.id}/save`);
    const job = s.data || {};
    if (s.ok && (job.state === "queued" || job.state === "running")) {
      const last = job.log && job.log.length ? `\n${job.log[job.log.length - 1]}` : "";
      status.textContent = `Saving ${job.epochs} epochs to MLflow\u2026${last}`;
      setTimeout(poll, 500);
      return;
    }
    page.saving = false;
    $("save").disabled = false;
    if (!s.ok || job.state !== "done") {
      status.classList.add("failed");
      status.textContent = `Not saved: ${job.message || (s.data && s.data.detail) || s.status}`;
      return;
    }
    const metric = page.setup ? page.setup.metric : "metric";
    const figures = ENGINES.map((e) => `${e} test ${metric} ${fmt(job.runs[e].test_metric)}, loss ${fmt(job.runs[e].test_loss)}`);
    status.textContent = `Saved to ${job.uri}: experiment ${job.experiment}, parent run ${job.parent_run_id} `
      + `(bench ${job.bench_id}).\n${figures.join("; ")}`
      + (job.same_as_page ? " \u2014 the same as on the page." : " \u2014 these differ from the page's.");
    const ui = document.createElement("span");
    ui.id = "ui-link";
    if (job.ui_link) {
      const a = document.createElement("a");
      a.href = job.ui_link;
      a.target = "_blank";
      a.rel = "noopener";
      a.textContent = "Open the run in the MLflow UI";
      ui.append(a, ` (${job.ui_link.split("/#")[0]} serves this store)`);
    } else {
      ui.textContent = `No MLflow UI serving this store answered at ${job.ui_probed.join(" or ")}: `
        + "harness ui --tracking-uri with the store above starts one; save again for the link.";
    }
    status.appendChild(ui);
  };
  setTimeout(poll, 500);
}

async function exportFile() {
  const r = await fetch(`/api/sessions/${page.id}/experiment.toml`);
  if (!r.ok) {
    let detail = `the server answered ${r.status}`;
    try { detail = (await r.json()).detail; } catch (e) { /* keep the status */ }
    $("save-status").classList.add("failed");
    $("save-status").textContent = detail;
    return;
  }
  const text = await r.text();
  const name = (r.headers.get("content-disposition") || "").match(/filename="([^"]+)"/);
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([text], { type: "application/toml" }));
  a.download = name ? name[1] : "playground.toml";
  document.body.appendChild(a);
  a.click();
  a.remove();
  $("save-status").classList.remove("failed");
  $("save-status").textContent = `Exported ${a.download}: harness run ${a.download} repeats this session.`;
}

// ---------------------------------------------------------------------------- start

async function start() {
  const r = await call("GET", "/api/options");
  page.options = r.data;
  const linked = readQuery(location.search, r.data.defaults, r.data.controls);  // the address's settings
  page.settings = linked.settings;
  if (linked.speed !== null) $("pace").value = linked.speed;
  for (const id of ["save", "export"]) $(id).dataset.title = $(id).title;
  buildControls();
  renderControls();
  await createSession(linked);
  window.addEventListener("beforeunload", () => {
    if (page.id) navigator.sendBeacon && fetch(`/api/sessions/${page.id}`, { method: "DELETE", keepalive: true });
  });
}

start();
