// Segments: the target groups of proactive campaigns, on the segment API (`/segments`). A
// segment's criteria are built as conditions joined by all / any, or written as the API's
// JSON document when they nest deeper. While it is edited its size is counted as it stands
// (`/segments/count`, a moment after the last change); saved, its members are counted and
// previewed in the person's data scope, and a campaign can be planned for it at once. A
// segment no campaign targets can be deleted.

import { $, api, can, flash, said, t, label, session } from './console-session.js';
import { esc } from './api.js';
import { planFor } from './console-campaigns.js';

// The criteria language's names (`src/crm/segments/criteria.rs`), by what their values are.
const TEXT = ['value_tier', 'segment', 'customer_type', 'region_id', 'account_manager_id', 'team_id',
  'credit_class', 'industry', 'language', 'home_country', 'preferred_channel', 'customer_status', 'plan'];
const NUMBER = ['churn_score', 'arpu_cents', 'loyalty_points'];
const TENURE = ['tenure_months'];
const HISTORY = ['accepted_offers_30d', 'accepted_offers_90d', 'declined_offers_30d', 'declined_offers_90d'];
const ORDERED = ['>', '>=', '<', '<='];
const OPS = {
  text: ['=', '!=', 'in', 'not_in'],
  number: ['=', '!=', 'in', 'not_in', ...ORDERED],
  tenure: ORDERED,
  history: ['=', ...ORDERED],
};
const PREVIEW = 10; // members shown under the count
const COUNT_AFTER_MS = 400; // the live count waits this long after the last change

let list = [];
let editing = null; // the segment in the form, or null for a new one
let shown = null; // the segment whose members are shown
let startedFor = null; // who the form was drawn for: another person starts afresh
let countTimer = null;
let countSeq = 0; // the latest live count asked for: older answers are dropped

const kindOf = (name) => (HISTORY.includes(name) ? 'history' : NUMBER.includes(name) ? 'number'
  : TENURE.includes(name) ? 'tenure' : 'text');

export function init() {
  $('seg-form').addEventListener('submit', save);
  $('seg-new').addEventListener('click', () => edit(null));
  $('seg-add').addEventListener('click', () => { addRow({ field: 'value_tier', op: '=', value: '' }); syncJson(); });
  $('seg-match').addEventListener('change', syncJson);
  $('seg-json').addEventListener('input', scheduleCount);
  $('seg-delete').addEventListener('click', remove);
  $('seg-conditions').addEventListener('change', (e) => {
    if (e.target.classList.contains('c-field')) fillOps(e.target.closest('li'));
    syncJson();
  });
  $('seg-conditions').addEventListener('input', syncJson);
  $('seg-conditions').addEventListener('click', (e) => {
    const b = e.target.closest('button.c-remove');
    if (b) { b.closest('li').remove(); syncJson(); }
  });
  $('seg-as-json').addEventListener('change', toggleJson);
  $('seg-table').addEventListener('click', (e) => {
    const b = e.target.closest('button[data-act]');
    if (!b) return;
    const s = list.find((x) => x.id === b.dataset.id);
    if (b.dataset.act === 'open') { edit(s); members(s); }
    if (b.dataset.act === 'plan') planFor(s.id);
  });
  $('seg-plan').addEventListener('click', () => { if (shown) planFor(shown.id); });
}

export function start() {
  if (startedFor !== session.me.id) { startedFor = session.me.id; edit(null); } else redraw();
  if (shown) members(shown);
  refresh();
}

/// The form as it stands, drawn again in the current language (the tab opened again, or the
/// language changed): nothing typed is lost.
function redraw() {
  $('seg-form-h').textContent = editing ? t('console.seg.editing', { name: editing.name }) : t('console.seg.creating');
  if (!$('seg-as-json').checked) rows(fromCriteria(toCriteria()));
  scheduleCount();
}

