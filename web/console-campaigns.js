// Campaigns: plan -> submit -> approve (someone else) -> launch -> track -> evaluate, on the
// campaign API's own state machine; the buttons offered are the moves the state allows and
// the person may make.

import { $, api, can, flash, said } from './console-session.js';
import { esc } from './api.js';

let list = [];
let open = null;

// state -> [[target, label, permission]]; `launch` is its own call, not a transition.
const MOVES = {
  plan: [['submitted', 'Submit for approval', 'manage_campaigns'], ['cancelled', 'Cancel', 'manage_campaigns']],
  submitted: [['approved', 'Approve', 'approve_campaigns'], ['rejected', 'Reject', 'approve_campaigns'], ['plan', 'Back to plan', 'manage_campaigns']],
  rejected: [['plan', 'Back to plan', 'manage_campaigns']],
  approved: [['launch', 'Launch', 'manage_campaigns'], ['cancelled', 'Cancel', 'manage_campaigns']],
  active: [['launch', 'Run again for new members', 'manage_campaigns'], ['completed', 'Complete', 'manage_campaigns'], ['cancelled', 'Cancel', 'manage_campaigns']],
};

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
    $('camp-segment').innerHTML = s.items.map((x) => `<option value="${esc(x.id)}">${esc(x.name)}</option>`).join('');
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
    flash('Campaign planned: submit it for approval.');
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
      <td>${esc(c.name)}</td><td class="state">${esc(c.state)}</td><td><code>${esc(c.offer_code)}</code></td>
      <td class="actions"><button type="button" data-to="show" data-id="${esc(c.id)}">Track</button>
        ${(MOVES[c.state] || []).filter(([, , p]) => can(p)).map(([to, label]) =>
          `<button type="button" data-to="${to}" data-id="${esc(c.id)}">${label}</button>`).join('')}</td>
    </tr>`).join('') || '<tr><td colspan="4" class="muted">No campaigns yet.</td></tr>';
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
    const ci = (c) => (c ? ` (95 % CI ${pct(c[0])} to ${pct(c[1])})` : '');
    el.innerHTML = `<section class="panel"><h2>Results</h2>
      <dl class="facts"><dt>Decided</dt><dd class="decided">${r.decided}</dd><dt>Sent</dt><dd>${r.sent}</dd>
      <dt>Suppressed</dt><dd>${r.suppressed}</dd><dt>Accepted</dt><dd>${r.accepted}</dd><dt>Declined</dt><dd>${r.declined}</dd>
      <dt>Uplift vs control</dt><dd class="uplift">${pct(r.uplift)}${ci(r.uplift_ci)}</dd>
      <dt>Revenue</dt><dd>${(r.revenue_cents / 100).toFixed(2)}</dd></dl>
      <h3>Runs</h3><ul>${runs.items.map((x) => `<li>${esc(x.started_at)}: targeted ${x.targeted}, decided ${x.decided}, sent ${x.sent}</li>`).join('') || '<li class="muted">Not launched yet.</li>'}</ul></section>`;
  } catch (err) { el.textContent = said(err); }
}

