// The page of explorer.py: a drawing pad, and what the network makes of the drawing.
// Plain JavaScript with no libraries; it talks only to the server that served it (see the
// JSON API in explorer.py). Read top to bottom: arrays and colours, the drawing pad, requests,
// one function per panel, then the view of how one feature map is made, then the keyboard.
// Every view works with a keyboard (the bars and the maps are buttons), every picture has a name a
// screen reader can say, and #status (a polite live region) says each new prediction and any error.
"use strict";

const THROTTLE_MS = 120;       // at most one request per 120 ms while the pen moves
const PEN_WIDTH = 22;          // in pad pixels (280 x 280): about MNIST's stroke width once scaled to 20 x 20
const TILE = 42;               // size in screen pixels of one feature map (28 x 1.5, 14 x 3, 7 x 6)
const COLUMNS = 8;             // feature maps per row
const SERVER_DOWN = "The explorer's server does not answer: start it again with `python explorer.py` " +
  "in a terminal, then reload this page.";

const state = {
  model: null,          // GET /api/model
  mode: "empty",        // "empty", "drawing" or "test" (a real MNIST test image, sent as it is)
  test: null,           // {index, label, image} of the test image on the pad
  drawing: null,        // the last drawing sent, 112 x 112 values in [0, 1]
  result: null,         // the last POST /api/predict answer
  selectedClass: null,  // the class the learner chose for Grad-CAM; null follows the prediction
  pointerId: null,      // the one pointer that draws; a second finger is ignored until the first lifts
  inFlight: false,
  dirty: false,
  lastSent: 0,
  timer: null,
  generation: 0,        // counts Clear presses, so that an answer to a cleared drawing is dropped
  detail: null,         // {layer, channel} of the conv map whose making is shown, or null
  detailRequests: 0,    // counts feature-map requests, so that only the latest answer is shown
};

// --- Arrays and colours ---

// The API sends arrays as {shape, dtype, data: base64 of little-endian bytes}: dtype "float32", or
// "int8" with a "scale" (value = level x scale), which the page asks for its maps and Grad-CAM: a
// quarter of the bytes, and more levels than its colours show.
function decodeArray(encoded) {
  const bytes = atob(encoded.data);
  const buffer = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) buffer[i] = bytes.charCodeAt(i);
  if (encoded.dtype === "int8") {
    const levels = new Int8Array(buffer.buffer);
    return { shape: encoded.shape, data: Float32Array.from(levels, (level) => level * encoded.scale) };
  }
  return { shape: encoded.shape, data: new Float32Array(buffer.buffer) };
}

// Diverging colour map: negative blue, zero white, positive red (ColorBrewer RdBu ends).
const BLUE = [33, 102, 172];
const RED = [178, 24, 43];
function diverging(value, limit) {
  const t = limit > 0 ? Math.max(-1, Math.min(1, value / limit)) : 0;
  const end = t < 0 ? BLUE : RED;
  const a = Math.abs(t);
  return [255 + (end[0] - 255) * a, 255 + (end[1] - 255) * a, 255 + (end[2] - 255) * a];
}

// Grad-CAM heat: dark red -> orange -> yellow as t goes from 0 to 1, laid over a grey level `base`
// with opacity 0.85 sqrt(t), so that weak evidence stays faint.
function heat(t) {
  return [255, Math.round(40 + 215 * t * t), Math.round(30 * (1 - t))];
}
function heatOver(base, t) {
  const colour = heat(t);
  const alpha = 0.85 * Math.sqrt(t);
  return [0, 1, 2].map((i) => Math.round(base * (1 - alpha) + colour[i] * alpha));
}

// Paint an (h, w) grid of [r, g, b] colours onto ctx at (x, y), each cell scale x scale pixels.
function paintCells(ctx, x, y, height, width, scale, colourAt) {
  const image = ctx.createImageData(width * scale, height * scale);
  for (let row = 0; row < height * scale; row++) {
    for (let column = 0; column < width * scale; column++) {
      const [r, g, b, a] = colourAt(Math.floor(row / scale), Math.floor(column / scale));
      const offset = 4 * (row * width * scale + column);
      image.data[offset] = r;
      image.data[offset + 1] = g;
      image.data[offset + 2] = b;
      image.data[offset + 3] = a === undefined ? 255 : a;
    }
  }
  ctx.putImageData(image, x, y);
}

function grey(value) {
  const v = Math.round(255 * value);
  return [v, v, v];
}

function clearCanvas(canvas) {
  canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
}

const percent = (p) => `${(100 * p).toFixed(1)}%`;

// --- The drawing pad ---

const pad = document.getElementById("pad");
const padContext = pad.getContext("2d");

function clearPad() {
  padContext.fillStyle = "#000";  // MNIST is white ink on black: 0 = background, 1 = ink
  padContext.fillRect(0, 0, pad.width, pad.height);
}

function padPoint(event) {
  const box = pad.getBoundingClientRect();
  return [(event.clientX - box.left) * pad.width / box.width, (event.clientY - box.top) * pad.height / box.height];
}

