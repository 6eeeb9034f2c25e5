#!/usr/bin/env node
/*
 * openai_standin.js - loopback stand-in for the OpenAI Realtime API (GA interface only),
 * for tests. It speaks the protocol in shared/protocols/openai-realtime.md and rejects what
 * the real service rejects. Test-only: never point production at it.
 *
 * Usage:
 *   node openai_standin.js --port 18080 [--host 127.0.0.1] [--key sk-test]
 *                          [--script script.json] [--log received.jsonl] [--lifeline]
 *
 *   Prints one line {"listening":PORT} on stdout when ready.
 *   --key       the only API key accepted (default "sk-test"); wrong/missing -> HTTP 401.
 *   --lifeline  exit when stdin reaches EOF (the C test holds the pipe; if it dies we die).
 *   --tls-cert FILE --tls-key FILE   serve wss:// (and https) with this certificate.
 *   --no-audio-log  log input_audio_buffer.append / output_audio.delta with "audio_bytes"
 *               instead of the payload (load tests).
 *   --log FILE  every event is appended as one JSON line (written synchronously):
 *                 {"t":ms,"conn":n,"dir":"in","ev":{...client event...}}
 *                 {"t":ms,"conn":n,"dir":"out","ev":{...server event...}}
 *                 {"t":ms,"conn":n,"kind":"handshake","path":..,"query":{..},"headers":{..}}
 *                 {"t":ms,"conn":n,"kind":"raw_in","text":"..."}  (a frame that was not JSON)
 *                 {"t":ms,"conn":n,"kind":"closed","code":n}
 *               Header values are recorded except Authorization (only "auth_ok" is kept).
 *   HTTP on the same port:  GET /log -> the same records as a JSON array;
 *                           GET /health -> {"ok":true}.
 *   POST /control/<conn>  body = a JSON array of steps (below), run now on that live
 *                          connection ("last" = the newest connection). Lets an external
 *                          test drive a call step by step.
 *
 * Rejections (as the real API):
 *   wrong or missing key               -> HTTP 401 at the handshake (script "handshake_status"
 *                                        forces another status, e.g. 403)
 *   OpenAI-Beta: realtime=v1 header    -> error beta_api_shape_disabled, then close 4000
 *   query without exactly one of model/call_id/intent -> error + close 1008
 *   frame not JSON / missing or unknown "type"        -> error invalid_event
 *   session.update without session.type               -> error missing_required_parameter
 *   beta-shaped or unknown session fields             -> error unknown_parameter (nothing applied)
 *   function_call_output for an unknown call_id       -> error invalid_value (param item.call_id)
 *   response.create while a response is active        -> error conversation_already_has_active_response
 *   conversation.item.truncate beyond generated audio -> error "Audio content of X ms is already
 *                                                        shorter than Y ms"
 *   response.cancel with nothing active               -> error response_cancel_not_active
 *
 * Script (--script FILE, JSON). Each connection runs its own copy:
 *   {
 *     "handshake_status": 401,         // optional: refuse every handshake with this status
 *     "echo": false,                   // echo caller audio back as output_audio.delta (relay tests)
 *     "default_response": {...},       // response spec used for an unmatched response.create
 *     "session_override": {...},       // merged into the effective session after each update
 *                                      // (simulates a server that ignores e.g. the formats)
 *     "ignore_session_update": false,  // never answer session.update (client must time out)
 *     "rules": [ {"on": TRIGGER, "times": 1, "do": [STEP, ...]}, ... ]
 *   }
 *   TRIGGER (first matching rule with times left wins; times -1 = unlimited):
 *     "ready"            after session.updated confirmed audio/pcmu both ways (first time)
 *     "audio"            caller audio after ready; "bytes": N waits until N u-law bytes arrived
 *                        since ready (default: the first append)
 *     "response.create"  a client response.create; the first "response" step of the rule
 *                        answers it (with no matching rule, default_response answers it)
 *     "outputs"          every call of a completed tool response got its function_call_output
 *     "message"          a client conversation.item.create of type message (e.g. a greeting)
 *     "truncate"         an accepted conversation.item.truncate
 *     "error"            an error event was sent to the client
 *   STEP:
 *     {"wait": ms}
 *     {"speech": ms}               speech_started; after ms: speech_stopped, committed, user item
 *                                  (a running response is cancelled, reason turn_detected, when
 *                                  interrupt_response is true)
 *     {"speech_started": true}     only the start (barge-in)
 *     {"response": SPEC}           a whole response; the step ends at response.done
 *       SPEC = {"audio_ms":400, "chunk_ms":100, "pace_ms":20, "transcript":"Hello.",
 *               "calls":[{"name":"check_claim_details","arguments":{"claim_reference":"RMC-1001"},
 *                         "call_id":"call_x"}],
 *               "status":"completed"|"cancelled"|"incomplete"|"failed",
 *               "call_item_status":"completed",   // status of the function_call items
 *               "created_delay_ms":0,             // active at once, response.created later
 *               "wait": true}                     // false: run in the background
 *     {"send": EVENT}              any server event as given (event_id added when missing)
 *     {"raw": "text"}              a raw text frame
 *     {"malformed": n}             n frames that are not valid events (bad JSON, no type, array)
 *     {"error": {"code":..,"message":..,"type":..}}
 *     {"expire": true}             error session_expired, then close 1001
 *     {"close": 1000, "reason": ""}  close frame
 *     {"drop": true}               destroy the socket without a close frame
 *     {"echo": true|false}         switch echo mode
 *     {"late_delta": n}            n more output_audio.delta for the last assistant item (audio
 *                                  still in flight after a cancellation)
 *     {"big": bytes}               one valid event (type "rate_limits.updated") padded to about
 *                                  this many bytes (client reassembly / size-limit tests)
 *
 * Example: a tool round trip
 *   {"rules":[
 *     {"on":"audio","do":[{"speech":300},
 *        {"response":{"audio_ms":200,"transcript":"Let me check.",
 *                     "calls":[{"name":"check_claim_details","arguments":{"claim_reference":"RMC-1001"}}]}}]},
 *     {"on":"outputs","do":[]},
 *     {"on":"response.create","times":-1,"do":[{"response":{"audio_ms":600,"transcript":"Your claim is in progress."}}]}]}
 */
