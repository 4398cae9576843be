'use strict';
// Benchmark peer "node-ws": the seed stack, written the way a typical team
// would: Node's http server plus the `ws` package, one process.
//
//   GET  /ws?user=<id>          WebSocket subscriber (RFC 6455)
//   POST /broadcast             body -> one text frame to every WebSocket
//   POST /notify?user=a[,b,..]  body -> one text frame to each socket of
//                               each listed user (each user at most once)
//
// Usage: node server.js <port>   (listens on 127.0.0.1)

const http = require('node:http');
const { WebSocketServer, WebSocket } = require('ws');

const port = Number.parseInt(process.argv[2] ?? '', 10);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error('usage: node server.js <port>');
  process.exit(2);
}
const host = process.env.BIND_ADDRESS || '127.0.0.1';
const BACKLOG = 4096;
const USER_RE = /^[A-Za-z0-9_-]{1,64}$/;

// user id -> Set of that user's open sockets
const sockets = new Map();

const wss = new WebSocketServer({
  noServer: true,
  perMessageDeflate: false, // the ws 8 default, stated on purpose
  clientTracking: true, // wss.clients: every open socket, for /broadcast
});

function addSocket(user, ws) {
  let set = sockets.get(user);
  if (!set) {
    set = new Set();
    sockets.set(user, set);
  }
  set.add(ws);
}

function removeSocket(user, ws) {
  const set = sockets.get(user);
  if (!set) return;
  set.delete(ws);
  if (set.size === 0) sockets.delete(user);
}

// A Buffer sent with binary:false goes out as a text frame carrying exactly
// the published bytes.
function deliver(ws, body) {
  if (ws.readyState !== WebSocket.OPEN) return false;
  ws.send(body, { binary: false });
  return true;
}

function reply(res, status, obj) {
  const text = JSON.stringify(obj) + '\n';
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(text),
  });
  res.end(text);
}

function readBody(req, done) {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => done(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)));
}

function parseUsers(value) {
  if (value === null || value === '') return null;
  const users = new Set(value.split(','));
  for (const u of users) if (!USER_RE.test(u)) return null;
  return users;
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost');

  if (url.pathname === '/broadcast' || url.pathname === '/notify') {
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'POST');
      reply(res, 405, { error: 'method not allowed' });
      req.resume();
      return;
    }
    let users = null;
    if (url.pathname === '/notify') {
      users = parseUsers(url.searchParams.get('user'));
      if (!users) {
        reply(res, 400, { error: 'bad user' });
        req.resume();
        return;
      }
    }
    readBody(req, (body) => {
      let sent = 0;
      if (users === null) {
        for (const ws of wss.clients) if (deliver(ws, body)) sent++;
      } else {
        for (const u of users) {
          const set = sockets.get(u);
          if (!set) continue;
          for (const ws of set) if (deliver(ws, body)) sent++;
        }
      }
      reply(res, 200, { sent });
    });
    return;
  }

  reply(res, 404, { error: 'not found' });
  req.resume();
});

// Publishers keep one connection open for the whole run.
server.keepAliveTimeout = 120_000;
server.headersTimeout = 121_000;

server.on('upgrade', (req, socket, head) => {
  const url = new URL(req.url, 'http://localhost');
  const user = url.searchParams.get('user');
  if (url.pathname !== '/ws' || user === null || !USER_RE.test(user)) {
    socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    addSocket(user, ws);
    ws.on('close', () => removeSocket(user, ws));
    ws.on('error', () => ws.terminate());
    // Client messages are ignored; ws answers pings and close frames itself.
  });
});

server.on('clientError', (err, socket) => {
  if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
  else socket.destroy();
});

server.listen(port, host, BACKLOG, () => {
  console.log(`node-ws listening on ${host}:${port} (node ${process.version}, ws ${require('ws/package.json').version})`);
});

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => process.exit(0));
}
