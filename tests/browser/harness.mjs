// What the browser tests share: starting gateways and redis-server on free
// ports (and ending exactly those, by PID), gRPC calls, waiting, metrics.
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';

import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(here, '../..');
export const BIN = process.env.NOTIFY_GATEWAY_BIN || path.resolve(REPO, 'build/notify-gateway');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const PROTO = path.resolve(REPO, 'proto/notify/v1/notification_service.proto');
const STARTUP_TIMEOUT_MS = 10_000;
export const RPC_DEADLINE_MS = 5_000;

const started = Date.now();
export const log = (...args) => console.log(`[${((Date.now() - started) / 1000).toFixed(2)}s]`, ...args);
export const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'notify-browser-'));

export const servers = []; // gateways started here: {name, proc, log}
const others = []; // redis-server
export const grpcClients = [];

// A gateway on free ports; resolves to {ws, grpc, metrics} once it logs "listening".
export function startServer(name, extraArgs) {
  // Free ports unless the caller fixes one (a restart on the same address).
  const ports = ['--ws-port', '--grpc-port', '--metrics-port'].filter((f) => !extraArgs.includes(f)).flatMap((f) => [f, '0']);
  const args = [...ports, '--log-format', 'json', ...extraArgs];
  log(`starting ${name}: ${BIN} ${args.join(' ')}`);
  const proc = spawn(BIN, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const server = { name, proc, log: [] };
  servers.push(server);
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name}: no "listening" log line within ${STARTUP_TIMEOUT_MS} ms`)),
      STARTUP_TIMEOUT_MS);
    proc.once('error', (err) => { clearTimeout(timer); reject(err); });
    proc.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited early (code ${code}, signal ${signal})`));
    });
    readline.createInterface({ input: proc.stderr }).on('line', (line) => {
      server.log.push(line);
      if (server.log.length > 200) server.log.shift();
      let entry;
      try { entry = JSON.parse(line); } catch { return; }
      if (entry.msg === 'listening') {
        clearTimeout(timer);
        resolve({ ws: entry.ws_port, grpc: entry.grpc_port, metrics: entry.metrics_port });
      }
    });
  });
  server.ready = ready;
  return Object.assign(ready, { server });
}

// SIGTERM, then SIGKILL if it does not stop in time. Resolves to the exit status.
export async function stopServer({ proc }, signal = 'SIGTERM') {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null || !proc.pid) return null;
  const exited = new Promise((resolve) => proc.once('exit', (code, sig) => resolve({ code, signal: sig })));
  proc.kill(signal);
  const result = await Promise.race([exited, sleep(12_000).then(() => null)]);
  if (result) return result;
  log('server ignored SIGTERM for 12 s: SIGKILL');
  proc.kill('SIGKILL');
  return { code: null, signal: 'SIGKILL', forced: true };
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// redis-server on a free loopback port, nothing saved; resolves to its URL.
export async function startRedis() {
  const port = await freePort();
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--dir', tmpDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  others.push({ name: 'redis', proc });
  await until('redis-server to accept connections', () => new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => { s.end(); resolve(true); });
    s.once('error', () => resolve(false));
  }), STARTUP_TIMEOUT_MS);
  return { url: `redis://127.0.0.1:${port}`, proc };
}

process.on('exit', () => {
  for (const { proc } of [...servers, ...others]) {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  }
  fs.rmSync(tmpDir, { recursive: true, force: true });
});

export function grpcClient(port) {
  const def = protoLoader.loadSync(PROTO, { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
  const { NotificationService } = grpc.loadPackageDefinition(def).notify.v1;
  const client = new NotificationService(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  grpcClients.push(client);
  return client;
}

export function unary(client, method, request) {
  return new Promise((resolve, reject) => {
    client[method](request, { deadline: Date.now() + RPC_DEADLINE_MS }, (err, res) => {
      if (err) reject(new Error(`${method} failed: ${err.code} ${err.details || err.message}`));
      else resolve(res);
    });
  });
}

export async function metric(port, name) {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(3000) });
  const text = await res.text();
  const line = text.split('\n').find((l) => l.startsWith(name + ' ') || l.startsWith(name + '{'));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : NaN;
}

// Ends the test as failed if it is still running after `ms`; clearTimeout() the result when done.
export function failAfter(ms) {
  return setTimeout(() => {
    console.error(`FAIL: the test did not finish within ${ms} ms`);
    process.exit(1);
  }, ms);
}

export async function until(what, fn, timeoutMs = 8_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}
