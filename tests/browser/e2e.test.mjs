// Real-browser end-to-end test of notify-gateway: spawns the server on free
// ports, opens its page in headless Chromium and drives it together with the
// gRPC admin API. Plain node script: exits 0 when every step passed.
//
//   npm ci && node e2e.test.mjs
//
// Two gateways run side by side:
//   - token mode (--jwt-secret-file, the production setup): the page asks for a
//     JWT, which this script mints with node:crypto (HS256);
//   - development mode (--insecure-dev): ?user= picks the identity.
//
// Environment:
//   NOTIFY_GATEWAY_BIN  server binary (default ../../build/notify-gateway)
//   NOTIFYCTL_BIN       notifyctl, run for the page's "Try it" command (default ../../build/notifyctl)
//   CHROMIUM            browser binary (default /usr/bin/chromium)
//   SCREENSHOT          where to save a full-page screenshot of the token-mode page
//                       (optional; the development-mode page goes next to it as *-dev.png)
//   HEADED=1            show the browser window

import { execFile } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import grpc from '@grpc/grpc-js';
import { chromium } from 'playwright-core';

import {
  CHROMIUM, REPO, RPC_DEADLINE_MS, grpcClient, grpcClients as clients, log, metric, servers, startServer, stopServer, tmpDir,
  unary, until,
} from './harness.mjs';

const NOTIFYCTL = process.env.NOTIFYCTL_BIN || path.resolve(REPO, 'build/notifyctl');
const SCREENSHOT = process.env.SCREENSHOT || '';
const DEV_SCREENSHOT = SCREENSHOT ? SCREENSHOT.replace(/(\.png)?$/i, '-dev.png') : '';

const TOTAL_TIMEOUT_MS = 55_000;   // the whole run
const STEP_TIMEOUT_MS = 8_000;     // any single wait in the browser
const JWT_LEEWAY_S = 30;           // the gateway's default --jwt-leeway

// ---------------------------------------------------------------- tokens --

// 48 random bytes. The gateway strips one trailing newline (and CR) from the
// file, so a secret ending in one would not be the one we sign with.
function randomSecret() {
  for (;;) {
    const secret = crypto.randomBytes(48);
    if (secret[47] !== 0x0a && secret[47] !== 0x0d) return secret;
  }
}

const SECRET = randomSecret();
const SECRET_FILE = path.join(tmpDir, 'jwt-secret');
fs.writeFileSync(SECRET_FILE, SECRET, { mode: 0o600 });

const b64url = (data) => Buffer.from(data).toString('base64url');
const nowS = () => Math.floor(Date.now() / 1000);

function mintToken(claims, secret = SECRET) {
  const input = `${b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64url(JSON.stringify(claims))}`;
  return `${input}.${crypto.createHmac('sha256', secret).update(input).digest('base64url')}`;
}

// ------------------------------------------------------------------ gRPC --

async function configJson(port) {
  const res = await fetch(`http://127.0.0.1:${port}/config.json`, { signal: AbortSignal.timeout(3000) });
  assert.equal(res.status, 200, '/config.json status');
  return res.json();
}


// ------------------------------------------------------------------ test --

let browser = null;
let stream = null;
const pageErrors = [];

async function newPage() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  const page = await context.newPage();
  page.on('pageerror', (err) => pageErrors.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    // A refused upgrade (HTTP 401) is reported by Chromium itself; that one is expected.
    if (msg.type() === 'error' && !/WebSocket connection to .* failed/.test(msg.text())) {
      pageErrors.push(`console error: ${msg.text()}`);
    }
  });
  return page;
}

const connectingLines = (page) => page.locator('#log li.sys', { hasText: 'connecting to ' }).count();

