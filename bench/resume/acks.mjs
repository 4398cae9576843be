// What require_ack costs, and how long an ack takes to reach the backend:
// one gateway (in the process, or with --redis on a redis-server), CLIENTS
// WebSocket clients that acknowledge every notification asking for it as
// soon as it arrives, a backend reading StreamDeliveryReports (notifyctl
// reports), and COUNT notifications, one user each in turn, sent over one
// NotifyStream (notifyctl stream) with require_ack and then without.
// Prints the gateway's (and redis-server's) CPU per notification both ways
// and the time from publish to the ACKED report (ts - published_ts),
// median and p99; exits non-zero if a report is missing or not ACKED.
//
//   cd bench/resume && npm ci && node acks.mjs [--clients 1000] [--count 20000] [--redis]
import { spawn, execFileSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';

import WebSocket from 'ws';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const CLIENTS = Number(arg('--clients', 1000));
const COUNT = Number(arg('--count', 20000));
const REDIS = process.argv.includes('--redis');
const BIN = process.env.NOTIFY_GATEWAY_BIN || path.join(root, 'build/notify-gateway');
const NOTIFYCTL = process.env.NOTIFYCTL_BIN || path.join(root, 'build/notifyctl');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'notify-acks-'));
const children = [];
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  fs.rmSync(tmp, { recursive: true, force: true });
});
const freePort = () => new Promise((resolve) => {
  const s = net.createServer().listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
});
const ticks = (pid) => { const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' '); return Number(f[11]) + Number(f[12]); };
const HZ = Number(execFileSync('getconf', ['CLK_TCK']).toString());
const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

const pidsToMeasure = [];
const extra = [];
if (REDIS) {
  const port = await freePort();
  const redis = spawn('redis-server', ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no', '--dir', tmp], { stdio: 'ignore' });
  children.push(redis);
  pidsToMeasure.push(redis.pid);
  extra.push('--redis-url', `redis://127.0.0.1:${port}`);
  await sleep(300);
}
const gw = spawn(BIN, ['--insecure-dev', '--bind', '127.0.0.1', '--ws-port', '0', '--grpc-port', '0', '--metrics-port', '0',
  '--log-format', 'json', '--log-level', 'info', '--max-connections-per-ip', '0', ...extra], { stdio: ['ignore', 'ignore', 'pipe'] });
children.push(gw);
pidsToMeasure.push(gw.pid);
const ports = await new Promise((resolve, reject) => {
  gw.once('exit', (code) => reject(new Error(`the gateway exited (${code})`)));
  readline.createInterface({ input: gw.stderr }).on('line', (line) => {
    try { const e = JSON.parse(line); if (e.msg === 'listening') resolve({ ws: e.ws_port, grpc: e.grpc_port, metrics: e.metrics_port }); } catch { /* not JSON */ }
  });
});

let received = 0;
const sockets = [];
for (let i = 0; i < CLIENTS; i += 250) {
  await Promise.all(Array.from({ length: Math.min(250, CLIENTS - i) }, (_, k) => new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${ports.ws}/ws?user=a${i + k}`);
    ws.on('message', (data) => {
      const f = JSON.parse(data);
      if (f.type === 'welcome') resolve();
      if (f.type !== 'notification') return;
      received += 1;
      if (f.require_ack) ws.send(JSON.stringify({ type: 'ack', ids: [f.id] }));
    });
    ws.on('error', () => {});
    sockets.push(ws);
  })));
}

const reports = [];
const reader = spawn(NOTIFYCTL, ['--server', `127.0.0.1:${ports.grpc}`, 'reports'], { stdio: ['ignore', 'pipe', 'ignore'] });
children.push(reader);
readline.createInterface({ input: reader.stdout }).on('line', (line) => reports.push(JSON.parse(line)));
await sleep(500);

// One run: COUNT notifications, one user each in turn; CPU ticks spent until all arrived (and were reported).
async function run(tag, ack) {
  const file = path.join(tmp, `${tag}.jsonl`);
  fs.writeFileSync(file, Array.from({ length: COUNT }, (_, i) => JSON.stringify({
    user_ids: [`a${i % CLIENTS}`],
    notification: { id: `${tag}-${i}`, event: 'n', data_json: '{"x":1}', ...(ack ? { require_ack: true } : {}) },
  })).join('\n') + '\n');
  received = 0;
  reports.length = 0;
  const before = pidsToMeasure.reduce((t, p) => t + ticks(p), 0);
  const start = performance.now();
  execFileSync(NOTIFYCTL, ['--server', `127.0.0.1:${ports.grpc}`, 'stream', '--file', file], { stdio: 'ignore' });
  const deadline = Date.now() + 20_000;
  while (received < COUNT || (ack && reports.length < COUNT)) {
    if (Date.now() > deadline) {
      const text = await (await fetch(`http://127.0.0.1:${ports.metrics}/metrics`)).text();
      const lines = text.split('\n').filter((l) => /^notify_(delivery_report|limit_rejections|client_messages_total)/.test(l));
      throw new Error(`${tag}: ${received} of ${COUNT} received, ${reports.length} reports\n${lines.join('\n')}`);
    }
    await sleep(10);
  }
  const seconds = (performance.now() - start) / 1000;
  const cpu = (pidsToMeasure.reduce((t, p) => t + ticks(p), 0) - before) / HZ;
  return { seconds, cpuUsPerNotification: (cpu * 1e6) / COUNT };
}

const plain = await run('plain', false);
const acked = await run('acked', true);
const bad = reports.filter((r) => r.outcome !== 'ACKED');
const latencies = reports.map((r) => Number(r.ts) - Number(r.publishedTs)).sort((x, y) => x - y);
console.log(`${REDIS ? 'with Redis' : 'in process'}, ${CLIENTS} clients, ${COUNT} notifications over one NotifyStream`);
console.log(`  without require_ack: ${plain.cpuUsPerNotification.toFixed(1)} µs CPU per notification, all delivered in ${plain.seconds.toFixed(2)} s`);
console.log(`  with require_ack:    ${acked.cpuUsPerNotification.toFixed(1)} µs CPU per notification (${(acked.cpuUsPerNotification / plain.cpuUsPerNotification).toFixed(2)}×), all acked and reported in ${acked.seconds.toFixed(2)} s`);
console.log(`  publish -> ACKED report: median ${percentile(latencies, 50)} ms, p99 ${percentile(latencies, 99)} ms, max ${latencies[latencies.length - 1]} ms; ${reports.length} reports, ${bad.length} not ACKED`);
for (const ws of sockets) ws.terminate();
process.exit(bad.length === 0 && reports.length === COUNT ? 0 : 1);
