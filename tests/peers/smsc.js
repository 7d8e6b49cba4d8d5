#!/usr/bin/env node
// An SMSC for the integration tests, on the npm `smpp` package (SMPP v3.4).
//
//   node smsc.js --port 2775 --record submits.jsonl [options]
//
// Accepts binds (transceiver, transmitter, receiver) with one system_id/password and refuses
// others. Receipts and replies go back on a transceiver session, or for a transmitter on an
// open receiver session.
// Every PDU of interest is appended to the record file as one JSON line:
//   {"type":"bind", "command":"bind_transceiver", "system_id":..., "accepted":true}
//   {"type":"submit_sm", "status":0, "message_id":"...", "source":..., "destination":...,
//    "data_coding":0, "esm_class":64, "registered_delivery":1, "short_message_hex":"...",
//    "text":"...", "udh":{"ref":12,"part":1,"total":3}, "at":1767225600123.456}
// `at` (submit_sm and deliver_sm) is when the SMSC got or sent it: Unix time in milliseconds.
// `status` is the command_status answered, or null when the submit was not answered.
// After each accepted submit a delivery receipt (deliver_sm, esm_class 0x04) follows:
// stat:DELIVRD, or stat:UNDELIV for the --undeliv destinations.
//
// Options (also as env SMSC_<NAME>, e.g. SMSC_PORT):
//   --port N               listen on 127.0.0.1:N (default 2775)
//   --record FILE          the JSON-lines record (required)
//   --system-id ID         accepted system_id (default kairos)
//   --password PW          accepted password (default secret)
//   --throttle-first N     answer the first N submits per destination ESME_RTHROTTLED
//   --throttle-every N     answer every Nth submit ESME_RTHROTTLED
//   --undeliv A,B          destinations whose receipts say stat:UNDELIV
//   --reject A,B           destinations answered ESME_RINVDSTADR
//   --silent A,B           destinations whose submits are never answered
//   --dlr-delay-ms N       wait before sending a receipt (default 300)
//   --reply A=TEXT,B=TEXT  after the receipt to A, A writes back TEXT (a deliver_sm that is no
//                          receipt: GSM 7-bit, or UCS-2 when TEXT needs it)
// Prints "listening <port>" on stdout once it accepts connections.
'use strict';

const fs = require('fs');
const crypto = require('crypto');
const smpp = require('smpp');

function options() {
  const o = {};
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) {
      throw new Error(`unexpected argument ${a}`);
    }
    const eq = a.indexOf('=');
    if (eq > 0) {
      o[a.slice(2, eq)] = a.slice(eq + 1);
    } else {
      o[a.slice(2)] = argv[++i];
    }
  }
  const get = (name, dflt) => {
    if (o[name] !== undefined) return o[name];
    const env = process.env['SMSC_' + name.toUpperCase().replace(/-/g, '_')];
    return env !== undefined ? env : dflt;
  };
  const list = (name) => new Set(String(get(name, '')).split(',').filter((s) => s));
  const known = ['port', 'record', 'system-id', 'password', 'throttle-first', 'throttle-every',
    'undeliv', 'reject', 'silent', 'dlr-delay-ms', 'reply'];
  for (const k of Object.keys(o)) {
    if (!known.includes(k)) throw new Error(`unknown option --${k}`);
  }
  const cfg = {
    port: Number(get('port', 2775)),
    record: get('record', ''),
    systemId: get('system-id', 'kairos'),
    password: get('password', 'secret'),
    throttleFirst: Number(get('throttle-first', 0)),
    throttleEvery: Number(get('throttle-every', 0)),
    undeliv: list('undeliv'),
    reject: list('reject'),
    silent: list('silent'),
    dlrDelayMs: Number(get('dlr-delay-ms', 300)),
    replies: new Map([...list('reply')].map((kv) => {
      const i = kv.indexOf('=');
      return [kv.slice(0, i), kv.slice(i + 1)];
    })),
  };
  if (!cfg.record) throw new Error('--record FILE is required');
  return cfg;
}

const cfg = options();

// Keep the raw short_message bytes: the package's filter decodes them into {udh, message}.
const messageFilter = smpp.filters.message;
const decode = messageFilter.decode;
messageFilter.decode = function (value, skipUdh) {
  const result = decode.call(this, value, skipUdh);
  if (Buffer.isBuffer(value) && result && typeof result === 'object') {
    Object.defineProperty(result, 'raw', { value, enumerable: false });
  }
  return result;
};

function record(line) {
  fs.appendFileSync(cfg.record, JSON.stringify(line) + '\n');
}

// Message ids differ across restarts of this process: a restarted SMSC must not reuse ids.
const idPrefix = crypto.randomBytes(3).toString('hex');
let nextId = 1;
let submits = 0;
const perDestination = new Map();

// Wall-clock milliseconds with the fraction of the monotonic clock.
function now() {
  return Math.round((performance.timeOrigin + performance.now()) * 1000) / 1000;
}

function smscDate(d) {
  const p = (n) => String(n).padStart(2, '0');
  return p(d.getUTCFullYear() % 100) + p(d.getUTCMonth() + 1) + p(d.getUTCDate()) +
    p(d.getUTCHours()) + p(d.getUTCMinutes());
}

// The concatenation header (8-bit or 16-bit reference), if any.
function concat(raw, esmClass) {
  if (!(esmClass & 0x40) || !raw || raw.length < 1) return null;
  const end = 1 + raw[0];
  for (let i = 1; i + 1 < end;) {
    const iei = raw[i];
    const len = raw[i + 1];
    if (iei === 0x00 && len === 3) return { ref: raw[i + 2], total: raw[i + 3], part: raw[i + 4] };
    if (iei === 0x08 && len === 4) {
      return { ref: raw.readUInt16BE(i + 2), total: raw[i + 4], part: raw[i + 5] };
    }
    i += 2 + len;
  }
  return null;
}