// One pointer draws at a time: a second finger (or a palm) on the pad is ignored until the first lifts.
function startDrawing() {
  let last = null;
  pad.addEventListener("pointerdown", (event) => {
    event.preventDefault();
    if (state.pointerId !== null) return;
    state.pointerId = event.pointerId;
    pad.setPointerCapture(event.pointerId);
    if (state.mode !== "drawing") {
      state.test = null;
      showSource("Your drawing.");
    }
    state.mode = "drawing";
    last = padPoint(event);
    dot(last);
    scheduleUpdate();
  });
  pad.addEventListener("pointermove", (event) => {
    if (event.pointerId !== state.pointerId || last === null) return;
    event.preventDefault();
    const point = padPoint(event);
    strokeTo(last, point);
    last = point;
    scheduleUpdate();
  });
  const stop = (event) => {
    if (event.pointerId !== state.pointerId) return;
    state.pointerId = null;
    last = null;
    scheduleUpdate(true);  // pen up: send at once
  };
  pad.addEventListener("pointerup", stop);
  pad.addEventListener("pointercancel", stop);
}

function dot(point) {
  padContext.fillStyle = "#fff";
  padContext.beginPath();
  padContext.arc(point[0], point[1], PEN_WIDTH / 2, 0, 2 * Math.PI);
  padContext.fill();
}

function strokeTo(from, to) {
  padContext.strokeStyle = "#fff";
  padContext.lineWidth = PEN_WIDTH;
  padContext.lineCap = "round";
  padContext.lineJoin = "round";
  padContext.beginPath();
  padContext.moveTo(from[0], from[1]);
  padContext.lineTo(to[0], to[1]);
  padContext.stroke();
}

// The pad (280 x 280) shrunk to the API's drawing size, as rows of grey levels in [0, 1].
function readDrawing() {
  const size = state.model.drawing_size;
  const small = document.createElement("canvas");
  small.width = small.height = size;
  const context = small.getContext("2d", { willReadFrequently: true });
  context.imageSmoothingEnabled = true;
  context.imageSmoothingQuality = "high";
  context.drawImage(pad, 0, 0, size, size);
  const pixels = context.getImageData(0, 0, size, size).data;
  const rows = [];
  let ink = false;
  for (let row = 0; row < size; row++) {
    const values = new Array(size);
    for (let column = 0; column < size; column++) {
      const value = Math.round(1000 * pixels[4 * (row * size + column)] / 255) / 1000;  // red channel
      values[column] = value;
      ink = ink || value > 0;
    }
    rows.push(values);
  }
  return ink ? rows : null;
}

// A 28 x 28 test image painted onto the pad, pixel by pixel, so the learner can draw over it.
function paintTestImage(image) {
  const [height, width] = image.shape;
  const scale = pad.width / width;
  padContext.imageSmoothingEnabled = false;
  paintCells(padContext, 0, 0, height, width, scale, (row, column) => grey(image.data[row * width + column]));
}

// --- Requests ---