async function refresh() {
  try {
    list = (await api('/api/v1/segments?limit=200&sort=name')).items;
  } catch (err) { flash(said(err), true); return; }
  const manage = can('manage_campaigns');
  $('seg-table').tBodies[0].innerHTML = list.map((s) => `
    <tr data-segment="${esc(s.id)}">
      <td><strong>${esc(s.name)}</strong>${s.description ? `<br><span class="muted">${esc(s.description)}</span>` : ''}</td>
      <td>${esc(describe(s.criteria))}</td>
      <td class="num lines"></td>
      <td class="actions"><button type="button" data-act="open" data-id="${esc(s.id)}">${esc(t(manage ? 'console.seg.edit' : 'console.seg.view'))}</button>
        ${manage ? `<button type="button" data-act="plan" data-id="${esc(s.id)}">${esc(t('console.seg.planShort'))}</button>` : ''}</td>
    </tr>`).join('') || `<tr><td colspan="4" class="muted">${esc(t('console.seg.none'))}</td></tr>`;
  // Sizes fill in as they are counted: one slow segment does not hold up the list.
  for (const s of list) {
    api(`/api/v1/segments/${encodeURIComponent(s.id)}/count`, { method: 'POST' }).then((c) => {
      const cell = $('seg-table').querySelector(`tr[data-segment="${CSS.escape(s.id)}"] .lines`);
      if (cell) cell.textContent = c.lines;
    }, () => {});
  }
}

/// The criteria in words, as far as the builder's shape goes; deeper ones as their JSON.
function describe(c) {
  const b = fromCriteria(c);
  if (!b) return JSON.stringify(c);
  const one = (r) => `${label('console.seg.f', r.field)} ${label('console.seg.op', r.op)} ${Array.isArray(r.value) ? r.value.join(', ') : r.value}`;
  return b.rows.map(one).join(t(b.match === 'all' ? 'console.seg.and' : 'console.seg.or'));
}

/// `{match, rows}` when the criteria are one test or all / any of tests, else null.
function fromCriteria(c) {
  const leaf = (x) => x && typeof x === 'object' && ('field' in x || 'history' in x)
    && { field: x.field ?? x.history, op: x.op, value: x.value };
  if (!c || typeof c !== 'object') return null;
  if (leaf(c)) return { match: 'all', rows: [leaf(c)] };
  for (const match of ['all', 'any']) {
    if (Array.isArray(c[match]) && Object.keys(c).length === 1) {
      const rows = c[match].map(leaf);
      return rows.every(Boolean) ? { match, rows } : null;
    }
  }
  return null;
}

function toCriteria() {
  const rows = [...$('seg-conditions').children].map((li) => {
    const field = li.querySelector('.c-field').value;
    const op = li.querySelector('.c-op').value;
    const raw = li.querySelector('.c-value').value.trim();
    const kind = kindOf(field);
    // Numbers go as numbers when they are; anything else goes as typed, and the API names
    // what is wrong with it.
    const conv = (v) => (kind !== 'text' && v !== '' && !Number.isNaN(Number(v)) ? Number(v) : v);
    const value = op === 'in' || op === 'not_in' ? raw.split(',').map((v) => conv(v.trim())).filter((v) => v !== '') : conv(raw);
    return kind === 'history' ? { history: field, op, value } : { field, op, value };
  });
  return { [$('seg-match').value]: rows };
}

function fieldOptions(selected) {
  const opt = (n) => `<option value="${n}"${n === selected ? ' selected' : ''}>${esc(label('console.seg.f', n))}</option>`;
  return `<optgroup label="${esc(t('console.seg.customerFields'))}">${[...TEXT, ...NUMBER, ...TENURE].map(opt).join('')}</optgroup>
    <optgroup label="${esc(t('console.seg.historyFields'))}">${HISTORY.map(opt).join('')}</optgroup>`;
}

function fillOps(li, want) {
  const sel = li.querySelector('.c-op');
  const ops = OPS[kindOf(li.querySelector('.c-field').value)];
  const keep = want ?? sel.value;
  sel.innerHTML = ops.map((o) => `<option value="${o}">${esc(t(`console.seg.op.${o}`))}</option>`).join('');
  sel.value = ops.includes(keep) ? keep : ops[0];
}

