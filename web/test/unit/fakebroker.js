// An in-memory MQTT broker and a client with the subset of MQTT.js's API
// the SDK's transport uses (connect, on, subscribe, publish, end), so the
// SDK runs in node over its real transport and wire codec.
import { EventEmitter } from 'node:events';

export function topicMatches(filter, topic) {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

export class FakeBroker {
  constructor() {
    this.clients = new Set();
    this.retained = new Map();
    this.log = []; // every publish: {topic, payload, qos, retain}
    this.holdPubacks = false;
    this.heldPubacks = [];
  }

  /** mqtt.connect replacement. */
  connect = (url, opts) => {
    const c = new FakeClient(this, opts);
    this.clients.add(c);
    queueMicrotask(() => c.emit('connect'));
    return c;
  };

  publish(from, topic, payload, { qos = 0, retain = false } = {}) {
    const buf = Buffer.from(payload);
    this.log.push({ topic, payload: buf.toString(), qos, retain });
    if (retain) {
      if (buf.length === 0) this.retained.delete(topic);
      else this.retained.set(topic, buf);
    }
    for (const c of this.clients) c.deliver(topic, buf);
  }

  /** Drops a client without DISCONNECT: its will is published. */
  kill(client) {
    this.clients.delete(client);
    const w = client.opts.will;
    if (w) this.publish(null, w.topic, w.payload, { qos: w.qos, retain: w.retain });
    client.connected = false;
    client.emit('close');
  }

  published(re) { return this.log.filter((m) => re.test(m.topic)); }
}

class FakeClient extends EventEmitter {
  constructor(broker, opts) {
    super();
    this.broker = broker;
    this.opts = opts;
    this.subs = [];
    this.connected = true;
  }

  subscribe(subs, cb) {
    const filters = Object.keys(subs);
    this.subs.push(...filters);
    queueMicrotask(() => {
      cb?.(null, filters.map((topic) => ({ topic, qos: 1 })));
      for (const [topic, payload] of this.broker.retained) {
        if (filters.some((f) => topicMatches(f, topic))) this.emit('message', topic, payload);
      }
    });
  }

  publish(topic, payload, opts = {}, cb) {
    if (!this.connected) {
      cb?.(new Error('client disconnected'));
      return;
    }
    queueMicrotask(() => {
      this.broker.publish(this, topic, payload, opts);
      if (!cb) return;
      if (opts.qos === 1 && this.broker.holdPubacks && topic.endsWith('/bill')) this.broker.heldPubacks.push(cb);
      else cb(null);
    });
  }

  deliver(topic, payload) {
    if (!this.connected || !this.subs.some((f) => topicMatches(f, topic))) return;
    queueMicrotask(() => this.emit('message', topic, payload));
  }

  end(force, opts, cb) {
    if (typeof opts === 'function') cb = opts;
    this.connected = false;
    this.broker.clients.delete(this);
    queueMicrotask(() => { this.emit('close'); cb?.(); });
  }

  reconnect() {}
}

/** Lets queued microtasks and timers of 0 ms run. */
export const settle = async (n = 20) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};
