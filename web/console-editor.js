// The rule editor: a textarea with line numbers that is checked as one types (the same
// checks a publish runs, through `/rules/validate`), each problem shown at its line with the
// suggestion; the rule's own tests and dry runs; the built-in reference beside it.

import { $, api, can, flash, said, session, t, label } from './console-session.js';
import { esc } from './api.js';
import { renderReference } from './console-reference.js';
import { inWords } from './console-problems.js';

const CHECK_AFTER_MS = 400; // after the last keystroke: one check per pause, not per key
let timer = null;
let checkSeq = 0;
let draftId = null;
let problemLines = new Set();
let savedNow = false; // the draft was saved from here, since it was loaded

const TEMPLATE = `#{
    id: "new-rule", name: "A new rule", kind: "dynamic",
    events: ["topup"], channels: ["sms"],
    offer: #{ code: "NEW-OFFER", validity: "1d" },
    message: "Thank you for your top-up",
    tests: [],
};
`;

export function init() {
  const text = $('ed-text');
  text.value = TEMPLATE;
  text.addEventListener('input', () => { gutter(); scheduleCheck(); });
  text.addEventListener('scroll', () => { $('ed-gutter').scrollTop = text.scrollTop; });
  $('ed-path').addEventListener('input', scheduleCheck);
  $('ed-save').addEventListener('click', save);
  $('ed-test').addEventListener('click', runTests);
  $('ed-new').addEventListener('click', () => load({ path: 'new-rule.rhai', content: TEMPLATE }));
  $('dry-run').addEventListener('click', dryRun);
  $('dry-load').addEventListener('click', loadCapture);
  $('ed-problems').addEventListener('click', (e) => {
    const li = e.target.closest('li[data-line]');
    if (li) goToLine(Number(li.dataset.line), Number(li.dataset.column || 1));
  });
  gutter();
}

export function start() {
  draftState();
  renderReference($('reference'));
  captures();
  check();
}

/// Puts a file in the editor: a running rule's, a draft's or a new one.
export function load({ path, content, draft = null, comment = '' }) {
  $('ed-path').value = path;
  $('ed-text').value = content;
  $('ed-comment').value = comment;
  draftId = draft;
  savedNow = false;
  draftState();
  $('test-results').replaceChildren();
  $('dry-results').replaceChildren();
  gutter();
  document.dispatchEvent(new CustomEvent('console:show', { detail: 'editor' }));
}

/// Opens the file of a running rule (from the active version).
export async function openRule(ruleId) {
  try {
    const list = await api('/api/v1/rule-versions?limit=1');
    const v = await api(`/api/v1/rule-versions/${list.items[0].number}`);
    const rules = await api('/api/v1/rules?limit=500');
    const info = rules.items.find((r) => r.id === ruleId);
    const file = v.files.find((f) => info && info.file.endsWith(f.path))
      || v.files.find((f) => f.content.includes(`"${ruleId}"`));
    if (!file) throw new Error(t('console.ed.noFile', { n: v.number, rule: ruleId }));
    load({ path: file.path, content: file.content });
  } catch (e) {
    flash(said(e), true);
  }
}

export function currentDraft() { return draftId; }

/// Says whether the text is a draft, and once saved, who may publish it.
function draftState() {
  const el = $('ed-draft-state');
  el.textContent = !draftId ? t('console.ed.notSaved')
    : savedNow ? t('console.ed.saved', { id: draftId }) : t('console.ed.draft', { id: draftId });
  el.dataset.draft = draftId || '';
}

function gutter() {
  const n = $('ed-text').value.split('\n').length;
  $('ed-gutter').innerHTML = Array.from({ length: n }, (_, i) =>
    `<span data-line="${i + 1}"${problemLines.has(i + 1) ? ' class="bad"' : ''}>${i + 1}</span>`).join('\n');
  $('ed-gutter').scrollTop = $('ed-text').scrollTop;
}

function scheduleCheck() {
  clearTimeout(timer);
  $('ed-status').textContent = t('console.ed.checking');
  timer = setTimeout(check, CHECK_AFTER_MS);
}

async function check() {
  if (!can('edit_rules') || !session.token) return;
  const seq = ++checkSeq;
  const path = $('ed-path').value.trim() || 'draft.rhai';
  try {
    const v = await api('/api/v1/rules/validate', { method: 'POST', body: { path, content: $('ed-text').value } });
    if (seq !== checkSeq) return; // an older answer arriving after a newer one
    showProblems(path, v);
  } catch (e) {
    if (seq === checkSeq) { $('ed-status').textContent = said(e); $('ed-status').className = 'status bad'; }
  }
}