// Token mode: the production setup.
async function tokenScenario(ports) {
  const client = grpcClient(ports.grpc);
  assert.deepEqual(await configJson(ports.ws), { insecure_dev: false, tokens: true, subprotocol: 'notify.v1' });

  const page = await newPage();
  const state = page.locator('#conn-state');

  // 1. The page asks for a token; no development banner, no user id field, no connection yet.
  await page.goto(`http://127.0.0.1:${ports.ws}/`);
  assert.equal(await page.title(), 'notify-gateway');
  const tokenField = page.getByLabel('Token (JWT)', { exact: true });
  await tokenField.waitFor();
  await page.getByText('Paste a token (JWT) and press Connect.').waitFor();
  assert.equal(await page.locator('#banner').isVisible(), false, 'dev banner hidden in token mode');
  assert.equal(await page.getByText('Development identity mode').isVisible(), false, 'dev banner text hidden');
  assert.equal(await page.locator('#user-id').isVisible(), false, 'user id field hidden in token mode');
  assert.ok((await page.locator('#token-hint').textContent()).includes('see docs/security.md'), 'token hint');
  assert.equal(await connectingLines(page), 0, 'no connection attempt without a token');
  log('ok 1 - token mode: the page asks for a JWT, dev banner and user id field hidden');

  // 2. A token signed with another key: the upgrade fails (401) and the page says so, without retrying.
  const forged = mintToken({ sub: 'alice', exp: nowS() + 600 }, crypto.randomBytes(48));
  await tokenField.fill(forged);
  await page.getByRole('button', { name: 'Connect', exact: true }).click();
  await page.locator('#conn-state[data-state="closed"][data-close-code="1006"]').waitFor();
  const refusedText = await state.textContent();
  assert.match(refusedText, /authentication failed or server unreachable/, `state after a forged token: ${refusedText}`);
  assert.match(refusedText, /Check the token/, `state after a forged token: ${refusedText}`);
  log('ok 2 - a forged token: "authentication failed or server unreachable", check the token');

  // 3. A valid token connects, sent as a subprotocol (not in the URL).
  const exp1 = nowS() + 600;
  const token1 = mintToken({ sub: 'alice', exp: exp1, topics: ['post:*'] });
  await tokenField.fill(token1);
  await page.getByRole('button', { name: 'Connect', exact: true }).click();
  await page.locator('#conn-state[data-state="connected"]').waitFor();
  const stateText = await state.textContent();
  assert.match(stateText, /Connected as alice/);
  const connectionId = /connection (\S+)/.exec(stateText)?.[1];
  assert.ok(connectionId, `no connection id in "${stateText}"`);
  assert.equal(await page.locator('#session-user').textContent(), 'alice');
  const expiry = page.locator('#session-expiry');
  const shownExp1 = Number(await expiry.getAttribute('data-expires-at'));
  // The welcome's expires_at is exp, or exp plus the leeway (see the report on welcome vs refreshed).
  assert.ok(shownExp1 >= exp1 && shownExp1 <= exp1 + JWT_LEEWAY_S, `welcome expires_at ${shownExp1} vs exp ${exp1}`);
  assert.match(await expiry.textContent(), /^expires in (9|10) min \d\d s \(at \d\d:\d\d:\d\d\)$/);
  assert.equal(await page.locator('#refresh-box').isVisible(), true, 'refresh control shown');
  const wsLog = await page.locator('#log li.sys', { hasText: 'connecting to ' }).last().textContent();
  assert.ok(wsLog.includes(`ws://127.0.0.1:${ports.ws}/ws (token sent as a subprotocol)`), `log: ${wsLog}`);
  assert.ok(!(await page.locator('#log').textContent()).includes(token1), 'the token never appears in the log');
  await page.locator('#log li.sys', { hasText: 'socket open, subprotocol notify.v1' }).waitFor({ state: 'attached' });
  const storage = await page.evaluate(() => ({ session: { ...sessionStorage }, local: { ...localStorage } }));
  assert.deepEqual(Object.values(storage.session), [token1], 'token kept in sessionStorage');
  assert.deepEqual(storage.local, {}, 'nothing in localStorage');
  assert.ok(!page.url().includes('token') && !page.url().includes('user='), `page URL: ${page.url()}`);
  assert.equal(await page.locator('#try-notify').textContent(),
    `build/notifyctl notify --user alice --event like --data '{"post":42}'`);
  assert.ok((await page.locator('.try').textContent()).includes('--api-key-file'), 'api key hint');
  assert.match(await page.locator('#try-grpcurl').textContent(),
    /^grpcurl -plaintext -d '\{"user_ids":\["alice"\],.*' 127\.0\.0\.1:50051 notify\.v1\.NotificationService\/Notify$/);
  log(`ok 3 - connected with a token as alice (${connectionId}), expiry ${shownExp1} shown, token in sessionStorage`);

  // 4. Notify reaches the page.
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
  log(`ok 4 - Notify ${notified.id} delivered to 1 connection and shown`);

  // 5. Topics: post:42 is granted (post:*), news is not.
  const topicInput = page.getByLabel('Topic', { exact: true });
  const subscribeBtn = page.getByRole('button', { name: 'Subscribe', exact: true });
  await topicInput.fill('post:42');
  await subscribeBtn.click();
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

  await topicInput.fill('news');
  await subscribeBtn.click();
  await page.locator('#topic-msg[data-code="forbidden_topic"]').waitFor();
  const forbiddenText = await page.locator('#topic-msg').textContent();
  assert.ok(forbiddenText.startsWith('news: Not allowed: your token does not grant this topic'), forbiddenText);
  assert.ok(forbiddenText.includes('[forbidden_topic #'), forbiddenText);
  assert.equal(await page.locator('#topic-list li[data-topic="news"]').count(), 0, 'news not in the topic list');
  const news = await unary(client, 'Broadcast', { topic: 'news', notification: { event: 'headline', data_json: '{}' } });
  assert.equal(news.delivered_connections, 0, 'Broadcast to news (not granted) delivered_connections');
  log('ok 5 - post:42 subscribed and its broadcast shown; news refused with forbidden_topic, its broadcast reached 0');

  // 6. A message typed in the page reaches a StreamClientMessages consumer and is acked.
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
  log(`ok 6 - message ${upstream.id} relayed to the stream and acked on the page`);

  // 7. Refresh: a forged token is refused, a new one moves the expiry, one without post:* drops post:42.
  const refreshInput = page.getByLabel(/New token for the same user/);
  const refreshBtn = page.getByRole('button', { name: 'Refresh token', exact: true });
  const refreshMsg = page.locator('#refresh-msg');
  await refreshInput.fill(mintToken({ sub: 'alice', exp: nowS() + 900 }, crypto.randomBytes(48)));
  await refreshBtn.click();
  await page.locator('#refresh-msg[data-result="error"]').waitFor();
  const refusedRefresh = await refreshMsg.textContent();
  assert.ok(refusedRefresh.startsWith('Token refused. [invalid_token #'), refusedRefresh);
  assert.ok(refusedRefresh.includes('signature mismatch'), refusedRefresh);
  assert.equal(Number(await expiry.getAttribute('data-expires-at')), shownExp1, 'expiry unchanged after a refused refresh');

  const exp2 = nowS() + 900;
  const token2 = mintToken({ sub: 'alice', exp: exp2, topics: ['post:*'] });
  await refreshInput.fill(token2);
  await refreshBtn.click();
  await page.locator(`#session-expiry[data-expires-at="${exp2}"]`).waitFor();
  await page.locator('#refresh-msg[data-result="ok"]').waitFor();
  assert.match(await refreshMsg.textContent(), /^Token refreshed: it now expires at \d\d:\d\d:\d\d \(in 1[45] min \d\d s\)\.$/);
  assert.match(await expiry.textContent(), /^expires in 1[45] min \d\d s/);
  assert.equal(await refreshInput.inputValue(), '', 'refresh field cleared');
  assert.deepEqual(await page.evaluate(() => Object.values(sessionStorage)), [token2], 'sessionStorage holds the new token');
  assert.equal(await page.locator('#topic-list li[data-topic="post:42"][data-status="subscribed"]').count(), 1,
    'post:42 kept: the new token still grants it');

  if (SCREENSHOT) {
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    log(`   screenshot of the token-mode page saved to ${SCREENSHOT}`);
  }

  const exp3 = nowS() + 1200;
  await refreshInput.fill(mintToken({ sub: 'alice', exp: exp3, topics: ['comments:*'] }));
  await refreshBtn.click();
  await page.locator(`#session-expiry[data-expires-at="${exp3}"]`).waitFor();
  await page.locator('#topic-list li[data-topic="post:42"]').waitFor({ state: 'detached' });
  assert.equal(await page.locator('#topic-msg').textContent(),
    'post:42: unsubscribed by the server, the new token does not grant this topic.');
  const dropped = await unary(client, 'Broadcast', { topic: 'post:42', notification: { event: 'comment', data_json: '{}' } });
  assert.equal(dropped.delivered_connections, 0, 'Broadcast to post:42 after the refresh dropped it');
  log(`ok 7 - refresh: forged token refused (invalid_token); new expiry ${exp2} shown; a token without post:* dropped post:42`);

  // 8. Disconnect closes the page's connection with 4000 and it stays closed.
  const reason = 'removed by the e2e test';
  const disconnected = await unary(client, 'Disconnect', { user_ids: ['alice'], reason });
  assert.equal(disconnected.closed_connections, 1, 'Disconnect closed_connections');
  await page.locator('#conn-state[data-state="closed"][data-close-code="4000"]').waitFor();
  const closedText = await state.textContent();
  assert.ok(closedText.includes('4000') && closedText.includes(reason), `state after Disconnect: ${closedText}`);
  assert.equal(await page.locator('#session').isVisible(), false, 'session details hidden once closed');
  await sleep(2500); // longer than the first reconnect delay (1 s) and the second (2 s)
  assert.equal(await state.getAttribute('data-state'), 'closed', 'page state 2.5 s after Disconnect');
  const presence = await unary(client, 'GetPresence', { user_ids: ['alice'] });
  assert.equal(presence.connections.alice, 0, 'alice has no connection 2.5 s after Disconnect');
  // One for the forged token (not retried), one for the valid one.
  assert.equal(await connectingLines(page), 2, 'the page opened exactly two connections');
  log('ok 8 - Disconnect: page shows close code 4000 and did not reconnect; the forged token was not retried');
  await page.context().close();
}

