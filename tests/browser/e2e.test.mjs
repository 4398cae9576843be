// Real-browser end-to-end test of notify-gateway: spawns the server on free
// ports, opens its page in headless Chromium and drives it together with the
// gRPC admin API. Plain node script: exits 0 when every step passed.
//
//   npm ci && node e2e.test.mjs
//
// Environment:
//   NOTIFY_GATEWAY_BIN  server binary (default ../../build/notify-gateway)
//   CHROMIUM            browser binary (default /usr/bin/chromium)
//   SCREENSHOT          where to save a full-page screenshot at the end (optional)
//   HEADED=1            show the browser window

import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import path from 'node:path';
import readline from 'node:readline';

import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const BIN = process.env.NOTIFY_GATEWAY_BIN || path.resolve(here, '../../build/notify-gateway');
const PROTO = path.resolve(here, '../../proto/notify/v1/notification_service.proto');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SCREENSHOT = process.env.SCREENSHOT || '';

const TOTAL_TIMEOUT_MS = 55_000;   // the whole run
const STARTUP_TIMEOUT_MS = 10_000; // server "listening" line
const STEP_TIMEOUT_MS = 8_000;     // any single wait in the browser
const RPC_DEADLINE_MS = 5_000;     // any single gRPC call

const started = Date.now();
const log = (...args) => console.log(`[${((Date.now() - started) / 1000).toFixed(2)}s]`, ...args);

// ---------------------------------------------------------------- server --

let server = null;            // ChildProcess
const serverLog = [];         // last lines of its stderr, for failure reports

function startServer() {
  return new Promise((resolve, reject) => {
    const args = ['--ws-port', '0', '--grpc-port', '0', '--metrics-port', '0', '--log-format', 'json'];
    log(`starting ${BIN} ${args.join(' ')}`);
    server = spawn(BIN, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    const timer = setTimeout(() => reject(new Error(`no "listening" log line within ${STARTUP_TIMEOUT_MS} ms`)),
      STARTUP_TIMEOUT_MS);
    server.once('error', (err) => { clearTimeout(timer); reject(err); });
    server.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`server exited early (code ${code}, signal ${signal})`));
    });
    readline.createInterface({ input: server.stderr }).on('line', (line) => {
      serverLog.push(line);
      if (serverLog.length > 200) serverLog.shift();
      let entry;
      try { entry = JSON.parse(line); } catch { return; }
      if (entry.msg === 'listening') {
        clearTimeout(timer);
        resolve({ ws: entry.ws_port, grpc: entry.grpc_port, metrics: entry.metrics_port });
      }
    });
  });
}

// SIGTERM, then SIGKILL if it does not stop in time. Resolves to the exit status.
async function stopServer() {
  // Not started, or already gone (a startup failure, reported on its own).
  if (!server || server.exitCode !== null || server.signalCode !== null || !server.pid) return null;
  const exited = new Promise((resolve) => server.once('exit', (code, signal) => resolve({ code, signal })));
  server.kill('SIGTERM');
  const result = await Promise.race([exited, sleep(12_000).then(() => null)]);
  if (result) return result;
  log('server ignored SIGTERM for 12 s: SIGKILL');
  server.kill('SIGKILL');
  return { code: null, signal: 'SIGKILL', forced: true };
}

