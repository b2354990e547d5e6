// Fakes for the engine tests: a manual clock and a recording transport.
import { Engine } from '../../sdk/engine.js';

export class FakeClock {
  constructor(t = 1_764_158_400_000) { this.t = t; this.timers = new Map(); this.seq = 0; }
  now() { return this.t; }
  setTimeout(f, ms) { const id = ++this.seq; this.timers.set(id, { at: this.t + ms, f }); return id; }
  clearTimeout(id) { this.timers.delete(id); }
  /** Advances time by ms, firing due timers in order. */
  advance(ms) {
    const end = this.t + ms;
    for (;;) {
      let next = null;
      for (const [id, tm] of this.timers) if (tm.at <= end && (!next || tm.at < next[1].at)) next = [id, tm];
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].f();
    }
    this.t = end;
  }
}

let idSeq = 0;

/** An engine for `self` with a recording transport, bills and events. */
export function makeEngine(self, opts = {}) {
  const clock = opts.clock || new FakeClock();
  const sent = [];
  const events = [];
  const bills = [];
  const mediaCalls = [];
  const engine = new Engine({
    self, clock,
    transport: { send: (env) => sent.push(env) },
    emit: (name, data) => events.push({ name, data }),
    bills: { add: (b) => bills.push(b) },
    media: {
      remoteCandidate: (ch, c) => mediaCalls.push(['candidate', ch, c]),
      remoteSDP: (ch, s) => mediaCalls.push(['sdp', ch, s]),
      answer: (ch, a) => mediaCalls.push(['answer', ch, a]),
      control: (ch, cmd) => mediaCalls.push(['control', ch, cmd]),
      close: (ch) => { mediaCalls.push(['close', ch]); return undefined; },
    },
    log: { error() {}, warn() {} },
    ...opts.engine,
  });
  const h = {
    engine, clock, sent, events, bills, mediaCalls,
    /** Sent envelopes of a type (optionally to an address). */
    sentOf: (type) => sent.filter((e) => e.type === type),
    eventsOf: (name) => events.filter((e) => e.name === name).map((e) => e.data),
    online(account, device, session = 's-' + account + device) {
      engine.handlePresence({ v: 1, state: 'online', account, device, session, since: clock.now() });
    },
    offline(account, device, session = 's-' + account + device) {
      engine.handlePresence({ v: 1, state: 'offline', account, device, session, since: clock.now() });
    },
    /** Delivers an envelope from `from` as if it came over MQTT. */
    deliver(from, type, channelId, body, to = self) {
      engine.handleMessage({ v: 1, type, id: `m${++idSeq}`, from, to, channelId, time: clock.now(), body });
    },
  };
  return h;
}

export const door = { account: 'door', device: 'entrance' };
export const tablet = { account: 'flat1', device: 'tablet' };
export const phone = { account: 'flat1', device: 'phone' };
export const chan = (c) => c.repeat(32).slice(0, 32);
