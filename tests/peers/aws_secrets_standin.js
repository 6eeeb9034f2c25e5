#!/usr/bin/env node
// aws_secrets_standin.js - a loopback stand-in for AWS Secrets Manager
// GetSecretValue (JSON 1.1 protocol, Signature Version 4).
//
// It does what the real endpoint does with a request and rejects what it
// would reject: it RECOMPUTES the SigV4 signature from the request it
// received (canonical request -> string to sign -> signing key derived from
// the secret key it was started with) and compares it with the one in the
// Authorization header.
//   - not POST /, wrong Content-Type           -> 400/404 like AWS
//   - X-Amz-Target other than GetSecretValue     -> 400 UnknownOperationException
//   - no/garbled Authorization, no X-Amz-Date    -> 400 MissingAuthenticationTokenException
//                                                   / IncompleteSignatureException
//   - unknown access key id, missing/wrong session token
//                                                -> 400 UnrecognizedClientException
//   - wrong scope (date, region, service), X-Amz-Date more than 5 minutes
//     off, host, content-type or x-amz-* headers left unsigned, signature
//     mismatch
//                                                -> 400 InvalidSignatureException
//   - body not JSON / no SecretId                -> 400 ValidationException
//   - unknown secret                             -> 400 ResourceNotFoundException
//   - otherwise 200 {ARN, Name, VersionId, SecretString, VersionStages, CreatedDate}
//   - SecretId "hang": no answer at all (to prove the client's timeouts)
//
// Usage: node aws_secrets_standin.js PORT CONFIG.json
//        node aws_secrets_standin.js --selftest   (AWS's get-vanilla vector)
//   CONFIG: {"accessKeyId": "...", "secretAccessKey": "...", "region": "eu-west-2",
//            "sessionToken": "" , "secrets": {"name": {"K": "V"} | "raw SecretString"}}
// Logs one line per request on stdout: REQ {"n":..,"status":..,"type":..}
// (never a secret value). Node 20 built-ins only; binds 127.0.0.1.
'use strict';
const http = require('http');
const crypto = require('crypto');
const fs = require('fs');

const service = 'secretsmanager';
let n = 0;

const sha256hex = (b) => crypto.createHash('sha256').update(b).digest('hex');
const hmac = (k, s) => crypto.createHmac('sha256', k).update(s, 'utf8').digest();

// RFC 3986 encoding as SigV4 wants it (each path segment / query part).
function uriEncode(s) {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

function canonicalQuery(q) {
  if (!q) return '';
  return q.split('&').filter((p) => p.length).map((p) => {
    const i = p.indexOf('=');
    const k = decodeURIComponent(i < 0 ? p : p.slice(0, i));
    const v = decodeURIComponent(i < 0 ? '' : p.slice(i + 1));
    return [uriEncode(k), uriEncode(v)];
  }).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`).join('&');
}

// SigV4: canonical request -> string to sign -> signature with the derived key.
// hv: lower-case header name -> value as received (trimmed, spaces collapsed).
function sigv4({method, path, query, hv, signedHeaders, body, amzDate, scopeDate, region, svc, secretKey}) {
  const signed = signedHeaders.split(';');
  const canonicalHeaders = signed.map((h) => `${h}:${hv[h]}\n`).join('');
  const canonicalUri = path.split('/').map((seg) => uriEncode(decodeURIComponent(seg))).join('/');
  const canonicalRequest = [method, canonicalUri, canonicalQuery(query), canonicalHeaders,
    signedHeaders, sha256hex(body)].join('\n');
  const scope = `${scopeDate}/${region}/${svc}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256hex(canonicalRequest)].join('\n');
  let key = hmac('AWS4' + secretKey, scopeDate);
  key = hmac(key, region);
  key = hmac(key, svc);
  key = hmac(key, 'aws4_request');
  return {canonicalRequest, stringToSign,
    signature: crypto.createHmac('sha256', key).update(stringToSign, 'utf8').digest('hex')};
}

