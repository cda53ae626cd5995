// Small canvas charts drawn by hand (no library, no network): stacked bars and lines over
// the same hourly axis. Each call redraws the whole canvas at the screen's pixel density.

const PAD = { left: 64, right: 12, top: 12, bottom: 26 };
const GRID_LINES = 4;
const AXIS_COLOR = "#8b95a5";
const GRID_COLOR = "rgba(139, 149, 165, 0.18)";
const FONT = "11px system-ui, sans-serif";

function prepare(canvas) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 480;
  const height = canvas.clientHeight || 180;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  ctx.font = FONT;
  return { ctx, width, height };
}

// A "nice" top for the y axis: 1, 2 or 5 times a power of ten, at least `max`.
function niceTop(max) {
  if (max <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(max));
  for (const step of [1, 2, 5, 10]) {
    if (step * power >= max) return step * power;
  }
  return 10 * power;
}

function frame(ctx, width, height, labels, top, format) {
  const plotW = width - PAD.left - PAD.right;
  const plotH = height - PAD.top - PAD.bottom;
  ctx.strokeStyle = GRID_COLOR;
  ctx.fillStyle = AXIS_COLOR;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (let i = 0; i <= GRID_LINES; i += 1) {
    const y = PAD.top + plotH - (plotH * i) / GRID_LINES;
    ctx.beginPath();
    ctx.moveTo(PAD.left, y);
    ctx.lineTo(width - PAD.right, y);
    ctx.stroke();
    ctx.fillText(format((top * i) / GRID_LINES), PAD.left - 6, y);
  }
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  const every = Math.max(1, Math.ceil(labels.length / Math.max(1, Math.floor(plotW / 56))));
  const slot = plotW / Math.max(1, labels.length);
  labels.forEach((label, i) => {
    if ((labels.length - 1 - i) % every === 0) {
      ctx.fillText(label, PAD.left + slot * (i + 0.5), PAD.top + plotH + 8);
    }
  });
  return { plotW, plotH, slot };
}

// Clears the canvas and draws the axes for values up to `max`: the plot's geometry, or null
// (with a "no data" note) when there is nothing above zero to draw.
function axes(canvas, labels, max, format) {
  const { ctx, width, height } = prepare(canvas);
  const top = max > 0 ? niceTop(max) : 1;
  const geometry = frame(ctx, width, height, labels, top, format);
  if (max > 0) return { ctx, top, ...geometry };
  ctx.fillStyle = AXIS_COLOR;
  ctx.textAlign = "center";
  ctx.textBaseline = "middle";
  ctx.fillText("no data in this window", width / 2, height / 2);
  return null;
}

// series: [{name, color, values: [number per label]}], stacked bottom-up in order.
export function stackedBars(canvas, labels, series, format) {
  const sums = labels.map((_, i) => series.reduce((acc, s) => acc + (s.values[i] || 0), 0));
  const plot = axes(canvas, labels, Math.max(0, ...sums), format);
  if (!plot) return;
  const { ctx, top, plotH, slot } = plot;
  const barW = Math.max(2, slot * 0.7);
  labels.forEach((_, i) => {
    let base = PAD.top + plotH;
    for (const s of series) {
      const v = s.values[i] || 0;
      if (v <= 0) continue;
      const hgt = (plotH * v) / top;
      ctx.fillStyle = s.color;
      ctx.fillRect(PAD.left + slot * i + (slot - barW) / 2, base - hgt, barW, hgt);
      base -= hgt;
    }
  });
}

// Lines with a dot per point (one hour of data is a dot, not an invisible line).
export function lines(canvas, labels, series, format) {
  const plot = axes(canvas, labels, Math.max(0, ...series.flatMap((s) => s.values)), format);
  if (!plot) return;
  const { ctx, top, plotH, slot } = plot;
  for (const s of series) {
    const points = s.values.map((v, i) => [PAD.left + slot * (i + 0.5),
      PAD.top + plotH - (plotH * (v || 0)) / top]);
    ctx.strokeStyle = s.color;
    ctx.fillStyle = s.color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    points.forEach(([x, y], i) => (i === 0 ? ctx.moveTo(x, y) : ctx.lineTo(x, y)));
    ctx.stroke();
    for (const [x, y] of points) {
      ctx.beginPath();
      ctx.arc(x, y, 2.5, 0, 2 * Math.PI);
      ctx.fill();
    }
  }
}
