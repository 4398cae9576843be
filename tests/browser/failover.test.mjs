// The failover test: 3 gateway replicas sharing a redis-server, clients
// spread over them, a steady stream of notifications to users and topics.
// One replica is killed with -9 (and later started again), then all three
// are restarted one by one. Clients reconnect to the others and resume: at
// the end every client has every notification sent to it exactly once, in
// order. Some clients are the JS library (clients/js/) in headless Chromium,
// the rest this file's own minimal protocol client (independent of the
// library). Prints the counts.
//
//   npm ci && node failover.test.mjs
import { setTimeout as sleep } from 'node:timers/promises';
import assert from 'node:assert/strict';

import { chromium } from 'playwright-core';
import WebSocket from 'ws';

import { CHROMIUM, failAfter, freePort, grpcClient, log, startRedis, startServer, stopServer, unary, until } from './harness.mjs';

const TOTAL_TIMEOUT_MS = 120_000;
const REPLICAS = 3;
const BROWSER_USERS = 4;
const NODE_USERS = 20;
const TOPICS = 3;

const watchdog = failAfter(TOTAL_TIMEOUT_MS);

// ------------------------------------------------------ the test's client --

// Speaks docs/protocol.md directly: resume with the positions seen, check
// every offset, reconnect to the next replica after any close.
class TestClient {
  constructor(user, topic, urls) {
    Object.assign(this, { user, topic, urls, index: 0, positions: new Map(), got: { user: [], topic: [] } });
    Object.assign(this, { duplicates: 0, gaps: 0, failures: [], connections: 0, stopped: false });
  }

  connect() {
    if (this.stopped) return;
    const base = this.urls[this.index % this.urls.length] + '?user=' + this.user;
    const resume = this.positions.size > 0;
    const ws = new WebSocket(resume ? base + '&resume=1' : base, ['notify.v1']);
    this.ws = ws;
    ws.onmessage = (ev) => this.onFrame(JSON.parse(ev.data));
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.index += 1;
      setTimeout(() => this.connect(), 50 + Math.floor(Math.random() * 250));
    };
    ws.onerror = () => {};
  }

  send(obj) { this.ws?.send(JSON.stringify(obj)); }

  onFrame(f) {
    switch (f.type) {
      case 'welcome':
        this.connections += 1;
        if (this.positions.size > 0) {
          this.send({ type: 'resume', streams: Object.fromEntries(this.positions) });
        } else {
          for (const [s, p] of Object.entries(f.streams)) this.positions.set(s, p);
          this.send({ type: 'subscribe', topic: this.topic });
        }
        break;
      case 'subscribed':
        this.positions.set(f.stream, { epoch: f.epoch, offset: f.offset });
        break;
      case 'resumed':
        for (const [s, p] of Object.entries(f.streams)) this.positions.set(s, p);
        this.resuming = false;
        break;
      case 'resume_failed':
        this.failures.push(f);
        break;
      case 'skipped':
      case 'notification': {
        const at = this.positions.get(f.stream);
        if (at && at.epoch === f.epoch && f.offset <= at.offset) { this.duplicates += 1; return; }
        const first = f.type === 'skipped' ? f.from : f.offset;
        if (at && at.epoch === f.epoch && first > at.offset + 1) { this.gaps += 1; this.ws?.close(); return; }
        this.positions.set(f.stream, { epoch: f.epoch, offset: f.offset });
        if (f.type === 'notification') (f.stream.startsWith('topic:') ? this.got.topic : this.got.user).push(f.data.seq);
        break;
      }
      default:
    }
  }

  stop() { this.stopped = true; this.ws?.close(); }
}

// ------------------------------------------------------------------ test --