process.on('exit', () => {
  if (server && server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
});

// ------------------------------------------------------------------ gRPC --

function grpcClient(port) {
  const def = protoLoader.loadSync(PROTO, { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
  const { NotificationService } = grpc.loadPackageDefinition(def).notify.v1;
  return new NotificationService(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
}

function unary(client, method, request) {
  return new Promise((resolve, reject) => {
    client[method](request, { deadline: Date.now() + RPC_DEADLINE_MS }, (err, res) => {
      if (err) reject(new Error(`${method} failed: ${err.code} ${err.details || err.message}`));
      else resolve(res);
    });
  });
}

async function metric(port, name) {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(3000) });
  const text = await res.text();
  const line = text.split('\n').find((l) => l.startsWith(name + ' ') || l.startsWith(name + '{'));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : NaN;
}

async function until(what, fn, timeoutMs = STEP_TIMEOUT_MS) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

// ------------------------------------------------------------------ test --

let browser = null;
let client = null;
let stream = null;
const pageErrors = [];

async function run() {
  const ports = await startServer();
  log(`server listening: ws ${ports.ws}, grpc ${ports.grpc}, metrics ${ports.metrics}`);
  client = grpcClient(ports.grpc);

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: !process.env.HEADED,
    timeout: 15_000,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  const page = await context.newPage();
  page.on('pageerror', (err) => pageErrors.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => { if (msg.type() === 'error') pageErrors.push(`console error: ${msg.text()}`); });

  // 2. The page connects as the user named in the URL.
  await page.goto(`http://127.0.0.1:${ports.ws}/?user=alice`);
  assert.equal(await page.title(), 'notify-gateway');
  await page.getByText('Development identity mode: you choose your user id with ?user=, anyone can connect as anyone.')
    .waitFor();
  assert.equal(await page.getByLabel('User id').inputValue(), 'alice');
  const state = page.locator('#conn-state');
  await page.locator('#conn-state[data-state="connected"]').waitFor();
  const stateText = await state.textContent();
  assert.match(stateText, /Connected as alice/);
  const connectionId = /connection (\S+)/.exec(stateText)?.[1];
  assert.ok(connectionId, `no connection id in "${stateText}"`);
  assert.match(await page.locator('#try-notify').textContent(),
    /^grpcurl -plaintext -d '\{"user_ids":\["alice"\],.*' 127\.0\.0\.1:50051 notify\.v1\.NotificationService\/Notify$/);
  log(`ok 2 - page connected as alice (${connectionId})`);

  // 3. Notify reaches the page.
  const notified = await unary(client, 'Notify', {
    user_ids: ['alice'], notification: { event: 'like', data_json: '{"post":42,"by":"bob"}' },
  });
  assert.equal(notified.delivered_connections, 1, 'Notify delivered_connections');
  assert.ok(notified.id, 'Notify returned an id');
  const like = page.locator('.notification[data-event="like"]');
  await like.waitFor();
  assert.equal(await like.count(), 1);
  assert.equal(await like.getAttribute('data-id'), notified.id);
  const likeText = await like.textContent();
  assert.ok(likeText.includes('42') && likeText.includes('bob'), `notification text: ${likeText}`);
  log(`ok 3 - Notify ${notified.id} delivered to 1 connection and shown`);

  // 4. Topics: subscribe through the UI, then Broadcast to it and to another topic.
  await page.getByLabel('Topic', { exact: true }).fill('post:42');
  await page.getByRole('button', { name: 'Subscribe', exact: true }).click();
  await page.locator('#topic-list li[data-topic="post:42"][data-status="subscribed"]').waitFor();
  const broadcast = await unary(client, 'Broadcast', {
    topic: 'post:42', notification: { event: 'comment', data_json: '{"post":42,"text":"nice post"}' },
  });
  assert.equal(broadcast.delivered_connections, 1, 'Broadcast to post:42 delivered_connections');
  const comment = page.locator(`.notification[data-id="${broadcast.id}"]`);
  await comment.waitFor();
  assert.equal(await comment.getAttribute('data-event'), 'comment');
  const commentText = await comment.textContent();
  assert.ok(commentText.includes('post:42') && commentText.includes('nice post'), `broadcast text: ${commentText}`);
  assert.equal(await page.locator('.notification').first().getAttribute('data-id'), broadcast.id, 'newest on top');
  const other = await unary(client, 'Broadcast', {
    topic: 'post:43', notification: { event: 'comment', data_json: '{"post":43}' },
  });
  assert.equal(other.delivered_connections, 0, 'Broadcast to an unsubscribed topic delivered_connections');
  log('ok 4 - subscribed to post:42 via the UI; its broadcast shown, post:43 delivered to 0');

  // 5. A message typed in the page reaches a StreamClientMessages consumer and is acked.
  stream = client.StreamClientMessages({});
  const received = [];
  let streamError = null;
  stream.on('data', (m) => received.push(m));
  stream.on('error', (err) => { if (err.code !== grpc.status.CANCELLED) streamError = err; });
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('StreamClientMessages sent no headers')), RPC_DEADLINE_MS);
    stream.once('metadata', () => { clearTimeout(timer); resolve(); });
    stream.once('error', (err) => { clearTimeout(timer); reject(err); });
  });
  await until('notify_client_stream_consumers >= 1', async () => (await metric(ports.metrics, 'notify_client_stream_consumers')) >= 1);
  const sent = { msg: 'hello from the browser', n: 7, tags: ['a', 'b'] };
  await page.getByLabel(/Message data/).fill(JSON.stringify(sent, null, 2));
  await page.getByRole('button', { name: 'Send', exact: true }).click();
  await until('a message on the stream', () => received.length > 0 || streamError);
  if (streamError) throw streamError;
  const [upstream] = received;
  assert.equal(upstream.user_id, 'alice');
  assert.equal(upstream.connection_id, connectionId);
  assert.equal(upstream.data_json, JSON.stringify(sent), 'data_json is the compact JSON');
  assert.ok(upstream.id, 'message id');
  assert.match(upstream.client_message_id, /^\d+$/, 'client_message_id echoes the page\'s numeric id');
  const ack = page.locator('#send-replies li[data-kind="ack"]').first();
  await ack.waitFor();
  const ackText = await ack.textContent();
  assert.ok(ackText.includes(upstream.id) && ackText.includes(`#${upstream.client_message_id}`), `ack text: ${ackText}`);
  log(`ok 5 - message ${upstream.id} relayed to the stream and acked on the page`);

  // 6. Disconnect closes the page's connection with 4000 and it stays closed.
  const reason = 'removed by the e2e test';
  const disconnected = await unary(client, 'Disconnect', { user_ids: ['alice'], reason });
  assert.equal(disconnected.closed_connections, 1, 'Disconnect closed_connections');
  await page.locator('#conn-state[data-state="closed"][data-close-code="4000"]').waitFor();
  const closedText = await state.textContent();
  assert.ok(closedText.includes('4000') && closedText.includes(reason), `state after Disconnect: ${closedText}`);
  await sleep(2500); // longer than the first reconnect delay (1 s) and the second (2 s)
  assert.equal(await state.getAttribute('data-state'), 'closed', 'page state 2.5 s after Disconnect');
  const presence = await unary(client, 'GetPresence', { user_ids: ['alice'] });
  assert.equal(presence.connections.alice, 0, 'alice has no connection 2.5 s after Disconnect');
  const connectingLines = await page.locator('#log li.sys', { hasText: 'connecting to ' }).count();
  assert.equal(connectingLines, 1, 'the page opened exactly one connection');
  log('ok 6 - Disconnect: page shows close code 4000 and did not reconnect');

  // 7. Screenshot for a human to look at.
  if (SCREENSHOT) {
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    log(`ok 7 - screenshot saved to ${SCREENSHOT}`);
  } else {
    log('ok 7 - no SCREENSHOT set, skipped');
  }

  assert.deepEqual(pageErrors, [], 'no errors in the page');
}