// fetch() rejects only when no answer came at all (the server stopped): say what to do about it.
async function getJSON(url, options) {
  let response;
  try {
    response = await fetch(url, options);
  } catch (error) {
    throw new Error(SERVER_DOWN);
  }
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

// Throttle: one request in flight at a time, at most one per THROTTLE_MS; the latest drawing wins.
function scheduleUpdate(now = false) {
  state.dirty = true;
  showBusy();
  if (state.inFlight || state.timer !== null) {
    if (!now || state.inFlight) return;
    clearTimeout(state.timer);
    state.timer = null;
  }
  const wait = now ? 0 : Math.max(0, THROTTLE_MS - (performance.now() - state.lastSent));
  state.timer = setTimeout(() => { state.timer = null; sendUpdate(); }, wait);
}

function cancelUpdates() {
  clearTimeout(state.timer);
  state.timer = null;
  state.dirty = false;
  showBusy();
}

// body[data-busy] is "true" while an answer is awaited: the panels show the latest drawing once it is "false".
function busy() {
  return state.inFlight || state.dirty || state.timer !== null;
}
function showBusy() {
  document.body.dataset.busy = String(busy());
}

async function sendUpdate() {
  // Until GET /api/model has answered, a drawing stays dirty; start() sends it once the model is known.
  if (!state.dirty || state.inFlight || state.mode === "empty" || state.model === null) return showBusy();
  state.dirty = false;
  // "dtype": "int8" asks for the maps and Grad-CAM as 8-bit levels: all that the colours need.
  let body;
  if (state.mode === "test") {
    const [height, width] = state.test.image.shape;
    body = { image: Array.from({ length: height }, (_, row) =>
      Array.from(state.test.image.data.subarray(row * width, (row + 1) * width))), dtype: "int8" };
  } else {
    const drawing = readDrawing();
    if (drawing === null) return showBusy();  // nothing drawn yet
    state.drawing = drawing;
    body = { drawing, dtype: "int8" };
  }
  const generation = state.generation;
  state.inFlight = true;
  state.lastSent = performance.now();
  try {
    const result = await getJSON("/api/predict", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    if (generation === state.generation) {
      showResult(result);
      // Say the prediction once the pen is up and no newer drawing waits, not at every stroke's step.
      if (!state.dirty && state.timer === null && state.pointerId === null) announcePrediction(result);
    }
  } catch (error) {
    showSource(`Could not update: ${error.message}`, true);
    announce(`Could not update: ${error.message}`);
  } finally {
    state.inFlight = false;
    if (state.dirty) scheduleUpdate();
    showBusy();
  }
}

async function loadTestImage() {
  try {
    const test = await getJSON("/api/test-image");
    state.test = { index: test.index, label: test.label, image: decodeArray(test.image) };
    state.mode = "test";
    state.generation++;
    paintTestImage(state.test.image);
    showSource(`MNIST test image #${test.index}, true label ${test.label}.`);
    scheduleUpdate(true);
  } catch (error) {
    showSource(`Could not load a test image: ${error.message}`, true);
    announce(`Could not load a test image: ${error.message}`);
  }
}

// --- Panels ---

// The live region: a screen reader says its new text when it is free (role="status", polite).
function announce(text) {
  document.getElementById("status").textContent = text;
}

function announcePrediction(result) {
  const source = state.mode === "test" && state.test
    ? ` MNIST test image #${state.test.index}, true label ${state.test.label}.` : "";
  announce(`Prediction ${result.predicted}, ${percent(result.confidence)} sure.${source}`);
}

function showSource(text, isError = false) {
  const source = document.getElementById("source");
  source.textContent = text;
  source.classList.toggle("error", isError);
}

function showModel(model) {
  const framework = { numpy: "NumPy", pytorch: "PyTorch", keras: "Keras" }[model.framework] || model.framework;
  document.getElementById("model-info").textContent =
    `Model ${model.name} (${framework}, ${model.parameters.toLocaleString("en")} parameters): ` +
    model.layers.map((layer) => layer.name).join(" → ");
  showBars(null);
  buildMapGrids(model);
  showFilters(model.filters);
  paintLegend();
  paintGradcamLegend();
}

const STEP_LABELS = {  // what each preprocessing canvas shows before anything is drawn
  "step-box": "Step 1: the drawing as sent, 112 by 112 pixels; nothing drawn yet",
  "step-scaled": "Step 2: the ink scaled to fit a 20 by 20 box; nothing drawn yet",
  "step-input": "Step 3: the 28 by 28 input of the network; nothing drawn yet",
};

// Clear: every panel, caption and name back to how the page started.
function showEmpty() {
  state.result = null;
  state.selectedClass = null;
  document.getElementById("predicted").textContent = "–";
  document.getElementById("confidence").textContent = "";
  document.getElementById("runners-up").textContent = "";
  document.getElementById("gradcam-caption").textContent = "–";
  document.getElementById("gradcam-max").textContent = "max";
  document.getElementById("scaled-caption").textContent = "scaled into 20×20";
  document.getElementById("preprocess-note").hidden = false;
  document.getElementById("test-image-note").hidden = true;
  showBars(null);
  for (const [id, label] of Object.entries(STEP_LABELS)) {
    const canvas = document.getElementById(id);
    clearCanvas(canvas);
    canvas.setAttribute("aria-label", label);
  }
  const gradcam = document.getElementById("gradcam");
  clearCanvas(gradcam);
  gradcam.setAttribute("aria-label", "Grad-CAM: nothing to show yet");
  delete gradcam.dataset.shownClass;
  for (const block of document.querySelectorAll(".map-block")) {
    block.classList.remove("drawn");
    const canvas = block.querySelector("canvas");
    clearCanvas(canvas);
    canvas.setAttribute("aria-label", block.dataset.emptyLabel);
    block.querySelector(".map-range").textContent = "";
  }
  document.body.dataset.predictions = "0";
}

function showResult(result) {
  state.result = result;
  document.getElementById("predicted").textContent = String(result.predicted);
  document.getElementById("confidence").textContent = `${percent(result.confidence)} sure`;
  const others = result.probabilities.map((p, k) => [p, k]).filter(([, k]) => k !== result.predicted)
    .sort((a, b) => b[0] - a[0]).slice(0, 2);
  document.getElementById("runners-up").textContent =
    `then ${others.map(([p, k]) => `${k}: ${percent(p)}`).join(", ")}`;
  showBars(result);
  showPreprocessing(result);
  showMaps(result.layers);
  showGradcam();
  if (state.detail) requestMapDetail();  // the shown map's making, for the new input
  document.body.dataset.predictions = String(Number(document.body.dataset.predictions || 0) + 1);
}

// The ten bars are buttons: the one whose Grad-CAM is shown is pressed (aria-pressed="true").
function showBars(result) {
  const bars = document.getElementById("bars");
  const classes = state.model ? state.model.num_classes : 10;
  if (bars.children.length !== classes) {
    bars.replaceChildren();
    for (let k = 0; k < classes; k++) {
      const bar = document.createElement("button");
      bar.type = "button";
      bar.className = "bar";
      bar.dataset.class = String(k);
      const track = element("span", "track");
      track.setAttribute("aria-hidden", "true");
      track.append(element("span", "fill"));
      bar.append(element("span", "digit", String(k)), track, element("span", "value"),
        element("span", "visually-hidden role"));
      bar.addEventListener("click", () => {
        if (!state.result) {
          announce("No prediction yet: draw a digit, or choose Random test image.");
          return;
        }
        state.selectedClass = k === state.result.predicted ? null : k;
        showBars(state.result);
        showGradcam();
      });
      bars.appendChild(bar);
    }
  }
  const shown = gradcamClass();
  for (const bar of bars.children) {
    const k = Number(bar.dataset.class);
    const p = result ? result.probabilities[k] : 0;
    bar.querySelector(".fill").style.width = `${(100 * p).toFixed(1)}%`;
    bar.querySelector(".value").textContent = result ? percent(p) : "";
    bar.querySelector(".role").textContent = result !== null && k === result.predicted ? ", the prediction" : "";
    bar.classList.toggle("predicted", result !== null && k === result.predicted);
    bar.setAttribute("aria-pressed", String(result !== null && k === shown));
  }
}

function showPreprocessing(result) {
  const scale = 5;  // screen pixels per MNIST pixel
  const input = decodeArray(result.input);
  const [size] = input.shape;
  const boxCanvas = document.getElementById("step-box");
  const scaledCanvas = document.getElementById("step-scaled");
  const inputCanvas = document.getElementById("step-input");
  const boxContext = boxCanvas.getContext("2d");
  const scaledContext = scaledCanvas.getContext("2d");
  const inputContext = inputCanvas.getContext("2d");
  for (const context of [boxContext, scaledContext, inputContext]) {
    context.clearRect(0, 0, context.canvas.width, context.canvas.height);
  }
  paintCells(inputContext, 0, 0, size, size, scale, (row, column) => grey(input.data[row * size + column]));
  const steps = result.preprocessing;
  // A test image comes already preprocessed by MNIST: index.html holds one note for each case.
  document.getElementById("preprocess-note").hidden = steps === null;
  document.getElementById("test-image-note").hidden = steps !== null;
  if (steps === null) {
    document.getElementById("scaled-caption").textContent = "scaled into 20×20";
    boxCanvas.setAttribute("aria-label", "Step 1: not used, a test image comes already preprocessed");
    scaledCanvas.setAttribute("aria-label", "Step 2: not used, a test image comes already preprocessed");
    inputCanvas.setAttribute("aria-label", `Step 3: the MNIST test image as it is, ${size} by ${size} pixels`);
    return;
  }
  // Step 1: the drawing as sent (112 x 112) with the ink's bounding box.
  const drawingSize = steps.drawing_size;
  paintCells(boxContext, 0, 0, drawingSize, drawingSize, 1,
    (row, column) => grey(state.drawing ? state.drawing[row][column] : 0));
  const [top, left, height, width] = steps.box;
  boxContext.strokeStyle = "#ff9f1c";
  boxContext.lineWidth = 2;
  boxContext.strokeRect(left - 1, top - 1, width + 2, height + 2);
  boxCanvas.setAttribute("aria-label", `Step 1: the drawing as sent, ${drawingSize} by ${drawingSize} pixels, ` +
    `with the ink's bounding box in orange: ${height} by ${width} pixels from row ${top}, column ${left}`);
  // Step 2: the ink scaled so that its longer side is 20, inside a dashed 20 x 20 frame.
  const scaled = decodeArray(steps.scaled);
  const [scaledHeight, scaledWidth] = scaled.shape;
  const x = Math.floor((steps.box_size - scaledWidth) / 2) * scale;
  const y = Math.floor((steps.box_size - scaledHeight) / 2) * scale;
  paintCells(scaledContext, x, y, scaledHeight, scaledWidth, scale,
    (row, column) => grey(scaled.data[row * scaledWidth + column]));
  scaledContext.strokeStyle = "#888";
  scaledContext.setLineDash([4, 3]);
  scaledContext.strokeRect(0.5, 0.5, steps.box_size * scale - 1, steps.box_size * scale - 1);
  scaledContext.setLineDash([]);
  document.getElementById("scaled-caption").textContent = `scaled into 20×20 (${scaledHeight}×${scaledWidth})`;
  scaledCanvas.setAttribute("aria-label", `Step 2: the ink scaled to ${scaledHeight} by ${scaledWidth} pixels, ` +
    `its longer side ${steps.box_size}, inside a dashed ${steps.box_size} by ${steps.box_size} frame`);
  // Step 3: the target centre (grey cross) and the centre of mass (red dot); pixel i's centre is at (i + 0.5) * scale.
  const [targetRow, targetColumn] = steps.target_center.map((value) => (value + 0.5) * scale);
  inputContext.strokeStyle = "rgba(200, 200, 200, 0.8)";
  inputContext.lineWidth = 1;
  inputContext.beginPath();
  inputContext.moveTo(targetColumn - 8, targetRow);
  inputContext.lineTo(targetColumn + 8, targetRow);
  inputContext.moveTo(targetColumn, targetRow - 8);
  inputContext.lineTo(targetColumn, targetRow + 8);
  inputContext.stroke();
  const [massRow, massColumn] = steps.center_of_mass.map((value) => (value + 0.5) * scale);
  inputContext.fillStyle = "#e63946";
  inputContext.beginPath();
  inputContext.arc(massColumn, massRow, 3.5, 0, 2 * Math.PI);
  inputContext.fill();
  const [mass0, mass1] = steps.center_of_mass.map((value) => value.toFixed(1));
  inputCanvas.setAttribute("aria-label", `Step 3: the ${size} by ${size} input of the network, moved so that ` +
    `its centre of mass (red dot, row ${mass0}, column ${mass1}) sits at the centre (grey cross, row ` +
    `${steps.target_center[0]}, column ${steps.target_center[1]})`);
}

// One block per map layer: a title, the grid of maps (one canvas) and, for a conv layer, one button
// per map laid over it. The buttons form one Tab stop; the arrow keys move between them.
function buildMapGrids(model) {
  const maps = document.getElementById("maps");
  maps.replaceChildren();
  for (const name of model.map_layers) {
    const layer = model.layers.find((item) => item.name === name);
    const [channels, height, width] = layer.shape;
    const shown = Math.min(channels, model.max_maps_per_layer);
    const block = document.createElement("div");
    block.className = "map-block";
    block.dataset.layer = name;
    const title = element("p", "map-title");
    title.append(element("strong", "", name), " ",
      element("span", "map-shape",
        `${channels}×${height}×${width}${shown < channels ? `, first ${shown} shown` : ""}`),
      " ", element("span", "map-range"));
    const grid = element("div", "map-grid");
    const canvas = document.createElement("canvas");
    const rows = Math.ceil(shown / COLUMNS);
    canvas.width = COLUMNS * (TILE + 2);  // 1 pixel of grid line around each map
    canvas.height = rows * (TILE + 2);
    canvas.setAttribute("role", "img");
    block.dataset.emptyLabel = `${name}: ${shown} feature maps of ${height} by ${width}; nothing drawn yet`;
    canvas.setAttribute("aria-label", block.dataset.emptyLabel);
    grid.append(canvas);
    if (layer.kind === "conv") grid.append(mapTiles(name, shown, rows));
    block.append(title, grid);
    maps.appendChild(block);
  }
}

function mapTiles(name, shown, rows) {
  const tiles = element("div", "tiles");
  tiles.setAttribute("role", "group");
  tiles.setAttribute("aria-label", `${name}'s maps: the arrow keys move between them, Enter shows how one is made`);
  for (let k = 0; k < shown; k++) {
    const tile = document.createElement("button");
    tile.type = "button";
    tile.className = "tile";
    tile.dataset.channel = String(k);
    tile.tabIndex = k === 0 ? 0 : -1;
    tile.setAttribute("aria-label", `map ${k} of ${name}: how it is made`);
    Object.assign(tile.style, {  // in percent of the grid, which shrinks with a narrow window
      left: `${100 * (k % COLUMNS) / COLUMNS}%`, top: `${100 * Math.floor(k / COLUMNS) / rows}%`,
      width: `${100 / COLUMNS}%`, height: `${100 / rows}%`,
    });
    tile.addEventListener("click", () => openMapDetail(name, k));
    tiles.append(tile);
  }
  tiles.addEventListener("keydown", (event) => {
    const current = Number(event.target.dataset.channel);
    const moves = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -COLUMNS, ArrowDown: COLUMNS, Home: -shown, End: shown };
    if (!(event.key in moves)) return;
    event.preventDefault();
    focusTile(name, Math.max(0, Math.min(shown - 1, current + moves[event.key])));
  });
  return tiles;
}

// Move the grid's one Tab stop to map k and focus it.
function focusTile(layer, k) {
  const tiles = document.querySelectorAll(`.map-block[data-layer="${CSS.escape(layer)}"] .tile`);
  if (!tiles.length) return;
  for (const tile of tiles) tile.tabIndex = Number(tile.dataset.channel) === k ? 0 : -1;
  tiles[k].focus();
}

// A new element with a class and text (never HTML: names come from the server).
function element(tag, className = "", text = "") {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text) node.textContent = text;
  return node;
}