'use strict';

const http = require('http');
const fs = require('fs');
const path = require('path');
const { URL } = require('url');
const { WebSocketServer } = require(path.join(__dirname, 'node_modules', 'ws'));

/* ---- options ---- */

function parseArgs(argv) {
    const o = { port: 0, host: '127.0.0.1', key: 'sk-test', script: null, log: null, lifeline: false,
        tlsCert: null, tlsKey: null, audioLog: true };
    for (let i = 2; i < argv.length; i++) {
        const a = argv[i];
        const next = () => argv[++i];
        if (a === '--port') o.port = parseInt(next(), 10);
        else if (a === '--host') o.host = next();
        else if (a === '--key') o.key = next();
        else if (a === '--script') o.script = next();
        else if (a === '--log') o.log = next();
        else if (a === '--lifeline') o.lifeline = true;
        else if (a === '--tls-cert') o.tlsCert = next();
        else if (a === '--tls-key') o.tlsKey = next();
        else if (a === '--no-audio-log') o.audioLog = false;
        else { process.stderr.write(`openai_standin: unknown option ${a}\n`); process.exit(2); }
    }
    return o;
}

const opts = parseArgs(process.argv);
let script = { rules: [] };
if (opts.script) {
    try {
        script = JSON.parse(fs.readFileSync(opts.script, 'utf8'));
    } catch (e) {
        process.stderr.write(`openai_standin: bad script ${opts.script}: ${e.message}\n`);
        process.exit(2);
    }
}
if (!Array.isArray(script.rules)) script.rules = [];

/* ---- log ---- */

const LOG_MAX = 50000;
const records = [];
const t0 = Date.now();
function record(r) {
    r.t = Date.now() - t0;
    if (!opts.audioLog && r.ev) {
        const k = r.ev.type === 'input_audio_buffer.append' ? 'audio'
            : r.ev.type === 'response.output_audio.delta' ? 'delta' : null;
        if (k && typeof r.ev[k] === 'string') {
            r.ev = { ...r.ev, audio_bytes: Buffer.from(r.ev[k], 'base64').length };
            delete r.ev[k];
        }
    }
    if (records.length < LOG_MAX) records.push(r);
    if (opts.log) fs.appendFileSync(opts.log, JSON.stringify(r) + '\n');
}

/* ---- G.711 u-law tone (what the "model" says) ---- */

function linearToUlaw(sample) {
    const BIAS = 0x84, CLIP = 32635;
    let sign = (sample >> 8) & 0x80;
    if (sign) sample = -sample;
    if (sample > CLIP) sample = CLIP;
    sample += BIAS;
    let exponent = 7;
    for (let mask = 0x4000; (sample & mask) === 0 && exponent > 0; exponent--, mask >>= 1) { }
    const mantissa = (sample >> (exponent + 3)) & 0x0f;
    return (~(sign | (exponent << 4) | mantissa)) & 0xff;
}

function toneUlaw(ms, offsetSamples) {
    const n = ms * 8;
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) {
        const s = Math.round(8000 * Math.sin(2 * Math.PI * 440 * (offsetSamples + i) / 8000));
        b[i] = linearToUlaw(s);
    }
    return b;
}

/* ---- session validation (GA RealtimeSessionCreateRequest) ---- */

const VOICES = ['alloy', 'ash', 'ballad', 'coral', 'echo', 'sage', 'shimmer', 'verse', 'marin', 'cedar'];
const MODELS = ['gpt-realtime', 'gpt-realtime-2025-08-28', 'gpt-realtime-mini', 'gpt-realtime-1.5',
    'gpt-realtime-2', 'gpt-realtime-2.1', 'gpt-realtime-2.1-mini'];
const SESSION_KEYS = ['type', 'model', 'instructions', 'output_modalities', 'audio', 'tools', 'tool_choice',
    'max_output_tokens', 'truncation', 'include', 'prompt', 'tracing', 'reasoning', 'parallel_tool_calls'];
const RESPONSE_KEYS = ['instructions', 'tools', 'tool_choice', 'output_modalities', 'audio',
    'max_output_tokens', 'metadata', 'conversation', 'input', 'prompt', 'reasoning', 'parallel_tool_calls'];

class Invalid extends Error {
    constructor(code, message, param) { super(message); this.code = code; this.param = param || null; }
}

const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

function onlyKeys(obj, allowed, prefix) {
    for (const k of Object.keys(obj))
        if (!allowed.includes(k))
            throw new Invalid('unknown_parameter', `Unknown parameter: '${prefix}${k}'.`, prefix + k);
}

function checkFormat(f, prefix) {
    if (!isObj(f)) throw new Invalid('invalid_type', `Invalid type for '${prefix}': expected an object.`, prefix);
    onlyKeys(f, ['type', 'rate'], prefix + '.');
    if (!['audio/pcmu', 'audio/pcma', 'audio/pcm'].includes(f.type))
        throw new Invalid('invalid_value', `Invalid value: '${f.type}'. Supported values are: 'audio/pcm', 'audio/pcmu', and 'audio/pcma'.`, prefix + '.type');
    if (f.type === 'audio/pcm' && f.rate !== 24000)
        throw new Invalid('missing_required_parameter', `Missing required parameter: '${prefix}.rate'.`, prefix + '.rate');
}

