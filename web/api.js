// The pages' one way to call Kairos: JSON over fetch with a bearer token, and Server-Sent
// Events read with fetch (so the token goes in a header, not the URL) with reconnects.

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

/// `ifMatch`: the version read, sent as its ETag, so a change made since is refused (412).
export async function call(base, path, { token, method = 'GET', body, ifMatch } = {}) {
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (ifMatch !== undefined) headers['If-Match'] = `"${ifMatch}"`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const resp = await fetch(base + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!resp.ok) throw new ApiError(resp.status, data);
  return data;
}

/// Reads an event stream until `signal` aborts, reconnecting after a drop with the last id
/// seen. `onEvent({event, id, data})` gets each event; `onState('open' | 'retry' | 'closed')`
/// the connection's state. A 401/403/404 stops for good (reconnecting would not help).
export function readEvents(url, { token, signal, onEvent, onState = () => {} }) {
  let lastId = '';
  const run = async () => {
    while (!signal.aborted) {
      try {
        const headers = { Accept: 'text/event-stream' };
        if (token) headers.Authorization = `Bearer ${token}`;
        if (lastId) headers['Last-Event-ID'] = lastId;
        const resp = await fetch(url, { headers, signal });
        if ([401, 403, 404].includes(resp.status)) { onState('closed', resp.status); return; }
        if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
        onState('open');
        const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value.replace(/\r\n?/g, '\n');
          let end;
          while ((end = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, end);
            buf = buf.slice(end + 2);
            const ev = parseBlock(block);
            if (ev.id) lastId = ev.id;
            if (ev.data !== undefined) onEvent(ev);
          }
        }
      } catch (e) {
        if (signal.aborted) return;
      }
      onState('retry');
      await new Promise((r) => setTimeout(r, 2000));
    }
  };
  run();
}

function parseBlock(block) {
  const ev = { event: 'message' };
  const data = [];
  for (const line of block.split('\n')) {
    if (!line || line.startsWith(':')) continue;
    const i = line.indexOf(':');
    const field = i < 0 ? line : line.slice(0, i);
    const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
    if (field === 'data') data.push(value);
    else if (field === 'event') ev.event = value;
    else if (field === 'id') ev.id = value;
  }
  if (data.length) ev.data = data.join('\n');
  return ev;
}

/// Text made safe for innerHTML.
export function esc(s) {
  return String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}
