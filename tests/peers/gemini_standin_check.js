#!/usr/bin/env node
/*
 * gemini_standin_check.js - proves the Gemini stand-in rejects what Google rejects (so the
 * provider tests that pass against it mean something). Starts gemini_standin.js on a free
 * port, runs one case per connection, prints one line per case and exits 0 only when every
 * case got the expected close code (or handshake status, or acceptance). Test-only.
 *
 *   node gemini_standin_check.js
 */
'use strict';

const { spawn } = require('child_process');
const path = require('path');
const WebSocket = require('ws');

const KEY = 'check-key';
const GOOD_SETUP = {
  model: 'models/gemini-3.8-live',
  generationConfig: { responseModalities: ['AUDIO'],
    speechConfig: { voiceConfig: { prebuiltVoiceConfig: { voiceName: 'Kore' } } } },
  systemInstruction: { parts: [{ text: 'Speak British English.' }] },
  tools: [{ functionDeclarations: [{ name: 'check_requirements', description: 'x', behavior: 'BLOCKING',
    parameters: { type: 'OBJECT', properties: { claim_reference: { type: 'STRING' } },
      required: ['claim_reference'] } }] }],
  realtimeInputConfig: { automaticActivityDetection: { disabled: false, silenceDurationMs: 600 },
    activityHandling: 'START_OF_ACTIVITY_INTERRUPTS' },
  inputAudioTranscription: {}, outputAudioTranscription: {},
  contextWindowCompression: { slidingWindow: {} }, sessionResumption: {},
};
const clone = (o) => JSON.parse(JSON.stringify(o));
function setupWith(fn) { const s = clone(GOOD_SETUP); fn(s); return { setup: s }; }
function params(fn) { return setupWith((s) => fn(s.tools[0].functionDeclarations[0].parameters)); }
const audio = (mime, data) => ({ realtimeInput: { audio: { mimeType: mime, data } } });
const PCM = Buffer.alloc(640).toString('base64');

const CASES = [
  ['valid setup, then audio and a greeting', { msgs: [{ setup: GOOD_SETUP }, audio('audio/pcm;rate=16000', PCM),
    { clientContent: { turns: [{ role: 'user', parts: [{ text: 'Greet the caller' }] }], turnComplete: true } }],
  expect: 'open', setupComplete: true }],
  ['realtimeInput before setup', { msgs: [audio('audio/pcm;rate=16000', PCM)], expect: 1007 }],
  ['second setup', { msgs: [{ setup: GOOD_SETUP }, { setup: GOOD_SETUP }], expect: 1007 }],
  ['wrong key', { key: 'nope', msgs: [{ setup: GOOD_SETUP }], expect: 1007, reason: /API key not valid/ }],
  ['no key', { key: null, msgs: [{ setup: GOOD_SETUP }], expect: 1008 }],
  ['setup without model', { msgs: [setupWith((s) => delete s.model)], expect: 1007 }],
  ['unknown model', { msgs: [setupWith((s) => { s.model = 'models/gemini-2.0-flash-live-001'; })],
    expect: 1008, reason: /not found for API version/ }],
  ['unknown setup field', { msgs: [setupWith((s) => { s.foo = 1; })], expect: 1007, reason: /Unknown name "foo"/ }],
  ['snake_case setup field', { msgs: [setupWith((s) => { s.generation_config = s.generationConfig; delete s.generationConfig; })],
    expect: 1007 }],
  ['languageCode on a native-audio model', { msgs: [setupWith((s) => { s.generationConfig.speechConfig.languageCode = 'en-GB'; })],
    expect: 1007, reason: /Unsupported language code/ }],
  ['enableAffectiveDialog on gemini-3.8-live', { msgs: [setupWith((s) => { s.generationConfig.enableAffectiveDialog = true; })],
    expect: 1007 }],
  ['thinkingConfig on gemini-3.8-live', { msgs: [setupWith((s) => { s.generationConfig.thinkingConfig = { thinkingBudget: 0 }; })],
    expect: 1007 }],
  ['proactivity on gemini-3.8-live', { msgs: [setupWith((s) => { s.proactivity = { proactiveAudio: true }; })], expect: 1007 }],
  ['TEXT response modality', { msgs: [setupWith((s) => { s.generationConfig.responseModalities = ['TEXT']; })], expect: 1007 }],
  ['lower-case schema type', { msgs: [params((p) => { p.properties.claim_reference.type = 'string'; })], expect: 1007 }],
  ['additionalProperties in a schema', { msgs: [params((p) => { p.additionalProperties = false; })], expect: 1007 }],
  ['required name not in properties', { msgs: [params((p) => { p.required.push('nope'); })], expect: 1007 }],
  ['unsupported string format', { msgs: [params((p) => { p.properties.claim_reference.format = 'email'; })], expect: 1007 }],
  ['enum on a non-STRING', { msgs: [params((p) => { p.properties.n = { type: 'INTEGER', enum: ['1'] }; })], expect: 1007 }],
  ['bad behavior value', { msgs: [setupWith((s) => { s.tools[0].functionDeclarations[0].behavior = 'blocking'; })], expect: 1007 }],
  ['unknown resumption handle', { msgs: [setupWith((s) => { s.sessionResumption = { handle: 'never-issued' }; })],
    expect: 1008, reason: /session not found/ }],
  ['unknown top-level key', { msgs: [{ setup: GOOD_SETUP }, { tool_response: {} }], expect: 1007 }],
  ['two top-level keys', { msgs: [{ setup: GOOD_SETUP }, Object.assign(audio('audio/pcm;rate=16000', PCM), { clientContent: {} })],
    expect: 1007 }],
  ['u-law audio', { msgs: [{ setup: GOOD_SETUP }, audio('audio/x-mulaw', PCM)], expect: 1007 }],
  ['odd PCM byte count', { msgs: [{ setup: GOOD_SETUP }, audio('audio/pcm;rate=16000', Buffer.alloc(3).toString('base64'))],
    expect: 1007 }],
  ['toolResponse for an unknown id', { msgs: [{ setup: GOOD_SETUP }, { toolResponse: { functionResponses: [
    { id: 'fc_x', name: 'check_requirements', response: { output: {} } }] } }], expect: 1007 }],
  ['toolResponse for a cancelled id', { msgs: [{ setup: GOOD_SETUP }], control: [
    { tool_call: { id: 'fc_c', name: 'check_requirements', args: { claim_reference: 'RMC-1001' } } }, { cancel: ['fc_c'] }],
  after: [{ toolResponse: { functionResponses: [{ id: 'fc_c', name: 'check_requirements', response: { output: {} } }] } }],
  expect: 1007 }],
  ['toolResponse with a string response', { msgs: [{ setup: GOOD_SETUP }], control: [
    { tool_call: { id: 'fc_s', name: 'check_requirements', args: {} } }],
  after: [{ toolResponse: { functionResponses: [{ id: 'fc_s', name: 'check_requirements', response: 'done' } ] } }],
  expect: 1007 }],
  ['not JSON', { msgs: [{ setup: GOOD_SETUP }, '{nope'], expect: 1007 }],
  ['wrong path', { path: '/ws/google.ai.generativelanguage.v1beta.GenerativeService.Nope', expect: 'http404' }],
];

