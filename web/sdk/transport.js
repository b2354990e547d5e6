// The MQTT side of a browser device: one MQTT.js connection over WebSocket
// that behaves like the daemon's signaling.Client — clean session, keepalive
// 5 s, retained presence with an offline last will, re-subscribe and
// re-publish presence/state after every reconnect, QoS 1 envelopes in
// order, strict decoding and sender checks on everything received.

import {
  decodeEnvelope, decodePresence, encodeCallState, encodeEnvelope, encodePresence, OFFLINE, ONLINE, sameAddress,
} from './protocol.js';
import { clientIdFor } from './sha256.js';

export class MqttTransport {
  /**
   * @param {object} o
   * @param {Function} o.connect  mqtt.connect
   * @param {string} o.url  ws:// or wss:// URL of the broker's WebSocket listener
   * @param {import('./protocol.js').Topics} o.topics
   * @param {{account:string, device:string}} o.self
   * @param {object} o.handlers  message(env), presence(p), bill(bill), connected(), lost()
   */
  constructor({ connect, url, topics, self, session, clientType, version, username, password, keepalive = 5, handlers, log = console }) {
    Object.assign(this, { connectFn: connect, url, topics: topics, self, session, clientType, version, username, password, keepalive, h: handlers, log });
    this.client = null;
    this.connected = false;
    this.state = null; // last call state payload, re-published after every reconnect
    this.closing = false;
  }

  presencePayload(state) {
    return encodePresence({
      state, account: this.self.account, device: this.self.device, session: this.session,
      clientType: this.clientType, version: this.version, since: Date.now(),
    });
  }

  start() {
    const t = this.topics;
    this.presenceTopic = t.device(this.self, 'presence');
    this.billTopic = t.device(this.self, 'bill');
    this.client = this.connectFn(this.url, {
      clientId: clientIdFor(this.self),
      clean: true,
      protocolVersion: 4, // MQTT 3.1.1
      keepalive: this.keepalive,
      reconnectPeriod: 1000,
      connectTimeout: 10_000,
      resubscribe: false, // we subscribe ourselves after every connect
      username: this.username || undefined,
      password: this.password || undefined,
      will: { topic: this.presenceTopic, payload: this.presencePayload(OFFLINE), qos: 1, retain: true },
    });
    this.client.on('connect', () => this.onConnect());
    this.client.on('close', () => {
      if (!this.connected) return;
      this.connected = false;
      this.h.lost?.();
    });
    this.client.on('error', (e) => this.log.warn?.('netcall: mqtt', e?.message || e));
    this.client.on('message', (topic, payload) => this.onMessage(topic, payload));
  }

  onConnect() {
    const t = this.topics;
    const subs = {
      [t.presenceFilter()]: { qos: 1 },
      [t.accountCallFilter(this.self.account)]: { qos: 1 },
      [t.inboxFilter(this.self)]: { qos: 1 },
      [this.billTopic]: { qos: 1 },
    };
    this.client.subscribe(subs, (err) => {
      if (err) {
        this.log.warn?.('netcall: subscribe failed', err);
        this.client.end(true, () => this.client.reconnect());
        return;
      }
      this.client.publish(this.presenceTopic, this.presencePayload(ONLINE), { qos: 1, retain: true });
      if (this.state) this.client.publish(t.device(this.self, 'state'), this.state, { qos: 1, retain: true });
      this.connected = true;
      this.h.connected?.();
    });
  }

  onMessage(topic, payload) {
    const t = this.topics;
    try {
      if (topic === this.billTopic) {
        this.h.bill?.(JSON.parse(new TextDecoder().decode(payload)));
        return;
      }
      if (topic.endsWith('/presence')) {
        const dev = t.presenceDevice(topic);
        if (!dev || payload.length === 0) return; // a cleared retained presence
        const p = decodePresence(payload, dev);
        if (sameAddress(dev, this.self) && p.state === OFFLINE && this.connected && !this.closing) {
          // The will of an earlier connection of ours overwrote our presence.
          this.client.publish(this.presenceTopic, this.presencePayload(ONLINE), { qos: 1, retain: true });
        }
        this.h.presence?.(p);
        return;
      }
      const sender = t.sender(topic);
      if (!sender) return;
      if (topic !== t.accountCall(this.self.account, sender) && topic !== t.inbox(this.self, sender)) return;
      const env = decodeEnvelope(payload);
      if (!sameAddress(env.from, sender)) throw new Error(`from ${env.from.account}/${env.from.device} does not match the topic`);
      if (env.to.account !== this.self.account || (env.to.device && env.to.device !== this.self.device)) return;
      if (sameAddress(env.from, this.self)) return; // our own message echoed
      this.h.message?.(env);
    } catch (e) {
      this.log.warn?.(`netcall: dropped invalid message on ${topic}:`, e?.message || e);
    }
  }

  /** Publishes an envelope (QoS 1) to the account call topic or a device inbox. */
  send(env) {
    const data = encodeEnvelope(env);
    const topic = env.to.device ? this.topics.inbox(env.to, this.self) : this.topics.accountCall(env.to.account, this.self);
    this.client.publish(topic, data, { qos: 1 });
  }

  /** Publishes the retained call state and keeps it for reconnects. */
  setState(s) {
    this.state = encodeCallState(s);
    this.client?.publish(this.topics.device(this.self, 'state'), this.state, { qos: 1, retain: true });
  }

  /** Publishes an event (QoS 0) when connected. */
  publishEvent(event, data) {
    if (!this.connected) return;
    const payload = JSON.stringify({ v: 1, event, time: Date.now(), data });
    this.client.publish(this.topics.device(this.self, 'event'), payload, { qos: 0 });
  }

  /** Publishes a bill (QoS 1); resolves on the broker's PUBACK. */
  publishBill(json) {
    return new Promise((resolve, reject) => {
      if (!this.connected) {
        reject(new Error('not connected'));
        return;
      }
      this.client.publish(this.billTopic, json, { qos: 1 }, (err) => (err ? reject(err) : resolve()));
    });
  }

  /** Publishes offline presence and disconnects (the will is discarded). */
  close() {
    this.closing = true;
    return new Promise((resolve) => {
      if (!this.client) return resolve();
      const end = () => this.client.end(false, {}, () => resolve());
      if (!this.connected) return this.client.end(true, {}, () => resolve());
      this.client.publish(this.presenceTopic, this.presencePayload(OFFLINE), { qos: 1, retain: true }, end);
    });
  }
}
