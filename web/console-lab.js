// Captures and backtests: record a sample of live events, then run drafts over it on the
// replay engine and compare with the published set on the same events.

import { $, api, can, flash, said, t, label } from './console-session.js';
import { esc } from './api.js';
import { currentDraft } from './console-editor.js';

const POLL_MS = 2000;
let timer = null;
let job = null; // backtest being watched
let shown = null; // its result, drawn again in another language

export function init() {
  $('cap-form').addEventListener('submit', startCapture);
  $('bt-form').addEventListener('submit', startBacktest);
  $('cap-table').addEventListener('click', async (e) => {
    const b = e.target.closest('button[data-stop]');
    if (!b) return;
    try { await api(`/api/v1/captures/${b.dataset.stop}/stop`, { method: 'POST' }); await refresh(); } catch (err) { flash(said(err), true); }
  });
}

export function start() {
  stop();
  drafts();
  if (shown) results(shown);
  const tick = async () => { await refresh().catch(() => {}); timer = setTimeout(tick, POLL_MS); };
  tick();
}

export function stop() { clearTimeout(timer); timer = null; }

async function refresh() {
  if (!can('capture_events')) return;
  const list = await api('/api/v1/captures?limit=100');
  $('cap-table').tBodies[0].innerHTML = list.items.map((c) => `
    <tr data-capture="${esc(c.id)}">
      <td>${esc(c.name)}<br><code>${esc(c.id)}</code></td>
      <td class="status">${esc(label('console.capStatus', c.status))}${c.ended_because ? ` (${esc(label('console.capEnded', c.ended_because))})` : ''}</td>
      <td class="num events">${c.events}</td>
      <td>${c.status === 'running' ? `<button type="button" data-stop="${esc(c.id)}">${esc(t('console.cap.stop'))}</button>` : ''}</td>
    </tr>`).join('') || `<tr><td colspan="4" class="muted">${esc(t('console.cap.none'))}</td></tr>`;
  const sel = $('bt-capture');
  const keep = sel.value;
  sel.innerHTML = list.items.map((c) => `<option value="${esc(c.id)}">${esc(t('console.cap.option', { name: c.name, n: c.events }))}</option>`).join('');
  if (keep) sel.value = keep;
}

async function drafts() {
  try {
    const list = await api('/api/v1/rule-drafts?limit=100');
    const mine = currentDraft();
    $('bt-drafts').innerHTML = list.items.map((d) =>
      `<option value="${esc(d.id)}"${d.id === mine ? ' selected' : ''}>${esc(d.path)} — ${esc(d.comment || d.id)}</option>`).join('');
  } catch { /* the list stays empty */ }
}

async function startCapture(e) {
  e.preventDefault();
  const types = $('cap-types').value.split(',').map((s) => s.trim()).filter(Boolean);
  try {
    await api('/api/v1/captures', { method: 'POST', body: {
      name: $('cap-name').value.trim(), limit: Number($('cap-limit').value), types: types.length ? types : undefined,
    } });
    flash(t('console.cap.recording'));
    await refresh();
  } catch (err) { flash(said(err), true); }
}

async function startBacktest(e) {
  e.preventDefault();
  const drafts = [...$('bt-drafts').selectedOptions].map((o) => o.value);
  const body = { capture_id: $('bt-capture').value };
  if (drafts.length) body.drafts = drafts;
  $('bt-results').replaceChildren();
  try {
    job = await api('/api/v1/backtests', { method: 'POST', body });
    watch(job.id);
  } catch (err) {
    $('bt-results').innerHTML = `<p class="error">${esc(said(err))}</p>`;
  }
}

/// Follows the job's progress until it is done, then shows what it found.
async function watch(id) {
  $('bt-progress').hidden = false;
  for (;;) {
    let j;
    try {
      j = await api(`/api/v1/backtests/${id}`);
    } catch (err) {
      // The job goes on on the server: say why we stopped watching it.
      $('bt-status').textContent = t('console.bt.unfollowed', { msg: said(err) });
      return;
    }
    const { events_done: done, events_total: total } = j.progress;
    $('bt-bar').max = Math.max(1, total);
    $('bt-bar').value = done;
    $('bt-status').textContent = t('console.bt.progress', { status: label('console.btStatus', j.status), done, total });
    $('bt-status').dataset.status = j.status;
    if (j.status === 'done') { results(j.result); return; }
    if (j.status === 'failed') { $('bt-results').innerHTML = `<p class="error">${esc(j.error)}</p>`; return; }
    await new Promise((r) => setTimeout(r, 700));
  }
}

function results(r) {
  shown = r;
  const reasons = (m) => Object.entries(m).map(([k, v]) => `${k} ${v}`).join(', ') || '–';
  const th = (k, vars) => esc(t(k, vars));
  $('bt-results').innerHTML = `
    <p>${esc(t('console.bt.summary', { events: r.events, offers: r.offers, channels: reasons(r.offers_per_channel), suppressed: reasons(r.suppressed), expected: r.expected_acceptances.total.toFixed(1) }))}</p>
    <table class="grid-table" id="bt-rules"><thead><tr><th>${th('console.rules.rule')}</th><th class="num">${th('console.rules.matched')}</th><th class="num">${th('console.bt.offers')}</th><th>${th('console.bt.suppressed')}</th><th class="num">${th('console.bt.expected')}</th></tr></thead><tbody>
    ${r.rules.map((x) => `<tr data-rule="${esc(x.rule_id)}"><td><code>${esc(x.rule_id)}</code></td><td class="num matched">${x.matched}</td><td class="num offers">${x.offers}</td><td>${esc(reasons(x.suppressed))}</td><td class="num">${x.expected_acceptances.toFixed(1)}</td></tr>`).join('')}
    </tbody></table>
    <h3>${th('console.bt.compared', { n: r.diff.published_version })}</h3>
    <table class="grid-table" id="bt-diff"><thead><tr><th>${th('console.rules.rule')}</th><th>${th('console.bt.change')}</th><th class="num">${th('console.rules.matched')}</th><th class="num">${th('console.bt.offers')}</th></tr></thead><tbody>
    ${r.diff.rules.map((x) => `<tr data-rule="${esc(x.rule_id)}"><td><code>${esc(x.rule_id)}</code></td><td class="change">${esc(label('console.btChange', x.change))}</td>
      <td class="num">${x.published.matched} → ${x.tested.matched} (${x.delta.matched >= 0 ? '+' : ''}${x.delta.matched})</td>
      <td class="num">${x.published.offers} → ${x.tested.offers} (${x.delta.offers >= 0 ? '+' : ''}${x.delta.offers})</td></tr>`).join('')}
    </tbody></table>`;
}
