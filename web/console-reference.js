// The built-in function reference beside the editor, read from the rules guide compiled into
// the binary (`/web/rules.md`), so it is always the one of the running release. Only the
// sections a rule writer looks up while typing are shown, with a filter. The guide itself is
// English (it is the product's documentation); the console's own words around it are not.

import { esc } from './api.js';
import { t } from './console-session.js';

const SECTIONS = ['Event fields and profile fields', 'State functions', 'Helper functions', 'Time: windows'];
let loaded = null;

export async function renderReference(el) {
  if (loaded) { el.querySelector('label[for="ref-filter"]').textContent = t('console.ref.filter'); return; }
  loaded = fetch('/web/rules.md').then((r) => r.text());
  const md = await loaded;
  const parts = md.split(/^## /m).slice(1)
    .filter((p) => SECTIONS.some((s) => p.startsWith(s)));
  el.innerHTML = `<label for="ref-filter">${esc(t('console.ref.filter'))}</label>
    <input id="ref-filter" type="search" autocomplete="off">
    ${parts.map((p) => {
      const [title, ...rest] = p.split('\n');
      return `<details open><summary>${esc(title)}</summary>${render(rest.join('\n'))}</details>`;
    }).join('')}`;
  el.querySelector('#ref-filter').addEventListener('input', (e) => {
    const q = e.target.value.trim().toLowerCase();
    for (const tr of el.querySelectorAll('tbody tr')) tr.hidden = q && !tr.textContent.toLowerCase().includes(q);
  });
}

/// Just enough Markdown for the guide: `###` headings, tables, paragraphs, inline code.
function render(md) {
  const inline = (s) => esc(s).replace(/`([^`]+)`/g, '<code>$1</code>').replace(/\*\*([^*]+)\*\*/g, '<strong>$1</strong>');
  const out = [];
  for (const block of md.split(/\n{2,}/)) {
    const lines = block.trim().split('\n');
    if (!lines[0]) continue;
    if (lines[0].startsWith('### ')) {
      out.push(`<h3>${inline(lines[0].slice(4))}</h3>`);
      lines.shift();
      if (!lines.length) continue;
    }
    if (lines[0].startsWith('|')) {
      const cells = (l) => l.replace(/^\||\|$/g, '').split(/(?<!\\)\|/).map((c) => inline(c.trim()));
      const [head, , ...rows] = lines;
      out.push(`<table><thead><tr>${cells(head).map((c) => `<th>${c}</th>`).join('')}</tr></thead><tbody>${
        rows.map((r) => `<tr>${cells(r).map((c) => `<td>${c}</td>`).join('')}</tr>`).join('')}</tbody></table>`);
    } else if (lines[0].startsWith('```')) {
      out.push(`<pre>${esc(lines.slice(1, -1).join('\n'))}</pre>`);
    } else {
      out.push(`<p>${inline(lines.join(' '))}</p>`);
    }
  }
  return out.join('');
}
