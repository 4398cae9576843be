// notify-client.js: the browser client of notify-gateway (docs/protocol.md).
// A dependency-free ES module: one WebSocket to one of the gateway URLs,
// reconnected with capped exponential backoff and full jitter, resumed
// from the offsets seen so that nothing sent meanwhile is lost or repeated,
// subscriptions kept across reconnects, tokens refreshed before they expire.
//
//   import { NotifyClient } from '/notify-client.js';
//   const client = new NotifyClient({
//     urls: ['wss://a.example.com/ws', 'wss://b.example.com/ws'],
//     getToken: async (reason) => (await fetch('/token')).text(),
//   });
//   client.addEventListener('notification', (e) => show(e.detail));
//   client.addEventListener('resume_failed', (e) => reload(e.detail.stream));
//   client.connect();
//   await client.subscribe('post:42');
//
// See clients/js/README.md for every option, event and method.

const DEFAULTS = {
  protocols: ['notify.v1'],
  resume: true,
  backoff: { initialMs: 500, maxMs: 30_000 },
  refreshBeforeSeconds: 60,
  requestTimeoutMs: 10_000,
};

// Close codes after which the client does not reconnect on its own
// (docs/protocol.md#close-codes): the server closed it on purpose.
const FINAL_CODES = new Set([1003, 1008, 4000]);

export const States = Object.freeze({
  idle: 'idle', // not started, or stopped by close()
  connecting: 'connecting', // a socket is opening or waiting for its welcome
  open: 'open', // welcomed: notifications flow
  reconnecting: 'reconnecting', // waiting before the next attempt
  offline: 'offline', // the browser says there is no network: waiting for it
  closed: 'closed', // stopped: the server ended it, or a token is needed (see the 'close' event)
});

export class NotifyClient extends EventTarget {
  constructor(options = {}) {
    super();
    const urls = Array.isArray(options.urls) ? options.urls : options.urls ? [options.urls] : [];
    if (urls.length === 0) throw new TypeError('NotifyClient: options.urls needs at least one ws:// or wss:// URL');
    this._urls = urls.map(String);
    this._token = options.token || '';
    this._getToken = typeof options.getToken === 'function' ? options.getToken : null;
    this._protocols = options.protocols || DEFAULTS.protocols;
    this._resume = options.resume !== undefined ? !!options.resume : DEFAULTS.resume;
    this._backoff = { ...DEFAULTS.backoff, ...(options.backoff || {}) };
    this._refreshBefore = options.refreshBeforeSeconds ?? DEFAULTS.refreshBeforeSeconds;
    this._requestTimeout = options.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs;
    this._retry = typeof options.retry === 'function' ? options.retry : null;
    this._WebSocket = options.WebSocket || globalThis.WebSocket;
    this._random = options.random || Math.random;

    this._state = States.idle;
    this._want = false; // connect() called and not close()d
    this._ws = null;
    this._urlIndex = 0;
    this._attempt = 0; // failed attempts since the last welcome
    this._timer = null; // reconnect
    this._refreshTimer = null;
    this._welcome = null;
    this._welcomedOnce = false;
    this._userId = null;
    this._nextId = 1;
    this._pending = new Map(); // request id -> {resolve, reject, timer, kind}
    this._topics = new Map(); // topic -> 'pending' | 'subscribed'
    this._topicWaiters = new Map(); // topic -> [{resolve, reject}]
    this._positions = new Map(); // stream -> {epoch, offset}
    this._unread = 0; // the inbox's unread count, as the server last said
    this._inboxIds = new Set(); // ids of inbox notifications seen (the last 1000), to drop a second copy
    this._onOnline = () => this._networkBack();
    this._onOffline = () => this._networkGone();
    if (typeof window !== 'undefined' && window.addEventListener) {
      window.addEventListener('online', this._onOnline);
      window.addEventListener('offline', this._onOffline);
    }
  }

  // ---- what the app reads
  get state() { return this._state; }
  get userId() { return this._userId; }
  get welcome() { return this._welcome; }
  get url() { return this._urls[this._urlIndex % this._urls.length]; }
  get topics() { return new Map(this._topics); }
  get unread() { return this._unread; }
  // Per stream, the last epoch and offset seen: what a resume starts from.
  get positions() {
    const out = {};
    for (const [stream, p] of this._positions) out[stream] = { ...p };
    return out;
  }

  // ---- what the app does
  // Starts (or restarts after close() or a final close): connects now.
  connect() {
    this._want = true;
    this._attempt = 0;
    this._clearTimer();
    if (this._ws) return;
    this._open();
  }