function showMaps(layers) {
  for (const layer of layers) {
    const block = document.querySelector(`.map-block[data-layer="${CSS.escape(layer.name)}"]`);
    if (!block) continue;
    const canvas = block.querySelector("canvas");
    const context = canvas.getContext("2d");
    context.fillStyle = "#d5d9e0";  // the grid lines between maps
    context.fillRect(0, 0, canvas.width, canvas.height);
    context.imageSmoothingEnabled = false;  // show each activation as a square, not a blur
    const maps = decodeArray(layer.maps);
    const [count, height, width] = maps.shape;
    const tile = document.createElement("canvas");  // one map at its own size, then scaled to TILE
    tile.width = width;
    tile.height = height;
    const tileContext = tile.getContext("2d");
    for (let k = 0; k < count; k++) {
      const base = k * height * width;
      paintCells(tileContext, 0, 0, height, width, 1,
        (row, column) => diverging(maps.data[base + row * width + column], layer.limit));
      context.drawImage(tile, (k % COLUMNS) * (TILE + 2) + 1, Math.floor(k / COLUMNS) * (TILE + 2) + 1, TILE, TILE);
    }
    const limit = layer.limit.toPrecision(3);
    block.querySelector(".map-range").textContent = `±${limit}`;
    canvas.setAttribute("aria-label", `${layer.name}: ${count} feature maps of ${height} by ${width}, ` +
      `blue negative, white zero, red positive, on a scale of plus or minus ${limit}`);
    block.classList.add("drawn");
    if (state.detail && state.detail.layer === layer.name) frameTile(context, state.detail.channel);
  }
}

