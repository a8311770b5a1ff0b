// The stroke canvas (app.tabs.stroke_canvas.StrokeCanvas), run by gr.HTML's js_on_load with `element`,
// `props`, `trigger` and `watch`. Strokes are kept as vectors, so undo is a redraw; the server gets only the
// strokes layer (a transparent PNG), so lifting the pen costs one small encode and one request.
const paint = element.querySelector("canvas.sc-paint");
const view = element.querySelector(".sc-view");
const ring = element.querySelector(".sc-ring");
const picker = element.querySelector(".sc-colour");
const sizer = element.querySelector(".sc-size");
const zoomLevel = element.querySelector(".sc-zoom-level");
const context = paint.getContext("2d");
const side = paint.width;
let background = null;  // the picture the server set, or null for white
let history = [];  // strokes {colour, size, points} and clears {clear: true}, oldest first
let undone = [];
let current = null;
let zoom = 1;

function canvasPoint(event) {
  const box = paint.getBoundingClientRect();
  return [(event.clientX - box.left) * side / box.width, (event.clientY - box.top) * side / box.height];
}

function drawStroke(target, stroke) {
  target.strokeStyle = target.fillStyle = stroke.colour;
  target.lineWidth = stroke.size;
  target.lineCap = target.lineJoin = "round";
  target.beginPath();
  const [x0, y0] = stroke.points[0];
  if (stroke.points.length === 1) {  // a dab
    target.arc(x0, y0, stroke.size / 2, 0, 2 * Math.PI);
    target.fill();
    return;
  }
  target.moveTo(x0, y0);
  for (const [x, y] of stroke.points.slice(1)) target.lineTo(x, y);
  target.stroke();
}

function shownStrokes() {  // the strokes after the last clear
  const last = history.map((entry) => Boolean(entry.clear)).lastIndexOf(true);
  return history.slice(last + 1);
}

function redraw() {
  context.fillStyle = "#ffffff";
  context.fillRect(0, 0, side, side);
  if (background) context.drawImage(background, 0, 0, side, side);
  for (const stroke of shownStrokes()) drawStroke(context, stroke);
  element.querySelector(".sc-undo").disabled = history.length === 0;
  element.querySelector(".sc-redo").disabled = undone.length === 0;
  element.querySelector(".sc-clear").disabled = shownStrokes().length === 0;
}

function send() {
  const strokes = shownStrokes();
  let layer = null;
  if (strokes.length) {
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = side;
    const target = canvas.getContext("2d");
    for (const stroke of strokes) drawStroke(target, stroke);
    layer = canvas.toDataURL("image/png");
  }
  props.value = { strokes: layer };
  const live = props.live_checkbox ? document.querySelector(`#${props.live_checkbox} input[type=checkbox]`) : null;
  if (!live || live.checked) trigger("input");  // only live mode renders on every stroke
}

function edit(change) {
  change();
  redraw();
  send();
}

function undo() {
  if (history.length) edit(() => undone.push(history.pop()));
}

function redo() {
  if (undone.length) edit(() => history.push(undone.pop()));
}

function showRing(event) {
  const box = paint.getBoundingClientRect();
  const across = (sizer.valueAsNumber * box.width) / side;
  const frame = view.getBoundingClientRect();
  ring.style.width = ring.style.height = `${across}px`;
  ring.style.left = `${event.clientX - frame.left + view.scrollLeft - across / 2}px`;
  ring.style.top = `${event.clientY - frame.top + view.scrollTop - across / 2}px`;
  ring.style.display = "block";
}

function setZoom(level) {
  zoom = Math.min(4, Math.max(1, level));
  paint.style.width = `${zoom * 100}%`;
  zoomLevel.textContent = `${Math.round(zoom * 100)}%`;
}

paint.addEventListener("pointerdown", (event) => {
  if (event.button !== 0) return;
  event.preventDefault();
  paint.setPointerCapture(event.pointerId);
  element.querySelector(".sc-root").focus({ preventScroll: true });
  current = { colour: picker.value, size: sizer.valueAsNumber, points: [canvasPoint(event)] };
  history.push(current);
  undone = [];
  drawStroke(context, current);
});
paint.addEventListener("pointermove", (event) => {
  showRing(event);
  if (!current) return;
  const last = current.points[current.points.length - 1];
  const point = canvasPoint(event);
  current.points.push(point);
  drawStroke(context, { colour: current.colour, size: current.size, points: [last, point] });
});
const finish = () => {
  if (!current) return;
  current = null;
  edit(() => {});
};
paint.addEventListener("pointerup", finish);
paint.addEventListener("pointercancel", finish);
paint.addEventListener("pointerleave", () => { ring.style.display = "none"; });

element.querySelectorAll(".sc-swatch").forEach((swatch) => swatch.addEventListener("click", () => {
  picker.value = swatch.dataset.colour;
}));
element.querySelector(".sc-undo").addEventListener("click", undo);
element.querySelector(".sc-redo").addEventListener("click", redo);
element.querySelector(".sc-clear").addEventListener("click", () => edit(() => { history.push({ clear: true }); undone = []; }));
element.querySelector(".sc-zoom-in").addEventListener("click", () => setZoom(zoom * 2));
element.querySelector(".sc-zoom-out").addEventListener("click", () => setZoom(zoom / 2));
element.querySelector(".sc-root").addEventListener("keydown", (event) => {
  if (!(event.ctrlKey || event.metaKey)) return;
  const key = event.key.toLowerCase();
  if (key === "z" && !event.shiftKey) undo();
  else if (key === "y" || (key === "z" && event.shiftKey)) redo();
  else return;
  event.preventDefault();
});

function load() {  // a picture (or a blank canvas) from the server: the strokes start over
  const value = props.value || {};
  props.value = { strokes: null };  // the picture stays here: requests carry only strokes
  history = [];
  undone = [];
  current = null;
  background = null;
  redraw();
  if (!value.background) return;
  const picture = new Image();
  picture.onload = () => { background = picture; redraw(); };
  picture.src = value.background;
}

watch("value", () => { if (props.value && "background" in props.value) load(); });
setZoom(1);
load();
