// Resume time after a replica dies: N clients on replica A (two replicas
// sharing a redis-server), each holding its position; A is killed with -9
// while one notification per client is sent through B. Every client
// reconnects to B after a random delay in [0, --jitter] ms (full jitter, as
// the browser library does) and resumes. Prints how long until all are live
// again (resumed) and until all have the notification sent while they were
// away, with percentiles; exits non-zero on any loss or duplicate.
//
//   cd bench/resume && npm ci && node resume.mjs [--clients 10000] [--jitter 1000]
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
const CLIENTS = Number(arg('--clients', 10000));
const JITTER_MS = Number(arg('--jitter', 1000));
const BIN = process.env.NOTIFY_GATEWAY_BIN || path.join(root, 'build/notify-gateway');
const NOTIFYCTL = process.env.NOTIFYCTL_BIN || path.join(root, 'build/notifyctl');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'notify-resume-'));
const children = [];
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  fs.rmSync(tmp, { recursive: true, force: true });
});

const freePort = () => new Promise((resolve) => {
  const s = net.createServer().listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
});

async function gateway(name, redisUrl) {
  const proc = spawn(BIN, ['--insecure-dev', '--bind', '127.0.0.1', '--ws-port', '0', '--grpc-port', '0',
    '--metrics-port', '0', '--log-format', 'json', '--log-level', 'info', '--max-connections-per-ip', '0',
    '--redis-url', redisUrl], { stdio: ['ignore', 'ignore', 'pipe'] });
  if (process.env.GATEWAY_LOG) proc.stderr.pipe(fs.createWriteStream(`${process.env.GATEWAY_LOG}.${name}`));
  children.push(proc);
  return new Promise((resolve, reject) => {
    proc.once('exit', (code) => reject(new Error(`${name} exited (${code})`)));
    readline.createInterface({ input: proc.stderr }).on('line', (line) => {
      try {
        const e = JSON.parse(line);
        if (e.msg === 'listening') resolve({ proc, ws: e.ws_port, grpc: e.grpc_port });
        const startup = /INSECURE|admin API/.test(e.msg);
        if ((e.level === 'warn' || e.level === 'error') && !startup && warnings.length < 5) warnings.push(`${name}: ${line}`);
      } catch { /* not JSON */ }
    });
  });
}

// One Notify per user through `grpcPort`, with NotifyStream (notifyctl stream).
function notifyAll(grpcPort, tag) {
  const file = path.join(tmp, `${tag}.jsonl`);
  fs.writeFileSync(file, Array.from({ length: CLIENTS }, (_, i) => JSON.stringify({
    user_ids: [`r${i}`], notification: { id: `${tag}-${i}`, event: 'n', data_json: JSON.stringify({ tag }) },
  })).join('\n') + '\n');
  execFileSync(NOTIFYCTL, ['--server', `127.0.0.1:${grpcPort}`, 'stream', '--file', file], { stdio: 'ignore' });
}

let noStreams = 0; // welcomes without positions (history unreachable when the client connected)
const warnings = []; // the gateways' first warnings, shown on failure
process.on('exit', (code) => { if (code !== 0 && warnings.length) console.error(warnings.join('\n')); });

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

const redisPort = await freePort();
const redis = spawn('redis-server', ['--bind', '127.0.0.1', '--port', String(redisPort), '--save', '', '--appendonly', 'no',
  '--maxclients', '20000', '--dir', tmp], { stdio: 'ignore' });
children.push(redis);
await sleep(300);
const redisUrl = `redis://127.0.0.1:${redisPort}`;
const [a, b] = await Promise.all([gateway('A', redisUrl), gateway('B', redisUrl)]);

class Client {
  constructor(i) {
    this.i = i;
    this.user = `r${i}`;
    this.positions = null;
    this.got = new Map(); // notification id -> times received
    this.resumedAt = 0;
    this.missedAt = 0;
  }

  open(port, resume) {
    return new Promise((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?user=${this.user}${resume ? '&resume=1' : ''}`, ['notify.v1']);
      this.ws = ws;
      ws.on('message', (data) => {
        const f = JSON.parse(data);
        if (f.type === 'welcome') {
          if (resume) ws.send(JSON.stringify({ type: 'resume', streams: this.positions }));
          else if (!f.streams) { noStreams += 1; this.positions = {}; }
          else this.positions = f.streams;
          resolve();
        } else if (f.type === 'resumed') {
          this.resumedAt = performance.now();
          this.positions = f.streams;
        } else if (f.type === 'notification') {
          this.positions[f.stream] = { epoch: f.epoch, offset: f.offset };
          this.got.set(f.id, (this.got.get(f.id) || 0) + 1);
          if (f.id.startsWith('missed-')) this.missedAt = performance.now();
        } else if (f.type === 'resume_failed') {
          this.failed = f.reason;
        }
      });
      ws.on('error', () => {});
      ws.on('close', () => this.onClose?.());
    });
  }
}

const clients = Array.from({ length: CLIENTS }, (_, i) => new Client(i));
const t0 = performance.now();
for (let i = 0; i < CLIENTS; i += 500) await Promise.all(clients.slice(i, i + 500).map((c) => c.open(a.ws, false)));
if (noStreams) console.log(`${noStreams} welcomes came without history positions`);
console.log(`${CLIENTS} clients connected to replica A in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
notifyAll(b.grpc, 'before');
const until = async (what, fn, ms) => {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
};
await until('every client to receive the first notification', () => clients.every((c) => c.got.has(`before-${c.i}`)), 60_000);

let killedAt = 0;
for (const c of clients) {
  c.onClose = () => {
    c.onClose = null;
    setTimeout(() => c.open(b.ws, true), Math.random() * JITTER_MS);
  };
}
killedAt = performance.now();
a.proc.kill('SIGKILL');
notifyAll(b.grpc, 'missed'); // while they are away (or coming back)
await until('every client to resume', () => clients.every((c) => c.resumedAt > 0), 120_000);
await until('every client to have the notification it missed', () => clients.every((c) => c.missedAt > 0), 60_000);
await sleep(500);

const resumed = clients.map((c) => c.resumedAt - killedAt).sort((x, y) => x - y);
const caught = clients.map((c) => c.missedAt - killedAt).sort((x, y) => x - y);
const dup = clients.filter((c) => [...c.got.values()].some((n) => n > 1)).length;
const failed = clients.filter((c) => c.failed).length;
const missing = clients.filter((c, i) => !c.got.has(`missed-${i}`) || !c.got.has(`before-${i}`)).length;
const fmt = (ms) => `${(ms / 1000).toFixed(2)} s`;
console.log(`replica A killed (-9); ${CLIENTS} clients back on replica B with full jitter over ${JITTER_MS} ms:`);
console.log(`  all resumed after ${fmt(resumed.at(-1))} (p50 ${fmt(percentile(resumed, 50))}, p99 ${fmt(percentile(resumed, 99))})`);
console.log(`  all had the notification sent while away after ${fmt(caught.at(-1))} (p50 ${fmt(percentile(caught, 50))}, p99 ${fmt(percentile(caught, 99))})`);
console.log(`  resume_failed: ${failed}, missing: ${missing}, clients with a duplicate: ${dup}`);
for (const c of clients) c.ws?.terminate();
process.exit(dup || failed || missing ? 1 : 0);