// Token expiry: close 4001, no reconnect until a new token is pasted.
async function expiryScenario(ports) {
  const page = await newPage();
  const state = page.locator('#conn-state');
  await page.goto(`http://127.0.0.1:${ports.ws}/`);
  const tokenField = page.getByLabel('Token (JWT)', { exact: true });
  // exp a little in the past: still accepted within the leeway, and expiring in ~3 s.
  await tokenField.fill(mintToken({ sub: 'carol', exp: nowS() - JWT_LEEWAY_S + 3 }));
  await page.getByRole('button', { name: 'Connect', exact: true }).click();
  await page.locator('#conn-state[data-state="connected"]').waitFor();
  await page.locator('#conn-state[data-state="closed"][data-close-code="4001"]').waitFor();
  const expiredText = await state.textContent();
  assert.ok(expiredText.includes('4001 (token expired)') && expiredText.includes('paste a new token'), expiredText);
  await sleep(1500); // longer than the first reconnect delay
  assert.equal(await state.getAttribute('data-close-code'), '4001', 'still closed 1.5 s after 4001');
  assert.equal(await connectingLines(page), 1, 'no reconnect after 4001');
  // Pasting a new token reconnects without pressing Connect.
  await tokenField.fill(mintToken({ sub: 'carol', exp: nowS() + 600 }));
  await page.locator('#conn-state[data-state="connected"]').waitFor();
  assert.match(await state.textContent(), /Connected as carol/);
  assert.equal(await connectingLines(page), 2, 'one reconnect, with the new token');
  log('ok 9 - token expiry: close 4001 shown, no reconnect until a new token was pasted');
  await page.context().close();
}