function checkTurnDetection(td, prefix) {
    if (td === null) return;
    if (!isObj(td)) throw new Invalid('invalid_type', `Invalid type for '${prefix}'.`, prefix);
    if (td.type === 'server_vad')
        onlyKeys(td, ['type', 'threshold', 'prefix_padding_ms', 'silence_duration_ms', 'idle_timeout_ms',
            'create_response', 'interrupt_response'], prefix + '.');
    else if (td.type === 'semantic_vad')
        onlyKeys(td, ['type', 'eagerness', 'create_response', 'interrupt_response'], prefix + '.');
    else throw new Invalid('invalid_value', `Invalid value: '${td.type}'.`, prefix + '.type');
    for (const k of ['create_response', 'interrupt_response'])
        if (k in td && typeof td[k] !== 'boolean')
            throw new Invalid('invalid_type', `Invalid type for '${prefix}.${k}': expected a boolean.`, `${prefix}.${k}`);
}

function checkTools(tools, prefix) {
    if (!Array.isArray(tools)) throw new Invalid('invalid_type', `Invalid type for '${prefix}': expected an array.`, prefix);
    const names = new Set();
    tools.forEach((t, i) => {
        const p = `${prefix}[${i}]`;
        if (!isObj(t)) throw new Invalid('invalid_type', `Invalid type for '${p}'.`, p);
        if (t.type !== 'function') throw new Invalid('invalid_value', `Invalid value for '${p}.type'.`, p + '.type');
        onlyKeys(t, ['type', 'name', 'description', 'parameters'], p + '.');
        if (typeof t.name !== 'string' || !/^[a-zA-Z0-9_-]{1,64}$/.test(t.name))
            throw new Invalid('invalid_value', `Invalid '${p}.name'.`, p + '.name');
        if (names.has(t.name)) throw new Invalid('duplicate_tool_name', `Duplicate tool name '${t.name}'.`, p + '.name');
        names.add(t.name);
        if ('description' in t && typeof t.description !== 'string')
            throw new Invalid('invalid_type', `Invalid type for '${p}.description'.`, p + '.description');
        if (!isObj(t.parameters) || t.parameters.type !== 'object')
            throw new Invalid('invalid_value', `'${p}.parameters' must be a JSON Schema object.`, p + '.parameters');
    });
}

function checkToolChoice(tc, prefix, tools) {
    if (typeof tc === 'string') {
        if (!['auto', 'none', 'required'].includes(tc))
            throw new Invalid('invalid_value', `Invalid value: '${tc}'.`, prefix);
        return;
    }
    if (!isObj(tc) || tc.type !== 'function' || typeof tc.name !== 'string')
        throw new Invalid('invalid_value', `Invalid '${prefix}'.`, prefix);
    if (tools && !tools.some((t) => t.name === tc.name))
        throw new Invalid('invalid_value', `Tool '${tc.name}' not found in tools.`, prefix + '.name');
}

function checkVoice(v, prefix) {
    if (typeof v === 'string') {
        if (!VOICES.includes(v)) throw new Invalid('invalid_value', `Invalid value: '${v}'.`, prefix);
    } else if (!isObj(v) || typeof v.id !== 'string') {
        throw new Invalid('invalid_type', `Invalid type for '${prefix}'.`, prefix);
    }
}

function checkAudio(a, prefix) {
    if (!isObj(a)) throw new Invalid('invalid_type', `Invalid type for '${prefix}'.`, prefix);
    onlyKeys(a, ['input', 'output'], prefix + '.');
    if ('input' in a) {
        const i = a.input, p = prefix + '.input';
        if (!isObj(i)) throw new Invalid('invalid_type', `Invalid type for '${p}'.`, p);
        onlyKeys(i, ['format', 'noise_reduction', 'transcription', 'turn_detection'], p + '.');
        if ('format' in i) checkFormat(i.format, p + '.format');
        if ('turn_detection' in i) checkTurnDetection(i.turn_detection, p + '.turn_detection');
        if ('noise_reduction' in i && i.noise_reduction !== null) {
            if (!isObj(i.noise_reduction) || !['near_field', 'far_field'].includes(i.noise_reduction.type))
                throw new Invalid('invalid_value', `Invalid '${p}.noise_reduction'.`, p + '.noise_reduction.type');
        }
    }
    if ('output' in a) {
        const o = a.output, p = prefix + '.output';
        if (!isObj(o)) throw new Invalid('invalid_type', `Invalid type for '${p}'.`, p);
        onlyKeys(o, ['format', 'voice', 'speed'], p + '.');
        if ('format' in o) checkFormat(o.format, p + '.format');
        if ('voice' in o) checkVoice(o.voice, p + '.voice');
        if ('speed' in o && (typeof o.speed !== 'number' || o.speed < 0.25 || o.speed > 1.5))
            throw new Invalid('invalid_value', `Invalid '${p}.speed'.`, p + '.speed');
    }
}

/* Validates a session.update's session; returns nothing or throws Invalid. */
function checkSession(s, conn) {
    if (!isObj(s)) throw new Invalid('missing_required_parameter', "Missing required parameter: 'session'.", 'session');
    if (!('type' in s))
        throw new Invalid('missing_required_parameter', "Missing required parameter: 'session.type'.", 'session.type');
    onlyKeys(s, SESSION_KEYS, 'session.');
    if (s.type !== 'realtime')
        throw new Invalid('invalid_value', `Invalid value: '${s.type}'. This session is a 'realtime' session.`, 'session.type');
    if ('model' in s && s.model !== conn.session.model)
        throw new Invalid('invalid_value', 'The model cannot be changed after the session was created.', 'session.model');
    if ('instructions' in s && typeof s.instructions !== 'string')
        throw new Invalid('invalid_type', "Invalid type for 'session.instructions'.", 'session.instructions');
    if ('output_modalities' in s) {
        const m = s.output_modalities;
        if (!Array.isArray(m) || m.length !== 1 || !['audio', 'text'].includes(m[0]))
            throw new Invalid('invalid_value', "'session.output_modalities' must be ['audio'] or ['text'].", 'session.output_modalities');
    }
    if ('audio' in s) checkAudio(s.audio, 'session.audio');
    if ('tools' in s) checkTools(s.tools, 'session.tools');
    if ('tool_choice' in s) checkToolChoice(s.tool_choice, 'session.tool_choice', s.tools || conn.session.tools);
    if ('max_output_tokens' in s) {
        const v = s.max_output_tokens;
        if (!(v === 'inf' || (Number.isInteger(v) && v >= 1 && v <= 4096)))
            throw new Invalid('invalid_value', "Invalid 'session.max_output_tokens'.", 'session.max_output_tokens');
    }
    if (s.audio && s.audio.output && 'voice' in s.audio.output && conn.producedAudio &&
        JSON.stringify(s.audio.output.voice) !== JSON.stringify(conn.session.audio.output.voice))
        throw new Invalid('cannot_update_voice', 'Cannot update a conversation\'s voice if assistant audio is present.', 'session.audio.output.voice');
}