  // Stops for good: no reconnect until connect().
  close(code = 1000, reason = 'closed by the client') {
    this._want = false;
    this._clearTimer();
    this._clearRefresh();
    const ws = this._ws;
    if (ws) {
      this._ws = null;
      this._detach(ws);
      try { ws.close(code, reason); } catch { /* already closed */ }
      this._lost({ code, reason, opened: true, byClient: true });
    }
    this._setState(States.idle, reason);
  }

  // Later connections (and a connection stopped for want of a token) use this token.
  setToken(token) {
    this._token = token || '';
    if (this._state === States.closed && this._want === false && this._awaitingToken) {
      this._awaitingToken = false;
      this.connect();
    }
  }

  // Subscribes now if connected, and again after every reconnect (a resume
  // carries it); resolves with the `subscribed` frame, rejects with an
  // `error` frame (forbidden_topic, too_many_topics, invalid_topic).
  subscribe(topic) {
    topic = String(topic);
    if (!this._topics.has(topic)) this._topics.set(topic, 'pending');
    const promise = new Promise((resolve, reject) => {
      const list = this._topicWaiters.get(topic) || [];
      list.push({ resolve, reject });
      this._topicWaiters.set(topic, list);
    });
    if (this._state === States.open) this._sendSubscribe(topic);
    return promise;
  }

  // Forgets the topic (and its position) and tells the server if connected.
  unsubscribe(topic) {
    topic = String(topic);
    this._topics.delete(topic);
    this._positions.delete('topic:' + topic);
    this._settleTopic(topic, null, { type: 'error', code: 'unsubscribed', message: 'unsubscribed before it was confirmed' });
    if (this._state !== States.open) return Promise.resolve(null);
    return this.request({ type: 'unsubscribe', topic });
  }

  ping() { return this.request({ type: 'ping' }); }
  // The inbox (notifications sent with persist): a page, newest first; resolves
  // with {unread, notifications, more}. `before`: the id of the last one seen.
  inbox({ limit, before } = {}) {
    const obj = { type: 'inbox' };
    if (limit !== undefined) obj.limit = limit;
    if (before !== undefined) obj.before = before;
    return this.request(obj);
  }
  // Marks inbox notifications read (they leave the inbox); resolves with {count}.
  markRead(ids) { return this.request({ type: 'mark_read', ids: Array.isArray(ids) ? ids : [ids] }); }
  markAllRead() { return this.request({ type: 'mark_read', all: true }); }
  // An upstream message for the backend; resolves with the `ack`.
  sendMessage(data) { return this.request({ type: 'message', data }); }
  // Refreshes the connection's token without reconnecting.
  refresh(token) {
    return this.request({ type: 'refresh', token }).then((reply) => {
      this._token = token;
      this._scheduleRefresh(reply.expires_at);
      return reply;
    });
  }

