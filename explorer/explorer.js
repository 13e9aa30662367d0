// The page of explorer.py: a drawing pad, and what the network makes of the drawing.
// Plain JavaScript with no libraries; it talks only to the server that served it (see the
// JSON API in explorer.py). Read top to bottom: arrays and colours, the drawing pad, requests,
// one function per panel, then the view of how one feature map is made.
"use strict";

const THROTTLE_MS = 120;       // at most one request per 120 ms while the pen moves
const PEN_WIDTH = 22;          // in pad pixels (280 x 280): about MNIST's stroke width once scaled to 20 x 20
const TILE = 42;               // size in screen pixels of one feature map (28 x 1.5, 14 x 3, 7 x 6)
const COLUMNS = 8;             // feature maps per row

const state = {
  model: null,          // GET /api/model
  mode: "empty",        // "empty", "drawing" or "test" (a real MNIST test image, sent as it is)
  test: null,           // {index, label, image} of the test image on the pad
  drawing: null,        // the last drawing sent, 112 x 112 values in [0, 1]
  result: null,         // the last POST /api/predict answer
  selectedClass: null,  // the class the learner clicked for Grad-CAM; null follows the prediction
  inFlight: false,
  dirty: false,
  lastSent: 0,
  timer: null,
  generation: 0,        // counts Clear presses, so that an answer to a cleared drawing is dropped
  detail: null,         // {layer, channel} of the conv map whose making is shown, or null
  detailRequests: 0,    // counts feature-map requests, so that only the latest answer is shown
};

// --- Arrays and colours ---

// The API sends arrays as {shape, dtype: "float32", data: base64 of little-endian float32 bytes}.
function decodeArray(encoded) {
  const bytes = atob(encoded.data);
  const buffer = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) buffer[i] = bytes.charCodeAt(i);
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

