// The browser client library (clients/js/notify-client.js) in headless
// Chromium against real gateways: two replicas sharing a redis-server, the
// library given both URLs. While a backend sends a steady stream of
// notifications (to the user and to a topic), the gateway the page is on is
// killed (-9), and later the browser goes offline for a while. The page
// must end with every notification exactly once, in order, and say so.
// Then the library acknowledges notifications sent with require_ack once its
// handlers are done, as the backend's StreamDeliveryReports shows, and gets
// what waited in a user's inbox when it connects. Last, the
// gateway's own page (built on the library) lives through a kill -9 and
// restart of its gateway while notifications are sent through another.
//
//   npm ci && node client.test.mjs
import { setTimeout as sleep } from 'node:timers/promises';
import assert from 'node:assert/strict';

import { chromium } from 'playwright-core';

import { CHROMIUM, failAfter, freePort, grpcClient, log, metric, startRedis, startServer, stopServer, unary, until } from './harness.mjs';

const TOTAL_TIMEOUT_MS = 100_000;
const USER_NOTIFICATIONS = 150;
const TOPIC_BROADCASTS = 75;

const watchdog = failAfter(TOTAL_TIMEOUT_MS);

let browser = null;
let failed = false;
let diagnose = null; // what the page knows, for a failure report
const pageErrors = [];
try {
  const redis = await startRedis();
  // The page comes from A; B is another origin (port) that must accept it too.
  const common = ['--insecure-dev', '--redis-url', redis.url, '--presence-ttl', '3', '--history-size', '1000',
    '--allowed-origins', '127.0.0.1'];
  const a = startServer('gateway A', common);
  const b = startServer('gateway B', common);
  const [portsA, portsB] = await Promise.all([a, b]);
  const backend = grpcClient(portsB.grpc);

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: !process.env.HEADED,
    timeout: 15_000,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-sync'],
  });
  const context = await browser.newContext();
  context.setDefaultTimeout(8_000);
  const page = await context.newPage();
  page.on('pageerror', (err) => pageErrors.push(err.message));
  diagnose = () => page.evaluate(() => JSON.stringify({
    state: window.client?.state, url: window.client?.url, states: window.states, closes: window.closes,
    failures: window.failures, received: window.got?.length, positions: window.client?.positions,
  }));

  // Any page of gateway A's origin, then the library it serves.
  await page.goto(`http://127.0.0.1:${portsA.ws}/healthz`);
  await page.addScriptTag({
    type: 'module',
    content: `
      import { NotifyClient } from '/notify-client.js';
      const client = new NotifyClient({
        urls: ['ws://127.0.0.1:${portsA.ws}/ws?user=alice', 'ws://127.0.0.1:${portsB.ws}/ws?user=alice'],
        backoff: { initialMs: 100, maxMs: 1000 },
      });
      window.got = [];
      window.states = [];
      window.failures = [];
      window.closes = [];
      window.ackErrors = [];
      client.addEventListener('notification', (e) => {
        const n = e.detail;
        if (n.require_ack) {
          // A handler that needs time, and one that fails: the ack waits, or is withheld.
          if (n.data.slow) e.detail.waitUntil(new Promise((r) => setTimeout(r, 300)));
          if (n.data.fail) e.detail.waitUntil(Promise.reject(new Error('could not store it')));
          return;
        }
        window.got.push({ stream: n.stream, offset: n.offset, seq: n.data.seq });
      });
      client.addEventListener('error', (e) => { if (e.detail.code === 'ack_withheld') window.ackErrors.push(e.detail.id); });
      client.addEventListener('state', (e) => window.states.push(e.detail.state));
      client.addEventListener('resume_failed', (e) => window.failures.push(e.detail));
      client.addEventListener('close', (e) => window.closes.push(e.detail.code));
      client.connect();
      window.subscribed = client.subscribe('news').then((s) => s.topic);
      window.client = client;
    `,
  });
  await page.waitForFunction(() => window.client && window.client.state === 'open');
  assert.equal(await page.evaluate(() => window.subscribed), 'news');
  assert.equal(await page.evaluate(() => window.client.url), `ws://127.0.0.1:${portsA.ws}/ws?user=alice`);
  log('ok 1 - the library connected to gateway A and subscribed to news');

  // The backend sends through B the whole time; the page's gateway dies,
  // then the page's network goes away.
  let sentUser = 0;
  let sentTopic = 0;
  const sender = (async () => {
    while (sentUser < USER_NOTIFICATIONS) {
      sentUser += 1;
      await unary(backend, 'Notify', {
        user_ids: ['alice'], notification: { event: 'n', data_json: JSON.stringify({ seq: sentUser }) },
      });
      if (sentUser % 2 === 0) {
        sentTopic += 1;
        await unary(backend, 'Broadcast', {
          topic: 'news', notification: { event: 't', data_json: JSON.stringify({ seq: sentTopic }) },
        });
      }
      await sleep(15);
    }
  })();

  await until('a third of the notifications to arrive', () => page.evaluate(() => window.got.length)
    .then((n) => n >= USER_NOTIFICATIONS / 3));
  await stopServer(a.server, 'SIGKILL');
  log(`gateway A killed (-9) after ${sentUser} notifications`);
  await until('the library to come back on gateway B', () => page.evaluate((portB) =>
    window.client.state === 'open' && window.client.url.includes(':' + portB + '/'), portsB.ws));
  log('ok 2 - after kill -9 of gateway A the library reconnected to gateway B');

  await until('two thirds of the notifications', () => page.evaluate(() => window.got.length)
    .then((n) => n >= (USER_NOTIFICATIONS * 2) / 3));
  await context.setOffline(true);
  await until('the library to see it is offline', () => page.evaluate(() => window.client.state === 'offline'));
  await sleep(600); // notifications keep coming meanwhile
  await context.setOffline(false);
  await until('the library to be back online', () => page.evaluate(() => window.client.state === 'open'));
  log('ok 3 - offline for 600 ms: the library waited for the network and came back');

  await sender;
  await until('every notification', () => page.evaluate(() => window.got.length)
    .then((n) => n >= USER_NOTIFICATIONS + TOPIC_BROADCASTS), 15_000);
  await sleep(300); // anything extra (a duplicate) would arrive by now
  const got = await page.evaluate(() => window.got);
  const byStream = (stream) => got.filter((n) => n.stream === stream).map((n) => n.seq);
  const expect = (n) => Array.from({ length: n }, (_, i) => i + 1);
  assert.deepEqual(byStream('user:alice'), expect(USER_NOTIFICATIONS), 'user notifications exactly once, in order');
  assert.deepEqual(byStream('topic:news'), expect(TOPIC_BROADCASTS), 'topic broadcasts exactly once, in order');
  assert.equal(got.length, USER_NOTIFICATIONS + TOPIC_BROADCASTS, 'nothing else');
  assert.deepEqual(await page.evaluate(() => window.failures), [], 'no resume_failed');
  for (const stream of ['user:alice', 'topic:news']) {
    const offsets = got.filter((n) => n.stream === stream).map((n) => n.offset);
    assert.deepEqual(offsets, expect(offsets.length), `${stream}: consecutive offsets`);
  }
  assert.deepEqual(pageErrors, [], 'no page errors');
  const states = await page.evaluate(() => window.states);
  log(`ok 4 - ${USER_NOTIFICATIONS} notifications and ${TOPIC_BROADCASTS} broadcasts, each exactly once and in order, ` +
    `across ${states.filter((s) => s === 'open').length} connections (states: ${states.join(' ')})`);

  // Acks: the backend listens on B, the page is on B too by now, but the
  // report goes through Redis either way.
  const reports = [];
  const reportStream = backend.StreamDeliveryReports({});
  reportStream.on('data', (batch) => reports.push(...batch.reports));
  reportStream.on('error', () => {});
  const notifyAcked = (id, data, timeoutMs = 0) => unary(backend, 'Notify', {
    user_ids: ['alice'],
    notification: { id, event: 'a', data_json: JSON.stringify(data), require_ack: true, ack_timeout_ms: timeoutMs },
  });
  const reportOf = (id) => reports.find((r) => r.notification_id === id);
  // B subscribes to notify:reports just after the stream opens; until then a report reaches nobody.
  let probed = false;
  for (let i = 0; i < 15 && !probed; i += 1) {
    await notifyAcked(`probe-${i}`, {});
    probed = await until(`the report of probe-${i}`, () => reportOf(`probe-${i}`), 700).then(() => true, () => false);
  }
  if (!probed) {
    console.error(`gateway B: ${await metric(portsB.metrics, 'notify_client_messages_total{type="ack"}')} ack frames, ` +
      `${await metric(portsB.metrics, 'notify_delivery_reports_total{outcome="acked"}')} acked reports, ` +
      `${await metric(portsB.metrics, 'notify_delivery_report_consumers')} report streams; ${reports.length} reports seen`);
  }
  assert.ok(probed, 'an ack from the library reached StreamDeliveryReports');
  const connection = await page.evaluate(() => window.client.welcome.connection_id);
  await notifyAcked('slow', { slow: true });
  await notifyAcked('fails', { fail: true }, 1000);
  await until('the reports of slow and fails', () => reportOf('slow') && reportOf('fails'), 5000);
  const slow = reportOf('slow');
  assert.equal(slow.outcome, 'ACKED');
  assert.equal(slow.user_id, 'alice');
  assert.equal(slow.connection_id, connection);
  assert.ok(Number(slow.ts) - Number(slow.published_ts) >= 300, 'acked after the handler\'s promise, not before');
  assert.equal(reportOf('fails').outcome, 'TIMED_OUT', 'a rejected waitUntil() withholds the ack');
  assert.deepEqual(await page.evaluate(() => window.ackErrors), ['fails']);
  reportStream.cancel();

  log(`ok 5 - the library acknowledged require_ack notifications after its handlers (slow one acked after ` +
    `${Number(slow.ts) - Number(slow.published_ts)} ms), withheld the failed one (TIMED_OUT)`);
  // The inbox: sent with persist while dave has no connection, pushed when he
  // connects (a second library instance on the page), the count on every change.
  const persist = (id) => unary(backend, 'Notify', {
    user_ids: ['dave'], notification: { id, event: 'comment', data_json: JSON.stringify({ id }), persist: true },
  });
  for (const id of ['c-1', 'c-2']) {
    const resp = await persist(id);
    assert.deepEqual(resp.offline_user_ids, ['dave']);
  }
  await page.evaluate((portB) => import('/notify-client.js').then(({ NotifyClient }) => {
    const dave = new NotifyClient({ urls: [`ws://127.0.0.1:${portB}/ws?user=dave`] });
    window.dave = { client: dave, got: [], counts: [] };
    dave.addEventListener('notification', (e) => window.dave.got.push(e.detail.id + (e.detail.inbox ? ':inbox' : '')));
    dave.addEventListener('unread', (e) => window.dave.counts.push(e.detail.count));
    dave.connect();
  }), portsB.ws);
  await until('dave to get what waited', () => page.evaluate(() => window.dave.counts.length >= 1));
  await persist('c-3'); // live now
  await until('the count of c-3', () => page.evaluate(() => window.dave.counts.length >= 2));
  const page1 = await page.evaluate(() => window.dave.client.inbox({ limit: 2 }));
  assert.deepEqual(page1.notifications.map((n) => n.id), ['c-3', 'c-2']);
  assert.equal(page1.more, true);
  const afterRead = await page.evaluate(() => window.dave.client.markRead('c-2').then((r) => r.count));
  assert.equal(afterRead, 2);
  assert.equal(await page.evaluate(() => window.dave.client.markAllRead().then(() => window.dave.client.unread)), 0);
  const dave = await page.evaluate(() => ({ got: window.dave.got, counts: window.dave.counts }));
  assert.deepEqual(dave.got, ['c-1:inbox', 'c-2:inbox', 'c-3:inbox'], 'what waited, then the live one, once each');
  assert.deepEqual(dave.counts.slice(0, 2), [2, 3]);
  await page.evaluate(() => window.dave.client.close());
  log(`ok 6 - the inbox: 2 notifications that waited for dave arrived when he connected, then one live; ` +
    `unread ${dave.counts.join(' -> ')}, listed newest first, marked read`);
  await context.close();

  // The gateway's own page, built on the library, across a restart of its
  // gateway: notifications sent through B while it is down are all shown once.
  const fixedPort = await freePort();
  const pageArgs = common;
  let c = startServer('gateway C', [...pageArgs, '--ws-port', String(fixedPort)]);
  await c;
  const pageContext = await browser.newContext();
  pageContext.setDefaultTimeout(8_000);
  const demo = await pageContext.newPage();
  demo.on('pageerror', (err) => pageErrors.push(err.message));
  await demo.goto(`http://127.0.0.1:${fixedPort}/?user=bob`);
  await demo.locator('#conn-state[data-state="connected"]').waitFor();
  const notifyBob = (i) => unary(backend, 'Notify', {
    user_ids: ['bob'], notification: { id: `bob-${i}`, event: 'n', data_json: JSON.stringify({ seq: i }) },
  });
  for (let i = 1; i <= 5; i += 1) await notifyBob(i);
  await stopServer(c.server, 'SIGKILL');
  await demo.locator('#conn-state[data-state="reconnecting"]').waitFor();
  for (let i = 6; i <= 15; i += 1) await notifyBob(i); // while the page's gateway is down
  c = startServer('gateway C again', [...pageArgs, '--ws-port', String(fixedPort)]);
  await c;
  for (let i = 16; i <= 20; i += 1) await notifyBob(i);
  await until('the page to show all 20 notifications', () => demo.locator('#notifications li').count()
    .then((n) => n >= 20), 20_000);
  await sleep(300);
  const shown = await demo.locator('#notifications li').evaluateAll((items) => items.map((li) => li.dataset.id));
  assert.deepEqual(shown.reverse(), Array.from({ length: 20 }, (_, i) => `bob-${i + 1}`),
    'the page shows every notification once, in order');
  assert.ok((await demo.locator('#log').textContent()).includes('resumed'), 'the page resumed');
  assert.deepEqual(pageErrors, [], 'no page errors');
  log('ok 7 - the gateway page survived a kill -9 and restart of its gateway: 20 of 20 notifications shown once, ' +
    'in order (10 sent while it was down)');
} catch (err) {
  failed = true;
  console.error(`FAIL: ${err.stack || err}`);
  if (diagnose) console.error(await diagnose().catch((e) => `(no diagnostics: ${e.message})`));
}
if (browser) await Promise.race([browser.close().catch(() => {}), sleep(5000)]);
clearTimeout(watchdog);
log(failed ? 'FAIL' : 'PASS');
process.exit(failed ? 1 : 0);
