#!/usr/bin/env node
/*
 * gemini_standin.js - loopback stand-in for the Google Gemini Live API
 * (BidiGenerateContent over a raw WebSocket), for tests. It speaks the protocol in
 * shared/protocols/gemini-live.md and rejects, with Google's close codes, what the real
 * service rejects. Test-only: never point production at it.
 *
 * Usage:
 *   node gemini_standin.js --port 18081 [--host 127.0.0.1] [--key test-key]
 *                          [--script script.json] [--log received.jsonl] [--lifeline]
 *
 *   Prints one line {"listening":PORT} on stdout when ready.
 *   Endpoint: /ws/google.ai.generativelanguage.{v1beta|v1alpha|v1}.GenerativeService.BidiGenerateContent
 *             (anything else: HTTP 404 at the handshake).
 *   Key: ?key=K or the x-goog-api-key header (either is accepted, as Google's front end does).
 *   --lifeline  exit when stdin reaches EOF (the C test holds the pipe).
 *   --quiet-audio  log audio payloads as data_len only (load tests: many calls, small log).
 *   --tls-cert FILE --tls-key FILE  serve wss:// (TLS) instead of plain ws://.
 *   --log FILE  one JSON line per event, written synchronously:
 *     {"t":ms,"conn":n,"kind":"handshake","version":"v1beta","key_via":"query"|"header"|"none",
 *      "key_ok":bool,"path":"/ws/...(key removed)"}
 *     {"t":ms,"conn":n,"dir":"in","frame":"text"|"binary","msg":{...client message...}}
 *        (realtimeInput audio is logged with its data, so tests can decode what arrived)
 *     {"t":ms,"conn":n,"dir":"out","msg":{...}}        every server message sent
 *     {"t":ms,"conn":n,"kind":"raw_in","text":"..."}   a client frame that was not JSON
 *     {"t":ms,"conn":n,"kind":"reject","code":1007,"reason":"...","why":"..."}  our rejection
 *     {"t":ms,"conn":n,"kind":"closed","code":n,"reason":"...","by":"client"|"server"}
 *   HTTP on the same port:  GET /log -> the records as a JSON array;  GET /health -> {"ok":true}
 *   GET /audio/<conn|last> -> the caller audio that connection received, analysed:
 *        {"conn":n,"rate":16000,"samples":N,"ms":..,"dominant_hz":440,"rms":..}
 *   POST /control/<conn|last>  body = JSON array of STEPs, run now on that connection.
 *
 * Rejections (as the real API; reasons as Google words them, cut to 123 bytes):
 *   HTTP: unknown path -> 404; script "handshake_status" -> that status for every upgrade.
 *   first message not `setup`, or a second `setup`          -> 1007 "Request contains an invalid argument."
 *   wrong key                                               -> 1007 "API key not valid. Please pass a valid API key."
 *   no key at all                                           -> 1008 "Method doesn't allow unregistered callers..."
 *   setup without model / unknown model for the version     -> 1007 / 1008 "models/X is not found for API version..."
 *   unknown field anywhere in setup (strict field lists),
 *   non-camelCase keys, wrong enum values, lower-case schema types, keywords outside
 *   Google's Schema subset (additionalProperties, $ref, oneOf, const...), required names
 *   missing from properties, enum on non-STRING, unsupported formats, bad names  -> 1007
 *   languageCode on a native-audio model                    -> 1007 "Unsupported language code..."
 *   enableAffectiveDialog / proactivity / thinkingConfig on gemini-3.8-live, or
 *   enableAffectiveDialog outside v1alpha                   -> 1007 "Invalid JSON payload received. Unknown name..."
 *   responseModalities other than ["AUDIO"]                 -> 1007
 *   resumption handle that we never issued                  -> 1008 "BidiGenerateContent session not found"
 *   client message with an unknown / non-camelCase top-level key or several keys -> 1007
 *   realtimeInput.audio with a non audio/pcm mimeType, bad base64 or odd byte count -> 1007
 *   toolResponse for an unknown or cancelled call id, wrong name, non-object response -> 1007
 *   clientContent with bad roles/parts                      -> 1007
 *
 * Behaviour: setup accepted -> {"setupComplete":{}} (after script "setup_delay_ms"), then,
 * when setup asked for sessionResumption, {"sessionResumptionUpdate":{newHandle,resumable:true}}.
 * A toolCall sends {"sessionResumptionUpdate":{"resumable":false}}; every answered call and
 * every turnComplete sends a fresh resumable handle. Handles survive across connections of
 * this process, so a new socket can resume a session (its pending calls are forgotten).
 *
 * Script (--script FILE, JSON):
 *   { "handshake_status": 403, "setup_delay_ms": 0, "no_setup_complete": false,
 *     "no_handles": false,            // never send sessionResumptionUpdate
 *     "binary": false,                // send every server message as a binary frame
 *     "echo": false,                  // caller audio comes back at once as 24 kHz model audio
 *     "fail_setup": {"2": {"code": 1011, "reason": "..."}},  // refuse the setup of connection 2
 *     "rules": [ {"on": TRIGGER, "times": 1, "conn": n, "do": [STEP, ...]} ] }
 *   TRIGGER: "setup"           after setupComplete on a connection ("conn": only that one, 1-based;
 *                              "resumed": true|false filters on whether the setup carried a handle)
 *            "audio"           caller audio; "ms": N fires once N ms arrived on that connection
 *            "client_content"  a clientContent arrived
 *            "tool_response"   a toolResponse arrived ("id" filters)
 *   STEP (run in order; each may carry "wait": ms, slept before it):
 *     {"tone": {"hz":440,"ms":500,"chunk_ms":40,"amp":8000,"rate":24000,"mime":"...",
 *               "odd":false,"turn_complete":false,"binary":false}}  model audio, sent at once
 *     {"tool_call": {"id":"fc_1","name":"check_requirements","args":{...}}}   (or "calls":[...])
 *     {"cancel": ["fc_1"]}                 toolCallCancellation
 *     {"interrupted": true}                serverContent.interrupted, then turnComplete
 *     {"turn_complete": true}
 *     {"transcript": {"in": "text"} | {"out": "text"}}
 *     {"handle": true}                     a fresh resumable sessionResumptionUpdate
 *     {"forget_handles": true}             every handle issued so far becomes unknown (expired)
 *     {"go_away": {"time_left_ms": 1000}}  goAway; the socket is closed 1001 when time is up
 *     {"close": {"code": 1011, "reason": "Internal error occurred."}}
 *     {"drop": true}                       destroy the TCP socket (client sees 1006)
 *     {"usage": {...}}                     usageMetadata
 *     {"send": {...}} / {"send_binary": {...}} / {"raw": "text"}   anything, verbatim
 *     {"wait": ms}                         just wait
 */