function startPeer() {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [path.join(__dirname, 'gemini_standin.js'), '--port', '0', '--key', KEY],
      { stdio: ['pipe', 'pipe', 'inherit'] });
    p.stdout.once('data', (d) => { try { resolve({ p, port: JSON.parse(d.toString()).listening }); } catch (e) { reject(e); } });
    p.on('error', reject);
  });
}

async function control(port, steps) {
  const http = require('http');
  await new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/control/last', method: 'POST' }, (res) => { res.resume(); res.on('end', resolve); });
    req.end(JSON.stringify(steps));
  });
}

function runCase(port, c) {
  return new Promise((resolve) => {
    const p = c.path || '/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent';
    const q = c.key === null ? '' : `?key=${c.key || KEY}`;
    const ws = new WebSocket(`ws://127.0.0.1:${port}${p}${q}`);
    let setupComplete = false, done = false;
    const finish = (r) => { if (!done) { done = true; clearTimeout(timer); try { ws.terminate(); } catch (_) {} resolve(r); } };
    const timer = setTimeout(() => finish({ got: 'open', setupComplete }), 500);
    ws.on('unexpected-response', (req, res) => finish({ got: `http${res.statusCode}` }));
    ws.on('error', () => {});
    ws.on('message', async (d) => {
      const m = JSON.parse(d.toString());
      if (m.setupComplete) {
        setupComplete = true;
        if (c.control) {
          await control(port, c.control);
          for (const x of c.after || []) ws.send(JSON.stringify(x));
        }
      }
    });
    ws.on('close', (code, reason) => finish({ got: code, reason: reason.toString(), setupComplete }));
    ws.on('open', () => { for (const m of c.msgs || []) ws.send(typeof m === 'string' ? m : JSON.stringify(m)); });
  });
}

(async () => {
  const { p, port } = await startPeer();
  let failed = 0;
  for (const [name, c] of CASES) {
    const r = await runCase(port, c);
    let ok = r.got === c.expect && (!c.reason || c.reason.test(r.reason || '')) &&
      (c.setupComplete === undefined || r.setupComplete === c.setupComplete);
    if (!ok) failed++;
    console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}: got ${r.got}${r.reason ? ` "${r.reason}"` : ''}` +
      `${ok ? '' : ` (expected ${c.expect})`}`);
  }
  p.kill('SIGTERM');
  console.log(failed ? `${failed} case(s) failed` : `all ${CASES.length} cases as expected`);
  process.exit(failed ? 1 : 0);
})();
