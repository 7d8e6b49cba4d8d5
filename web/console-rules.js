// Running rules with live counts: the rule list (`/rules`) joined with the engine's per-rule
// counts (`/engine/stats`), polled every few seconds, and a chart of the samples seen here;
// for the rule picked, its conversion per day from its lasting counts (`/rules/{id}/counts`).

import { $, api, can, said, t } from './console-session.js';
import { esc } from './api.js';
import { lineChart, dayChart } from './console-chart.js';
import { openRule } from './console-editor.js';

const POLL_MS = 3000;
const KEEP = 120; // samples kept per rule: six minutes at one every three seconds
const DAYS = 30; // the conversion chart's span, ending today
let timer = null;
let selected = null;
const history = new Map(); // rule id -> [{ evaluated, matched }]
let lastRules = [];

export function init() {
  $('rules-table').addEventListener('click', (e) => {
    const edit = e.target.closest('button[data-edit]');
    if (edit) { openRule(edit.dataset.edit); return; }
    const row = e.target.closest('tr[data-rule]');
    if (row) { selected = selected === row.dataset.rule ? null : row.dataset.rule; draw(); results(); conversion(); }
  });
}

export function start() {
  stop();
  const tick = async () => {
    await refresh().catch(() => {});
    timer = setTimeout(tick, POLL_MS);
  };
  tick();
  draw();
  results();
  conversion();
}

export function stop() {
  clearTimeout(timer);
  timer = null;
}

async function refresh() {
  const [list, stats, versions] = await Promise.all([
    api('/api/v1/rules?limit=500'),
    can('read_engine_stats') ? api('/api/v1/engine/stats') : { rules: [] },
    api('/api/v1/rule-versions?limit=1'),
  ]);
  const counts = new Map(stats.rules.map((r) => [r.rule_id, r]));
  const active = versions.items[0];
  $('rules-version').textContent = active ? t('console.rules.version', { n: active.number }) : '';
  $('rules-version').dataset.version = active ? active.number : '';
  lastRules = list.items.map((r) => ({ ...r, counts: counts.get(r.id) || { evaluated: 0, matched: 0, errors: 0 } }));
  for (const r of lastRules) {
    const h = history.get(r.id) || [];
    h.push({ evaluated: r.counts.evaluated, matched: r.counts.matched });
    if (h.length > KEEP) h.shift();
    history.set(r.id, h);
  }
  const body = $('rules-table').tBodies[0];
  body.innerHTML = lastRules.map((r) => `
    <tr data-rule="${esc(r.id)}" class="${r.id === selected ? 'selected' : ''}">
      <td><strong>${esc(r.name)}</strong><br><code>${esc(r.id)}</code>${r.quarantined ? ` <span class="badge bad">${esc(t('console.rules.quarantined'))}</span>` : ''}
        ${r.warnings.map((w) => `<div class="warn">${esc(w)}</div>`).join('')}</td>
      <td>${esc(r.events.join(', '))}</td>
      <td><code>${esc(r.offer_code)}</code></td>
      <td class="num evaluated">${r.counts.evaluated}</td>
      <td class="num matched">${r.counts.matched}</td>
      <td class="num errors">${r.counts.errors}</td>
      <td>${can('edit_rules') ? `<button type="button" data-edit="${esc(r.id)}">${esc(t('console.rules.edit'))}</button>` : ''}</td>
    </tr>`).join('') || `<tr><td colspan="7" class="muted">${esc(t('console.rules.none'))}</td></tr>`;
  draw();
}

/// Counts of the selected rule, or of every rule summed, at each sample: a rule that stops
/// firing shows as a line gone flat.
function draw() {
  const ids = selected ? [selected] : [...history.keys()];
  const len = Math.max(0, ...ids.map((id) => (history.get(id) || []).length));
  const sum = (key) => Array.from({ length: len }, (_, i) =>
    ids.reduce((s, id) => { const h = history.get(id) || []; const j = i - (len - h.length); return s + (j >= 0 ? h[j][key] : 0); }, 0));
  $('chart-rule').textContent = selected || t('console.chart.all');
  $('chart').replaceChildren(lineChart([
    { name: t('console.chart.evaluated'), className: 'evaluated', points: sum('evaluated') },
    { name: t('console.chart.matched'), className: 'matched', points: sum('matched') },
  ], t('console.chart.label', { s: POLL_MS / 1000 })));
}

/// Conversions against the control group, for the selected rule.
async function results() {
  const el = $('rule-results');
  el.textContent = '';
  if (!selected || !can('read_campaigns')) return;
  try {
    const r = await api(`/api/v1/rules/${encodeURIComponent(selected)}/results`);
    const pct = (v) => (v == null ? '–' : `${(v * 100).toFixed(1)} %`);
    el.textContent = t('console.rules.results', {
      reached: r.treated.subscribers, converted: r.treated.converted, rate: pct(r.treated.rate),
      control: r.control.subscribers, controlConverted: r.control.converted, uplift: pct(r.uplift),
    });
  } catch (e) {
    el.textContent = said(e);
  }
}

/// Conversion per day as the counts API gives it (`conversion`: accepted over sent, since
/// gateways without delivery reports never mark an offer delivered). A day nothing was sent
/// has no rate and no point.
export function conversionPoints(days) {
  return days.filter((d) => d.conversion != null).map((d) => ({ day: d.day, value: d.conversion, accepted: d.accepted, sent: d.sent }));
}

async function conversion() {
  const el = $('conv-chart');
  el.replaceChildren();
  $('conv-rule').textContent = selected || '';
  const note = $('conv-note');
  if (!selected) { note.dataset.t = 'console.conv.pick'; note.textContent = t('console.conv.pick'); return; }
  const rule = selected;
  const to = new Date();
  const from = new Date(to.getTime() - (DAYS - 1) * 86400000);
  const day = (d) => d.toISOString().slice(0, 10);
  try {
    const r = await api(`/api/v1/rules/${encodeURIComponent(rule)}/counts?from=${day(from)}&to=${day(to)}`);
    if (rule !== selected) return; // another row was clicked meanwhile
    const points = conversionPoints(r.days);
    note.dataset.t = points.length ? 'console.conv.note' : 'console.conv.empty';
    note.textContent = t(note.dataset.t);
    el.replaceChildren(dayChart(points, {
      className: 'converted',
      label: t('console.conv.label', { rule, from: r.from, to: r.to }),
      format: (p) => t('console.conv.point', { day: p.day, pct: `${(p.value * 100).toFixed(1)} %`, accepted: p.accepted, sent: p.sent }),
    }));
  } catch (e) {
    delete note.dataset.t;
    note.textContent = said(e);
  }
}
