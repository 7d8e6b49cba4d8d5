// Campaigns: plan -> submit -> approve (someone else) -> launch -> track -> evaluate, on the
// campaign API's own state machine; the buttons offered are the moves the state allows and
// the person may make. A segment picked in the segments tab comes preselected in the plan.

import { $, api, can, flash, said, t, label } from './console-session.js';
import { esc } from './api.js';

let list = [];
let open = null;
let wanted = null; // segment to preselect once the list is loaded

// state -> [[target, label key, permission]]; `launch` is its own call, not a transition.
const MOVES = {
  plan: [['submitted', 'submit', 'manage_campaigns'], ['cancelled', 'cancel', 'manage_campaigns']],
  submitted: [['approved', 'approve', 'approve_campaigns'], ['rejected', 'reject', 'approve_campaigns'], ['plan', 'back', 'manage_campaigns']],
  rejected: [['plan', 'back', 'manage_campaigns']],
  approved: [['launch', 'launch', 'manage_campaigns'], ['cancelled', 'cancel', 'manage_campaigns']],
  active: [['launch', 'again', 'manage_campaigns'], ['completed', 'complete', 'manage_campaigns'], ['cancelled', 'cancel', 'manage_campaigns']],
};

/// Opens the plan form with `segmentId` chosen.
export function planFor(segmentId) {
  wanted = segmentId;
  document.dispatchEvent(new CustomEvent('console:show', { detail: 'campaigns' }));
}

export function init() {
  $('camp-form').addEventListener('submit', plan);
  $('camp-table').addEventListener('click', async (e) => {
    const b = e.target.closest('button');
    if (!b) return;
    const id = b.dataset.id;
    if (b.dataset.to === 'show') { open = id; await detail(); return; }
    try {
      if (b.dataset.to === 'launch') await api(`/api/v1/campaigns/${id}/launch`, { method: 'POST' });
      else await api(`/api/v1/campaigns/${id}/transition`, { method: 'POST', body: { to: b.dataset.to } });
      open = id;
      await refresh();
    } catch (err) { flash(said(err), true); }
  });
}

export function start() { refresh(); segments(); }

async function segments() {
  try {
    const s = await api('/api/v1/segments?limit=200');
    const sel = $('camp-segment');
    const keep = wanted || sel.value;
    sel.innerHTML = s.items.map((x) => `<option value="${esc(x.id)}">${esc(x.name)}</option>`).join('');
    if (keep && s.items.some((x) => x.id === keep)) sel.value = keep;
    wanted = null;
  } catch { /* the form cannot be sent without a segment */ }
}

async function plan(e) {
  e.preventDefault();
  const now = new Date();
  const end = new Date(now.getTime() + Number($('camp-days').value) * 86400000);
  try {
    const c = await api('/api/v1/campaigns', { method: 'POST', body: {
      name: $('camp-name').value.trim(), segment_id: $('camp-segment').value,
      offer_code: $('camp-offer').value.trim(), message: $('camp-message').value,
      channels: [$('camp-channel').value], start_at: now.toISOString(), end_at: end.toISOString(),
      control_pct: Number($('camp-control').value),
    } });
    open = c.id;
    flash(t('console.camp.planned'));
    await refresh();
  } catch (err) { flash(said(err), true); }
}

async function refresh() {
  if (!can('read_campaigns')) return;
  try {
    list = (await api('/api/v1/campaigns?limit=100&sort=-created_at')).items;
  } catch (err) { flash(said(err), true); return; }
  $('camp-table').tBodies[0].innerHTML = list.map((c) => `
    <tr data-campaign="${esc(c.id)}">
      <td>${esc(c.name)}</td><td class="state" data-state="${esc(c.state)}">${esc(label('console.state', c.state))}</td><td><code>${esc(c.offer_code)}</code></td>
      <td class="actions"><button type="button" data-to="show" data-id="${esc(c.id)}">${esc(t('console.camp.track'))}</button>
        ${(MOVES[c.state] || []).filter(([, , p]) => can(p)).map(([to, key]) =>
          `<button type="button" data-to="${to}" data-id="${esc(c.id)}">${esc(t(`console.camp.move.${key}`))}</button>`).join('')}</td>
    </tr>`).join('') || `<tr><td colspan="4" class="muted">${esc(t('console.camp.none'))}</td></tr>`;
  await detail();
}

/// Runs and results of the open campaign: what was sent, answered, and the uplift against
/// the control group.
async function detail() {
  const el = $('camp-detail');
  if (!open) { el.replaceChildren(); return; }
  try {
    const [r, runs] = await Promise.all([
      api(`/api/v1/campaigns/${open}/results`), api(`/api/v1/campaigns/${open}/runs?limit=20`),
    ]);
    const pct = (v) => (v == null ? '–' : `${(v * 100).toFixed(1)} %`);
    const ci = (c) => (c ? ` ${t('console.camp.ci', { lo: pct(c[0]), hi: pct(c[1]) })}` : '');
    const dt = (k) => `<dt>${esc(t(`console.camp.r.${k}`))}</dt>`;
    el.innerHTML = `<section class="panel"><h2>${esc(t('console.camp.results'))}</h2>
      <dl class="facts">${dt('decided')}<dd class="decided">${r.decided}</dd>${dt('sent')}<dd>${r.sent}</dd>
      ${dt('suppressed')}<dd>${r.suppressed}</dd>${dt('accepted')}<dd>${r.accepted}</dd>${dt('declined')}<dd>${r.declined}</dd>
      ${dt('uplift')}<dd class="uplift">${esc(pct(r.uplift) + ci(r.uplift_ci))}</dd>
      ${dt('revenue')}<dd>${(r.revenue_cents / 100).toFixed(2)}</dd></dl>
      <h3>${esc(t('console.camp.runs'))}</h3><ul>${runs.items.map((x) => `<li>${esc(t('console.camp.run', { at: x.started_at, targeted: x.targeted, decided: x.decided, sent: x.sent }))}</li>`).join('') || `<li class="muted">${esc(t('console.camp.notLaunched'))}</li>`}</ul></section>`;
  } catch (err) { el.textContent = said(err); }
}