// Grad-CAM heat: dark red -> orange -> yellow as t goes from 0 to 1.
function heat(t) {
  return [255, Math.round(40 + 215 * t * t), Math.round(30 * (1 - t))];
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

function startDrawing() {
  let last = null;
  pad.addEventListener("pointerdown", (event) => {
    event.preventDefault();
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
    if (last === null) return;
    event.preventDefault();
    const point = padPoint(event);
    strokeTo(last, point);
    last = point;
    scheduleUpdate();
  });
  const stop = () => {
    if (last === null) return;
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

async function getJSON(url, options) {
  const response = await fetch(url, options);
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
function showBusy() {
  document.body.dataset.busy = String(state.inFlight || state.dirty || state.timer !== null);
}

async function sendUpdate() {
  // Until GET /api/model has answered, a drawing stays dirty; start() sends it once the model is known.
  if (!state.dirty || state.inFlight || state.mode === "empty" || state.model === null) return showBusy();
  state.dirty = false;
  let body;
  if (state.mode === "test") {
    const [height, width] = state.test.image.shape;
    body = { image: Array.from({ length: height }, (_, row) =>
      Array.from(state.test.image.data.subarray(row * width, (row + 1) * width))) };
  } else {
    const drawing = readDrawing();
    if (drawing === null) return showBusy();  // nothing drawn yet
    state.drawing = drawing;
    body = { drawing };
  }
  const generation = state.generation;
  state.inFlight = true;
  state.lastSent = performance.now();
  try {
    const result = await getJSON("/api/predict", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    if (generation === state.generation) showResult(result);
  } catch (error) {
    console.error(error);
    showSource(`Could not update: ${error.message}`, true);
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
  }
}

// --- Panels ---

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
}

function showEmpty() {
  state.result = null;
  state.selectedClass = null;
  document.getElementById("predicted").textContent = "–";
  document.getElementById("confidence").textContent = "";
  document.getElementById("gradcam-caption").textContent = "–";
  showBars(null);
  for (const id of ["step-box", "step-scaled", "step-input", "gradcam"]) {
    const canvas = document.getElementById(id);
    canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
  }
  for (const block of document.querySelectorAll(".map-block")) {
    block.classList.remove("drawn");
    const canvas = block.querySelector("canvas");
    canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
    block.querySelector(".map-range").textContent = "";
  }
  document.body.dataset.predictions = "0";
}

function showResult(result) {
  state.result = result;
  document.getElementById("predicted").textContent = String(result.predicted);
  document.getElementById("confidence").textContent = `${(100 * result.confidence).toFixed(1)}% sure`;
  showBars(result);
  showPreprocessing(result);
  showMaps(result.layers);
  showGradcam();
  if (state.detail) requestMapDetail();  // the shown map's making, for the new input
  document.body.dataset.predictions = String(Number(document.body.dataset.predictions || 0) + 1);
}

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
      bar.setAttribute("role", "listitem");
      const track = element("span", "track");
      track.append(element("span", "fill"));
      bar.append(element("span", "digit", String(k)), track, element("span", "value"));
      bar.addEventListener("click", () => {
        state.selectedClass = state.result && k === state.result.predicted ? null : k;
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
    bar.querySelector(".value").textContent = result ? `${(100 * p).toFixed(1)}%` : "";
    bar.classList.toggle("predicted", result !== null && k === result.predicted);
    bar.classList.toggle("selected", result !== null && k === shown);
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
}

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
    const canvas = document.createElement("canvas");
    const rows = Math.ceil(shown / COLUMNS);
    canvas.width = COLUMNS * (TILE + 2);  // 1 pixel of grid line around each map
    canvas.height = rows * (TILE + 2);
    if (layer.kind === "conv") {  // a click on one of its maps shows how that map is made
      block.classList.add("clickable");
      canvas.title = "Click a map to see how it is made from the layer below";
      canvas.addEventListener("click", (event) => {
        const box = canvas.getBoundingClientRect();
        const column = Math.floor((event.clientX - box.left) * canvas.width / box.width / (TILE + 2));
        const row = Math.floor((event.clientY - box.top) * canvas.height / box.height / (TILE + 2));
        const channel = row * COLUMNS + column;
        if (column < COLUMNS && channel < shown) openMapDetail(name, channel);
      });
    }
    block.append(title, canvas);
    maps.appendChild(block);
  }
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
    block.querySelector(".map-range").textContent = `±${layer.limit.toPrecision(3)}`;
    block.classList.add("drawn");
    if (state.detail && state.detail.layer === layer.name) frameTile(context, state.detail.channel);
  }
}

// An orange frame around map k of a grid, the one whose making is shown below.
function frameTile(context, k) {
  context.strokeStyle = "#ff9f1c";
  context.lineWidth = 2;
  context.strokeRect((k % COLUMNS) * (TILE + 2), Math.floor(k / COLUMNS) * (TILE + 2), TILE + 2, TILE + 2);
}

function gradcamClass() {
  if (!state.result) return null;
  return state.selectedClass === null ? state.result.predicted : state.selectedClass;
}

function showGradcam() {
  const result = state.result;
  const canvas = document.getElementById("gradcam");
  const context = canvas.getContext("2d");
  context.clearRect(0, 0, canvas.width, canvas.height);
  if (!result) return;
  const k = gradcamClass();
  const cams = decodeArray(result.gradcam.maps);
  const [, height, width] = cams.shape;
  const position = result.gradcam.classes.indexOf(k);
  const input = decodeArray(result.input);
  const cam = cams.data.subarray(position * height * width, (position + 1) * height * width);
  const peak = cam.reduce((a, b) => Math.max(a, b), 0);
  // The input dimmed to grey, with the map (scaled to its own maximum) laid over it.
  paintCells(context, 0, 0, height, width, canvas.width / width, (row, column) => {
    const base = 40 + 110 * input.data[row * width + column];
    const t = peak > 0 ? cam[row * width + column] / peak : 0;
    const colour = heat(t);
    const alpha = 0.85 * Math.sqrt(t);
    return [0, 1, 2].map((i) => Math.round(base * (1 - alpha) + colour[i] * alpha));
  });
  const which = k === result.predicted
    ? `${k} (the prediction)`
    : `${k} (p = ${(100 * result.probabilities[k]).toFixed(1)}%)`;
  document.getElementById("gradcam-caption").textContent = peak > 0
    ? `for ${which}, from ${result.gradcam.layer}`
    : `for ${which}: no positive evidence anywhere (the map is all zero)`;
  canvas.dataset.shownClass = String(k);
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
    const base = f * channels * height * width;  // channel 0 of filter f
    paintCells(canvas.getContext("2d"), 0, 0, height, width, scale,
      (row, column) => diverging(weights.data[base + row * width + column], filters.limit));
    const caption = document.createElement("figcaption");
    caption.textContent = String(f);
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

// --- How one feature map is made ---
// A click on map k of a conv layer asks POST /api/feature-map for that map only: the maps of the
// layer below, filter k's slice for each of them, their correlations, the sum and the bias.

function openMapDetail(layer, channel) {
  if (!state.result) return;
  state.detail = { layer, channel };
  showMaps(state.result.layers);  // move the frame to the clicked map
  const section = document.getElementById("map-detail");
  section.hidden = false;
  requestMapDetail();
  section.scrollIntoView({ block: "nearest" });
}

function closeMapDetail() {
  state.detail = null;
  state.detailRequests++;  // an answer on its way is dropped
  const section = document.getElementById("map-detail");
  section.hidden = true;
  delete section.dataset.ready;
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
    }
  }
}

function largestMagnitude(values) {
  return values.reduce((largest, value) => Math.max(largest, Math.abs(value)), 0);
}

// Paint the (height, width) slice at `offset` of a decoded array onto a new canvas, `scale` pixels per value.
function mapCanvas(array, offset, height, width, scale, limit) {
  const canvas = document.createElement("canvas");
  canvas.width = width * scale;
  canvas.height = height * scale;
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
  const [channels, height, width] = inputs.shape;
  const [, kernelHeight, kernelWidth] = kernels.shape;
  const [, outHeight, outWidth] = correlations.shape;
  const below = answer.below === null ? "the digit" : answer.below;
  const grid = result.layers.find((layer) => layer.name === answer.layer);
  const inputLimit = largestMagnitude(inputs.data);
  const kernelLimit = largestMagnitude(kernels.data);
  const correlationLimit = largestMagnitude(correlations.data);
  const outputLimit = Math.max(grid.limit, largestMagnitude(sum.data));  // the grid's scale, unless the sum exceeds it
  const inputScale = Math.max(1, Math.round(56 / Math.max(height, width)));
  const outScale = Math.max(1, Math.round(56 / Math.max(outHeight, outWidth)));
  const kernelScale = Math.max(4, Math.round(36 / Math.max(kernelHeight, kernelWidth)));

  document.getElementById("detail-title").textContent = `How map ${answer.channel} of ${answer.layer} is made`;
  const pair = (values) => values[0] === values[1] ? String(values[0]) : values.join("×");
  document.getElementById("detail-note").textContent =
    `Each input channel (${answer.below === null ? "the digit itself" : `the ${channels} maps of ${below}`}) is ` +
    `correlated with its own ${kernelHeight}×${kernelWidth} slice of filter ${answer.channel} (stride ` +
    `${pair(answer.stride)}, padding ${pair(answer.padding)}): each value of a correlation is the sum of a window's ` +
    `values times the slice's weights. Scales: inputs ±${inputLimit.toPrecision(3)}, filter ` +
    `±${kernelLimit.toPrecision(3)}, correlations ±${correlationLimit.toPrecision(3)}, sum and result ` +
    `±${outputLimit.toPrecision(3)} (the grid's scale when the sum stays within it).`;

  const cards = document.getElementById("detail-channels");
  cards.replaceChildren();
  for (let c = 0; c < channels; c++) {
    const card = element("figure", "detail-card");
    const equation = element("div", "equation");
    equation.append(
      mapCanvas(inputs, c * height * width, height, width, inputScale, inputLimit), element("span", "op", "⋆"),
      mapCanvas(kernels, c * kernelHeight * kernelWidth, kernelHeight, kernelWidth, kernelScale, kernelLimit),
      element("span", "op", "="),
      mapCanvas(correlations, c * outHeight * outWidth, outHeight, outWidth, outScale, correlationLimit));
    card.append(equation, element("figcaption", "", answer.below === null ? "the digit" : `${below} map ${c}`));
    cards.appendChild(card);
  }

  const total = element("figure");
  total.append(mapCanvas(sum, 0, outHeight, outWidth, outScale, outputLimit),
    element("figcaption", "", `sum of the ${channels} correlation${channels > 1 ? "s" : ""}`));
  const bias = element("span", "bias", `bias\n${answer.bias.toPrecision(4)}`);
  bias.style.whiteSpace = "pre";
  const made = element("figure");
  made.append(mapCanvas(output, 0, outHeight, outWidth, outScale, outputLimit),
    element("figcaption", "", `${answer.layer} map ${answer.channel}`));
  document.getElementById("detail-sum").replaceChildren(total, element("span", "op", "+"), bias,
    element("span", "op", "="), made);

  // The check: the correlations as sent, summed here, plus the bias, against the map the grid shows.
  const maps = decodeArray(grid.maps);
  const base = answer.channel * outHeight * outWidth;
  let difference = 0;
  for (let i = 0; i < outHeight * outWidth; i++) {
    let value = answer.bias;
    for (let c = 0; c < channels; c++) value += correlations.data[c * outHeight * outWidth + i];
    difference = Math.max(difference, Math.abs(value - maps.data[base + i]));
  }
  document.getElementById("detail-check").textContent =
    `The correlations summed in this page, plus the bias, differ from map ${answer.channel} of the grid above ` +
    `by at most ${difference.toExponential(1)} (float32 rounding).`;
  const section = document.getElementById("map-detail");
  Object.assign(section.dataset, { layer: answer.layer, channel: String(answer.channel), channels: String(channels),
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
    state.generation++;
    showSource("Draw a digit from 0 to 9 with the mouse, a finger or a pen.");
    closeMapDetail();
    showEmpty();
  });
  document.getElementById("detail-close").addEventListener("click", () => {
    closeMapDetail();
    if (state.result) showMaps(state.result.layers);  // without the frame
  });
  document.getElementById("random").addEventListener("click", loadTestImage);
  try {
    state.model = await getJSON("/api/model");
    showModel(state.model);
    document.body.dataset.ready = "true";
    if (state.dirty) scheduleUpdate(true);  // drawn while the model was loading
  } catch (error) {
    document.getElementById("model-info").textContent = `Could not load the model: ${error.message}`;
  }
}

start();