// Development mode: ?user= picks the identity, the banner warns.
async function devScenario(ports) {
  const client = grpcClient(ports.grpc);
  assert.deepEqual(await configJson(ports.ws), { insecure_dev: true, tokens: false, subprotocol: 'notify.v1' });
  const page = await newPage();
  const state = page.locator('#conn-state');
  await page.goto(`http://127.0.0.1:${ports.ws}/?user=bob`);
  await page.getByText('Development identity mode: you choose your user id with ?user=, anyone can connect as anyone.')
    .waitFor();
  assert.equal(await page.locator('#banner').isVisible(), true, 'dev banner visible');
  assert.equal(await page.getByLabel('User id').inputValue(), 'bob');
  assert.equal(await page.locator('#token-input').isVisible(), false, 'no token field: the server has no JWT keys');
  await page.locator('#conn-state[data-state="connected"]').waitFor();
  assert.match(await state.textContent(), /Connected as bob/);
  assert.equal(await page.locator('#session-expiry').textContent(), 'no expiry (development identity)');
  assert.equal(await page.locator('#refresh-box').isVisible(), false, 'no refresh control without a token');
  const notified = await unary(client, 'Notify', { user_ids: ['bob'], notification: { event: 'hello', data_json: '{"dev":true}' } });
  assert.equal(notified.delivered_connections, 1, 'Notify bob delivered_connections');
  await page.locator(`.notification[data-id="${notified.id}"][data-event="hello"]`).waitFor();
  log('ok 10 - dev mode: banner visible, ?user=bob connected and got a notification');

  // The "Try it" command, run as shown (from the repository root, as the page
  // says), reaches the page; NOTIFY_SERVER stands in for the default port.
  const shown = await page.locator('#try-notify').textContent();
  assert.equal(shown, `build/notifyctl notify --user bob --event like --data '{"post":42}'`);
  const printed = await new Promise((resolve, reject) => {
    execFile('/bin/sh', ['-c', shown.replace(/^build\/notifyctl/, NOTIFYCTL)],
      { cwd: REPO, env: { ...process.env, NOTIFY_SERVER: `127.0.0.1:${ports.grpc}` }, timeout: RPC_DEADLINE_MS },
      (err, stdout, stderr) => (err ? reject(new Error(`${shown}: ${err.message} ${stderr}`)) : resolve(stdout)));
  });
  const tried = JSON.parse(printed);
  assert.equal(tried.deliveredConnections, 1, `notifyctl printed ${printed}`);
  const triedNote = page.locator(`.notification[data-id="${tried.id}"][data-event="like"]`);
  await triedNote.waitFor();
  assert.ok((await triedNote.textContent()).includes('42'), await triedNote.textContent());
  log(`ok 10b - the page's notifyctl command printed ${printed.trim()} and the page shows it`);

  // Rate limiting: readable errors, then close 1008 and no reconnect.
  await page.evaluate(() => { for (let i = 0; i < 12; i++) document.getElementById('ping-btn').click(); });
  await page.locator('#conn-state[data-state="closed"][data-close-code="1008"]').waitFor();
  const limited = page.locator('#send-replies li[data-code="rate_limited"]').first();
  assert.ok((await limited.textContent()).includes('Slow down: too many messages per second'), await limited.textContent());
  const closedText = await state.textContent();
  assert.ok(closedText.includes('1008') && closedText.includes('Not reconnecting'), closedText);
  if (DEV_SCREENSHOT) {
    await page.screenshot({ path: DEV_SCREENSHOT, fullPage: true });
    log(`   screenshot of the dev-mode page saved to ${DEV_SCREENSHOT}`);
  }
  await sleep(1500); // longer than the first reconnect delay
  assert.equal(await connectingLines(page), 1, 'no reconnect after 1008');
  log('ok 11 - dev mode: rate_limited shown readably, close 1008, no reconnect');
  await page.context().close();
}