let browser = null;
let failed = false;
try {
  const redis = await startRedis();
  const wsPorts = await Promise.all(Array.from({ length: REPLICAS }, () => freePort()));
  const args = (i) => ['--insecure-dev', '--redis-url', redis.url, '--presence-ttl', '3', '--history-size', '5000',
    '--allowed-origins', '127.0.0.1', '--shutdown-timeout', '2', '--ws-port', String(wsPorts[i])];
  const replicas = [];
  const start = async (i, name) => {
    const s = startServer(name, args(i));
    replicas[i] = { server: s.server, ports: await s, grpc: null };
    replicas[i].grpc = grpcClient(replicas[i].ports.grpc);
  };
  await Promise.all(Array.from({ length: REPLICAS }, (_, i) => start(i, `replica ${i}`)));
  const url = (i) => `ws://127.0.0.1:${wsPorts[i]}/ws`;
  const urlsFrom = (first) => Array.from({ length: REPLICAS }, (_, k) => url((first + k) % REPLICAS));

  // The test's own clients, spread over the replicas.
  const nodeClients = Array.from({ length: NODE_USERS }, (_, k) => {
    const u = BROWSER_USERS + k;
    return new TestClient(`u${u}`, `t${u % TOPICS}`, urlsFrom(u % REPLICAS));
  });
  nodeClients.forEach((c) => c.connect());

  // The library in Chromium, one client per user in one page.
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, timeout: 15_000,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'] });
  const page = await browser.newPage();
  const pageErrors = [];
  page.on('pageerror', (err) => pageErrors.push(err.message));
  await page.goto(`http://127.0.0.1:${wsPorts[0]}/healthz`);
  const browserUsers = Array.from({ length: BROWSER_USERS }, (_, u) => ({
    user: `u${u}`, topic: `t${u % TOPICS}`, urls: urlsFrom(u % REPLICAS).map((x) => `${x}?user=u${u}`),
  }));
  await page.addScriptTag({ type: 'module', content: `
    import { NotifyClient } from '/notify-client.js';
    window.clients = ${JSON.stringify(browserUsers)}.map(({ user, topic, urls }) => {
      const c = new NotifyClient({ urls, backoff: { initialMs: 100, maxMs: 1000 } });
      const record = { user, got: { user: [], topic: [] }, failures: [], opens: 0 };
      c.addEventListener('notification', (e) => {
        (e.detail.stream.startsWith('topic:') ? record.got.topic : record.got.user).push(e.detail.data.seq);
      });
      c.addEventListener('resume_failed', (e) => record.failures.push(e.detail));
      c.addEventListener('welcome', () => { record.opens += 1; });
      c.connect();
      c.subscribe(topic);
      record.client = c;
      return record;
    });
  ` });
  const everyone = () => [...browserUsers.map((b) => b.user), ...nodeClients.map((c) => c.user)];
  await until('every client subscribed', async () => {
    const browserReady = await page.evaluate(() => window.clients?.every((r) => r.client.state === 'open' &&
      [...r.client.topics.values()].every((s) => s === 'subscribed')));
    return browserReady && nodeClients.every((c) => c.positions.has(`topic:${c.topic}`));
  }, 15_000);
  log(`ok 1 - ${BROWSER_USERS} library clients in Chromium and ${NODE_USERS} test clients connected over ${REPLICAS} replicas`);

  // The backend: a steady stream through the replicas that are up and not
  // about to go; a call that fails is sent again (never through a replica
  // that might have published it before dying: those are excluded first).
  const sent = { user: new Map(), topic: new Map() };
  const excluded = new Set();
  let inFlight = Promise.resolve();
  let sending = true;
  let calls = 0;
  const sender = (async () => {
    let k = 0;
    let nextUser = 0;
    let nextTopic = 0;
    while (sending) {
      k += 1;
      const users = everyone();
      const toTopic = k % 4 === 0;
      const target = toTopic ? `t${nextTopic++ % TOPICS}` : users[nextUser++ % users.length];
      const table = toTopic ? sent.topic : sent.user;
      const seq = (table.get(target) ?? 0) + 1;
      const request = toTopic
        ? ['Broadcast', { topic: target, notification: { event: 'n', data_json: JSON.stringify({ seq }) } }]
        : ['Notify', { user_ids: [target], notification: { event: 'n', data_json: JSON.stringify({ seq }) } }];
      for (let attempt = 0; ; attempt += 1) {
        const live = replicas.map((_, i) => i).filter((i) => !excluded.has(i));
        const via = replicas[live[(k + attempt) % live.length]];
        const call = unary(via.grpc, ...request);
        inFlight = call.catch(() => {});
        try {
          await call;
          calls += 1;
          break;
        } catch (e) {
          if (attempt > 50) throw e;
          await sleep(20);
        }
      }
      table.set(target, seq);
      await sleep(2);
    }
  })();
  // Stops sending through replica i, once its calls in flight are answered.
  const exclude = async (i) => { excluded.add(i); await inFlight; };

  await sleep(1500);
  await exclude(2);
  await stopServer(replicas[2].server, 'SIGKILL');
  log(`replica 2 killed (-9) after ${calls} calls`);
  await sleep(2000);
  await start(2, 'replica 2 (restarted)');
  excluded.delete(2);
  log('ok 2 - kill -9 of replica 2 and its restart, under load');

  for (let i = 0; i < REPLICAS; i += 1) {
    await sleep(800);
    await exclude(i);
    await stopServer(replicas[i].server, 'SIGTERM');
    await start(i, `replica ${i} (rolling restart)`);
    excluded.delete(i);
    log(`replica ${i} restarted (SIGTERM, then started again on the same port) after ${calls} calls`);
  }
  await sleep(1000);
  sending = false;
  await sender;
  log(`ok 3 - rolling restart of all ${REPLICAS} replicas, under load; ${calls} calls made`);

  // Everyone must now have exactly what was sent to them.
  const expected = (table, key) => Array.from({ length: table.get(key) ?? 0 }, (_, i) => i + 1);
  const browserState = () => page.evaluate(() => window.clients.map((r) => ({
    user: r.user, got: r.got, failures: r.failures, opens: r.opens,
  })));
  const complete = (user, topic, got) => got.user.length >= (sent.user.get(user) ?? 0) &&
    got.topic.length >= (sent.topic.get(topic) ?? 0);
  await until('every client to have everything sent to it', async () => {
    const b = await browserState();
    return b.every((r, u) => complete(r.user, browserUsers[u].topic, r.got)) &&
      nodeClients.every((c) => complete(c.user, c.topic, c.got));
  }, 20_000);
  await sleep(500); // a duplicate would arrive by now

  const rows = [];
  const check = (kind, user, topic, got, failures, connections, extra = {}) => {
    assert.deepEqual(got.user, expected(sent.user, user), `${kind} ${user}: its notifications, once each, in order`);
    assert.deepEqual(got.topic, expected(sent.topic, topic), `${kind} ${user}: ${topic}, once each, in order`);
    assert.deepEqual(failures, [], `${kind} ${user}: no resume_failed: ${JSON.stringify(failures)}`);
    rows.push(`${kind} ${user}: ${got.user.length} notifications + ${got.topic.length} on ${topic}, ` +
      `${connections} connections${extra.duplicates !== undefined ? `, ${extra.duplicates} duplicates dropped, ${extra.gaps} gaps` : ''}`);
  };
  const b = await browserState();
  b.forEach((r, u) => check('chromium', r.user, browserUsers[u].topic, r.got, r.failures, r.opens));
  for (const c of nodeClients) {
    check('test-client', c.user, c.topic, c.got, c.failures, c.connections, c);
    assert.equal(c.gaps, 0, `${c.user}: no gap seen`);
  }
  assert.deepEqual(pageErrors, [], 'no page errors');
  const totalUser = [...sent.user.values()].reduce((a, n) => a + n, 0);
  const totalTopic = [...sent.topic.values()].reduce((a, n) => a + n, 0);
  const delivered = b.reduce((a, r) => a + r.got.user.length + r.got.topic.length, 0) +
    nodeClients.reduce((a, c) => a + c.got.user.length + c.got.topic.length, 0);
  console.log(rows.map((r) => '  ' + r).join('\n'));
  log(`ok 4 - ${totalUser} notifications to ${everyone().length} users and ${totalTopic} broadcasts to ${TOPICS} topics: ` +
    `${delivered} deliveries, every client got everything sent to it exactly once, in order`);
  nodeClients.forEach((c) => c.stop());
} catch (err) {
  failed = true;
  console.error(`FAIL: ${err.stack || err}`);
}
if (browser) await Promise.race([browser.close().catch(() => {}), sleep(5000)]);
clearTimeout(watchdog);
log(failed ? 'FAIL' : 'PASS');
process.exit(failed ? 1 : 0);