'use strict';

const http = require('http');
const fs = require('fs');
const { WebSocketServer } = require('ws');

/* ---- arguments ---- */

function arg(name, def) {
  const i = process.argv.indexOf('--' + name);
  if (i < 0) return def;
  const v = process.argv[i + 1];
  return v === undefined || v.startsWith('--') ? true : v;
}
const PORT = parseInt(arg('port', '0'), 10);
const HOST = arg('host', '127.0.0.1');
const KEY = arg('key', 'test-key');
const LOG = arg('log', null);
const QUIET_AUDIO = !!arg('quiet-audio', false);
const SCRIPT = arg('script', null) ? JSON.parse(fs.readFileSync(arg('script'), 'utf8')) : {};
if (arg('lifeline', false)) {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.stdin.resume();
}
const T0 = Date.now();
const records = [];

/* --quiet-audio: audio payloads are logged as their length only (load tests). */
function squash(msg) {
  if (!QUIET_AUDIO || !msg) return msg;
  const a = msg.realtimeInput && msg.realtimeInput.audio;
  if (a && typeof a.data === 'string')
    return { realtimeInput: { audio: { mimeType: a.mimeType, data_len: a.data.length } } };
  const parts = msg.serverContent && msg.serverContent.modelTurn && msg.serverContent.modelTurn.parts;
  if (parts && parts.some((p) => p.inlineData))
    return { serverContent: { modelTurn: { parts: parts.map((p) => (p.inlineData
      ? { inlineData: { mimeType: p.inlineData.mimeType, data_len: String(p.inlineData.data).length } } : p)) } } };
  return msg;
}

function log(rec) {
  if (rec.msg) rec.msg = squash(rec.msg);
  rec = Object.assign({ t: Date.now() - T0 }, rec);
  records.push(rec);
  if (LOG) fs.appendFileSync(LOG, JSON.stringify(rec) + '\n');
}

/* ---- the model catalogue (§1.2) ---- */

const MODELS = {
  'gemini-3.8-live': { family: '3.8', versions: ['v1beta', 'v1', 'v1alpha'] },
  'gemini-3.8-live-extended-thinking': { family: '3.8', versions: ['v1beta', 'v1', 'v1alpha'] },
  'gemini-3.1-flash-live-preview': { family: '3.1', versions: ['v1beta', 'v1alpha'] },
  'gemini-2.5-flash-native-audio-preview-12-2025': { family: '2.5', versions: ['v1beta', 'v1alpha'] },
};
const VOICES = new Set(('Zephyr Puck Charon Kore Fenrir Leda Orus Aoede Callirrhoe Autonoe ' +
  'Enceladus Iapetus Umbriel Algieba Despina Erinome Algenib Rasalgethi Laomedeia Achernar ' +
  'Alnilam Schedar Gacrux Pulcherrima Achird Zubenelgenubi Vindemiatrix Sadachbia Sadaltager ' +
  'Sulafat').split(' '));

/* ---- validation ---- */

class Reject extends Error {
  constructor(code, reason, why) { super(why || reason); this.code = code; this.reason = reason; }
}
const INVALID = 'Request contains an invalid argument.';
function unknownName(name, at) {
  return new Reject(1007, `Invalid JSON payload received. Unknown name "${name}" at '${at}': Cannot find field.`,
    `unknown field ${at}.${name}`);
}
function bad(why) { return new Reject(1007, INVALID, why); }
const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

function onlyKeys(obj, allowed, at) {
  if (!isObj(obj)) throw bad(`${at} is not an object`);
  for (const k of Object.keys(obj)) if (!allowed.includes(k)) throw unknownName(k, at);
}
function enumVal(v, allowed, at) {
  if (!allowed.includes(v)) throw new Reject(1007, `Invalid value at '${at}', "${v}"`, `bad enum ${at}=${v}`);
}

