#!/usr/bin/env node
/*
 * twilio_caller.js - a stand-in for Twilio placing one inbound call to our server, for
 * tests. It speaks shared/protocols/twilio.md exactly: the signed form-encoded webhook
 * (§1, §2), then the Media Streams WebSocket (§3) with connected / start / media (20 ms
 * u-law frames at real-time pace) / mark echoes / dtmf / stop, and it checks every message
 * the server sends (§3.2). Test-only.
 *
 * Usage: node twilio_caller.js 'SPEC-JSON'     (prints one JSON report on stdout, exit 0)
 *
 * SPEC (all optional except http):
 *   http          "http://127.0.0.1:PORT"      where the webhook is POSTed
 *   public_url    "https://voice.example.co.uk" base Twilio signs (the number's Voice URL
 *                 is public_url + "/incoming-call"); default = http
 *   ws            "ws://127.0.0.1:PORT"        where the stream's wss://HOST is really reached
 *   auth_token    signs the webhook (X-Twilio-Signature); absent = header omitted
 *   bad_signature true: send a wrong signature
 *   call_sid, from, to, account_sid            webhook fields (from "" = withheld: "anonymous")
 *   duration_ms   how long caller audio streams before stop (default 3000)
 *   audio         "silence" | "seq" (frames carry a marker + sequence number so echoed
 *                 audio gives a round-trip time per frame)
 *   token         "forge" | "omit" | "replace:<TOKEN>" ; from_param: send this
 *                 `from` in start instead of the TwiML one; call_sid_param likewise
 *   events        [{"at":ms, "dtmf":"1"} | {"at":ms,"raw":"text"} | {"at":ms,"big":bytes}
 *                  | {"at":ms,"wrong_sid":true} | {"at":ms,"binary":true}]   (ms after start)
 *   stop          true (default): send stop at the end, then close; false: close only
 *   linger_ms     after the end, wait this long for the server to close first (default 500)
 *   echo_marks    true (default): echo marks when the audio before them has "played"
 *   max_ms        hard limit for the whole run (default 30000)
 *   skip_webhook  {"params":{from,callSid,token}}: don't POST, use these stream parameters
 *
 * REPORT: {webhook:{status, content_type, twiml_ok, stream_url, params, fallback_say, body},
 *          ws:{opened, closed_by, code, close_ms}, sent:{media, marks_echoed, flushed_echoes},
 *          received:{media, media_bytes, marks, clears, first_media_ms, max_gap_ms,
 *                    media_before_first_mark}, rtt:{n,max,p50}, violations:[...], timeline:[...]}
 */
'use strict';

const http = require('http');
const crypto = require('crypto');
const path = require('path');
const WebSocket = require(path.join(__dirname, 'node_modules', 'ws'));

const spec = JSON.parse(process.argv[2] || '{}');
const T0 = Date.now();
const now = () => Date.now() - T0;
const report = {
    webhook: null,
    ws: { opened: false, closed_by: null, code: null, close_ms: null },
    sent: { media: 0, marks_echoed: 0, flushed_echoes: 0 },
    received: { media: 0, media_bytes: 0, marks: 0, clears: 0, first_media_ms: null, max_gap_ms: 0,
                last_media_ms: null },
    rtt: { n: 0, max: 0, p50: 0 },
    violations: [],
    timeline: [],
};
const violation = (what) => { if (report.violations.length < 50) report.violations.push(what); };
const mark = (ev, extra) => { if (report.timeline.length < 400) report.timeline.push(Object.assign({ t: now(), ev }, extra || {})); };

let finished = false;
function finish() {
    if (finished) return;
    finished = true;
    const r = rtts.sort((a, b) => a - b);
    report.rtt = { n: r.length, max: r.length ? r[r.length - 1] : 0, p50: r.length ? r[Math.floor(r.length / 2)] : 0 };
    process.stdout.write(JSON.stringify(report) + '\n');
    process.exit(0);
}
setTimeout(() => { violation('max_ms reached'); finish(); }, spec.max_ms || 30000).unref();

/* ---- webhook (§1, §2) ---- */