function mergeInto(dst, src) {
    for (const [k, v] of Object.entries(src)) {
        if (isObj(v) && isObj(dst[k]) && k !== 'format' && k !== 'turn_detection' && k !== 'noise_reduction')
            mergeInto(dst[k], v);
        else dst[k] = JSON.parse(JSON.stringify(v));
    }
}

function defaultSession(model) {
    return {
        type: 'realtime', object: 'realtime.session', id: 'sess_' + Math.random().toString(36).slice(2, 14),
        model, output_modalities: ['audio'], instructions: 'You are a helpful assistant.',
        expires_at: Math.floor(Date.now() / 1000) + 3600,
        audio: {
            input: {
                format: { type: 'audio/pcm', rate: 24000 }, noise_reduction: null, transcription: null,
                turn_detection: { type: 'server_vad', threshold: 0.5, prefix_padding_ms: 300, silence_duration_ms: 200,
                    idle_timeout_ms: null, create_response: true, interrupt_response: true },
            },
            output: { format: { type: 'audio/pcm', rate: 24000 }, voice: 'alloy', speed: 1 },
        },
        tools: [], tool_choice: 'auto', max_output_tokens: 'inf', truncation: 'auto', prompt: null,
        tracing: null, include: null,
    };
}

/* ---- one connection ---- */

let connSeq = 0;
const conns = new Map();
let idSeq = 0;
const nid = (p) => `${p}_${(++idSeq).toString(36).padStart(6, '0')}`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

class Conn {
    constructor(ws, model, n) {
        this.ws = ws;
        this.n = n;
        this.session = defaultSession(model);
        this.rules = (script.rules || []).map((r) => ({ ...r, left: r.times === undefined ? 1 : r.times }));
        this.echo = !!script.echo;
        this.ready = false;
        this.closed = false;
        this.producedAudio = false;
        this.active = null;          /* {id, cancel:false} while a response is active */
        this.items = new Map();      /* item_id -> {type, role, call_id, audio_bytes} */
        this.callIds = new Set();    /* function_call call_ids in the conversation */
        this.pendingCalls = null;    /* call_ids of the last completed tool response not yet answered */
        this.audioBytes = 0;         /* caller audio since ready */
        this.audioAppended = 0;      /* total bytes appended */
        this.echoState = null;
        this.chain = Promise.resolve();
    }

    send(ev) {
        if (this.closed) return;
        if (!ev.event_id) ev.event_id = nid('event');
        record({ conn: this.n, dir: 'out', ev });
        this.ws.send(JSON.stringify(ev));
    }

    error(code, message, param, eventId, type) {
        this.send({ type: 'error', error: { type: type || 'invalid_request_error', code: code === undefined ? null : code,
            message, param: param || null, event_id: eventId || null } });
        this.fire('error');
    }

    /* Find the first rule for a trigger with times left; run its steps in order (queued). */
    fire(on, pred) {
        const r = this.rules.find((x) => x.on === on && x.left !== 0 && (!pred || pred(x)));
        if (!r) return false;
        if (r.left > 0) r.left--;
        this.run(r.do || []);
        return true;
    }

    run(steps) {
        this.chain = this.chain.then(() => this.steps(steps)).catch((e) => {
            process.stderr.write(`openai_standin: step failed: ${e.stack}\n`);
        });
        return this.chain;
    }

    async steps(steps) {
        for (const s of steps) {
            if (this.closed) return;
            await this.step(s);
        }
    }

    async step(s) {
        if ('wait' in s) await sleep(s.wait);
        else if ('speech' in s) await this.speech(s.speech);
        else if ('speech_started' in s) this.speechStarted();
        else if ('response' in s) {
            const p = this.response(s.response || {});
            if (s.response && s.response.wait === false) p.catch(() => { });
            else await p;
        } else if ('send' in s) this.send(JSON.parse(JSON.stringify(s.send)));
        else if ('raw' in s) { record({ conn: this.n, kind: 'raw_out', text: s.raw }); this.ws.send(s.raw); }
        else if ('malformed' in s) {
            const bad = ['{"type": "session.updated", ', 'not json at all', '{"event_id":"event_x"}', '[1,2,3]',
                '{"type": 42}', '"just a string"'];
            for (let i = 0; i < s.malformed; i++) {
                const txt = bad[i % bad.length];
                record({ conn: this.n, kind: 'raw_out', text: txt });
                this.ws.send(txt);
            }
        } else if ('error' in s) {
            const e = s.error || {};
            this.error(e.code, e.message || 'error', e.param, e.event_id, e.type);
        } else if ('expire' in s) {
            this.send({ type: 'error', error: { type: 'invalid_request_error', code: 'session_expired',
                message: 'Your session hit the maximum duration of 60 minutes.', param: null, event_id: null } });
            this.ws.close(1001, 'Your session hit the maximum duration of 60 minutes.');
        } else if ('close' in s) this.ws.close(s.close, s.reason || '');
        else if ('drop' in s) { this.closed = true; this.ws.terminate(); }
        else if ('echo' in s) this.echo = !!s.echo;
        else if ('late_delta' in s) {
            for (let i = 0; i < s.late_delta && this.lastItem; i++)
                this.send({ type: 'response.output_audio.delta', response_id: this.lastItem.resp, item_id: this.lastItem.id,
                    output_index: 0, content_index: 0, delta: toneUlaw(20, 0).toString('base64') });
        } else if ('big' in s) {
            const ev = { type: 'rate_limits.updated', event_id: nid('event'), rate_limits: [], padding: 'x'.repeat(s.big) };
            record({ conn: this.n, dir: 'out', ev: { type: ev.type, event_id: ev.event_id, padding_bytes: s.big } });
            this.ws.send(JSON.stringify(ev));
        }
    }