const SCHEMA_KEYS = ['type', 'format', 'title', 'description', 'nullable', 'enum', 'items', 'minItems',
  'maxItems', 'properties', 'required', 'minProperties', 'maxProperties', 'propertyOrdering',
  'minimum', 'maximum', 'minLength', 'maxLength', 'pattern', 'anyOf', 'default', 'example'];
const TYPES = ['STRING', 'NUMBER', 'INTEGER', 'BOOLEAN', 'ARRAY', 'OBJECT', 'NULL'];
const FORMATS = { STRING: ['enum', 'date-time'], NUMBER: ['float', 'double'], INTEGER: ['int32', 'int64'] };

function checkSchema(s, at) {
  onlyKeys(s, SCHEMA_KEYS, at);
  if (s.type !== undefined) enumVal(s.type, TYPES, at + '.type');
  if (s.type === undefined && !s.anyOf) throw bad(`${at}: schema without type`);
  if (s.format !== undefined) {
    const ok = FORMATS[s.type] || [];
    if (!ok.includes(s.format))
      throw new Reject(1007, `${at}.format: only ${ok.join(', ') || 'no'} formats are supported for ${s.type} type`,
        `bad format ${s.format}`);
  }
  if (s.enum !== undefined) {
    if (s.type !== 'STRING') throw bad(`${at}: enum only for STRING`);
    if (!Array.isArray(s.enum) || !s.enum.length || s.enum.some((e) => typeof e !== 'string'))
      throw bad(`${at}.enum must be a non-empty list of strings`);
  }
  if (s.description !== undefined && typeof s.description !== 'string') throw bad(`${at}.description`);
  if (s.nullable !== undefined && typeof s.nullable !== 'boolean') throw bad(`${at}.nullable`);
  if (s.properties !== undefined) {
    if (s.type !== 'OBJECT' || !isObj(s.properties)) throw bad(`${at}.properties only on OBJECT`);
    for (const [k, v] of Object.entries(s.properties)) {
      if (!/^[A-Za-z0-9_]{1,64}$/.test(k)) throw bad(`${at}: bad property name ${k}`);
      checkSchema(v, `${at}.properties.${k}`);
    }
  }
  if (s.type === 'OBJECT' && s.properties === undefined && at.endsWith('parameters'))
    throw bad(`${at}: OBJECT parameters without properties`);
  if (s.required !== undefined) {
    if (!Array.isArray(s.required) || s.required.some((r) => typeof r !== 'string'))
      throw bad(`${at}.required must be a list of strings`);
    for (const r of s.required)
      if (!s.properties || !(r in s.properties))
        throw new Reject(1007, `${at}.required[${r}]: property is not defined`, `required ${r} undefined`);
  }
  if (s.type === 'ARRAY') {
    if (!s.items) throw bad(`${at}: ARRAY without items`);
    checkSchema(s.items, at + '.items');
  } else if (s.items !== undefined) throw bad(`${at}.items only on ARRAY`);
  for (const k of ['minimum', 'maximum'])
    if (s[k] !== undefined && typeof s[k] !== 'number') throw bad(`${at}.${k}`);
  if (s.anyOf !== undefined) {
    if (!Array.isArray(s.anyOf)) throw bad(`${at}.anyOf`);
    s.anyOf.forEach((x, i) => checkSchema(x, `${at}.anyOf[${i}]`));
  }
}

function checkDeclaration(d, at, model) {
  onlyKeys(d, ['name', 'description', 'behavior', 'parameters', 'parametersJsonSchema', 'response',
    'responseJsonSchema'], at);
  if (typeof d.name !== 'string' || !/^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$/.test(d.name))
    throw bad(`${at}.name invalid`);
  if (d.description !== undefined && typeof d.description !== 'string') throw bad(`${at}.description`);
  if (d.behavior !== undefined) enumVal(d.behavior, ['BLOCKING', 'NON_BLOCKING'], `${at}.behavior`);
  if (d.behavior === 'NON_BLOCKING' && MODELS[model].family === '3.1')
    throw new Reject(1007, 'Asynchronous function calling is not supported for this model.', 'NON_BLOCKING on 3.1');
  if (d.parameters && d.parametersJsonSchema) throw bad(`${at}: parameters and parametersJsonSchema`);
  if (d.parameters !== undefined) {
    checkSchema(d.parameters, `${at}.parameters`);
    if (d.parameters.type !== 'OBJECT') throw bad(`${at}.parameters must be OBJECT`);
  }
}