function sign(token, url, params) {
    const keys = Object.keys(params).sort();   // byte order
    let s = url;
    for (const k of keys) s += k + params[k];
    return crypto.createHmac('sha1', token).update(Buffer.from(s, 'utf8')).digest('base64');
}

function webhook() {
    const base = spec.public_url || spec.http;
    const params = {
        AccountSid: spec.account_sid || 'AC00000000000000000000000000000000',
        ApiVersion: '2010-04-01',
        CallSid: spec.call_sid || 'CA' + crypto.randomBytes(16).toString('hex'),
        CallStatus: 'ringing',
        Called: spec.to || '+442079460123',
        Caller: spec.from === '' ? 'anonymous' : (spec.from || '+447700900123'),
        Direction: 'inbound',
        From: spec.from === '' ? 'anonymous' : (spec.from || '+447700900123'),
        FromCountry: 'GB',
        To: spec.to || '+442079460123',
        ToCountry: 'GB',
    };
    const body = new URLSearchParams(params).toString();   // form rules: + as %2B, space as +
    const headers = { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body),
                      'i-twilio-idempotency-token': crypto.randomUUID() };
    if (spec.auth_token) {
        let sig = sign(spec.auth_token, base + '/incoming-call', params);
        if (spec.bad_signature) sig = sign(spec.auth_token + 'x', base + '/incoming-call', params);
        headers['x-twilio-signature'] = sig;
    }
    return new Promise((resolve) => {
        const u = new URL(spec.http + '/incoming-call');
        const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers }, (res) => {
            let data = '';
            res.on('data', (d) => { data += d; });
            res.on('end', () => resolve({ status: res.statusCode, ctype: res.headers['content-type'] || '', body: data, params }));
        });
        req.on('error', (e) => resolve({ status: 0, ctype: '', body: String(e), params }));
        req.end(body);
    });
}

function unxml(s) {
    return s.replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

/* Parse the TwiML answer the way Twilio would need it: Connect/Stream (wss, no query),
 * Parameters, and a verb after </Connect> for when the stream ends. */
function parseTwiml(xml) {
    const out = { twiml_ok: false, stream_url: null, params: {}, fallback_say: false };
    if (!/^<\?xml[^>]*\?>\s*<Response>[\s\S]*<\/Response>\s*$/.test(xml)) return out;
    const m = /<Connect>\s*<Stream\s+url="([^"]*)"[^>]*>([\s\S]*?)<\/Stream>\s*<\/Connect>([\s\S]*)<\/Response>/.exec(xml);
    if (!m) return out;
    out.stream_url = unxml(m[1]);
    const re = /<Parameter\s+name="([^"]*)"\s+value="([^"]*)"\s*\/>/g;
    let p;
    while ((p = re.exec(m[2]))) out.params[unxml(p[1])] = unxml(p[2]);
    out.fallback_say = /<Say[\s>]/.test(m[3]);
    const u = /^wss:\/\/[^/?#]+\/[^?#]*$/.test(out.stream_url);
    out.twiml_ok = u && Object.keys(out.params).length > 0;
    return out;
}

/* ---- media stream (§3) ---- */

let ws = null, seq = 0, streamSid = 'MZ' + crypto.randomBytes(16).toString('hex');
let callSid = null;
const sendTimes = new Map();       // frame seq -> ms sent (audio "seq")
const rtts = [];
let rxBytes = Buffer.alloc(0);
let playEnd = 0;                   // when our "speaker" finishes what is queued (ms since T0)
const pendingMarks = [];           // {name, timer}
let startMs = 0;

function tx(obj) {
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj));
}
function txSeq(obj) { obj.sequenceNumber = String(++seq); obj.streamSid = streamSid; tx(obj); }

function frame(i) {
    const b = Buffer.alloc(160, 0xff);   // u-law silence
    if (spec.audio === 'seq') {
        b[0] = 0x7e; b[1] = 0x81; b[2] = (i >> 8) & 0xff; b[3] = i & 0xff; b[4] = 0x7e; b[5] = 0x81;
    }
    return b;
}