  // Sends `obj` with a fresh id; resolves with the reply that echoes it,
  // rejects with an `error` frame, on timeout or if not connected.
  request(obj) {
    if (this._state !== States.open) return Promise.reject(new Error('not connected'));
    const id = this._nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._pending.delete(id);
        reject(new Error(obj.type + ' #' + id + ' timed out'));
      }, this._requestTimeout);
      this._pending.set(id, { resolve, reject, timer, kind: obj.type });
      this._send({ ...obj, id });
    });
  }

  // Removes the window listeners; the client can't be used after.
  dispose() {
    this.close();
    if (typeof window !== 'undefined' && window.removeEventListener) {
      window.removeEventListener('online', this._onOnline);
      window.removeEventListener('offline', this._onOffline);
    }
  }

  // ---- connection
  async _open() {
    this._clearTimer();
    if (!this._want) return;
    if (!this._token && this._getToken) {
      let token = null;
      try { token = await this._getToken('connect'); } catch (e) { this._emit('error', { code: 'token', message: String(e) }); }
      if (!this._want) return;
      if (token) this._token = token;
    }
    const base = this.url;
    const url = this._resumable() ? base + (base.includes('?') ? '&' : '?') + 'resume=1' : base;
    const protocols = [...this._protocols];
    if (this._token) protocols.push('bearer.' + this._token);
    let ws;
    try {
      ws = new this._WebSocket(url, protocols);
    } catch (e) {
      this._setState(States.closed, 'cannot connect: ' + e.message);
      this._want = false;
      return;
    }
    this._ws = ws;
    this._opened = false;
    this._resuming = false;
    this._setState(States.connecting, 'connecting to ' + base);
    this._emit('connecting', { url: base, resume: url !== base });
    ws.onopen = () => {
      this._opened = true;
      this._emit('open', { protocol: ws.protocol });
    };
    ws.onmessage = (ev) => this._onMessage(ev.data);
    ws.onclose = (ev) => {
      if (ws !== this._ws) return;
      this._ws = null;
      this._lost({ code: ev.code, reason: ev.reason, opened: this._opened });
    };
    ws.onerror = () => {};
  }

  _detach(ws) { ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null; }

  // The socket is gone: decide whether and when to try again.
  _lost({ code, reason, opened, byClient = false }) {
    this._clearRefresh();
    for (const [, p] of this._pending) {
      clearTimeout(p.timer);
      p.reject(new Error('connection closed'));
    }
    this._pending.clear();
    for (const t of this._topics.keys()) this._topics.set(t, 'pending');
    const info = { code, reason, opened, welcomed: this._welcome !== null, welcomedOnce: this._welcomedOnce };
    this._welcome = null;
    if (byClient) {
      this._emit('close', { ...info, willRetry: false });
      return;
    }
    if (code === 4001 && this._getToken) {
      // The token ran out: ask for a new one, then come straight back.
      this._token = '';
      this._emit('close', { ...info, willRetry: true, delayMs: 0 });
      Promise.resolve(this._getToken('expired')).then((token) => {
        if (!this._want) return;
        if (token) {
          this._token = token;
          this._open();
        } else {
          this._awaitingToken = true;
          this._want = false;
          this._setState(States.closed, 'token expired: waiting for a new one (setToken)');
        }
      }, () => {
        this._awaitingToken = true;
        this._want = false;
        this._setState(States.closed, 'token expired and none could be had');
      });
      return;
    }
    let retry = this._want && !FINAL_CODES.has(code) && code !== 4001;
    if (retry && this._retry) retry = !!this._retry(info);
    if (!retry) {
      this._want = false;
      this._awaitingToken = code === 4001;
      this._emit('close', { ...info, willRetry: false });
      this._setState(States.closed, 'closed with ' + code + (reason ? ': ' + reason : ''));
      return;
    }
    if (typeof navigator !== 'undefined' && navigator.onLine === false) {
      this._emit('close', { ...info, willRetry: true, delayMs: null });
      this._setState(States.offline, 'offline: reconnecting when the network is back');
      return;
    }
    // Full jitter over a capped exponential: clients that lost the same
    // gateway don't all come back at the same instant.
    const cap = Math.min(this._backoff.maxMs, this._backoff.initialMs * 2 ** Math.min(this._attempt, 16));
    const delay = Math.floor(this._random() * cap);
    this._attempt += 1;
    this._urlIndex += 1; // the next URL in the list
    this._emit('close', { ...info, willRetry: true, delayMs: delay });
    this._setState(States.reconnecting, 'reconnecting in ' + delay + ' ms');
    this._timer = setTimeout(() => { this._timer = null; this._open(); }, delay);
  }

  _networkGone() {
    if (!this._want) return;
    this._clearTimer();
    const ws = this._ws;
    if (ws) {
      this._ws = null;
      this._detach(ws);
      try { ws.close(1000, 'offline'); } catch { /* gone */ }
      this._lost({ code: 1006, reason: 'offline', opened: this._opened });
    }
    this._setState(States.offline, 'offline: reconnecting when the network is back');
  }

  _networkBack() {
    if (!this._want || this._ws) return;
    this._attempt = 0;
    this._open();
  }

  // Closes this socket and resumes at once (a gap in the offsets).
  _restart(why) {
    const ws = this._ws;
    if (!ws) return;
    this._ws = null;
    this._detach(ws);
    try { ws.close(1000, why); } catch { /* gone */ }
    this._lost({ code: 1000, reason: why, opened: true, byClient: true });
    this._emit('gap', { reason: why });
    this._open();
  }

  _clearTimer() {
    if (this._timer) { clearTimeout(this._timer); this._timer = null; }
  }

  _clearRefresh() {
    if (this._refreshTimer) { clearTimeout(this._refreshTimer); this._refreshTimer = null; }
  }

  _setState(state, reason) {
    if (state === this._state && reason === this._stateReason) return;
    const previous = this._state;
    this._state = state;
    this._stateReason = reason;
    this._emit('state', { state, previous, reason });
  }

  _emit(type, detail) { this.dispatchEvent(new CustomEvent(type, { detail })); }

  _send(obj) {
    const text = JSON.stringify(obj);
    this._emit('frame', { direction: 'out', text: obj.type === 'refresh' ? JSON.stringify({ ...obj, token: '<hidden>' }) : text });
    this._ws.send(text);
  }

  _resumable() {
    return this._resume && this._positions.size > 0;
  }

  // ---- frames
  _onMessage(data) {
    if (typeof data !== 'string') return;
    this._emit('frame', { direction: 'in', text: data });
    let msg;
    try { msg = JSON.parse(data); } catch { return; }
    if (!msg || typeof msg !== 'object') return;
    const req = msg.id !== undefined && msg.type !== 'notification' ? this._pending.get(msg.id) : undefined;
    if (req) {
      this._pending.delete(msg.id);
      clearTimeout(req.timer);
    }
    switch (msg.type) {
      case 'welcome': return this._onWelcome(msg);
      case 'notification': return this._onNotification(msg);
      case 'skipped': return this._advance(msg, true);
      case 'resume_failed': return this._onResumeFailed(msg);
      case 'resumed': return this._onResumed(msg);
      case 'subscribed':
        if (msg.stream && !this._positions.has(msg.stream)) this._positions.set(msg.stream, { epoch: msg.epoch, offset: msg.offset });
        if (this._topics.has(msg.topic)) this._topics.set(msg.topic, 'subscribed');
        this._settleTopic(msg.topic, msg, null);
        if (req) req.resolve(msg);
        this._emit('subscribed', msg);
        return;
      case 'unsubscribed':
        if (msg.reason !== undefined) {
          // The server ended it (a refresh whose token no longer grants it).
          this._topics.delete(msg.topic);
          this._positions.delete('topic:' + msg.topic);
        }
        if (req) req.resolve(msg);
        this._emit('unsubscribed', msg);
        return;
      case 'unread':
        this._unread = msg.count;
        if (req) req.resolve(msg);
        this._emit('unread', { count: msg.count });
        return;
      case 'inbox':
        this._unread = msg.unread;
        if (req) req.resolve(msg);
        return;
      case 'refreshed':
        if (req) req.resolve(msg);
        this._scheduleRefresh(msg.expires_at);
        this._emit('refreshed', msg);
        return;
      case 'error':
        if (req && req.kind === 'subscribe' && req.topic !== undefined) {
          this._topics.delete(req.topic);
          this._settleTopic(req.topic, null, msg);
        }
        if (req) req.reject(Object.assign(new Error(msg.message || msg.code), msg));
        else this._emit('error', msg);
        return;
      default:
        if (req) req.resolve(msg);
        this._emit(msg.type, msg);
    }
  }

  _onWelcome(msg) {
    this._welcome = msg;
    this._attempt = 0;
    if (this._userId !== null && this._userId !== msg.user_id) {
      // Another user: nothing of the previous one's history applies.
      this._positions.clear();
    }
    this._userId = msg.user_id;
    this._welcomedOnce = true;
    this._setState(States.open, 'connected as ' + msg.user_id);
    this._scheduleRefresh(msg.expires_at);
    this._emit('welcome', msg);
    const streams = msg.streams || {};
    if (this._resumable() && Object.keys(streams).length > 0) {
      // What was seen before: replayed from there, then live.
      const wanted = {};
      for (const [stream, p] of this._positions) {
        if (stream.startsWith('topic:') && !this._topics.has(stream.slice(6))) continue;
        wanted[stream] = p;
      }
      for (const [stream, p] of Object.entries(streams)) if (!(stream in wanted)) wanted[stream] = p;
      this._resuming = true;
      const id = this._nextId++;
      this._send({ type: 'resume', id, streams: wanted });
      return;
    }
    for (const [stream, p] of Object.entries(streams)) this._positions.set(stream, { epoch: p.epoch, offset: p.offset });
    for (const t of this._topics.keys()) this._sendSubscribe(t);
  }

  _onResumed(msg) {
    this._resuming = false;
    for (const [stream, p] of Object.entries(msg.streams || {})) {
      this._positions.set(stream, { epoch: p.epoch, offset: p.offset });
      if (stream.startsWith('topic:')) {
        const topic = stream.slice(6);
        if (this._topics.has(topic)) {
          this._topics.set(topic, 'subscribed');
          this._settleTopic(topic, { type: 'subscribed', topic, stream, epoch: p.epoch, offset: p.offset }, null);
        }
      }
    }
    // Topics the resume did not carry (no position yet): a plain subscribe.
    for (const [t, status] of this._topics) if (status === 'pending') this._sendSubscribe(t);
    this._emit('resumed', msg);
  }

  _onResumeFailed(msg) {
    if (msg.stream.startsWith('topic:') && ['forbidden_topic', 'too_many_topics', 'unknown_stream'].includes(msg.reason)) {
      const topic = msg.stream.slice(6);
      this._topics.delete(topic);
      this._positions.delete(msg.stream);
      this._settleTopic(topic, null, { type: 'error', code: msg.reason, message: 'resume refused: ' + msg.reason });
    } else if (msg.epoch) {
      // Live delivery goes on from here; what came before is for the app to reload.
      this._positions.set(msg.stream, { epoch: msg.epoch, offset: msg.offset });
    } else {
      this._positions.delete(msg.stream);
    }
    this._emit('resume_failed', msg);
  }

  // Moves a stream's position to this frame's; false if the frame was seen
  // already. A gap means frames went missing: resume from before it.
  _advance(msg, skipped) {
    if (!msg.stream) return true;
    const at = this._positions.get(msg.stream);
    const first = skipped ? msg.from : msg.offset;
    if (at && at.epoch === msg.epoch) {
      if (msg.offset <= at.offset) return false;
      if (first > at.offset + 1 && !this._resuming) {
        this._restart('gap in ' + msg.stream + ' after offset ' + at.offset);
        return false;
      }
    }
    this._positions.set(msg.stream, { epoch: msg.epoch, offset: msg.offset });
    return true;
  }

  _onNotification(msg) {
    const at = msg.stream ? this._positions.get(msg.stream) : undefined;
    const seen = !!at && at.epoch === msg.epoch && msg.offset <= at.offset;
    if (!this._advance(msg, false)) {
      // Handled already (a replay overlapping what came live): this
      // connection still owes the ack.
      if (seen && msg.require_ack) this._ack(msg.id);
      return;
    }
    if (msg.inbox) {
      // An inbox notification can come twice around a connect: live, and
      // pushed from the inbox.
      if (this._inboxIds.has(msg.id)) {
        if (msg.require_ack) this._ack(msg.id);
        return;
      }
      this._inboxIds.add(msg.id);
      if (this._inboxIds.size > 1000) this._inboxIds.delete(this._inboxIds.values().next().value);
    }
    if (!msg.require_ack) {
      this._emit('notification', msg);
      return;
    }
    // Acknowledged once every handler has returned, and every promise a
    // handler passed to waitUntil() has fulfilled (one that rejects withholds
    // the ack: the backend then hears TIMED_OUT).
    const ws = this._ws;
    const waits = [];
    Object.defineProperty(msg, 'waitUntil', { value: (promise) => waits.push(promise), enumerable: false });
    this._emit('notification', msg);
    if (waits.length === 0) {
      this._ack(msg.id, ws);
      return;
    }
    Promise.all(waits).then(
      () => this._ack(msg.id, ws),
      (e) => this._emit('error', { code: 'ack_withheld', id: msg.id, message: String(e) }),
    );
  }

  // Queues an ack for this connection; one frame carries the acks of a burst.
  _ack(id, ws = this._ws) {
    if (!ws || ws !== this._ws || ws.readyState !== 1) return; // that connection is gone: the server reported it
    if (this._acks && this._acks.ws === ws && this._acks.ids.length < 256) {
      this._acks.ids.push(id);
      return;
    }
    const batch = { ws, ids: [id] };
    this._acks = batch;
    queueMicrotask(() => {
      if (this._acks === batch) this._acks = null;
      if (ws === this._ws && ws.readyState === 1) this._send({ type: 'ack', ids: batch.ids });
    });
  }

  // ---- subscriptions and tokens
  _sendSubscribe(topic) {
    const id = this._nextId++;
    this._pending.set(id, { resolve: () => {}, reject: () => {}, timer: null, kind: 'subscribe', topic });
    this._send({ type: 'subscribe', topic, id });
  }

  _settleTopic(topic, ok, error) {
    const list = this._topicWaiters.get(topic);
    if (!list) return;
    this._topicWaiters.delete(topic);
    for (const w of list) (ok ? w.resolve(ok) : w.reject(Object.assign(new Error(error.message || error.code), error)));
  }

  _scheduleRefresh(expiresAt) {
    this._clearRefresh();
    if (typeof expiresAt !== 'number' || !this._getToken) return;
    const wait = Math.max(0, (expiresAt - this._refreshBefore) * 1000 - Date.now());
    this._refreshTimer = setTimeout(async () => {
      this._refreshTimer = null;
      let token = null;
      try { token = await this._getToken('refresh'); } catch { /* the 4001 path asks again */ }
      if (!token || this._state !== States.open) return;
      this.refresh(token).catch((e) => this._emit('error', { code: e.code || 'refresh_failed', message: e.message }));
    }, Math.min(wait, 2 ** 31 - 1));
  }
}