// A dark orange frame around map k of a grid, the one whose making is shown below.
function frameTile(context, k) {
  context.strokeStyle = "#a34b00";
  context.lineWidth = 3;
  context.strokeRect((k % COLUMNS) * (TILE + 2) + 0.5, Math.floor(k / COLUMNS) * (TILE + 2) + 0.5, TILE + 1, TILE + 1);
}

function gradcamClass() {
  if (!state.result) return null;
  return state.selectedClass === null ? state.result.predicted : state.selectedClass;
}

// Grad-CAM of the chosen class over the input dimmed to grey, on one scale for every class: from 0
// to the largest value of all the classes' maps, so that an unlikely class shows little heat.
function showGradcam() {
  const result = state.result;
  const canvas = document.getElementById("gradcam");
  const context = canvas.getContext("2d");
  context.clearRect(0, 0, canvas.width, canvas.height);
  if (!result) return;
  const k = gradcamClass();
  const cams = decodeArray(result.gradcam.maps);
  const [, height, width] = cams.shape;
  const limit = cams.data.reduce((a, b) => Math.max(a, b), 0);
  const top = result.gradcam.classes[Math.floor(cams.data.indexOf(limit) / (height * width))];  // whose peak it is
  const position = result.gradcam.classes.indexOf(k);
  const input = decodeArray(result.input);
  const cam = cams.data.subarray(position * height * width, (position + 1) * height * width);
  const peak = cam.reduce((a, b) => Math.max(a, b), 0);
  paintCells(context, 0, 0, height, width, canvas.width / width, (row, column) =>
    heatOver(40 + 110 * input.data[row * width + column], limit > 0 ? cam[row * width + column] / limit : 0));
  const which = k === result.predicted
    ? `${k} (the prediction)`
    : `${k} (p = ${percent(result.probabilities[k])})`;
  const scale = `peak ${peak.toPrecision(2)} on the scale 0 to ${limit.toPrecision(3)}` +
    (top === k ? " (its own peak, the largest of all classes)" : ` (the peak of ${top})`);
  document.getElementById("gradcam-max").textContent = limit.toPrecision(3);
  document.getElementById("gradcam-caption").textContent = peak > 0
    ? `for ${which}, from ${result.gradcam.layer}: ${scale}`
    : `for ${which}: no positive evidence anywhere (the map is all zero)`;
  canvas.setAttribute("aria-label", `Grad-CAM for ${which}, from ${result.gradcam.layer}: the input in grey ` +
    `with heat where the evidence for ${k} lies, ${peak > 0 ? scale : "none anywhere"}`);
  canvas.dataset.shownClass = String(k);
  canvas.dataset.peak = String(peak);
  canvas.dataset.limit = String(limit);
}