function checkGenerationConfig(g, model, version) {
  const at = 'setup.generation_config';
  const fam = MODELS[model].family;
  for (const k of Object.keys(g)) {
    const known = ['responseModalities', 'speechConfig', 'temperature', 'topP', 'topK', 'maxOutputTokens',
      'seed', 'mediaResolution', 'thinkingConfig', 'enableAffectiveDialog', 'candidateCount',
      'presencePenalty', 'frequencyPenalty'];
    if (!known.includes(k)) throw unknownName(k, at);
  }
  if (g.enableAffectiveDialog !== undefined && (fam !== '2.5' || version !== 'v1alpha'))
    throw unknownName('enableAffectiveDialog', at);
  if (g.thinkingConfig !== undefined && fam === '3.8') throw unknownName('thinkingConfig', at);
  if (g.responseModalities !== undefined) {
    if (!Array.isArray(g.responseModalities) || g.responseModalities.length !== 1 ||
        g.responseModalities[0] !== 'AUDIO')
      throw new Reject(1007, 'Multi-modal output is not supported. Native audio models only support AUDIO.',
        'responseModalities must be ["AUDIO"]');
  }
  if (g.speechConfig !== undefined) {
    onlyKeys(g.speechConfig, ['voiceConfig', 'languageCode', 'multiSpeakerVoiceConfig'], at + '.speech_config');
    if (g.speechConfig.languageCode !== undefined)
      throw new Reject(1007, `Unsupported language code '${g.speechConfig.languageCode}' for model models/${model}`,
        'languageCode on a native-audio model');
    if (g.speechConfig.multiSpeakerVoiceConfig !== undefined) throw bad('multi-speaker not supported on Live');
    const vc = g.speechConfig.voiceConfig;
    if (vc !== undefined) {
      onlyKeys(vc, ['prebuiltVoiceConfig', 'replicatedVoiceConfig'], at + '.speech_config.voice_config');
      if (vc.prebuiltVoiceConfig) {
        onlyKeys(vc.prebuiltVoiceConfig, ['voiceName'], at + '.speech_config.voice_config.prebuilt_voice_config');
        if (!VOICES.has(vc.prebuiltVoiceConfig.voiceName))
          throw bad(`unknown voice ${vc.prebuiltVoiceConfig.voiceName}`);
      }
    }
  }
}

function checkSetup(s, version) {
  onlyKeys(s, ['model', 'generationConfig', 'systemInstruction', 'tools', 'realtimeInputConfig',
    'sessionResumption', 'contextWindowCompression', 'inputAudioTranscription',
    'outputAudioTranscription', 'proactivity', 'historyConfig', 'safetySettings'], 'setup');
  if (typeof s.model !== 'string' || !s.model) throw bad('setup.model missing');
  const m = /^models\/(.+)$/.exec(s.model);
  const model = m && m[1];
  if (!model || !MODELS[model] || !MODELS[model].versions.includes(version))
    throw new Reject(1008, `${s.model} is not found for API version ${version}, or is not supported for ` +
      'bidiGenerateContent. Call ListModels to see the list of available models and their supported methods.',
      'unknown model');
  const fam = MODELS[model].family;
  if (s.generationConfig !== undefined) {
    if (!isObj(s.generationConfig)) throw bad('generationConfig');
    checkGenerationConfig(s.generationConfig, model, version);
  }
  if (s.proactivity !== undefined && (fam !== '2.5' || version !== 'v1alpha')) throw unknownName('proactivity', 'setup');
  if (s.systemInstruction !== undefined) {
    onlyKeys(s.systemInstruction, ['parts', 'role'], 'setup.system_instruction');
    const p = s.systemInstruction.parts;
    if (!Array.isArray(p) || !p.length) throw bad('systemInstruction.parts');
    p.forEach((x, i) => onlyKeys(x, ['text'], `setup.system_instruction.parts[${i}]`));
    if (p.some((x) => typeof x.text !== 'string')) throw bad('systemInstruction text');
  }
  if (s.tools !== undefined) {
    if (!Array.isArray(s.tools)) throw bad('tools must be a list');
    s.tools.forEach((t, i) => {
      onlyKeys(t, ['functionDeclarations', 'googleSearch'], `setup.tools[${i}]`);
      if (t.functionDeclarations !== undefined) {
        if (!Array.isArray(t.functionDeclarations)) throw bad('functionDeclarations must be a list');
        const names = new Set();
        t.functionDeclarations.forEach((d, j) => {
          checkDeclaration(d, `setup.tools[${i}].function_declarations[${j}]`, model);
          if (names.has(d.name)) throw bad(`duplicate function ${d.name}`);
          names.add(d.name);
        });
      }
    });
  }
  const ric = s.realtimeInputConfig;
  if (ric !== undefined) {
    onlyKeys(ric, ['automaticActivityDetection', 'activityHandling', 'turnCoverage'], 'setup.realtime_input_config');
    const aad = ric.automaticActivityDetection;
    if (aad !== undefined) {
      onlyKeys(aad, ['disabled', 'startOfSpeechSensitivity', 'endOfSpeechSensitivity', 'prefixPaddingMs',
        'silenceDurationMs'], 'setup.realtime_input_config.automatic_activity_detection');
      if (aad.startOfSpeechSensitivity !== undefined)
        enumVal(aad.startOfSpeechSensitivity, ['START_SENSITIVITY_HIGH', 'START_SENSITIVITY_LOW'], 'startOfSpeechSensitivity');
      if (aad.endOfSpeechSensitivity !== undefined)
        enumVal(aad.endOfSpeechSensitivity, ['END_SENSITIVITY_HIGH', 'END_SENSITIVITY_LOW'], 'endOfSpeechSensitivity');
      for (const k of ['prefixPaddingMs', 'silenceDurationMs'])
        if (aad[k] !== undefined && !Number.isInteger(aad[k])) throw bad(`${k} must be an integer`);
      if (aad.disabled !== undefined && typeof aad.disabled !== 'boolean') throw bad('disabled must be bool');
    }
    if (ric.activityHandling !== undefined)
      enumVal(ric.activityHandling, ['START_OF_ACTIVITY_INTERRUPTS', 'NO_INTERRUPTION'], 'activityHandling');
    if (ric.turnCoverage !== undefined)
      enumVal(ric.turnCoverage, ['TURN_INCLUDES_ONLY_ACTIVITY', 'TURN_INCLUDES_ALL_INPUT',
        'TURN_INCLUDES_AUDIO_ACTIVITY_AND_ALL_VIDEO'], 'turnCoverage');
  }
  for (const k of ['inputAudioTranscription', 'outputAudioTranscription'])
    if (s[k] !== undefined)
      onlyKeys(s[k], ['languageCodes', 'customVocabulary', 'mode', 'wordTimestamp', 'diarization'], 'setup.' + k);
  if (s.contextWindowCompression !== undefined) {
    onlyKeys(s.contextWindowCompression, ['slidingWindow', 'triggerTokens'], 'setup.context_window_compression');
    if (s.contextWindowCompression.slidingWindow !== undefined)
      onlyKeys(s.contextWindowCompression.slidingWindow, ['targetTokens'], 'setup.context_window_compression.sliding_window');
  }
  if (s.sessionResumption !== undefined) {
    onlyKeys(s.sessionResumption, ['handle'], 'setup.session_resumption');
    if (s.sessionResumption.handle !== undefined && typeof s.sessionResumption.handle !== 'string')
      throw bad('handle must be a string');
  }
  return model;
}