    speechStarted() {
        const td = this.session.audio.input.turn_detection;
        this.send({ type: 'input_audio_buffer.speech_started', audio_start_ms: Math.floor(this.audioAppended / 8),
            item_id: this.userItem = nid('item') });
        if (this.active && td && td.interrupt_response) this.active.cancel = 'turn_detected';
    }

    async speech(ms) {
        this.speechStarted();
        await sleep(ms);
        const id = this.userItem;
        this.send({ type: 'input_audio_buffer.speech_stopped', audio_end_ms: Math.floor(this.audioAppended / 8), item_id: id });
        this.send({ type: 'input_audio_buffer.committed', item_id: id, previous_item_id: null });
        const item = { id, object: 'realtime.item', type: 'message', role: 'user', status: 'completed',
            content: [{ type: 'input_audio', transcript: null }] };
        this.items.set(id, { type: 'message', role: 'user' });
        this.send({ type: 'conversation.item.added', previous_item_id: null, item });
        this.send({ type: 'conversation.item.done', previous_item_id: null, item });
    }

    /* A whole response: created ... deltas ... function calls ... done. */
    async response(spec) {
        if (this.active) {
            /* The server never runs two; a scripted overlap waits its turn. */
            while (this.active && !this.closed) await sleep(5);
        }
        const id = this.reservedId || nid('resp');
        this.reservedId = null;
        const r = { id, cancel: null };
        this.active = r;
        const created = { object: 'realtime.response', id, status: 'in_progress', status_details: null, output: [],
            conversation_id: 'conv_1', output_modalities: ['audio'], max_output_tokens: 'inf', usage: null, metadata: null };
        if (spec.created_delay_ms) await sleep(spec.created_delay_ms);
        this.send({ type: 'response.created', response: created });
        this.send({ type: 'rate_limits.updated', rate_limits: [
            { name: 'requests', limit: 1000, remaining: 999, reset_seconds: 60 },
            { name: 'tokens', limit: 50000, remaining: 49000, reset_seconds: 2.5 }] });
        const output = [];
        const audioMs = spec.audio_ms === undefined ? 400 : spec.audio_ms;
        const chunkMs = spec.chunk_ms || 100;
        const paceMs = spec.pace_ms === undefined ? 20 : spec.pace_ms;
        let oi = 0;
        if (audioMs > 0) {
            const itemId = nid('item');
            this.items.set(itemId, { type: 'message', role: 'assistant', audio_bytes: 0 });
            this.lastItem = { id: itemId, resp: id };
            const base = { id: itemId, object: 'realtime.item', type: 'message', role: 'assistant' };
            this.send({ type: 'response.output_item.added', response_id: id, output_index: oi,
                item: { ...base, status: 'in_progress', content: [] } });
            this.send({ type: 'response.content_part.added', response_id: id, item_id: itemId, output_index: oi,
                content_index: 0, part: { type: 'output_audio', transcript: '' } });
            let sent = 0;
            while (sent < audioMs && !r.cancel && !this.closed) {
                const ms = Math.min(chunkMs, audioMs - sent);
                const buf = toneUlaw(ms, sent * 8);
                this.items.get(itemId).audio_bytes += buf.length;
                this.producedAudio = true;
                this.send({ type: 'response.output_audio.delta', response_id: id, item_id: itemId, output_index: oi,
                    content_index: 0, delta: buf.toString('base64') });
                sent += ms;
                if (paceMs) await sleep(paceMs);
            }
            const transcript = spec.transcript || 'Hello.';
            this.send({ type: 'response.output_audio.done', response_id: id, item_id: itemId, output_index: oi, content_index: 0 });
            this.send({ type: 'response.output_audio_transcript.done', response_id: id, item_id: itemId,
                output_index: oi, content_index: 0, transcript });
            this.send({ type: 'response.content_part.done', response_id: id, item_id: itemId, output_index: oi,
                content_index: 0, part: { type: 'output_audio', transcript } });
            const done = { ...base, status: r.cancel ? 'incomplete' : 'completed',
                content: [{ type: 'output_audio', transcript }] };
            this.send({ type: 'response.output_item.done', response_id: id, output_index: oi, item: done });
            output.push(done);
            oi++;
        }
        const calls = [];
        for (const c of (spec.calls || [])) {
            if (r.cancel && spec.call_item_status === undefined) break;
            const itemId = nid('item');
            const callId = c.call_id || nid('call');
            const args = typeof c.arguments === 'string' ? c.arguments : JSON.stringify(c.arguments || {});
            const base = { id: itemId, object: 'realtime.item', type: 'function_call', name: c.name, call_id: callId };
            this.send({ type: 'response.output_item.added', response_id: id, output_index: oi,
                item: { ...base, status: 'in_progress', arguments: '' } });
            const half = Math.floor(args.length / 2);
            for (const d of [args.slice(0, half), args.slice(half)])
                this.send({ type: 'response.function_call_arguments.delta', response_id: id, item_id: itemId,
                    output_index: oi, call_id: callId, delta: d });
            this.send({ type: 'response.function_call_arguments.done', response_id: id, item_id: itemId,
                output_index: oi, call_id: callId, name: c.name, arguments: args });
            const done = { ...base, status: spec.call_item_status || 'completed', arguments: args };
            this.send({ type: 'response.output_item.done', response_id: id, output_index: oi, item: done });
            this.items.set(itemId, { type: 'function_call', call_id: callId });
            this.callIds.add(callId);
            output.push(done);
            calls.push(callId);
            oi++;
        }
        if (spec.done_delay_ms) await sleep(spec.done_delay_ms);
        let status = spec.status || 'completed';
        let details = null;
        if (r.cancel) { status = 'cancelled'; details = { type: 'cancelled', reason: r.cancel }; }
        else if (status === 'cancelled') details = { type: 'cancelled', reason: 'turn_detected' };
        else if (status === 'incomplete') details = { type: 'incomplete', reason: 'max_output_tokens' };
        else if (status === 'failed') details = { type: 'failed', error: { type: 'server_error', code: null, message: 'The server had an error.' } };
        this.active = null;
        this.send({ type: 'response.done', response: { ...created, status, status_details: details, output,
            usage: { total_tokens: 100, input_tokens: 60, output_tokens: 40,
                input_token_details: { text_tokens: 50, audio_tokens: 10, image_tokens: 0, cached_tokens: 0 },
                output_token_details: { text_tokens: 10, audio_tokens: 30 } } } });
        if (status === 'completed' && calls.length) this.pendingCalls = new Set(calls);
    }