function showFilters(filters) {
  const weights = decodeArray(filters.weights);
  const [count, channels, height, width] = weights.shape;
  document.getElementById("filters-title").textContent =
    `First-layer filters (${filters.layer}: ${count} filters of ${height}×${width}` +
    `${channels > 1 ? `, input channel 0 of ${channels}` : ""}; scale ±${filters.limit.toPrecision(3)})`;
  const container = document.getElementById("filters");
  container.replaceChildren();
  const scale = Math.max(1, Math.floor(48 / Math.max(height, width)));
  for (let f = 0; f < count; f++) {
    const figure = document.createElement("figure");
    const canvas = document.createElement("canvas");
    canvas.width = width * scale;
    canvas.height = height * scale;
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", `filter ${f} of ${filters.layer}: ${height} by ${width} weights, blue ` +
      `negative, red positive`);
    const base = f * channels * height * width;  // channel 0 of filter f
    paintCells(canvas.getContext("2d"), 0, 0, height, width, scale,
      (row, column) => diverging(weights.data[base + row * width + column], filters.limit));
    const caption = document.createElement("figcaption");
    caption.textContent = String(f);
    caption.setAttribute("aria-hidden", "true");  // the canvas's name says it
    figure.append(canvas, caption);
    container.appendChild(figure);
  }
}

function paintLegend() {
  const canvas = document.getElementById("legend");
  const context = canvas.getContext("2d");
  paintCells(context, 0, 0, 1, canvas.width, 1, (row, column) => diverging(2 * column / (canvas.width - 1) - 1, 1));
  context.drawImage(canvas, 0, 0, canvas.width, 1, 0, 0, canvas.width, canvas.height);
}