/* ---- caller audio analysis (GET /audio/<conn>) ---- */

const PCM_KEEP = 16000 * 2 * 120;   // bytes kept per connection: 2 min at 16 kHz

function goertzel(x, hz, rate) {
  const w = 2 * Math.PI * hz / rate, c = 2 * Math.cos(w);
  let s1 = 0, s2 = 0;
  for (let i = 0; i < x.length; i++) { const s0 = x[i] + c * s1 - s2; s2 = s1; s1 = s0; }
  return (s1 * s1 + s2 * s2 - c * s1 * s2) / (x.length * x.length || 1);
}

function analyse(c) {
  const n = c.pcmLen / 2, x = new Float64Array(n);
  for (let i = 0; i < n; i++) x[i] = c.pcm.readInt16LE(i * 2);
  let best = 0, bestp = -1, sum = 0;
  for (let f = 100; f <= Math.min(3900, (c.rate || 16000) / 2 - 100); f += 10) {
    const p = goertzel(x, f, c.rate || 16000);
    if (p > bestp) { bestp = p; best = f; }
  }
  for (let i = 0; i < n; i++) sum += x[i] * x[i];
  return { conn: c.n, rate: c.rate || null, samples: n, ms: c.rate ? n * 1000 / c.rate : 0,
    dominant_hz: n ? best : null, rms: n ? Math.sqrt(sum / n) : 0 };
}

/* ---- sessions (survive reconnects through handles) ---- */

let nextSession = 1;
const handles = new Map();   // handle -> session

function newSession(model) {
  return { id: nextSession++, model, pending: new Map(), cancelled: new Set(), nhandle: 0 };
}

/* ---- connections ---- */

const conns = new Map();     // n -> conn
let nconn = 0;

function send(c, msg, binary) {
  if (c.ws.readyState !== 1) return;
  log({ conn: c.n, dir: 'out', msg });
  const text = JSON.stringify(msg);
  c.ws.send(binary || SCRIPT.binary ? Buffer.from(text, 'utf8') : text, { binary: !!(binary || SCRIPT.binary) });
}

function reject(c, e) {
  const reason = Buffer.from(e.reason, 'utf8').subarray(0, 123).toString('utf8').replace(/\uFFFD+$/, '');
  log({ conn: c.n, kind: 'reject', code: e.code, reason, why: e.message });
  closeWith(c, e.code, reason);
}

function closeWith(c, code, reason) {
  if (c.closing) return;
  c.closing = true;
  c.closedBy = 'server';
  try { c.ws.close(code, reason); } catch (_) { c.ws.terminate(); }
}

function issueHandle(c, resumable) {
  if (!c.wantsResumption || !c.session || SCRIPT.no_handles) return;
  if (!resumable) {
    send(c, { sessionResumptionUpdate: { resumable: false } });
    return;
  }
  const h = `h-${c.session.id}-${++c.session.nhandle}`;
  handles.set(h, c.session);
  send(c, { sessionResumptionUpdate: { newHandle: h, resumable: true } });
}

