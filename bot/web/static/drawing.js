/* Shared by the home page and the Telegram Web App: a canvas to draw digits on with a mouse, a
   finger or a pen (pointer events; thick black strokes on white, as ink on paper), and the
   sending of a picture. */
"use strict";

class DrawingPad {
  constructor(canvas) {
    this.canvas = canvas;
    this.context = canvas.getContext("2d");
    this.strokes = 0;
    this.lastPoint = null;
    this.clear();
    canvas.addEventListener("pointerdown", (event) => this.start(event));
    canvas.addEventListener("pointermove", (event) => this.move(event));
    for (const name of ["pointerup", "pointercancel", "pointerleave"]) {
      canvas.addEventListener(name, () => { this.lastPoint = null; });
    }
  }

  get isEmpty() { return this.strokes === 0; }

  clear() {
    const { context, canvas } = this;
    context.fillStyle = "#ffffff";
    context.fillRect(0, 0, canvas.width, canvas.height);
    this.strokes = 0;
  }

  point(event) {
    // The canvas is drawn at its own resolution whatever size the page shows it at.
    const rectangle = this.canvas.getBoundingClientRect();
    return {
      x: (event.clientX - rectangle.left) * (this.canvas.width / rectangle.width),
      y: (event.clientY - rectangle.top) * (this.canvas.height / rectangle.height),
      pressure: event.pointerType === "pen" && event.pressure > 0 ? event.pressure : 0.5,
    };
  }

  start(event) {
    event.preventDefault();
    this.canvas.setPointerCapture(event.pointerId);
    this.lastPoint = this.point(event);
    this.strokes += 1;
    this.line(this.lastPoint, this.lastPoint);
  }

  move(event) {
    if (this.lastPoint === null) return;
    event.preventDefault();
    const next = this.point(event);
    this.line(this.lastPoint, next);
    this.lastPoint = next;
  }

  line(from, to) {
    const { context, canvas } = this;
    // About the stroke of a marker on a digit as tall as the canvas.
    context.lineWidth = (canvas.height / 16) * (0.6 + 0.8 * to.pressure);
    context.lineCap = "round";
    context.lineJoin = "round";
    context.strokeStyle = "#111111";
    context.beginPath();
    context.moveTo(from.x, from.y);
    context.lineTo(to.x, to.y);
    context.stroke();
  }

  toBlob() {
    return new Promise((resolve) => this.canvas.toBlob(resolve, "image/png"));
  }
}

/* Post a picture; resolve to { ok, answer }, where answer.text is what to show, a network or
   server failure included. */
async function postPicture(url, headers, body, texts) {
  let response;
  try {
    response = await fetch(url, { method: "POST", headers, body });
  } catch (error) {
    return { ok: false, answer: { text: texts["web.network_error"] } };
  }
  const answer = await response.json().catch(() => ({ text: texts["web.server_error"] }));
  return { ok: response.ok, answer };
}

window.DrawingPad = DrawingPad;
window.postPicture = postPicture;