function scanEcho() {
    for (let i = 0; i + 6 <= rxBytes.length; i++) {
        if (rxBytes[i] === 0x7e && rxBytes[i + 1] === 0x81 && rxBytes[i + 4] === 0x7e && rxBytes[i + 5] === 0x81) {
            const n = (rxBytes[i + 2] << 8) | rxBytes[i + 3];
            if (sendTimes.has(n)) { rtts.push(now() - sendTimes.get(n)); sendTimes.delete(n); }
        }
    }
    if (rxBytes.length > 12) rxBytes = rxBytes.subarray(rxBytes.length - 6);
}

const B64 = /^[A-Za-z0-9+/]*={0,2}$/;
function exactKeys(o, keys) {
    const k = Object.keys(o).sort();
    return k.length === keys.length && k.every((x, i) => x === [...keys].sort()[i]);
}

function onServerMessage(data, isBinary) {
    if (isBinary) { violation('binary frame from server'); return; }
    let m;
    try { m = JSON.parse(data.toString()); } catch (e) { violation('invalid JSON from server'); return; }
    if (!m || typeof m !== 'object' || Array.isArray(m)) { violation('not an object'); return; }
    if (m.streamSid !== streamSid) violation(`wrong streamSid on ${m.event}: ${m.streamSid}`);
    const t = now();
    if (m.event === 'media') {
        if (!exactKeys(m, ['event', 'streamSid', 'media']) || !m.media || !exactKeys(m.media, ['payload']))
            violation('media message fields');
        const p = m.media && m.media.payload;
        if (typeof p !== 'string' || !B64.test(p) || p.length % 4 !== 0) { violation('media payload not base64'); return; }
        const bytes = Buffer.from(p, 'base64');
        const r = report.received;
        if (r.first_media_ms === null) { r.first_media_ms = t - startMs; mark('first_media'); }
        if (r.last_media_ms !== null) r.max_gap_ms = Math.max(r.max_gap_ms, t - r.last_media_ms);
        r.last_media_ms = t;
        r.media++;
        r.media_bytes += bytes.length;
        if (r.marks === 0) r.media_before_first_mark = (r.media_before_first_mark || 0) + 1;
        playEnd = Math.max(playEnd, t) + bytes.length / 8;
        if (spec.audio === 'seq') { rxBytes = Buffer.concat([rxBytes, bytes]); scanEcho(); }
    } else if (m.event === 'mark') {
        if (!exactKeys(m, ['event', 'streamSid', 'mark']) || !m.mark || !exactKeys(m.mark, ['name']) || typeof m.mark.name !== 'string')
            violation('mark message fields');
        report.received.marks++;
        const name = m.mark && m.mark.name;
        if (spec.echo_marks !== false) {
            const entry = { name, timer: null };
            entry.timer = setTimeout(() => {
                pendingMarks.splice(pendingMarks.indexOf(entry), 1);
                report.sent.marks_echoed++;
                txSeq({ event: 'mark', mark: { name } });
            }, Math.max(0, playEnd - t));
            pendingMarks.push(entry);
        }
    } else if (m.event === 'clear') {
        if (!exactKeys(m, ['event', 'streamSid'])) violation('clear message fields');
        report.received.clears++;
        mark('clear', { pending_marks: pendingMarks.length });
        // §3.3: a clear drops the queued audio and returns every pending mark at once.
        playEnd = t;
        for (const e of pendingMarks.splice(0)) {
            clearTimeout(e.timer);
            report.sent.flushed_echoes++;
            txSeq({ event: 'mark', mark: { name: e.name } });
        }
    } else {
        violation(`unknown event from server: ${m.event}`);
    }
}

