// Drafts and published versions: publish someone else's draft (four eyes: the server refuses
// one's own, and the button says so before anyone tries), read each version's diff, and roll
// back to an older version.

import { $, api, can, flash, said, session, t } from './console-session.js';
import { esc } from './api.js';
import { load } from './console-editor.js';

let drafts = [];

export function init() {
  $('drafts-table').addEventListener('click', async (e) => {
    const b = e.target.closest('button');
    if (!b) return;
    const d = drafts.find((x) => x.id === b.dataset.id);
    if (b.dataset.act === 'open') load({ path: d.path, content: d.content || '', draft: d.id, comment: d.comment });
    if (b.dataset.act === 'publish') await act(`/api/v1/rule-versions`, { drafts: [d.id], comment: `approved: ${d.comment}`.trim() }, t('console.ver.publishedFlash'));
    if (b.dataset.act === 'discard') {
      try { await api(`/api/v1/rule-drafts/${d.id}`, { method: 'DELETE' }); await refresh(); } catch (err) { flash(said(err), true); }
    }
  });
  $('versions-table').addEventListener('click', async (e) => {
    const b = e.target.closest('button');
    if (!b) return;
    if (b.dataset.act === 'diff') await diff(b.dataset.n);
    if (b.dataset.act === 'rollback') await act(`/api/v1/rule-versions/${b.dataset.n}/rollback`, { comment: `back to version ${b.dataset.n}` }, t('console.ver.rolledBack', { n: b.dataset.n }));
  });
  document.addEventListener('console:drafts', () => { if (!$('tab-versions').hidden) refresh(); });
}

export function start() {
  refresh();
  if (!$('diff').hidden) diff($('diff').dataset.version);
}

async function act(path, body, done) {
  try {
    const r = await api(path, { method: 'POST', body });
    flash(`${done} ${t('console.ver.active', { n: r.number })}`);
    await refresh();
  } catch (err) {
    flash(said(err), true);
  }
}

async function refresh() {
  try {
    const [d, v] = await Promise.all([api('/api/v1/rule-drafts?limit=100'), api('/api/v1/rule-versions?limit=50')]);
    drafts = d.items;
    const me = session.me.id;
    $('drafts-table').tBodies[0].innerHTML = drafts.map((x) => `
      <tr data-draft="${esc(x.id)}">
        <td><code>${esc(x.path)}</code>${x.delete ? ` <span class="badge bad">${esc(t('console.ver.delete'))}</span>` : ''}</td>
        <td>${esc(x.author)}${x.author === me ? ` ${esc(t('console.ver.you'))}` : ''}</td>
        <td>${esc(x.comment)}</td><td>${esc(t('console.rules.version', { n: x.base_version }))}</td>
        <td class="actions">
          <button type="button" data-act="open" data-id="${esc(x.id)}">${esc(t('console.ver.open'))}</button>
          ${can('publish_rules') ? (x.author === me
            ? `<button type="button" disabled title="${esc(t('console.ver.needsOtherWhy'))}">${esc(t('console.ver.needsOther'))}</button>`
            : `<button type="button" class="primary" data-act="publish" data-id="${esc(x.id)}">${esc(t('console.ver.publish'))}</button>`) : ''}
          ${x.author === me || can('publish_rules') ? `<button type="button" class="danger" data-act="discard" data-id="${esc(x.id)}">${esc(t('console.ver.discard'))}</button>` : ''}
        </td>
      </tr>`).join('') || `<tr><td colspan="5" class="muted">${esc(t('console.ver.noDrafts'))}</td></tr>`;
    const active = v.items[0]?.number;
    $('versions-table').tBodies[0].innerHTML = v.items.map((x) => `
      <tr data-version="${x.number}" class="${x.number === active ? 'active' : ''}">
        <td>${x.number}${x.number === active ? ` <span class="badge good">${esc(t('console.ver.activeBadge'))}</span>` : ''}${x.restores ? ` <span class="muted">${esc(t('console.ver.restores', { n: x.restores }))}</span>` : ''}</td>
        <td>${esc(x.author)}</td><td>${esc(x.approved_by)}</td><td>${esc(x.comment)}</td><td>${esc(x.created_at)}</td>
        <td class="actions"><button type="button" data-act="diff" data-n="${x.number}">${esc(t('console.ver.diff'))}</button>
          ${can('publish_rules') && x.number !== active ? `<button type="button" data-act="rollback" data-n="${x.number}">${esc(t('console.ver.rollback'))}</button>` : ''}</td>
      </tr>`).join('');
  } catch (err) {
    flash(said(err), true);
  }
}

async function diff(n) {
  try {
    const v = await api(`/api/v1/rule-versions/${n}`);
    const pre = $('diff');
    pre.hidden = false;
    pre.dataset.version = n;
    const head = t(v.active ? 'console.ver.diffHeadActive' : 'console.ver.diffHead', { n, changed: v.changed.join(', ') || t('console.ver.noChange') });
    pre.innerHTML = `<strong>${esc(head)}</strong>\n` +
      v.diff.split('\n').map((l) => {
        const cls = l.startsWith('+') && !l.startsWith('+++') ? 'add' : l.startsWith('-') && !l.startsWith('---') ? 'del' : '';
        return cls ? `<span class="${cls}">${esc(l)}</span>` : esc(l);
      }).join('\n');
  } catch (err) {
    flash(said(err), true);
  }
}
