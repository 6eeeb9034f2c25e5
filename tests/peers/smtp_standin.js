#!/usr/bin/env node
// smtp_standin.js - a loopback SMTP server (RFC 5321 subset) standing in for
// the mail relay: EHLO/HELO, optional AUTH PLAIN/LOGIN, MAIL FROM, RCPT TO,
// DATA (dot-unstuffed, ends at CRLF.CRLF), RSET, NOOP, QUIT. It does not
// offer STARTTLS, so a client that requires TLS must give up.
//
// Every accepted message is written to DIR/msg-N.eml (the DATA content)
// and DIR/msg-N.json ({"from":..,"rcpt":[..],"auth":..}). Commands out of
// order get 503, unknown ones 502, as a real server answers.
//
// Usage: node smtp_standin.js PORT DIR [USER:PASS]
'use strict';
const net = require('net');
const fs = require('fs');
const path = require('path');

const port = parseInt(process.argv[2] || '0', 10);
const dir = process.argv[3] || '.';
const creds = process.argv[4] || '';
let nmsg = 0;

const server = net.createServer((sock) => {
  let buf = '';
  let st = {helo: false, from: null, rcpt: [], auth: null, data: false, lines: [], authStep: null};
  const say = (s) => sock.write(s + '\r\n');
  say('220 standin.local ESMTP ready');

  function reset() { st.from = null; st.rcpt = []; st.data = false; st.lines = []; }

  function finishData() {
    nmsg++;
    const body = st.lines.map((l) => (l.startsWith('..') ? l.slice(1) : l)).join('\r\n') + '\r\n';
    fs.writeFileSync(path.join(dir, `msg-${nmsg}.eml`), body);
    fs.writeFileSync(path.join(dir, `msg-${nmsg}.json`), JSON.stringify({from: st.from, rcpt: st.rcpt, auth: st.auth}));
    reset();
    say(`250 2.0.0 Ok: queued as ${nmsg}`);
  }

  function checkPlain(b64) {
    const parts = Buffer.from(b64, 'base64').toString('utf8').split('\0');
    return parts.length === 3 && `${parts[1]}:${parts[2]}` === creds ? parts[1] : null;
  }

  function line(l) {
    if (st.data) {
      if (l === '.') { st.data = false; return finishData(); }
      st.lines.push(l);
      return;
    }
    if (st.authStep) {
      const step = st.authStep;
      if (step.kind === 'login-user') { step.user = Buffer.from(l, 'base64').toString('utf8'); step.kind = 'login-pass'; return say('334 UGFzc3dvcmQ6'); }
      st.authStep = null;
      if (step.kind === 'login-pass') {
        const pass = Buffer.from(l, 'base64').toString('utf8');
        if (`${step.user}:${pass}` === creds) { st.auth = step.user; return say('235 2.7.0 Authentication successful'); }
        return say('535 5.7.8 Authentication credentials invalid');
      }
      const u = checkPlain(l);
      if (u) { st.auth = u; return say('235 2.7.0 Authentication successful'); }
      return say('535 5.7.8 Authentication credentials invalid');
    }
    const m = /^(\S+)\s*(.*)$/.exec(l);
    const cmd = m ? m[1].toUpperCase() : '';
    const arg = m ? m[2] : '';
    switch (cmd) {
      case 'EHLO':
        st.helo = true; reset();
        sock.write('250-standin.local\r\n250-SIZE 1048576\r\n250-8BITMIME\r\n' +
                   (creds ? '250-AUTH PLAIN LOGIN\r\n' : '') + '250 SMTPUTF8\r\n');
        return;
      case 'HELO': st.helo = true; reset(); return say('250 standin.local');
      case 'AUTH': {
        if (!creds) return say('503 5.5.1 AUTH not available');
        const [mech, initial] = arg.split(/\s+/);
        if (/^PLAIN$/i.test(mech)) {
          if (initial) {
            const u = checkPlain(initial);
            if (u) { st.auth = u; return say('235 2.7.0 Authentication successful'); }
            return say('535 5.7.8 Authentication credentials invalid');
          }
          st.authStep = {kind: 'plain'}; return say('334 ');
        }
        if (/^LOGIN$/i.test(mech)) { st.authStep = {kind: 'login-user'}; return say('334 VXNlcm5hbWU6'); }
        return say('504 5.5.4 Unrecognized authentication type');
      }
      case 'MAIL': {
        if (!st.helo) return say('503 5.5.1 Error: send HELO/EHLO first');
        if (creds && !st.auth) return say('530 5.7.0 Authentication required');
        const a = /^FROM:\s*<([^>]*)>/i.exec(arg);
        if (!a) return say('501 5.5.4 Syntax: MAIL FROM:<address>');
        st.from = a[1]; return say('250 2.1.0 Ok');
      }
      case 'RCPT': {
        if (st.from === null) return say('503 5.5.1 Error: need MAIL command');
        const a = /^TO:\s*<([^>]+)>/i.exec(arg);
        if (!a) return say('501 5.5.4 Syntax: RCPT TO:<address>');
        st.rcpt.push(a[1]); return say('250 2.1.5 Ok');
      }
      case 'DATA':
        if (!st.rcpt.length) return say('503 5.5.1 Error: need RCPT command');
        st.data = true; return say('354 End data with <CR><LF>.<CR><LF>');
      case 'RSET': reset(); return say('250 2.0.0 Ok');
      case 'NOOP': return say('250 2.0.0 Ok');
      case 'QUIT': say('221 2.0.0 Bye'); return sock.end();
      case 'STARTTLS': return say('502 5.5.1 STARTTLS not offered');
      default: return say('502 5.5.2 Error: command not recognized');
    }
  }

  sock.on('data', (d) => {
    buf += d.toString('utf8');
    let i;
    while ((i = buf.indexOf('\r\n')) >= 0) {
      const l = buf.slice(0, i);
      buf = buf.slice(i + 2);
      line(l);
    }
  });
  sock.on('error', () => {});
});

server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`smtp_standin listening on 127.0.0.1:${server.address().port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