function runStream(params) {
    const target = spec.ws + new URL(report.webhook.stream_url.replace(/^wss:/, 'https:')).pathname;
    ws = new WebSocket(target, { perMessageDeflate: false });   // Twilio sends no subprotocol
    let frameNo = 0, audioTimer = null;
    const dur = spec.duration_ms === undefined ? 3000 : spec.duration_ms;
    ws.on('open', () => {
        report.ws.opened = true;
        startMs = now();
        mark('open');
        tx({ event: 'connected', protocol: 'Call', version: '1.0.0' });
        const custom = Object.assign({}, params);
        if (spec.token === 'forge') custom.token = custom.token ? custom.token.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A')) : 'x';
        else if (spec.token === 'omit') delete custom.token;
        else if (spec.token && spec.token.startsWith('replace:')) custom.token = spec.token.slice(8);
        if (spec.from_param !== undefined) custom.from = spec.from_param;
        callSid = spec.call_sid_param || params.callSid;
        txSeq({ event: 'start', start: {
            streamSid, accountSid: spec.account_sid || 'AC00000000000000000000000000000000', callSid,
            tracks: ['inbound'], customParameters: custom,
            mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 } } });
        // 20 ms frames at real-time pace, timestamps from the stream start (§3.1)
        const t0 = Date.now();
        const tickFn = () => {
            const due = Math.floor((Date.now() - t0) / 20);
            while (frameNo <= due && frameNo * 20 < dur) {
                frameNo++;
                if (spec.audio === 'seq') sendTimes.set(frameNo, now());
                txSeq({ event: 'media', media: { track: 'inbound', chunk: String(frameNo), timestamp: String(frameNo * 20),
                                                  payload: frame(frameNo).toString('base64') } });
                report.sent.media++;
            }
            if (frameNo * 20 >= dur) { clearInterval(audioTimer); end(); }
        };
        audioTimer = setInterval(tickFn, 10);
        for (const e of spec.events || []) setTimeout(() => {
            if (!ws || ws.readyState !== WebSocket.OPEN) return;
            mark('event', e);
            if (e.dtmf) txSeq({ event: 'dtmf', dtmf: { track: 'inbound_track', digit: e.dtmf } });
            else if (e.raw !== undefined) tx(e.raw);
            else if (e.big) tx(JSON.stringify({ event: 'media', streamSid, sequenceNumber: String(++seq),
                                                media: { track: 'inbound', chunk: '0', timestamp: '0', payload: 'A'.repeat(e.big) } }));
            else if (e.wrong_sid) tx({ event: 'media', sequenceNumber: String(++seq), streamSid: 'MZother',
                                        media: { track: 'inbound', chunk: '0', timestamp: '0', payload: frame(0).toString('base64') } });
            else if (e.binary) ws.send(Buffer.from([1, 2, 3]), { binary: true });
        }, e.at || 0);
    });
    ws.on('message', onServerMessage);
    ws.on('close', (code) => {
        clearInterval(audioTimer);
        if (!report.ws.closed_by) report.ws.closed_by = 'server';
        report.ws.code = code;
        report.ws.close_ms = now() - startMs;
        mark('closed', { code });
        setTimeout(finish, 50);
    });
    ws.on('error', (e) => { mark('ws_error', { msg: String(e.message) }); });

    function end() {
        if (!ws || ws.readyState !== WebSocket.OPEN) return;
        // let our "speaker" finish, then hang up
        const wait = Math.max(0, Math.min(playEnd - now(), 3000)) + (spec.linger_ms === undefined ? 500 : spec.linger_ms);
        setTimeout(() => {
            if (!ws || ws.readyState !== WebSocket.OPEN) return;
            if (spec.stop !== false) txSeq({ event: 'stop', stop: { accountSid: spec.account_sid || 'AC00000000000000000000000000000000', callSid } });
            report.ws.closed_by = 'client';
            mark('hangup');
            setTimeout(() => { if (ws.readyState === WebSocket.OPEN) ws.close(1000); }, 100);
        }, wait);
    }
}

(async () => {
    if (spec.skip_webhook) {
        report.webhook = { status: 0, twiml_ok: true, stream_url: 'wss://x/media-stream', params: spec.skip_webhook.params };
    } else {
        const w = await webhook();
        const tw = parseTwiml(w.body);
        report.webhook = Object.assign({ status: w.status, content_type: w.ctype, body: w.body.slice(0, 2000) }, tw);
        mark('webhook', { status: w.status });
        if (w.status !== 200 || !tw.twiml_ok || !spec.ws) return finish();
        const p = tw.params;
        if (p.callSid !== w.params.CallSid) violation('TwiML callSid parameter differs from CallSid');
    }
    if (!spec.ws) return finish();
    runStream(report.webhook.params);
})();