function showProblems(path, v) {
  const mine = (p) => p.file === path;
  problemLines = new Set(v.errors.filter(mine).map((p) => p.line));
  const item = (p, kind) => {
    const { message, suggestion } = inWords(p);
    return `
    <li class="${kind}" data-line="${p.line}" data-column="${p.column}">
      <span class="where">${mine(p) ? '' : `${esc(p.file)} `}${esc(t('console.ed.at', { line: p.line, column: p.column }))}</span>
      <span class="message">${esc(message)}</span>
      ${suggestion ? `<span class="suggestion">${esc(suggestion)}</span>` : ''}
    </li>`;
  };
  $('ed-problems').innerHTML = v.errors.map((p) => item(p, 'error')).join('') + v.warnings.map((p) => item(p, 'warning')).join('');
  const status = $('ed-status');
  if (v.ok) {
    status.textContent = v.warnings.length ? t('console.ed.okWarnings', { rules: v.rules, warnings: v.warnings.length }) : t('console.ed.ok', { rules: v.rules });
    status.className = 'status good';
  } else {
    status.textContent = t('console.ed.problems', { n: v.errors.length });
    status.className = 'status bad';
  }
  gutter();
}

function goToLine(line, column) {
  const text = $('ed-text');
  const lines = text.value.split('\n');
  const at = lines.slice(0, line - 1).reduce((s, l) => s + l.length + 1, 0) + column - 1;
  text.focus();
  text.setSelectionRange(at, at);
}

async function save() {
  const body = { path: $('ed-path').value.trim(), content: $('ed-text').value, comment: $('ed-comment').value };
  try {
    const d = draftId
      ? await api(`/api/v1/rule-drafts/${draftId}`, { method: 'PUT', body })
      : await api('/api/v1/rule-drafts', { method: 'POST', body });
    draftId = d.id;
    savedNow = true;
    draftState();
    flash(t('console.ed.savedFlash'));
    document.dispatchEvent(new CustomEvent('console:drafts'));
  } catch (e) {
    flash(said(e), true);
  }
}

async function runTests() {
  const out = $('test-results');
  try {
    const r = await api('/api/v1/rules/test', { method: 'POST', body: { source: $('ed-text').value } });
    out.innerHTML = `<li class="summary ${r.failed ? 'fail' : 'pass'}">${esc(t('console.ed.passed', { passed: r.passed, failed: r.failed }))}</li>` +
      r.cases.map((c) => `<li class="case ${c.passed ? 'pass' : 'fail'}">${c.passed ? '✔' : '✘'} ${esc(c.name)}${c.failure ? `: ${esc(c.failure)}` : ''}</li>`).join('');
    if (!r.cases.length) out.innerHTML += `<li class="muted">${esc(t('console.ed.noTests'))}</li>`;
  } catch (e) {
    out.innerHTML = `<li class="case fail">${esc(said(e))}</li>`;
  }
}

function parseEvents(text) {
  const t = text.trim();
  if (!t) return [];
  if (t.startsWith('[')) return JSON.parse(t);
  return t.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
}

async function dryRun() {
  const out = $('dry-results');
  let events;
  try { events = parseEvents($('dry-events').value); } catch (e) { out.innerHTML = `<p class="error">${esc(t('console.ed.notJson', { msg: e.message }))}</p>`; return; }
  try {
    const r = await api('/api/v1/rules/dry-run', { method: 'POST', body: { source: $('ed-text').value, events } });
    const th = (k) => `<th>${esc(t(k))}</th>`;
    out.innerHTML = `<p>${esc(t('console.ed.dryOut', { decisions: r.decisions.length, events: events.length }))}</p>
      <table class="grid-table"><thead><tr>${['console.seg.msisdn', 'console.rules.offer', 'console.cap.status', 'console.ed.reason', 'console.camp.channel'].map(th).join('')}</tr></thead><tbody>
      ${r.decisions.map((d) => `<tr class="decision"><td>${esc(d.msisdn)}</td><td>${esc(d.offer_code)}</td><td>${esc(label('console.rec', d.status))}</td><td>${esc(d.reason || '')}</td><td>${esc(d.channel || '')}</td></tr>`).join('')}
      </tbody></table>${r.failures.map((f) => `<p class="error">${esc(f)}</p>`).join('')}`;
  } catch (e) {
    out.innerHTML = `<p class="error">${esc(said(e))}</p>`;
  }
}

async function captures() {
  if (!can('capture_events')) return;
  try {
    const list = await api('/api/v1/captures?limit=100');
    $('dry-capture').innerHTML = list.items.map((c) => `<option value="${esc(c.id)}">${esc(c.name)} (${c.events})</option>`).join('');
  } catch { /* the select stays empty */ }
}

async function loadCapture() {
  const id = $('dry-capture').value;
  if (!id) return;
  try {
    // NDJSON: the API helper hands back the text as it is.
    const text = await api(`/api/v1/captures/${encodeURIComponent(id)}/events`);
    $('dry-events').value = typeof text === 'string' ? text : JSON.stringify(text);
  } catch (e) {
    flash(said(e), true);
  }
}