function onBind(session, pdu) {
  const ok = pdu.system_id === cfg.systemId && pdu.password === cfg.password;
  record({
    type: 'bind',
    command: pdu.command,
    system_id: pdu.system_id,
    interface_version: pdu.interface_version,
    accepted: ok,
  });
  if (!ok) {
    session.send(pdu.response({ command_status: smpp.ESME_RBINDFAIL }));
    session.close();
    return;
  }
  session.bound = pdu.command;
  if (pdu.command === 'bind_receiver') receivers.add(session);
  session.send(pdu.response({ system_id: 'TESTSMSC' }));
}

// Where what the SMSC sends back goes: the submitting session when it is a transceiver;
// for a transmitter, an open receiver session (as an ESME bound that way keeps beside it).
const receivers = new Set();
function backTo(session) {
  if (session.bound === 'bind_transceiver') return session;
  for (const r of receivers) if (!r.closed) return r;
  return null;
}

function onSubmit(session, pdu) {
  if (!session.bound || session.bound === 'bind_receiver') {
    session.send(pdu.response({ command_status: smpp.ESME_RINVBNDSTS }));
    return;
  }
  submits++;
  const dest = pdu.destination_addr;
  const seen = (perDestination.get(dest) || 0) + 1;
  perDestination.set(dest, seen);
  const sm = pdu.short_message || {};
  const raw = sm.raw || Buffer.alloc(0);
  const line = {
    type: 'submit_sm',
    status: 0,
    message_id: null,
    source: pdu.source_addr,
    source_ton: pdu.source_addr_ton,
    destination: dest,
    dest_ton: pdu.dest_addr_ton,
    data_coding: pdu.data_coding,
    esm_class: pdu.esm_class,
    registered_delivery: pdu.registered_delivery,
    short_message_hex: raw.toString('hex'),
    text: typeof sm.message === 'string' ? sm.message : null,
    udh: concat(raw, pdu.esm_class),
    at: now(),
  };
  let status = 0;
  if (cfg.silent.has(dest)) {
    line.status = null;
    record(line);
    return;
  } else if (cfg.reject.has(dest)) {
    status = smpp.ESME_RINVDSTADR;
  } else if (seen <= cfg.throttleFirst || (cfg.throttleEvery > 0 && submits % cfg.throttleEvery === 0)) {
    status = smpp.ESME_RTHROTTLED;
  }
  line.status = status;
  if (status !== 0) {
    record(line);
    session.send(pdu.response({ command_status: status }));
    return;
  }
  const id = `${idPrefix}${(nextId++).toString(16).padStart(6, '0')}`;
  line.message_id = id;
  record(line);
  const submitted = new Date();
  session.send(pdu.response({ message_id: id }));
  if (!(pdu.registered_delivery & 0x01)) return;
  const undeliv = cfg.undeliv.has(dest);
  const stat = undeliv ? 'UNDELIV' : 'DELIVRD';
  setTimeout(() => {
    const back = backTo(session);
    if (!back || back.closed) return;
    const text = `id:${id} sub:001 dlvrd:${undeliv ? '000' : '001'} submit date:${smscDate(submitted)} ` +
      `done date:${smscDate(new Date())} stat:${stat} err:${undeliv ? '001' : '000'} text:`;
    back.deliver_sm({
      source_addr: dest,
      destination_addr: pdu.source_addr,
      esm_class: 0x04,
      data_coding: 0,
      short_message: Buffer.from(text, 'ascii'),
      receipted_message_id: id,
      message_state: undeliv ? 5 : 2,
    }, (resp) => {
      record({ type: 'deliver_sm_resp', message_id: id, status: resp.command_status });
    });
    record({ type: 'deliver_sm', message_id: id, destination: dest, stat, at: now() });
    if (cfg.replies.has(dest)) setTimeout(() => reply(back, dest, pdu.source_addr), 500);
  }, cfg.dlrDelayMs);
}

// The subscriber at `from` answers (once).
function reply(session, from, to) {
  const text = cfg.replies.get(from);
  cfg.replies.delete(from);
  if (session.closed) return;
  const gsm = smpp.encodings.ASCII.match(text);
  session.deliver_sm({
    source_addr: from,
    destination_addr: to,
    esm_class: 0,
    data_coding: gsm ? 0 : 8,
    short_message: gsm ? smpp.gsmCoder.encode(text, 0) : smpp.encodings.UCS2.encode(text),
  }, (resp) => {
    record({ type: 'mo_resp', source: from, status: resp.command_status });
  });
  record({ type: 'mo', source: from, destination: to, text });
}

const server = smpp.createServer((session) => {
  session.on('error', () => {});
  session.on('close', () => { session.closed = true; receivers.delete(session); });
  session.on('bind_transceiver', (pdu) => onBind(session, pdu));
  session.on('bind_transmitter', (pdu) => onBind(session, pdu));
  session.on('bind_receiver', (pdu) => onBind(session, pdu));
  session.on('submit_sm', (pdu) => onSubmit(session, pdu));
  session.on('enquire_link', (pdu) => {
    record({ type: 'enquire_link' });
    session.send(pdu.response());
  });
  session.on('unbind', (pdu) => {
    record({ type: 'unbind' });
    session.send(pdu.response());
    session.close();
  });
});

server.listen(cfg.port, '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});

process.on('SIGTERM', () => process.exit(0));
