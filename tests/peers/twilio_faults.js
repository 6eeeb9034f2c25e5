#!/usr/bin/env node
// twilio_faults.js - a failure-injecting stand-in for Twilio's Messages API.
//
// Speaks POST /2010-04-01/Accounts/{AccountSid}/Messages.json the way Twilio
// does (shared/protocols/twilio.md section 4) and rejects what Twilio would
// reject: wrong method/path (404 20404), missing or wrong HTTP Basic
// credentials (401 20003), a body that is not form-encoded (415), missing
// PascalCase To/From/Body (400 21604/21603/21602), To not in E.164
// (400 21211), Body over 1600 characters (400 21617).
//
// The answer to a valid request is scripted by the AccountSid in the path:
// its last four hex digits pick a scenario (see SCENARIOS). Unknown
// scenarios answer 201 like Twilio. Every request is logged as one line on
// stdout: REQ {"n":..,"sid":..,"scenario":..,"status":..,"to":..,"t_ms":..}
// so tests can count attempts and measure the gaps between them.
//
// Usage: node twilio_faults.js PORT AUTH_TOKEN
// No npm packages; Node 20 http only. Binds 127.0.0.1.
'use strict';
const http = require('http');
const crypto = require('crypto');

const port = parseInt(process.argv[2] || '0', 10);
const token = process.argv[3] || '0123456789abcdef0123456789abcdef';
const t0 = Date.now();
const counts = new Map(); // AccountSid -> requests seen (valid ones)
let n = 0;

function twerr(code, message, status) {
  return {status, json: {code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status}};
}

// scenario -> (attempt number, 1-based) -> answer
const SCENARIOS = {
  '0201': () => null,                                            // plain 201
  '0429': (k) => k === 1 ? {...twerr(20429, 'Too Many Requests', 429), headers: {'Retry-After': '1'}} : null,
  '4290': () => ({...twerr(20429, 'Too Many Requests', 429), headers: {'Retry-After': '0'}}),
  '4299': () => ({...twerr(20429, 'Too Many Requests', 429), headers: {'Retry-After': '120'}}),
  // absurd Retry-After (x1000 overflows a 64-bit long): must still mean "too long, give up"
  '4298': () => ({...twerr(20429, 'Too Many Requests', 429), headers: {'Retry-After': '9300000000000000'}}),
  '0503': () => ({status: 503, text: 'Service Unavailable', type: 'text/plain'}),
  '0500': () => twerr(20500, 'Internal Server Error', 500),
  '0502': () => ({status: 502, text: '<html><body><h1>502 Bad Gateway</h1></body></html>', type: 'text/html'}),
  '0408': () => ({hang: true}),                                  // never answers
  '0409': () => ({drop: true}),                                  // closes the socket after reading the request
  '1211': () => twerr(21211, "The 'To' number is not a valid phone number.", 400),
  '1610': () => twerr(21610, 'Attempt to send to unsubscribed recipient', 400),
  '1408': () => twerr(21408, 'Permission to send an SMS has not been enabled for the region indicated by the \'To\' number', 400),
  '1606': () => twerr(21606, "The 'From' phone number provided is not a valid message-capable Twilio phone number for this destination.", 400),
  '9457': () => ({status: 400, type: 'application/problem+json',
                  json: {type: 'https://www.twilio.com/docs/errors/21211', title: 'Invalid To number',
                         status: 400, code: 21211, detail: "The 'To' number is not a valid phone number."}}),
};

function gsmSegments(body) { // rough: enough for num_segments
  const ucs2 = /[^\n\r -_a-~£¥èéùìòÇØøÅåΔΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà^{}\\[\]~|€]/u.test(body) || body.includes('`');
  const len = ucs2 ? body.length : [...body].length;
  if (ucs2) return len <= 70 ? 1 : Math.ceil(len / 67);
  return len <= 160 ? 1 : Math.ceil(len / 153);
}

function created(sid, f) {
  const msid = 'SM' + crypto.randomBytes(16).toString('hex');
  const now = new Date().toUTCString().replace('GMT', '+0000');
  return {
    account_sid: sid, api_version: '2010-04-01', body: f.get('Body'), date_created: now,
    date_sent: null, date_updated: now, direction: 'outbound-api', error_code: null,
    error_message: null, from: f.get('From'), messaging_service_sid: null, num_media: '0',
    num_segments: String(gsmSegments(f.get('Body'))), price: null, price_unit: 'USD',
    sid: msid, status: 'queued', subresource_uris: {media: `/2010-04-01/Accounts/${sid}/Messages/${msid}/Media.json`},
    to: f.get('To'), uri: `/2010-04-01/Accounts/${sid}/Messages/${msid}.json`,
  };
}