// The heat of Grad-CAM from 0 to the scale's top, over the grey of an empty background (40).
function paintGradcamLegend() {
  const canvas = document.getElementById("gradcam-legend");
  const context = canvas.getContext("2d");
  paintCells(context, 0, 0, 1, canvas.width, 1, (row, column) => heatOver(40, column / (canvas.width - 1)));
  context.drawImage(canvas, 0, 0, canvas.width, 1, 0, 0, canvas.width, canvas.height);
}

// --- How one feature map is made ---
// A click on map k of a conv layer (or Enter on it) asks POST /api/feature-map for that map only:
// the maps of the layer below, filter k's slice for each of them, their correlations, the sum, the
// bias, and the map as the model computed it. Escape or Close hides the view and gives the focus
// back to the map it came from.

function openMapDetail(layer, channel) {
  if (!state.result) {
    announce("No maps yet: draw a digit, or choose Random test image, then choose a map.");
    return;
  }
  state.detail = { layer, channel };
  showMaps(state.result.layers);  // move the frame to the chosen map
  const section = document.getElementById("map-detail");
  section.hidden = false;
  const title = document.getElementById("detail-title");
  title.textContent = `How map ${channel} of ${layer} is made`;
  document.getElementById("detail-note").textContent = "Loading…";
  document.getElementById("detail-check").textContent = "";
  for (const id of ["detail-channels", "detail-sum"]) document.getElementById(id).replaceChildren();
  requestMapDetail();
  title.focus({ preventScroll: true });  // a screen reader says the title; Tab goes on to Close
  section.scrollIntoView({ block: "nearest" });
}

function closeMapDetail(returnFocus = false) {
  const shown = state.detail;
  state.detail = null;
  state.detailRequests++;  // an answer on its way is dropped
  const section = document.getElementById("map-detail");
  section.hidden = true;
  delete section.dataset.ready;
  if (state.result) showMaps(state.result.layers);  // without the frame
  if (returnFocus && shown) focusTile(shown.layer, shown.channel);
}

async function requestMapDetail() {
  const { layer, channel } = state.detail;
  const result = state.result;  // the input and the grid this answer will be compared with
  const request = ++state.detailRequests;
  const section = document.getElementById("map-detail");
  delete section.dataset.ready;
  const input = decodeArray(result.input);
  const [height, width] = input.shape;
  const image = Array.from({ length: height },
    (_, row) => Array.from(input.data.subarray(row * width, (row + 1) * width)));  // rows of float32 values
  try {
    const answer = await getJSON("/api/feature-map", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ image, layer, channel }),
    });
    if (request === state.detailRequests) showMapDetail(answer, result);
  } catch (error) {
    if (request === state.detailRequests) {
      document.getElementById("detail-note").textContent = `Could not explain the map: ${error.message}`;
      announce(`Could not explain the map: ${error.message}`);
    }
  }
}

function largestMagnitude(values) {
  return values.reduce((largest, value) => Math.max(largest, Math.abs(value)), 0);
}

// Paint the (height, width) slice at `offset` of a decoded array onto a new canvas, `scale` pixels
// per value, named `label` for a screen reader.
function mapCanvas(array, offset, height, width, scale, limit, label) {
  const canvas = document.createElement("canvas");
  canvas.width = width * scale;
  canvas.height = height * scale;
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", label);
  paintCells(canvas.getContext("2d"), 0, 0, height, width, scale,
    (row, column) => diverging(array.data[offset + row * width + column], limit));
  return canvas;
}