async function run() {
  const [tokenPorts, devPorts] = await Promise.all([
    startServer('token-mode gateway', ['--jwt-secret-file', SECRET_FILE]),
    // A low message rate so a short burst of pings trips the limiter (and then 1008).
    startServer('dev-mode gateway', ['--insecure-dev', '--client-message-rate', '1', '--client-message-burst', '3',
      '--max-invalid-messages', '3']),
  ]);
  log(`token-mode gateway: ws ${tokenPorts.ws}, grpc ${tokenPorts.grpc}, metrics ${tokenPorts.metrics}`);
  log(`dev-mode gateway: ws ${devPorts.ws}, grpc ${devPorts.grpc}, metrics ${devPorts.metrics}`);

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: !process.env.HEADED,
    timeout: 15_000,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });

  await tokenScenario(tokenPorts);
  await expiryScenario(tokenPorts);
  await devScenario(devPorts);
  assert.deepEqual(pageErrors, [], 'no errors in the pages');
}

async function cleanup() {
  try { stream?.cancel(); } catch { /* ignore */ }
  for (const client of clients) {
    try { client.close(); } catch { /* ignore */ }
  }
  if (browser) await Promise.race([browser.close().catch(() => {}), sleep(5000)]);
  return Promise.all(servers.map(async (server) => ({ server, status: await stopServer(server) })));
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
const stopped = await cleanup();
clearTimeout(watchdog);
for (const { server, status } of stopped) {
  if (status && !(status.code === 0 && status.signal === null)) {
    failed = true;
    console.error(`FAIL: ${server.name} did not shut down cleanly on SIGTERM: ${JSON.stringify(status)}`);
  } else if (status) {
    log(`ok - ${server.name} exited 0 after SIGTERM`);
  }
}
if (failed) {
  for (const server of servers) console.error(`last ${server.name} log lines:\n  ` + server.log.slice(-20).join('\n  '));
  process.exit(1);
}
log('PASS');
process.exit(0);