function addRow({ field, op, value }) {
  const li = document.createElement('li');
  li.className = 'condition row';
  li.innerHTML = `
    <select class="c-field" aria-label="${esc(t('console.seg.field'))}">${fieldOptions(field)}</select>
    <select class="c-op" aria-label="${esc(t('console.seg.opLabel'))}"></select>
    <input class="c-value grow" aria-label="${esc(t('console.seg.value'))}" placeholder="${esc(t('console.seg.valueHint'))}" value="${esc(Array.isArray(value) ? value.join(', ') : value)}">
    <button type="button" class="c-remove" data-perm="manage_campaigns">${esc(t('console.seg.remove'))}</button>`;
  $('seg-conditions').append(li);
  fillOps(li, op);
  const manage = can('manage_campaigns');
  li.querySelector('.c-remove').hidden = !manage;
  for (const el of li.querySelectorAll('select, input')) el.disabled = !manage;
}

function syncJson() {
  if (!$('seg-as-json').checked) $('seg-json').value = JSON.stringify(toCriteria(), null, 2);
  scheduleCount();
}

/// The criteria in the form, or null when the JSON typed is not JSON (yet).
function formCriteria() {
  if (!$('seg-as-json').checked) return toCriteria();
  try { return JSON.parse($('seg-json').value); } catch { return null; }
}

/// Counts the form's criteria as they stand, once the marketer pauses.
function scheduleCount() {
  clearTimeout(countTimer);
  countTimer = setTimeout(liveCount, COUNT_AFTER_MS);
}

async function liveCount() {
  if (!session.token) return; // signed out meanwhile
  const el = $('seg-live');
  const seq = ++countSeq;
  for (const k of ['customers', 'lines', 'criteria']) delete el.dataset[k];
  el.classList.remove('bad');
  const criteria = formCriteria();
  if (!criteria) { el.textContent = t('console.seg.liveNotJson'); return; }
  el.textContent = t('console.seg.counting');
  try {
    const c = await api('/api/v1/segments/count', { method: 'POST', body: { criteria } });
    if (seq !== countSeq) return;
    el.textContent = t('console.seg.live', { customers: c.customers, lines: c.lines });
    el.dataset.customers = c.customers;
    el.dataset.lines = c.lines;
    // What was counted, so a reader can tell this count from one of an earlier state.
    el.dataset.criteria = JSON.stringify(criteria);
  } catch (err) {
    if (seq !== countSeq) return;
    // The API's words name the condition that is wrong (`criteria.all[2].value`).
    el.textContent = t('console.seg.liveBad', { msg: said(err) });
    el.classList.add('bad');
  }
}

function toggleJson() {
  const json = $('seg-as-json').checked;
  if (!json) {
    // Back to the builder only when it can show these criteria.
    let b = null;
    try { b = fromCriteria(JSON.parse($('seg-json').value)); } catch { /* stays JSON */ }
    if (!b) { $('seg-as-json').checked = true; showError(t('console.seg.tooDeep')); return; }
    rows(b);
  }
  showError('');
  $('seg-builder').hidden = $('seg-as-json').checked;
  $('seg-json').readOnly = !$('seg-as-json').checked || !can('manage_campaigns');
}

function rows(b) {
  $('seg-conditions').replaceChildren();
  $('seg-match').value = b.match;
  for (const r of b.rows) addRow(r);
  syncJson();
}

function showError(text) {
  $('seg-error').textContent = text;
  $('seg-error').hidden = !text;
}