function showMapDetail(answer, result) {
  const inputs = decodeArray(answer.inputs);            // (C, H, W): the maps below
  const kernels = decodeArray(answer.kernels);          // (C, HH, WW): filter k, one slice per input
  const correlations = decodeArray(answer.correlations);  // (C, H_out, W_out)
  const sum = decodeArray(answer.sum);
  const output = decodeArray(answer.result);            // (H_out, W_out) = sum + bias
  const model = decodeArray(answer.output);             // (H_out, W_out): the map as the model computed it
  const [channels, height, width] = inputs.shape;
  const [, kernelHeight, kernelWidth] = kernels.shape;
  const [, outHeight, outWidth] = correlations.shape;
  const below = answer.below === null ? "the digit" : answer.below;
  const grid = result.layers.find((layer) => layer.name === answer.layer);
  const inputLimit = largestMagnitude(inputs.data);
  const kernelLimit = largestMagnitude(kernels.data);
  const correlationLimit = largestMagnitude(correlations.data);
  const outputLimit = Math.max(grid.limit, largestMagnitude(sum.data));  // the grid's scale, unless the sum exceeds it
  // Smaller pictures in a narrow window, so that two cards fit side by side on a phone.
  const narrow = document.getElementById("detail-channels").clientWidth < 480;
  const picture = narrow ? 40 : 56;
  const inputScale = Math.max(1, Math.round(picture / Math.max(height, width)));
  const outScale = Math.max(1, Math.round(picture / Math.max(outHeight, outWidth)));
  const kernelScale = Math.max(3, Math.round((narrow ? 27 : 36) / Math.max(kernelHeight, kernelWidth)));
  const k = answer.channel;

  document.getElementById("detail-title").textContent = `How map ${k} of ${answer.layer} is made`;
  const pair = (values) => values[0] === values[1] ? String(values[0]) : values.join("×");
  document.getElementById("detail-note").textContent =
    `Each input channel (${answer.below === null ? "the digit itself" : `the ${channels} maps of ${below}`}) is ` +
    `correlated with its own ${kernelHeight}×${kernelWidth} slice of filter ${k} (stride ` +
    `${pair(answer.stride)}, padding ${pair(answer.padding)}): each value of a correlation is the sum of a window's ` +
    `values times the slice's weights. Scales: inputs ±${inputLimit.toPrecision(3)}, filter ` +
    `±${kernelLimit.toPrecision(3)}, correlations ±${correlationLimit.toPrecision(3)}, sum and result ` +
    `±${outputLimit.toPrecision(3)} (the grid's scale when the sum stays within it).`;

  const cards = document.getElementById("detail-channels");
  cards.replaceChildren();
  for (let c = 0; c < channels; c++) {
    const name = answer.below === null ? "the digit" : `${below} map ${c}`;
    const card = element("figure", "detail-card");
    const equation = element("div", "equation");
    const op = (text) => {
      const node = element("span", "op", text);
      node.setAttribute("aria-hidden", "true");  // the canvases' names say it
      return node;
    };
    equation.append(
      mapCanvas(inputs, c * height * width, height, width, inputScale, inputLimit, name), op("⋆"),
      mapCanvas(kernels, c * kernelHeight * kernelWidth, kernelHeight, kernelWidth, kernelScale, kernelLimit,
        `correlated with slice ${c} of filter ${k}, ${kernelHeight} by ${kernelWidth} weights`),
      op("="),
      mapCanvas(correlations, c * outHeight * outWidth, outHeight, outWidth, outScale, correlationLimit,
        `gives correlation ${c}, ${outHeight} by ${outWidth}`));
    card.append(equation, element("figcaption", "", name));
    cards.appendChild(card);
  }

  const total = element("figure");
  total.append(mapCanvas(sum, 0, outHeight, outWidth, outScale, outputLimit,
    `the sum of the ${channels} correlations`),
  element("figcaption", "", `sum of the ${channels} correlation${channels > 1 ? "s" : ""}`));
  const bias = element("span", "bias", `bias\n${answer.bias.toPrecision(4)}`);
  const made = element("figure");
  made.append(mapCanvas(output, 0, outHeight, outWidth, outScale, outputLimit,
    `plus the bias ${answer.bias.toPrecision(4)} gives ${answer.layer} map ${k}`),
  element("figcaption", "", `${answer.layer} map ${k}`));
  const plus = element("span", "op", "+");
  const equals = element("span", "op", "=");
  document.getElementById("detail-sum").replaceChildren(total, plus, bias, equals, made);

  // The check: the correlations as sent, summed here, plus the bias, against the map as the model
  // computed it in its own forward pass (the grid above shows the same map in 8-bit levels).
  let difference = 0;
  for (let i = 0; i < outHeight * outWidth; i++) {
    let value = answer.bias;
    for (let c = 0; c < channels; c++) value += correlations.data[c * outHeight * outWidth + i];
    difference = Math.max(difference, Math.abs(value - model.data[i]));
  }
  document.getElementById("detail-check").textContent =
    `The correlations summed in this page, plus the bias, differ from map ${k} as the model computed it ` +
    `by at most ${difference.toExponential(1)} (float32 rounding).`;
  const section = document.getElementById("map-detail");
  Object.assign(section.dataset, { layer: answer.layer, channel: String(k), channels: String(channels),
    maxDifference: String(difference), limit: String(grid.limit), ready: "true" });
}

// --- Start ---

async function start() {
  clearPad();
  startDrawing();
  document.getElementById("clear").addEventListener("click", () => {
    clearPad();
    cancelUpdates();
    state.mode = "empty";
    state.test = null;
    state.drawing = null;
    state.generation++;
    showSource("Draw a digit from 0 to 9 with the mouse, a finger or a pen.");
    closeMapDetail();
    showEmpty();
    announce("Pad cleared.");
  });
  document.getElementById("detail-close").addEventListener("click", () => closeMapDetail(true));
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && state.detail) {
      event.preventDefault();
      closeMapDetail(true);
    }
  });
  document.getElementById("random").addEventListener("click", loadTestImage);
  try {
    state.model = await getJSON("/api/model");
    showModel(state.model);
    document.body.dataset.ready = "true";
    if (state.dirty) scheduleUpdate(true);  // drawn while the model was loading
  } catch (error) {
    document.getElementById("model-info").textContent = `Could not load the model: ${error.message}`;
    showSource(`Could not load the model: ${error.message}`, true);
    announce(`Could not load the model: ${error.message}`);
  }
}

start();