function send(res, a) {
  const headers = Object.assign({}, a.headers || {});
  if (a.json !== undefined) {
    headers['Content-Type'] = a.type || 'application/json';
    res.writeHead(a.status, headers);
    res.end(JSON.stringify(a.json));
  } else {
    headers['Content-Type'] = a.type || 'text/plain';
    res.writeHead(a.status, headers);
    res.end(a.text || '');
  }
}

function log(o) {
  process.stdout.write('REQ ' + JSON.stringify(Object.assign({n: ++n, t_ms: Date.now() - t0}, o)) + '\n');
}

// Validate like Twilio; returns an answer for a bad request, or null.
function validate(req, raw, sid) {
  const auth = req.headers['authorization'] || '';
  const m = /^Basic ([A-Za-z0-9+/=]+)$/.exec(auth);
  const cred = m ? Buffer.from(m[1], 'base64').toString('utf8') : '';
  const i = cred.indexOf(':');
  if (i < 0 || cred.slice(0, i) !== sid || cred.slice(i + 1) !== token)
    return {...twerr(20003, 'Authenticate', 401), headers: {'WWW-Authenticate': 'Basic realm="Twilio API"'}};
  const ct = (req.headers['content-type'] || '').split(';')[0].trim().toLowerCase();
  if (ct !== 'application/x-www-form-urlencoded')
    return {status: 415, type: 'application/json',
            json: {code: 415, message: 'Unsupported Media Type: use application/x-www-form-urlencoded', status: 415}};
  const f = new URLSearchParams(raw);
  if (!f.get('To')) return twerr(21604, "A 'To' phone number is required.", 400);
  if (!f.get('From')) return twerr(21603, "A 'From' phone number is required.", 400);
  if (!f.get('Body')) return twerr(21602, 'Message body is required.', 400);
  if (!/^\+[1-9]\d{1,14}$/.test(f.get('To')))
    return twerr(21211, `The 'To' number ${f.get('To')} is not a valid phone number.`, 400);
  if ([...f.get('Body')].length > 1600)
    return twerr(21617, 'The concatenated message body exceeds the 1600 character limit.', 400);
  return null;
}

const server = http.createServer((req, res) => {
  const chunks = [];
  let size = 0;
  req.on('data', (c) => { size += c.length; if (size < 65536) chunks.push(c); });
  req.on('end', () => {
    const raw = Buffer.concat(chunks).toString('utf8');
    const m = /^\/2010-04-01\/Accounts\/([^/]+)\/Messages\.json$/.exec(req.url);
    if (req.method !== 'POST' || !m || !/^AC[0-9a-fA-F]{32}$/.test(m[1])) {
      log({sid: m ? m[1] : '', status: 404, bad: 'path', method: req.method, url: req.url});
      return send(res, twerr(20404, 'The requested resource was not found', 404));
    }
    const sid = m[1];
    const bad = validate(req, raw, sid);
    if (bad) {
      log({sid, status: bad.status, bad: String(bad.json.code)});
      return send(res, bad);
    }
    const f = new URLSearchParams(raw);
    const k = (counts.get(sid) || 0) + 1;
    counts.set(sid, k);
    const scen = sid.slice(-4);
    const a = (SCENARIOS[scen] || SCENARIOS['0201'])(k);
    const entry = {sid, scenario: scen, attempt: k, to: f.get('To'), from: f.get('From'),
                   body: f.get('Body'), ua: req.headers['user-agent'] || ''};
    if (a && a.hang) { log(Object.assign(entry, {status: 0, hang: true})); return; }
    if (a && a.drop) { log(Object.assign(entry, {status: 0, drop: true})); req.socket.destroy(); return; }
    const ans = a || {status: 201, json: created(sid, f)};
    log(Object.assign(entry, {status: ans.status, msid: ans.json && ans.json.sid}));
    send(res, ans);
  });
});
server.keepAliveTimeout = 1000;
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`twilio_faults listening on 127.0.0.1:${server.address().port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