function onSetup(c, s) {
  if (c.setupSeen) throw bad('second setup');
  c.setupSeen = true;
  if (c.keyVia === 'none')
    throw new Reject(1008, "Method doesn't allow unregistered callers (callers without established identity). " +
      'Please use API Key or other form of API consumer identity to call this API.', 'no key');
  if (!c.keyOk) throw new Reject(1007, 'API key not valid. Please pass a valid API key.', 'wrong key');
  const model = checkSetup(s, c.version);
  const forced = SCRIPT.fail_setup && SCRIPT.fail_setup[String(c.n)];
  if (forced) throw new Reject(forced.code || 1011, forced.reason || 'Internal error occurred.', 'fail_setup');
  c.model = model;
  c.wantsResumption = s.sessionResumption !== undefined;
  c.aadDisabled = !!(s.realtimeInputConfig && s.realtimeInputConfig.automaticActivityDetection &&
    s.realtimeInputConfig.automaticActivityDetection.disabled);
  const h = s.sessionResumption && s.sessionResumption.handle;
  if (h) {
    const sess = handles.get(h);
    if (!sess) throw new Reject(1008, 'BidiGenerateContent session not found', 'unknown handle');
    if (sess.model !== model) throw bad('model changed on resumption');
    sess.pending.clear();   // calls of the old socket are gone
    c.session = sess;
    c.resumed = true;
  } else {
    c.session = newSession(model);
  }
  const complete = () => {
    if (c.ws.readyState !== 1) return;
    c.ready = true;
    send(c, { setupComplete: {} });
    issueHandle(c, true);
    fire(c, 'setup');
  };
  if (SCRIPT.no_setup_complete) return;
  if (SCRIPT.setup_delay_ms) setTimeout(complete, SCRIPT.setup_delay_ms); else complete();
}

function onRealtimeInput(c, r) {
  onlyKeys(r, ['audio', 'video', 'text', 'audioStreamEnd', 'activityStart', 'activityEnd', 'mediaChunks'],
    'realtime_input');
  if (Object.keys(r).length !== 1) throw bad('realtimeInput must carry exactly one field');
  if ((r.activityStart || r.activityEnd) && !c.aadDisabled) throw bad('activityStart/End need disabled VAD');
  if (r.audio !== undefined) {
    onlyKeys(r.audio, ['mimeType', 'data'], 'realtime_input.audio');
    const m = /^audio\/pcm(?:;rate=(\d+))?$/.exec(r.audio.mimeType || '');
    if (!m) throw bad(`unsupported audio mimeType ${r.audio.mimeType}`);
    if (typeof r.audio.data !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(r.audio.data) || r.audio.data.length % 4)
      throw bad('audio data is not base64');
    const bytes = Buffer.from(r.audio.data, 'base64');
    if (bytes.length % 2) throw bad('odd number of PCM16 bytes');
    const rate = m[1] ? parseInt(m[1], 10) : 16000;
    c.audioMs += (bytes.length / 2) * 1000 / rate;
    c.rate = rate;
    if (c.pcmLen + bytes.length <= PCM_KEEP) {
      if (c.pcm.length < c.pcmLen + bytes.length) {   // grow geometrically, capped
        const nb = Buffer.alloc(Math.min(PCM_KEEP, Math.max(65536, (c.pcmLen + bytes.length) * 2)));
        c.pcm.copy(nb, 0, 0, c.pcmLen);
        c.pcm = nb;
      }
      bytes.copy(c.pcm, c.pcmLen);
      c.pcmLen += bytes.length;
    }
    if (SCRIPT.echo) echo(c, bytes, rate);
    fire(c, 'audio');
  }
}

/* Echo mode: the caller's audio comes straight back as model audio at 24 kHz (linear
 * interpolation; test-only), e.g. for load tests measuring the round trip. */
function echo(c, bytes, rate) {
  const n = bytes.length / 2, m = Math.floor(n * 24000 / rate);
  const out = Buffer.alloc(m * 2);
  for (let i = 0; i < m; i++) {
    const x = i * rate / 24000, k = Math.floor(x), f = x - k;
    const a = bytes.readInt16LE(Math.min(k, n - 1) * 2), b = bytes.readInt16LE(Math.min(k + 1, n - 1) * 2);
    out.writeInt16LE(Math.round(a + (b - a) * f), i * 2);
  }
  send(c, { serverContent: { modelTurn: { parts: [{ inlineData: { mimeType: 'audio/pcm;rate=24000',
    data: out.toString('base64') } }] } } });
}

function onClientContent(c, cc) {
  onlyKeys(cc, ['turns', 'turnComplete'], 'client_content');
  if (cc.turns !== undefined) {
    if (!Array.isArray(cc.turns)) throw bad('turns must be a list');
    cc.turns.forEach((t, i) => {
      onlyKeys(t, ['role', 'parts'], `client_content.turns[${i}]`);
      enumVal(t.role, ['user', 'model'], `client_content.turns[${i}].role`);
      if (!Array.isArray(t.parts) || !t.parts.length) throw bad('parts');
      t.parts.forEach((p, j) => onlyKeys(p, ['text'], `client_content.turns[${i}].parts[${j}]`));
    });
  }
  if (cc.turnComplete !== undefined && typeof cc.turnComplete !== 'boolean') throw bad('turnComplete');
  fire(c, 'client_content');
}

function onToolResponse(c, tr) {
  onlyKeys(tr, ['functionResponses'], 'tool_response');
  if (!Array.isArray(tr.functionResponses) || !tr.functionResponses.length) throw bad('functionResponses');
  for (const [i, fr] of tr.functionResponses.entries()) {
    onlyKeys(fr, ['id', 'name', 'response', 'scheduling', 'willContinue'], `tool_response.function_responses[${i}]`);
    if (typeof fr.id !== 'string' || !fr.id) throw bad('function response without id');
    if (!isObj(fr.response)) throw bad('response must be an object');
    if (c.session.cancelled.has(fr.id)) throw bad(`function response for cancelled call ${fr.id}`);
    const call = c.session.pending.get(fr.id);
    if (!call) throw bad(`function response for unknown call ${fr.id}`);
    if (typeof fr.name !== 'string' || !fr.name) throw bad('function response without name');
    if (call.name !== null && call.name !== fr.name) throw bad(`function response name ${fr.name} != ${call.name}`);
    c.session.pending.delete(fr.id);
  }
  for (const fr of tr.functionResponses) fire(c, 'tool_response', fr.id);
  if (!c.session.pending.size) issueHandle(c, true);
}