    /* ---- client events ---- */

    onMessage(data, isBinary) {
        if (isBinary) {
            record({ conn: this.n, kind: 'binary_in', bytes: data.length });
            return this.error('invalid_event', 'Binary frames are not supported; send JSON text frames.');
        }
        const text = data.toString('utf8');
        let ev;
        try { ev = JSON.parse(text); } catch (e) {
            record({ conn: this.n, kind: 'raw_in', text: text.slice(0, 2000) });
            return this.error('invalid_event', "We could not parse the JSON body of your request.");
        }
        record({ conn: this.n, dir: 'in', ev });
        if (!isObj(ev)) return this.error('invalid_event', 'Expected a JSON object.');
        if (typeof ev.type !== 'string') return this.error('invalid_event', "The 'type' field is missing.", null, ev.event_id);
        const h = this.handlers[ev.type];
        if (!h) return this.error('invalid_event', `Invalid value: '${ev.type}'. Not a supported client event type.`, 'type', ev.event_id);
        try {
            h.call(this, ev);
        } catch (e) {
            if (e instanceof Invalid) this.error(e.code, e.message, e.param, ev.event_id);
            else throw e;
        }
    }

    pcmu() {
        const a = this.session.audio;
        return a.input.format.type === 'audio/pcmu' && a.output.format.type === 'audio/pcmu';
    }
}

