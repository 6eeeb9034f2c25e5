#!/usr/bin/env node
/*
 * openai_standin_check.js - proves the OpenAI stand-in rejects what the real API rejects.
 * Usage: node openai_standin_check.js PORT KEY   (stand-in already running, empty script)
 * Prints one line per check; exits 0 only when every check passed. Test-only.
 */
'use strict';
const path = require('path');
const WebSocket = require(path.join(__dirname, 'node_modules', 'ws'));

const [port, key] = [process.argv[2], process.argv[3]];
const url = `ws://127.0.0.1:${port}/v1/realtime?model=gpt-realtime-2`;
let failed = 0;
const ok = (cond, what) => { console.log(`${cond ? 'ok  ' : 'FAIL'} ${what}`); if (!cond) failed++; };

/* Open a session; resolves {ws, next(type) -> first event of that type (or error)}. */
function session(headers) {
    return new Promise((resolve, reject) => {
        const ws = new WebSocket(url, { headers: { Authorization: `Bearer ${key}`, ...headers } });
        const queue = [], waiters = [];
        ws.on('message', (d) => {
            const ev = JSON.parse(d);
            const i = waiters.findIndex((w) => w.types.includes(ev.type));
            if (i >= 0) waiters.splice(i, 1)[0].resolve(ev); else queue.push(ev);
        });
        const next = (...types) => new Promise((res, rej) => {
            const i = queue.findIndex((e) => types.includes(e.type));
            if (i >= 0) return res(queue.splice(i, 1)[0]);
            const w = { types, resolve: res };
            waiters.push(w);
            setTimeout(() => rej(new Error(`timeout waiting for ${types}`)), 3000);
        });
        ws.on('open', () => resolve({ ws, next, queue }));
        ws.on('unexpected-response', (req, res) => reject(Object.assign(new Error('http'), { status: res.statusCode })));
        ws.on('error', reject);
    });
}

const GA = { type: 'realtime', model: 'gpt-realtime-2', output_modalities: ['audio'],
    audio: { input: { format: { type: 'audio/pcmu' }, turn_detection: { type: 'server_vad', create_response: true, interrupt_response: true } },
        output: { format: { type: 'audio/pcmu' }, voice: 'marin' } },
    tools: [{ type: 'function', name: 'check_claim_details', description: 'x', parameters: { type: 'object', properties: {} } }],
    tool_choice: 'auto' };

async function main() {
    /* wrong key -> 401 at the handshake */
    try { await session({ Authorization: 'Bearer sk-wrong' }); ok(false, 'wrong key refused'); } catch (e) { ok(e.status === 401, 'wrong key -> HTTP 401'); }

    /* beta header -> error beta_api_shape_disabled, close 4000 */
    {
        const s = await session({ 'OpenAI-Beta': 'realtime=v1' });
        const closed = new Promise((r) => s.ws.on('close', (c) => r(c)));
        const e = await s.next('error');
        ok(e.error.code === 'beta_api_shape_disabled', 'OpenAI-Beta -> beta_api_shape_disabled');
        ok(await closed === 4000, 'OpenAI-Beta -> close 4000');
    }

    const s = await session({});
    ok((await s.next('session.created')).session.audio.output.format.type === 'audio/pcm', 'default output format is audio/pcm 24k');
    const send = (o) => s.ws.send(typeof o === 'string' ? o : JSON.stringify(o));

    send('{"event_id":"x"}');
    ok((await s.next('error')).error.code === 'invalid_event', 'missing type -> invalid_event');
    send({ type: 'no.such.event' });
    ok((await s.next('error')).error.code === 'invalid_event', 'unknown type -> invalid_event');
    send('not json');
    ok((await s.next('error')).error.code === 'invalid_event', 'not JSON -> invalid_event');

    send({ type: 'session.update', event_id: 'b1', session: { type: 'realtime', input_audio_format: 'g711_ulaw', voice: 'marin' } });
    let e = await s.next('error', 'session.updated');
    ok(e.type === 'error' && e.error.code === 'unknown_parameter' && e.error.event_id === 'b1', 'beta session fields -> unknown_parameter (event_id echoed)');
    send({ type: 'session.update', session: { modalities: ['audio'] } });
    e = await s.next('error', 'session.updated');
    ok(e.type === 'error' && e.error.code === 'missing_required_parameter' && e.error.param === 'session.type', 'no session.type -> missing_required_parameter');
    send({ type: 'session.update', session: { type: 'realtime', audio: { output: { format: { type: 'audio/pcm' } } } } });
    e = await s.next('error', 'session.updated');
    ok(e.type === 'error' && e.error.param === 'session.audio.output.format.rate', 'audio/pcm without rate -> missing rate');

    send({ type: 'session.update', event_id: 'ga', session: GA });
    e = await s.next('error', 'session.updated');
    ok(e.type === 'session.updated' && e.session.audio.input.format.type === 'audio/pcmu' &&
        e.session.audio.output.format.type === 'audio/pcmu' && e.session.tools.length === 1, 'GA session.update -> session.updated with pcmu');

    send({ type: 'conversation.item.create', item: { type: 'function_call_output', call_id: 'call_nope', output: '{}' } });
    ok((await s.next('error')).error.param === 'item.call_id', 'function_call_output for unknown call_id -> error');
    send({ type: 'conversation.item.create', item: { type: 'message', role: 'assistant', content: [{ type: 'output_audio' }] } });
    ok((await s.next('error')).type === 'error', 'assistant audio item cannot be created');

    send({ type: 'response.create', event_id: 'r1' });
    send({ type: 'response.create', event_id: 'r2' });
    e = await s.next('error');
    ok(e.error.code === 'conversation_already_has_active_response' && e.error.event_id === 'r2', 'response.create while active -> conversation_already_has_active_response');
    const done = await s.next('response.done');
    const item = done.response.output.find((o) => o.type === 'message');
    send({ type: 'conversation.item.truncate', item_id: item.id, content_index: 0, audio_end_ms: 100000 });
    e = await s.next('error', 'conversation.item.truncated');
    ok(e.type === 'error' && /already shorter than/.test(e.error.message), 'truncate beyond generated audio -> error');
    send({ type: 'conversation.item.truncate', item_id: item.id, content_index: 0, audio_end_ms: 10 });
    ok((await s.next('error', 'conversation.item.truncated')).type === 'conversation.item.truncated', 'truncate within audio -> truncated');
    send({ type: 'response.cancel' });
    ok((await s.next('error')).error.code === 'response_cancel_not_active', 'cancel with nothing active -> response_cancel_not_active');
    send({ type: 'output_audio_buffer.clear' });
    ok((await s.next('error')).type === 'error', 'output_audio_buffer.clear refused on WebSocket');
    s.ws.close();
}

main().then(() => process.exit(failed ? 1 : 0), (e) => { console.log(`FAIL ${e.message}`); process.exit(1); });