function onMessage(c, data, isBinary) {
  let msg;
  const text = Buffer.isBuffer(data) ? data.toString('utf8') : String(data);
  try { msg = JSON.parse(text); } catch (_) {
    log({ conn: c.n, kind: 'raw_in', text: text.slice(0, 2000) });
    return reject(c, bad('not JSON'));
  }
  log({ conn: c.n, dir: 'in', frame: isBinary ? 'binary' : 'text', msg });
  try {
    if (!isObj(msg)) throw bad('message is not an object');
    const keys = Object.keys(msg);
    const known = ['setup', 'clientContent', 'realtimeInput', 'toolResponse', 'contextUpdate'];
    for (const k of keys) if (!known.includes(k)) throw unknownName(k, '');
    if (keys.length !== 1) throw bad('exactly one of setup/clientContent/realtimeInput/toolResponse');
    const k = keys[0];
    if (k !== 'setup' && !c.setupSeen) throw bad(`${k} before setup`);
    if (k === 'setup') return onSetup(c, msg.setup);
    if (!c.ready) throw bad(`${k} before setupComplete`);
    if (k === 'realtimeInput') return onRealtimeInput(c, msg.realtimeInput);
    if (k === 'clientContent') return onClientContent(c, msg.clientContent);
    if (k === 'toolResponse') return onToolResponse(c, msg.toolResponse);
    /* contextUpdate: accepted, nothing to do */
  } catch (e) {
    if (e instanceof Reject) return reject(c, e);
    throw e;
  }
}

/* ---- script ---- */

function fire(c, on, id) {
  for (const r of SCRIPT.rules || []) {
    if (r.on !== on) continue;
    if (r.conn !== undefined && r.conn !== c.n) continue;
    if (r.resumed !== undefined && !!r.resumed !== !!c.resumed) continue;
    if (on === 'audio' && c.audioMs < (r.ms || 0)) continue;
    if (on === 'tool_response' && r.id !== undefined && r.id !== id) continue;
    r._fired = r._fired || new Map();
    const key = r.per_conn === false ? 0 : c.n;
    const times = r.times === undefined ? 1 : r.times;
    const n = r._fired.get(key) || 0;
    if (times >= 0 && n >= times) continue;
    r._fired.set(key, n + 1);
    runSteps(c, r.do || []);
  }
}

const sleep = (ms) => new Promise((res) => setTimeout(res, ms));

function toneMessages(spec) {
  const rate = spec.rate || 24000, hz = spec.hz || 440, amp = spec.amp || 8000;
  const total = Math.round((spec.ms || 500) * rate / 1000);
  const chunk = Math.max(1, Math.round((spec.chunk_ms || 40) * rate / 1000));
  const mime = spec.mime || `audio/pcm;rate=${rate}`;
  const pcm = Buffer.alloc(total * 2);
  const phase0 = spec.phase || 0;
  for (let i = 0; i < total; i++)
    pcm.writeInt16LE(Math.round(amp * Math.sin(2 * Math.PI * hz * (i + phase0) / rate)), i * 2);
  const out = [];
  let off = 0;
  let odd = !!spec.odd;
  while (off < pcm.length) {
    let len = chunk * 2 + (odd ? 1 : 0);
    if (spec.odd) odd = !odd;     // 2n+1, 2n-1, ... bytes: samples split across messages
    len = Math.min(len, pcm.length - off);
    out.push({ serverContent: { modelTurn: { parts: [{ inlineData: { mimeType: mime,
      data: pcm.subarray(off, off + len).toString('base64') } }] } } });
    off += len;
  }
  return out;
}

async function runSteps(c, steps) {
  for (const st of steps) {
    if (st.wait) await sleep(st.wait);
    if (c.ws.readyState !== 1) return;
    await runStep(c, st);
  }
}

