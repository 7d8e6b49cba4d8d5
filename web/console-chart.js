// Charts as inline SVG (the console's policy allows no script or style from elsewhere):
// counts over the samples the page has seen (no history on the server is needed), and rates
// per day from the server's lasting counts.

import { t } from './console-session.js';

const NS = 'http://www.w3.org/2000/svg';
const W = 640;
const H = 160;
const PAD = 24;

function el(name, attrs = {}, text) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function frame(label) {
  const svg = el('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': label });
  svg.append(el('path', { d: `M${PAD} ${PAD} V${H - PAD} H${W - PAD}`, class: 'axis' }));
  return svg;
}

/// `series`: [{ name, className, points: [number] }], oldest sample first.
export function lineChart(series, label) {
  const svg = frame(label);
  const n = Math.max(2, ...series.map((s) => s.points.length));
  const top = Math.max(1, ...series.flatMap((s) => s.points));
  const x = (i) => PAD + (i * (W - 2 * PAD)) / (n - 1);
  const y = (v) => H - PAD - (v * (H - 2 * PAD)) / top;
  svg.append(el('text', { x: 2, y: PAD }, String(top)));
  for (const s of series) {
    if (!s.points.length) continue;
    const line = el('polyline', { points: s.points.map((v, i) => `${x(i)},${y(v)}`).join(' '), class: s.className });
    line.append(el('title', {}, t('console.chart.last', { name: s.name, v: s.points[s.points.length - 1] })));
    // The latest sample as a dot: visible even when the line has one point so far.
    const dot = el('circle', { cx: x(s.points.length - 1), cy: y(s.points[s.points.length - 1]), r: 3, class: `${s.className} dot` });
    svg.append(line, dot);
  }
  return svg;
}

/// A rate per day on a 0 to 100 % scale: `points` [{ day: 'YYYY-MM-DD', value: 0..1 }],
/// oldest first, each a dot carrying its day and exact value (`data-day`, `data-value`) and
/// `format(point)` as its title; the first and last days are written under the axis.
export function dayChart(points, { className, label, format }) {
  const svg = frame(label);
  const n = Math.max(2, points.length);
  const x = (i) => PAD + (points.length === 1 ? (W - 2 * PAD) / 2 : (i * (W - 2 * PAD)) / (n - 1));
  const y = (v) => H - PAD - v * (H - 2 * PAD);
  svg.append(el('text', { x: 2, y: PAD }, '100 %'), el('text', { x: 2, y: H - PAD }, '0 %'));
  if (!points.length) return svg;
  svg.append(el('polyline', { points: points.map((p, i) => `${x(i)},${y(p.value)}`).join(' '), class: className }));
  points.forEach((p, i) => {
    const dot = el('circle', { cx: x(i), cy: y(p.value), r: 4, class: `${className} dot`, 'data-day': p.day, 'data-value': String(p.value) });
    dot.append(el('title', {}, format(p)));
    svg.append(dot);
  });
  svg.append(el('text', { x: PAD, y: H - 6 }, points[0].day));
  if (points.length > 1) svg.append(el('text', { x: W - PAD, y: H - 6, 'text-anchor': 'end' }, points[points.length - 1].day));
  return svg;
}