/// Puts `s`, or a new segment with one empty condition, in the form.
function edit(s) {
  editing = s;
  $('seg-form-h').textContent = s ? t('console.seg.editing', { name: s.name }) : t('console.seg.creating');
  $('seg-name').value = s ? s.name : '';
  $('seg-description').value = s ? s.description || '' : '';
  if (!s) {
    shown = null;
    $('seg-members').hidden = true;
    for (const k of ['segment', 'customers', 'lines']) delete $('seg-count').dataset[k];
  }
  const c = s ? s.criteria : { all: [{ field: 'value_tier', op: '=', value: '' }] };
  const b = fromCriteria(c);
  $('seg-as-json').checked = !b;
  if (b) rows(b);
  else $('seg-json').value = JSON.stringify(c, null, 2);
  showError('');
  $('seg-builder').hidden = !b;
  $('seg-json').readOnly = !!b || !can('manage_campaigns');
  const manage = can('manage_campaigns');
  for (const el of $('seg-form').querySelectorAll('input, select')) el.disabled = !manage;
  $('seg-add').hidden = !manage;
  $('seg-delete').hidden = !manage || !s;
  $('seg-delete').disabled = !manage || !s;
  scheduleCount();
}

/// Deletes the segment in the form, once confirmed. One a campaign targets stays: the
/// campaigns are named, as the campaigns tab shows them.
async function remove() {
  const s = editing;
  if (!s || !window.confirm(t('console.seg.deleteConfirm', { name: s.name }))) return;
  try {
    await api(`/api/v1/segments/${encodeURIComponent(s.id)}`, { method: 'DELETE', ifMatch: s.version });
  } catch (err) {
    if (err.status !== 409) { showError(said(err)); return; }
    let names = '';
    try {
      const used = await api(`/api/v1/campaigns?segment_id=${encodeURIComponent(s.id)}&limit=20&sort=name`);
      names = used.items.map((c) => `“${c.name}”`).join(t('console.seg.listSep'));
    } catch { /* the API's own words then */ }
    showError(names ? t('console.seg.inUse', { name: s.name, campaigns: names }) : said(err));
    return;
  }
  flash(t('console.seg.deleted', { name: s.name }));
  edit(null);
  await refresh();
}

async function save(e) {
  e.preventDefault();
  let criteria;
  if ($('seg-as-json').checked) {
    try { criteria = JSON.parse($('seg-json').value); } catch (err) { showError(t('console.seg.badJson', { msg: err.message })); return; }
  } else {
    criteria = toCriteria();
  }
  const body = { name: $('seg-name').value.trim(), description: $('seg-description').value.trim() || undefined, criteria };
  try {
    const s = editing
      ? await api(`/api/v1/segments/${encodeURIComponent(editing.id)}`, { method: 'PATCH', body: { ...body, version: editing.version } })
      : await api('/api/v1/segments', { method: 'POST', body });
    showError('');
    flash(t('console.seg.saved', { name: s.name }));
    edit(s);
    await Promise.all([refresh(), members(s)]);
  } catch (err) {
    showError(said(err));
  }
}

/// The segment's size in the person's scope and its first members.
async function members(s) {
  shown = s;
  const box = $('seg-members');
  box.hidden = false;
  const el = $('seg-count');
  el.textContent = t('console.seg.counting');
  // Until the answer comes, nothing on the page claims a count (the last one was someone
  // else's segment, or someone else's scope).
  for (const k of ['segment', 'customers', 'lines']) delete el.dataset[k];
  try {
    const [c, p] = await Promise.all([
      api(`/api/v1/segments/${encodeURIComponent(s.id)}/count`, { method: 'POST' }),
      api(`/api/v1/segments/${encodeURIComponent(s.id)}/preview?limit=${PREVIEW}`),
    ]);
    if (shown !== s) return;
    el.textContent = t('console.seg.count', { name: s.name, customers: c.customers, lines: c.lines });
    el.dataset.segment = s.id;
    el.dataset.customers = c.customers;
    el.dataset.lines = c.lines;
    $('seg-preview').tBodies[0].innerHTML = p.items.map((m) => `<tr><td>${esc(m.msisdn)}</td><td>${esc(m.customer_name)}</td></tr>`).join('')
      + (p.total > p.items.length ? `<tr><td colspan="2" class="muted">${esc(t('console.seg.more', { n: p.total - p.items.length }))}</td></tr>` : '')
      || `<tr><td colspan="2" class="muted">${esc(t('console.seg.noMembers'))}</td></tr>`;
    $('seg-plan').hidden = !can('manage_campaigns');
  } catch (err) {
    $('seg-count').textContent = said(err);
  }
}