async function cleanup() {
  try { stream?.cancel(); } catch { /* ignore */ }
  try { client?.close(); } catch { /* ignore */ }
  if (browser) await Promise.race([browser.close().catch(() => {}), sleep(5000)]);
  const status = await stopServer();
  return status;
}

let failed = false;
const watchdog = setTimeout(async () => {
  console.error(`FAIL: the test did not finish within ${TOTAL_TIMEOUT_MS} ms`);
  await Promise.race([cleanup(), sleep(3000)]);
  process.exit(1);
}, TOTAL_TIMEOUT_MS);

try {
  await run();
} catch (err) {
  failed = true;
  console.error(`FAIL: ${err.stack || err}`);
  if (pageErrors.length) console.error('page errors:\n  ' + pageErrors.join('\n  '));
}
const status = await cleanup();
clearTimeout(watchdog);
if (status && !(status.code === 0 && status.signal === null)) {
  failed = true;
  console.error(`FAIL: server did not shut down cleanly on SIGTERM: ${JSON.stringify(status)}`);
} else if (status) {
  log('ok 8 - server exited 0 after SIGTERM');
}
if (failed) {
  console.error('last server log lines:\n  ' + serverLog.slice(-20).join('\n  '));
  process.exit(1);
}
log('PASS');
process.exit(0);