Conn.prototype.handlers = {
    'session.update'(ev) {
        checkSession(ev.session, this);
        if (script.ignore_session_update) return;
        const s = JSON.parse(JSON.stringify(ev.session));
        delete s.type;
        mergeInto(this.session, s);
        if (script.session_override) mergeInto(this.session, script.session_override);
        this.send({ type: 'session.updated', session: this.session });
        if (!this.ready && this.pcmu()) {
            this.ready = true;
            this.audioBytes = 0;
            this.fire('ready');
        }
    },
    'input_audio_buffer.append'(ev) {
        if (typeof ev.audio !== 'string')
            throw new Invalid('missing_required_parameter', "Missing required parameter: 'audio'.", 'audio');
        if (ev.audio.length > 15 * 1024 * 1024 * 4 / 3)
            throw new Invalid('invalid_value', 'Audio chunk exceeds 15 MiB.', 'audio');
        if (!/^[A-Za-z0-9+/]*={0,2}$/.test(ev.audio) || ev.audio.length % 4 !== 0)
            throw new Invalid('invalid_value', 'Invalid base64 audio.', 'audio');
        const n = Buffer.from(ev.audio, 'base64').length;
        this.audioAppended += n;
        if (!this.ready) return;
        this.audioBytes += n;
        if (this.echo) this.echoAudio(ev.audio);
        const before = this.audioBytes - n;
        this.fire('audio', (r) => {
            const need = r.bytes || 1;
            return before < need && this.audioBytes >= need;
        });
    },
    'input_audio_buffer.commit'() {
        if (this.audioAppended === 0)
            throw new Invalid('input_audio_buffer_commit_empty', 'Error committing input audio buffer: buffer too small.', null);
        const id = nid('item');
        this.send({ type: 'input_audio_buffer.committed', item_id: id, previous_item_id: null });
    },
    'input_audio_buffer.clear'() {
        this.send({ type: 'input_audio_buffer.cleared' });
    },
    'conversation.item.create'(ev) {
        const it = ev.item;
        if (!isObj(it)) throw new Invalid('missing_required_parameter', "Missing required parameter: 'item'.", 'item');
        if (it.type === 'function_call_output') {
            onlyKeys(it, ['id', 'type', 'call_id', 'output', 'object', 'status'], 'item.');
            if (typeof it.call_id !== 'string')
                throw new Invalid('missing_required_parameter', "Missing required parameter: 'item.call_id'.", 'item.call_id');
            if (typeof it.output !== 'string')
                throw new Invalid('invalid_type', "Invalid type for 'item.output': expected a string.", 'item.output');
            if (!this.callIds.has(it.call_id))
                throw new Invalid('invalid_value', `Tool call ID '${it.call_id}' not found in conversation.`, 'item.call_id');
        } else if (it.type === 'message') {
            onlyKeys(it, ['id', 'type', 'role', 'content', 'object', 'status'], 'item.');
            if (!['user', 'system', 'assistant'].includes(it.role))
                throw new Invalid('invalid_value', `Invalid value: '${it.role}'.`, 'item.role');
            if (!Array.isArray(it.content) || !it.content.length)
                throw new Invalid('missing_required_parameter', "Missing required parameter: 'item.content'.", 'item.content');
            const ok = it.role === 'assistant' ? ['output_text'] : it.role === 'system' ? ['input_text'] : ['input_text', 'input_audio', 'input_image'];
            it.content.forEach((c, i) => {
                if (!isObj(c) || !ok.includes(c.type))
                    throw new Invalid('invalid_value', `Invalid content type for role '${it.role}'.`, `item.content[${i}].type`);
                if (c.type === 'input_text' && typeof c.text !== 'string')
                    throw new Invalid('missing_required_parameter', `Missing required parameter: 'item.content[${i}].text'.`, `item.content[${i}].text`);
            });
        } else if (it.type === 'function_call') {
            if (typeof it.call_id !== 'string' || typeof it.name !== 'string')
                throw new Invalid('missing_required_parameter', "Missing required parameter: 'item.call_id'.", 'item.call_id');
            this.callIds.add(it.call_id);
        } else {
            throw new Invalid('invalid_value', `Invalid value: '${it.type}'.`, 'item.type');
        }
        const id = it.id || nid('item');
        this.items.set(id, { type: it.type, role: it.role });
        const item = { ...it, id, object: 'realtime.item', status: 'completed' };
        this.send({ type: 'conversation.item.added', previous_item_id: null, item });
        this.send({ type: 'conversation.item.done', previous_item_id: null, item });
        if (it.type === 'message') this.fire('message');
        if (it.type === 'function_call_output' && this.pendingCalls) {
            this.pendingCalls.delete(it.call_id);
            if (this.pendingCalls.size === 0) { this.pendingCalls = null; this.fire('outputs'); }
        }
    },
    'conversation.item.retrieve'(ev) {
        if (!this.items.has(ev.item_id))
            throw new Invalid('item_not_found', `Item with id '${ev.item_id}' not found.`, 'item_id');
        this.send({ type: 'conversation.item.retrieved', item: { id: ev.item_id, ...this.items.get(ev.item_id) } });
    },
    'conversation.item.delete'(ev) {
        if (!this.items.delete(ev.item_id))
            throw new Invalid('item_not_found', `Item with id '${ev.item_id}' not found.`, 'item_id');
        this.send({ type: 'conversation.item.deleted', item_id: ev.item_id });
    },
    'conversation.item.truncate'(ev) {
        const it = this.items.get(ev.item_id);
        if (!it) throw new Invalid('item_not_found', `Item with id '${ev.item_id}' not found.`, 'item_id');
        if (it.type !== 'message' || it.role !== 'assistant')
            throw new Invalid('invalid_value', 'Only assistant messages can be truncated.', 'item_id');
        if (ev.content_index !== 0)
            throw new Invalid('invalid_value', "Invalid 'content_index'.", 'content_index');
        if (!Number.isInteger(ev.audio_end_ms) || ev.audio_end_ms < 0)
            throw new Invalid('invalid_value', "Invalid 'audio_end_ms'.", 'audio_end_ms');
        const have = Math.floor(it.audio_bytes / 8);
        if (ev.audio_end_ms > have)
            throw new Invalid(null, `Audio content of ${have}ms is already shorter than ${ev.audio_end_ms}ms`, null);
        it.audio_bytes = ev.audio_end_ms * 8;
        this.send({ type: 'conversation.item.truncated', item_id: ev.item_id, content_index: 0, audio_end_ms: ev.audio_end_ms });
        this.fire('truncate');
    },
    'response.create'(ev) {
        if (ev.response !== undefined) {
            if (!isObj(ev.response)) throw new Invalid('invalid_type', "Invalid type for 'response'.", 'response');
            onlyKeys(ev.response, RESPONSE_KEYS, 'response.');
        }
        if (this.active) {
            throw new Invalid('conversation_already_has_active_response',
                `Conversation already has an active response in progress: ${this.active.id}. Wait until the response is finished before creating a new one.`, null);
        }
        /* Reserve the slot now so a second response.create in flight is refused too. */
        const hold = { id: nid('resp'), cancel: null };
        this.active = hold;
        const spec = this.takeResponseSpec();
        this.chain = this.chain.then(async () => {
            if (this.active === hold) this.active = null;
            this.reservedId = hold.id;
            await this.steps(spec);
        }).catch((e) => process.stderr.write(`openai_standin: ${e.stack}\n`));
    },
    'response.cancel'() {
        if (!this.active) throw new Invalid('response_cancel_not_active', 'Cancellation failed: no active response found', null);
        this.active.cancel = 'client_cancelled';
    },
    'output_audio_buffer.clear'() {
        throw new Invalid('invalid_event', 'output_audio_buffer.clear is only supported for WebRTC and SIP sessions.', 'type');
    },
};

/* The steps that answer a response.create: a matching rule's steps, else the default response. */
Conn.prototype.takeResponseSpec = function () {
    const r = this.rules.find((x) => x.on === 'response.create' && x.left !== 0);
    if (r) {
        if (r.left > 0) r.left--;
        const steps = r.do || [];
        if (steps.some((s) => 'response' in s)) return steps;
        return [{ response: script.default_response || {} }, ...steps];
    }
    return [{ response: script.default_response || { audio_ms: 200, transcript: 'Hello.' } }];
};

