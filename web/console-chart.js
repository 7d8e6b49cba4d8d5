// Counts over time as inline SVG: samples are kept in the page (no history on the server is
// needed), one polyline per series with its last value in its title.

const NS = 'http://www.w3.org/2000/svg';
const W = 640;
const H = 160;
const PAD = 24;

/// `series`: [{ name, className, points: [number] }], oldest sample first.
export function lineChart(series, label) {
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', label);
  const n = Math.max(2, ...series.map((s) => s.points.length));
  const top = Math.max(1, ...series.flatMap((s) => s.points));
  const x = (i) => PAD + (i * (W - 2 * PAD)) / (n - 1);
  const y = (v) => H - PAD - (v * (H - 2 * PAD)) / top;
  const axis = document.createElementNS(NS, 'path');
  axis.setAttribute('d', `M${PAD} ${PAD} V${H - PAD} H${W - PAD}`);
  axis.setAttribute('class', 'axis');
  svg.append(axis);
  const max = document.createElementNS(NS, 'text');
  max.setAttribute('x', 2);
  max.setAttribute('y', PAD);
  max.textContent = String(top);
  svg.append(max);
  for (const s of series) {
    if (!s.points.length) continue;
    const line = document.createElementNS(NS, 'polyline');
    line.setAttribute('points', s.points.map((v, i) => `${x(i)},${y(v)}`).join(' '));
    line.setAttribute('class', s.className);
    const title = document.createElementNS(NS, 'title');
    title.textContent = `${s.name}: last ${s.points[s.points.length - 1]}`;
    line.append(title);
    // The latest sample as a dot: visible even when the line has one point so far.
    const dot = document.createElementNS(NS, 'circle');
    dot.setAttribute('cx', x(s.points.length - 1));
    dot.setAttribute('cy', y(s.points[s.points.length - 1]));
    dot.setAttribute('r', 3);
    dot.setAttribute('class', `${s.className} dot`);
    svg.append(line, dot);
  }
  return svg;
}