// AWS SigV4 test suite, "get-vanilla": proves sigv4() above before any request is judged.
function selftest() {
  const r = sigv4({method: 'GET', path: '/', query: '', body: Buffer.alloc(0),
    hv: {host: 'example.amazonaws.com', 'x-amz-date': '20150830T123600Z'},
    signedHeaders: 'host;x-amz-date', amzDate: '20150830T123600Z', scopeDate: '20150830',
    region: 'us-east-1', svc: 'service', secretKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY'});
  return r.signature === '5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31';
}

if (process.argv[2] === '--selftest') {
  const ok = selftest();
  process.stdout.write(ok ? 'SELFTEST OK\n' : 'SELFTEST FAILED\n');
  process.exit(ok ? 0 : 1);
}
if (!selftest()) {
  process.stderr.write('aws_secrets_standin: SigV4 self-test failed\n');
  process.exit(1);
}

const port = parseInt(process.argv[2] || '0', 10);
const conf = JSON.parse(fs.readFileSync(process.argv[3], 'utf8'));

function awsError(status, type, message, messageKey = 'message') {
  return {status, body: {__type: type, [messageKey]: message}};
}

// Parse "AWS4-HMAC-SHA256 Credential=AK/20261124/eu-west-2/secretsmanager/aws4_request,
//        SignedHeaders=a;b;c, Signature=hex"
function parseAuth(h) {
  const m = /^AWS4-HMAC-SHA256 (.*)$/.exec(h || '');
  if (!m) return null;
  const parts = {};
  for (const kv of m[1].split(/,\s*/)) {
    const i = kv.indexOf('=');
    if (i > 0) parts[kv.slice(0, i).trim()] = kv.slice(i + 1).trim();
  }
  if (!parts.Credential || !parts.SignedHeaders || !parts.Signature) return null;
  return parts;
}

function check(req, rawHeaders, body) {
  const [path, query] = req.url.split('?');
  if (req.method !== 'POST' || path !== '/') {
    return {status: 404, body: {__type: 'UnknownOperationException'}};
  }
  const target = req.headers['x-amz-target'];
  const ctype = (req.headers['content-type'] || '').split(';')[0].trim();
  if (ctype !== 'application/x-amz-json-1.1') {
    // AWS answers an unsupported content type for JSON protocols with 400
    return awsError(400, 'UnknownOperationException', 'Unsupported content type');
  }
  const auth = req.headers['authorization'];
  if (!auth) {
    return awsError(400, 'MissingAuthenticationTokenException', 'Missing Authentication Token');
  }
  const a = parseAuth(auth);
  if (!a) {
    return awsError(400, 'IncompleteSignatureException',
      `Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters. Authorization=${auth.split(' ')[0]}`);
  }
  const amzDate = req.headers['x-amz-date'];
  if (!amzDate || !/^\d{8}T\d{6}Z$/.test(amzDate)) {
    return awsError(400, 'IncompleteSignatureException', 'Authorization header requires existence of either a \'X-Amz-Date\' or a \'Date\' header.');
  }
  const [akid, scopeDate, scopeRegion, scopeService, term] = a.Credential.split('/');
  if (akid !== conf.accessKeyId) {
    return awsError(400, 'UnrecognizedClientException', 'The security token included in the request is invalid.');
  }
  const token = req.headers['x-amz-security-token'];
  if ((conf.sessionToken || '') !== (token || '')) {
    return awsError(400, 'UnrecognizedClientException', 'The security token included in the request is invalid.');
  }
  if (scopeDate !== amzDate.slice(0, 8) || scopeRegion !== conf.region || scopeService !== service || term !== 'aws4_request') {
    return awsError(400, 'InvalidSignatureException', `Credential should be scoped to a valid region, service or date. (${scopeDate}/${scopeRegion}/${scopeService})`);
  }
  const t = Date.UTC(+amzDate.slice(0, 4), +amzDate.slice(4, 6) - 1, +amzDate.slice(6, 8),
    +amzDate.slice(9, 11), +amzDate.slice(11, 13), +amzDate.slice(13, 15));
  if (Math.abs(Date.now() - t) > 5 * 60 * 1000) {
    return awsError(400, 'InvalidSignatureException', 'Signature expired: ' + amzDate + ' is now earlier or later than the allowed window.');
  }
  const signed = a.SignedHeaders.split(';');
  const sortedSigned = [...signed].sort();
  if (signed.join(';') !== sortedSigned.join(';') || !signed.includes('host') ||
      !signed.includes('x-amz-date') ||
      (token && !signed.includes('x-amz-security-token')) ||
      (target && !signed.includes('x-amz-target')) ||
      (req.headers['content-type'] && !signed.includes('content-type'))) {
    return awsError(400, 'InvalidSignatureException', 'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.');
  }
  // Canonical headers from the raw header list (values trimmed, inner runs of spaces collapsed,
  // repeated headers joined by ',').
  const hv = {};
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const k = rawHeaders[i].toLowerCase();
    const v = rawHeaders[i + 1].trim().replace(/\s+/g, ' ');
    hv[k] = k in hv ? hv[k] + ',' + v : v;
  }
  for (const h of signed) {
    if (!(h in hv)) {
      return awsError(400, 'InvalidSignatureException', 'The request signature we calculated does not match the signature you provided.');
    }
  }
  const {canonicalRequest, stringToSign, signature: want} = sigv4({method: req.method, path,
    query, hv, signedHeaders: a.SignedHeaders, body, amzDate, scopeDate, region: scopeRegion,
    svc: scopeService, secretKey: conf.secretAccessKey});
  const got = a.Signature;
  if (got.length !== want.length || !crypto.timingSafeEqual(Buffer.from(got), Buffer.from(want))) {
    return awsError(400, 'InvalidSignatureException',
      'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.\n\nThe Canonical String for this request should have been\n\'' +
      canonicalRequest + '\'\n\nThe String-to-Sign should have been\n\'' + stringToSign + '\'\n');
  }
  if (target !== 'secretsmanager.GetSecretValue') {
    return awsError(400, 'UnknownOperationException', undefined);
  }
  let input;
  try {
    input = JSON.parse(body.toString('utf8'));
  } catch (e) {
    return awsError(400, 'SerializationException', 'Start of structure or map found where not expected.', 'Message');
  }
  if (!input || typeof input.SecretId !== 'string' || !input.SecretId.length) {
    return awsError(400, 'ValidationException', "1 validation error detected: Value null at 'secretId' failed to satisfy constraint: Member must not be null");
  }
  const id = input.SecretId;
  const name = id.startsWith('arn:') ? id.split(':secret:')[1]?.replace(/-[A-Za-z0-9]{6}$/, '') : id;
  if (!name || !Object.prototype.hasOwnProperty.call(conf.secrets, name)) {
    return awsError(400, 'ResourceNotFoundException', "Secrets Manager can't find the specified secret.", 'Message');
  }
  const v = conf.secrets[name];
  return {status: 200, body: {
    ARN: `arn:aws:secretsmanager:${conf.region}:123456789012:secret:${name}-AbCdEf`,
    CreatedDate: 1.764e9,
    Name: name,
    SecretString: typeof v === 'string' ? v : JSON.stringify(v),
    VersionId: 'EXAMPLE1-90ab-cdef-fedc-ba987EXAMPLE',
    VersionStages: ['AWSCURRENT'],
  }};
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    if (body.includes('"SecretId":"hang"')) {   // scripted: never answer (client timeouts)
      process.stdout.write('REQ {"type":"hang"}\n');
      return;
    }
    let r;
    try {
      r = check(req, req.rawHeaders, body);
    } catch (e) {
      r = {status: 500, body: {__type: 'InternalServiceError', message: String(e && e.message)}};
    }
    n++;
    const line = {n, status: r.status, type: r.body.__type || 'ok',
      target: req.headers['x-amz-target'] || null,
      signed: (parseAuth(req.headers['authorization']) || {}).SignedHeaders || null,
      token: 'x-amz-security-token' in req.headers};
    process.stdout.write('REQ ' + JSON.stringify(line) + '\n');
    const out = JSON.stringify(r.body);
    res.writeHead(r.status, {
      'Content-Type': 'application/x-amz-json-1.1',
      'Content-Length': Buffer.byteLength(out),
      'x-amzn-RequestId': crypto.randomUUID(),
    });
    res.end(out);
  });
});

server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`READY ${server.address().port}\n`);
});
process.on('SIGTERM', () => process.exit(0));   // hung requests must not hold the exit