async function runStep(c, st) {
  if (st.tone) {
    for (const m of toneMessages(st.tone)) send(c, m, st.tone.binary);
    if (st.tone.turn_complete) { send(c, { serverContent: { turnComplete: true } }); issueHandle(c, true); }
  }
  if (st.tool_call || st.calls) {
    const calls = st.calls || [st.tool_call];
    for (const fc of calls)   // malformed entries (null, numbers, bad ids) are sent as given
      if (fc && typeof fc.id === 'string' && fc.id)
        c.session.pending.set(fc.id, { name: typeof fc.name === 'string' && /^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$/.test(fc.name) ? fc.name : null });
    send(c, { toolCall: { functionCalls: calls } });
    issueHandle(c, false);
  }
  if (st.cancel) {
    for (const id of st.cancel) { c.session.pending.delete(id); c.session.cancelled.add(id); }
    send(c, { toolCallCancellation: { ids: st.cancel } });
  }
  if (st.interrupted) {
    send(c, { serverContent: { interrupted: true } });
    send(c, { serverContent: { turnComplete: true } });
  }
  if (st.turn_complete) { send(c, { serverContent: { turnComplete: true } }); issueHandle(c, true); }
  if (st.transcript) {
    if (st.transcript.in) send(c, { serverContent: { inputTranscription: { text: st.transcript.in } } });
    if (st.transcript.out) send(c, { serverContent: { outputTranscription: { text: st.transcript.out } } });
  }
  if (st.handle) issueHandle(c, true);
  if (st.forget_handles) handles.clear();
  if (st.usage) send(c, { usageMetadata: st.usage });
  if (st.send) send(c, st.send, false);
  if (st.send_binary) send(c, st.send_binary, true);
  if (st.raw !== undefined) { log({ conn: c.n, dir: 'out', raw: st.raw }); c.ws.send(st.raw); }
  if (st.go_away) {
    const ms = st.go_away.time_left_ms || 1000;
    send(c, { goAway: { timeLeft: `${ms / 1000}s` } });
    setTimeout(() => closeWith(c, 1001, 'Session duration limit reached.'), ms);
  }
  if (st.close) closeWith(c, st.close.code || 1000, st.close.reason || '');
  if (st.drop) { c.closedBy = 'server-drop'; c.ws._socket && c.ws._socket.destroy(); }
}

/* ---- server ---- */

const PATH_RE = /^\/ws\/google\.ai\.generativelanguage\.(v1beta|v1alpha|v1)\.GenerativeService\.BidiGenerateContent$/;

const TLS_CERT = arg('tls-cert', null), TLS_KEY = arg('tls-key', null);
const handler = (req, res) => {
  const u = new URL(req.url, 'http://x');
  if (req.method === 'GET' && u.pathname === '/health') {
    res.writeHead(200, { 'content-type': 'application/json' });
    return res.end('{"ok":true}');
  }
  if (req.method === 'GET' && u.pathname === '/log') {
    res.writeHead(200, { 'content-type': 'application/json' });
    return res.end(JSON.stringify(records));
  }
  const am = /^\/audio\/(\d+|last)$/.exec(u.pathname);
  if (req.method === 'GET' && am) {
    const c = conns.get(am[1] === 'last' ? nconn : parseInt(am[1], 10));
    if (!c) { res.writeHead(404); return res.end(); }
    res.writeHead(200, { 'content-type': 'application/json' });
    return res.end(JSON.stringify(analyse(c)));
  }
  const m = /^\/control\/(\d+|last)$/.exec(u.pathname);
  if (req.method === 'POST' && m) {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      let steps;
      try { steps = JSON.parse(body); } catch (_) { res.writeHead(400); return res.end('bad json'); }
      const n = m[1] === 'last' ? nconn : parseInt(m[1], 10);
      const c = conns.get(n);
      if (!c || c.ws.readyState !== 1) { res.writeHead(409); return res.end('no such open connection'); }
      runSteps(c, Array.isArray(steps) ? steps : [steps]).then(() => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ ok: true, conn: n }));
      });
    });
    return;
  }
  res.writeHead(404);
  res.end();
};
/* --tls-cert/--tls-key: serve wss:// (and https) like Google, with the given certificate. */
const server = TLS_CERT
  ? require('https').createServer({ cert: fs.readFileSync(TLS_CERT), key: fs.readFileSync(TLS_KEY) }, handler)
  : http.createServer(handler);

const wss = new WebSocketServer({ noServer: true, maxPayload: 16 << 20 });

server.on('upgrade', (req, socket, head) => {
  const u = new URL(req.url, 'http://x');
  const m = PATH_RE.exec(u.pathname);
  const n = ++nconn;
  const qkey = u.searchParams.get('key');
  const hkey = req.headers['x-goog-api-key'];
  const keyVia = qkey !== null ? 'query' : hkey !== undefined ? 'header' : 'none';
  const key = qkey !== null ? qkey : hkey;
  u.searchParams.delete('key');
  log({ conn: n, kind: 'handshake', version: m ? m[1] : null, key_via: keyVia, key_ok: key === KEY,
    path: u.pathname + u.search, protocol: req.headers['sec-websocket-protocol'] || null });
  const status = SCRIPT.handshake_status || (m ? 0 : 404);
  if (status) {
    socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status] || 'Error'}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    const c = { n, ws, version: m[1], keyVia, keyOk: key === KEY, audioMs: 0,
      pcm: Buffer.alloc(0), pcmLen: 0, rate: 0 };
    conns.set(n, c);
    ws.on('message', (data, isBinary) => {
      try { onMessage(c, data, isBinary); } catch (e) {
        log({ conn: n, kind: 'internal_error', error: String(e && e.stack || e) });
        closeWith(c, 1011, 'Internal error occurred.');
      }
    });
    ws.on('close', (code, reason) => {
      log({ conn: n, kind: 'closed', code, reason: reason.toString(), by: c.closedBy || 'client' });
    });
    ws.on('error', () => {});
  });
});

server.listen(PORT, HOST, () => {
  process.stdout.write(JSON.stringify({ listening: server.address().port }) + '\n');
});
process.on('SIGTERM', () => process.exit(0));