/* Echo mode: each caller chunk comes back as agent audio inside one open response. */
Conn.prototype.echoAudio = function (b64) {
    if (!this.echoState) {
        if (this.active) return;
        const id = nid('resp'), itemId = nid('item');
        this.active = { id, cancel: null };
        this.echoState = { id, itemId, timer: null };
        this.items.set(itemId, { type: 'message', role: 'assistant', audio_bytes: 0 });
        this.send({ type: 'response.created', response: { object: 'realtime.response', id, status: 'in_progress', output: [] } });
        this.send({ type: 'response.output_item.added', response_id: id, output_index: 0,
            item: { id: itemId, object: 'realtime.item', type: 'message', role: 'assistant', status: 'in_progress', content: [] } });
    }
    const st = this.echoState;
    this.items.get(st.itemId).audio_bytes += Buffer.from(b64, 'base64').length;
    this.producedAudio = true;
    this.send({ type: 'response.output_audio.delta', response_id: st.id, item_id: st.itemId, output_index: 0,
        content_index: 0, delta: b64 });
    clearTimeout(st.timer);
    st.timer = setTimeout(() => {
        this.echoState = null;
        if (this.active && this.active.id === st.id) this.active = null;
        const item = { id: st.itemId, object: 'realtime.item', type: 'message', role: 'assistant', status: 'completed',
            content: [{ type: 'output_audio', transcript: '' }] };
        this.send({ type: 'response.output_audio.done', response_id: st.id, item_id: st.itemId, output_index: 0, content_index: 0 });
        this.send({ type: 'response.output_item.done', response_id: st.id, output_index: 0, item });
        this.send({ type: 'response.done', response: { object: 'realtime.response', id: st.id, status: 'completed',
            status_details: null, output: [item] } });
    }, 500);
};

/* ---- HTTP + upgrade ---- */

const onRequest = (req, res) => {
    const u = new URL(req.url, 'http://x');
    if (req.method === 'GET' && u.pathname === '/log') {
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end(JSON.stringify(records));
    }
    if (req.method === 'GET' && u.pathname === '/health') {
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end('{"ok":true}');
    }
    const m = /^\/control\/(\w+)$/.exec(u.pathname);
    if (req.method === 'POST' && m) {
        let body = '';
        req.on('data', (d) => { body += d; });
        req.on('end', () => {
            const c = m[1] === 'last' ? [...conns.values()].pop() : conns.get(parseInt(m[1], 10));
            let steps;
            try { steps = JSON.parse(body); } catch (e) { steps = null; }
            if (!c || !Array.isArray(steps)) {
                res.writeHead(c ? 400 : 404, { 'content-type': 'application/json' });
                return res.end(JSON.stringify({ error: c ? 'body must be a JSON array of steps' : 'no such connection' }));
            }
            c.run(steps);
            res.writeHead(202, { 'content-type': 'application/json' });
            res.end(JSON.stringify({ conn: c.n }));
        });
        return;
    }
    /* A plain HTTP request to the realtime path gets what the API gives: no upgrade. */
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { message: 'Not found', type: 'invalid_request_error' } }));
};
const server = opts.tlsCert
    ? require('https').createServer({ cert: fs.readFileSync(opts.tlsCert), key: fs.readFileSync(opts.tlsKey) }, onRequest)
    : http.createServer(onRequest);
server.on('tlsClientError', (e) => record({ conn: 0, kind: 'tls_error', message: e.message }));

const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });

function refuse(socket, status, message, code) {
    const body = JSON.stringify({ error: { message, type: 'invalid_request_error', code, param: null } });
    const text = { 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 429: 'Too Many Requests', 500: 'Internal Server Error' }[status] || 'Error';
    socket.write(`HTTP/1.1 ${status} ${text}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    socket.destroy();
}

server.on('upgrade', (req, socket, head) => {
    const n = ++connSeq;
    const u = new URL(req.url, 'http://x');
    const headers = { ...req.headers };
    const auth = headers.authorization || '';
    delete headers.authorization;
    const authOk = auth === `Bearer ${opts.key}`;
    const query = Object.fromEntries(u.searchParams.entries());
    record({ conn: n, kind: 'handshake', path: u.pathname, query, headers, auth_ok: authOk,
        auth_scheme: auth.split(' ')[0] || '' });
    if (u.pathname !== '/v1/realtime') return refuse(socket, 404, 'Not found', 'not_found');
    if (script.handshake_status) return refuse(socket, script.handshake_status, 'Refused by script.', null);
    if (!authOk) {
        return refuse(socket, 401, 'Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.',
            'invalid_api_key');
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
        const selectors = ['model', 'call_id', 'intent'].filter((k) => u.searchParams.has(k));
        const model = u.searchParams.get('model');
        const c = new Conn(ws, model, n);
        conns.set(n, c);
        ws.on('close', (code) => { c.closed = true; record({ conn: n, kind: 'closed', code }); });
        ws.on('error', () => { });
        const fatal = (code, message, closeCode) => {
            c.send({ type: 'error', error: { type: 'invalid_request_error', code, message, param: null, event_id: null } });
            ws.close(closeCode, message.slice(0, 120));
        };
        if ((req.headers['openai-beta'] || '').includes('realtime'))
            return fatal('beta_api_shape_disabled', 'The Realtime API beta shape has been disabled. Use the GA interface (remove the OpenAI-Beta header).', 4000);
        if (selectors.length !== 1)
            return fatal('invalid_request_error', 'Provide exactly one of model, call_id or intent.', 1008);
        if (model !== null && !MODELS.includes(model))
            return fatal('model_not_found', `The model '${model}' does not exist or you do not have access to it.`, 1008);
        ws.on('message', (data, isBinary) => c.onMessage(data, isBinary));
        c.send({ type: 'session.created', session: c.session });
    });
});

server.listen(opts.port, opts.host, () => {
    process.stdout.write(JSON.stringify({ listening: server.address().port }) + '\n');
});

if (opts.lifeline) {
    process.stdin.on('end', () => process.exit(0));
    process.stdin.on('error', () => process.exit(0));
    process.stdin.resume();
}
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
