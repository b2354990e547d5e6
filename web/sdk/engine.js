// The call state machine of one device: call, ringing acknowledgement,
// accept/reject, busy, multi-device ringing, glare, hangup, control, timers
// and bills — the rules of docs/PROTOCOL.md ("One call", "Caller rules",
// "Callee rules", "Glare", "Hangup", "Bills"), as the daemon's engine
// (intercom/engine.go) applies them. It knows nothing of MQTT or WebRTC:
// envelopes go out through `transport.send`, media is reached through the
// `media` hooks, so node tests drive it with fakes.

import {
  CODE_ANSWERED_ELSEWHERE, CODE_BUSY, CODE_CALLEE_OFFLINE, CODE_CHANNEL_INVALID, CODE_INVALID_ARGUMENT,
  CODE_TIMEOUT, NetcallError,
  NETCALL_CONTROL_COMMAND_BUSY as CMD_BUSY,
  NETCALL_CONTROL_COMMAND_START_NOTIFY_RECEIVED as CMD_START_NOTIFY_RECEIVED,
} from './constants.js';
import { nameError, newChannelId, ONLINE, OFFLINE, PREVIEW, randomHex, sameAddress } from './protocol.js';

export const DEFAULT_TIMEOUTS = {
  callTimeout: 30_000, // caller gives up (the seed's 30 s)
  ringTimeout: 60_000, // callee stops ringing
  maxCallDuration: 2 * 3600_000,
  responseTimeout: 5_000, // callee waits this long for the caller's responseAck
  keepCallingInterval: 2_500, // forceKeepCalling re-invite period
  peerOfflineGrace: 3_000, // a peer's presence may flap this long
  syncInterval: 2_000, // after a reconnect: sync every 2 s …
  syncAttempts: 5, // … at most 5 times
};

export const IDLE = 'idle';
export const CALLING = 'calling';
export const RINGING = 'ringing';
export const IN_CALL = 'in_call';

const OUT = 'outgoing';
const IN = 'incoming';

export const systemClock = {
  now: () => Date.now(),
  setTimeout: (f, ms) => setTimeout(f, ms),
  clearTimeout: (t) => clearTimeout(t),
};

/** A bounded set (or map, with a value): remembers the last `max` keys. */
class RecentSet {
  constructor(max) { this.max = max; this.m = new Map(); }
  has(k) { return this.m.has(k); }
  get(k) { return this.m.get(k); }
  add(k, v = true) {
    this.m.delete(k);
    this.m.set(k, v);
    if (this.m.size > this.max) this.m.delete(this.m.keys().next().value);
  }
}

const noMedia = {
  remoteCandidate() {}, remoteSDP() {}, answer() {}, control() {}, close() { return undefined; },
};

export class Engine {
  /**
   * @param {object} o
   * @param {{account:string, device:string}} o.self
   * @param {{send(env:object):void}} o.transport  sends a full envelope object
   * @param {(name:string, data:object)=>void} o.emit
   * @param {{add(bill:object):void}} [o.bills]
   * @param {object} [o.media]  hooks: remoteCandidate(channelId, cand), remoteSDP(channelId, sdp),
   *   answer(channelId, sdp), control(channelId, command), close(channelId) → stats|undefined
   */
  constructor({ self, transport, emit, bills, media, clock = systemClock, clientType = 'web', log = console, ...timeouts }) {
    const err = nameError('self.account', self?.account) || nameError('self.device', self?.device);
    if (err) throw new NetcallError(CODE_INVALID_ARGUMENT, err);
    this.self = { account: self.account, device: self.device };
    this.tr = transport;
    this.emitFn = emit || (() => {});
    this.bills = bills;
    this.media = { ...noMedia, ...media };
    this.clock = clock;
    this.clientType = clientType;
    this.log = log;
    this.cfg = { ...DEFAULT_TIMEOUTS };
    for (const [k, v] of Object.entries(timeouts)) if (k in DEFAULT_TIMEOUTS && v) this.cfg[k] = v;
    this.call = null;
    this.presence = new Map(); // "account/device" → presence
    this.seenChan = new RecentSet(1024);
    this.seenMsg = new RecentSet(4096);
    this.ended = new RecentSet(256);
    this.state = { state: IDLE, since: clock.now() };
  }

  // --- helpers ----------------------------------------------------------

  emit(name, data) {
    try {
      this.emitFn(name, data);
    } catch (e) {
      this.log.error?.(`netcall: ${name} handler threw`, e);
    }
  }

  send(to, type, channelId, body) {
    const env = { type, id: randomHex(8), from: this.self, to, channelId, time: this.clock.now(), body };
    try {
      this.tr.send(env);
    } catch (e) {
      this.log.error?.(`netcall: send ${type} failed`, e);
    }
  }

  /** Runs f after ms unless the call ended or the timer was stopped. */
  after(c, ms, f) {
    const timer = { stopped: false, handle: null };
    timer.stop = () => { timer.stopped = true; this.clock.clearTimeout(timer.handle); };
    timer.handle = this.clock.setTimeout(() => {
      if (this.call === c && !timer.stopped) f();
    }, ms);
    c.timers.push(timer);
    return timer;
  }

  setState(s) {
    const info = { state: s, since: this.clock.now() };
    const c = this.call;
    if (c && s !== IDLE) {
      info.channelId = c.channel;
      info.peer = { ...c.peer };
      info.type = c.callType;
      c.state = s;
    }
    this.state = info;
    this.emit('state', info);
  }

  /** The current call's public view, or null. */
  current() {
    const c = this.call;
    return c && { channelId: c.channel, state: c.state, type: c.callType, peer: { ...c.peer }, direction: c.dir, invite: c.invite };
  }

  // --- presence ---------------------------------------------------------

  /** Records a device's presence (decoded, from {p}/device/+/+/presence). */
  handlePresence(p) {
    const addr = { account: p.account, device: p.device };
    if (sameAddress(addr, this.self)) return;
    const key = `${p.account}/${p.device}`;
    const old = this.presence.get(key);
    this.presence.set(key, p);
    const restarted = !!old && !!old.session && p.session !== old.session;
    const wentOnline = p.state === ONLINE && (!old || old.state !== ONLINE || restarted);
    const c = this.call;
    if (!c) return;
    const offline = p.state === OFFLINE;
    const isPeer = (c.state === IN_CALL || c.state === RINGING) && sameAddress(addr, c.peer);
    if (isPeer && restarted) {
      this.endLocal(-1, 'peer_lost', 'system');
    } else if (isPeer && offline) {
      if (!c.peerOffline) {
        c.peerOffline = this.after(c, this.cfg.peerOfflineGrace, () => this.endLocal(-1, 'peer_lost', 'system'));
      }
    } else if (isPeer && c.peerOffline) {
      c.peerOffline.stop();
      c.peerOffline = null;
    } else if (c.state === CALLING && addr.account === c.peer.account) {
      if (wentOnline) {
        this.sendInvite(c); // a device that came online (or restarted) missed the invite
      } else if (offline && !this.accountOnline(c.peer.account) && !c.forceKeepCalling) {
        this.endLocal(-1, 'peer_lost', 'system');
      }
    }
  }

  accountOnline(account) {
    return this.onlineDevices(account).length > 0;
  }

  onlineDevices(account) {
    const out = [];
    for (const p of this.presence.values()) if (p.account === account && p.state === ONLINE) out.push(p.device);
    return out;
  }

  // --- API: caller --------------------------------------------------------

  /**
   * Checks that a call to opts.account may start now: throws 9002, 9001, or
   * 11001 (then the failed attempt's bill is written) like call() would.
   */
  checkCall({ type, account, pushConfig }) {
    if (type !== 1 && type !== 2) throw new NetcallError(CODE_INVALID_ARGUMENT, `call type ${type} is neither 1 (audio) nor 2 (video)`);
    const err = nameError('account', account);
    if (err) throw new NetcallError(CODE_INVALID_ARGUMENT, err);
    if (this.call) throw new NetcallError(CODE_BUSY, `already in a call (${this.call.state}, channel ${this.call.channel})`);
    if (!this.accountOnline(account) && !pushConfig?.forceKeepCalling) {
      const now = this.clock.now();
      const c = this.newCall({ channel: newChannelId(), dir: OUT, callType: type, peer: { account }, start: now });
      this.ended.add(c.channel);
      this.writeBill(c, { disposition: 'FAILED', hangupType: -1, reason: 'callee_offline', by: 'system' }, now);
      throw new NetcallError(CODE_CALLEE_OFFLINE, `callee ${JSON.stringify(account)} is offline`);
    }
  }

  /**
   * Invites every online device of opts.account; returns {channelId, account, type}
   * once the invite is sent. opts.offer is the SDP offer carried in the invite.
   */
  startCall({ type, account, pushConfig, sessionConfig, offer, preview, channelId }) {
    this.checkCall({ type, account, pushConfig });
    const c = this.newCall({
      channel: channelId || newChannelId(), dir: OUT, callType: type, peer: { account }, start: this.clock.now(),
      push: pushConfig, session: sessionConfig,
    });
    c.invite = { type, pushConfig, sessionConfig, offer, preview };
    c.acked = new Set();
    c.busy = new Set();
    c.forceKeepCalling = !!pushConfig?.forceKeepCalling;
    this.call = c;
    this.seenChan.add(c.channel);
    this.setState(CALLING);
    this.sendInvite(c);
    this.after(c, this.cfg.callTimeout, () => this.onCallTimeout(c));
    if (c.forceKeepCalling) this.scheduleKeepCalling(c);
    return { channelId: c.channel, account, type };
  }

  newCall(fields) {
    return {
      state: null, timers: [], remote: new Map(), applied: null, decided: false, attempts: 0,
      answer: 0, responding: null, peerOffline: null,
      confirmed: new Set(), // callee devices whose response we confirmed (busy ones, the decisive one)
      ...fields,
    };
  }

  sendInvite(c) {
    const body = { ...c.invite, attempt: c.attempts || undefined };
    c.attempts++;
    this.send({ account: c.peer.account }, 'invite', c.channel, body);
  }

  scheduleKeepCalling(c) {
    this.after(c, this.cfg.keepCallingInterval, () => {
      if (c.state !== CALLING || c.decided) return;
      if (c.acked.size === 0) this.sendInvite(c);
      this.scheduleKeepCalling(c);
    });
  }

  onCallTimeout(c) {
    if (c.state !== CALLING) return;
    this.send({ account: c.peer.account }, 'hangup', c.channel, { type: -1, reason: 'invite_timeout' });
    this.emitHangup(c, -1, 'invite_timeout', 'local');
    this.finish(c, { disposition: 'NO ANSWER', hangupType: -1, reason: 'invite_timeout', by: 'caller' });
  }

  // --- API: callee --------------------------------------------------------

  /** Throws 9103 / 9102 unless channelId is ringing here and not yet answered. */
  checkResponse(channelId) {
    const c = this.call;
    if (!c || c.channel !== channelId || c.dir !== IN) {
      if (this.ended.has(channelId)) throw new NetcallError(CODE_ANSWERED_ELSEWHERE, `call ${channelId} was already handled`);
      throw new NetcallError(CODE_CHANNEL_INVALID, `no ringing call with channel ${channelId}`);
    }
    if (c.state !== RINGING || c.responding) throw new NetcallError(CODE_CHANNEL_INVALID, `call ${channelId} is ${c.state}, not ringing`);
    return c;
  }

  /**
   * Accepts or rejects the ringing call. Resolves once the caller confirmed
   * (responseAck ok); rejects with 9103 (another device won), 9102 (gone) or
   * 9003 (no confirmation in time). `answer` is our SDP answer.
   */
  respond(channelId, accepted, { reason, answer, preview } = {}) {
    let c;
    try {
      c = this.checkResponse(channelId);
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise((resolve, reject) => {
      if (!reason && !accepted) reason = 'rejected';
      const p = { accepted, resolve, reject };
      p.timer = this.after(c, this.cfg.responseTimeout, () => this.onResponseTimeout(c, p));
      c.responding = p;
      if (accepted && answer) this.applyRemote(c, c.peer.device);
      this.send(c.peer, 'response', c.channel, {
        accepted, reason, clientType: this.clientType, answer: answer || undefined, preview: (accepted && preview) || undefined,
      });
    });
  }

  onResponseTimeout(c, p) {
    if (c.responding !== p) return;
    c.responding = null;
    p.reject(new NetcallError(CODE_TIMEOUT, `caller did not confirm the response within ${this.cfg.responseTimeout} ms`));
    this.emitHangup(c, -1, 'response_failed', 'system');
    this.finish(c, { disposition: 'FAILED', hangupType: -1, reason: 'response_failed', by: 'system' });
  }

  // --- API: both ----------------------------------------------------------

  /** Sends a control command to the peer of the current call. */
  control(channelId, command) {
    if (!Number.isInteger(command) || command <= 0 || command > 255) {
      throw new NetcallError(CODE_INVALID_ARGUMENT, `control command ${command} out of range`);
    }
    const c = this.call;
    if (!c || (channelId && c.channel !== channelId)) {
      throw new NetcallError(CODE_CHANNEL_INVALID, `no current call with channel ${JSON.stringify(channelId || '')}`);
    }
    if (c.dir === OUT && c.state === CALLING) throw new NetcallError(CODE_CHANNEL_INVALID, `call ${c.channel} is not answered yet`);
    this.send(c.peer, 'control', c.channel, { command });
  }

  /** Sends a control command for a channel that is not (or no longer) the current call, e.g. BUSY. */
  controlOther(to, channelId, command) {
    this.send(to, 'control', channelId, { command });
  }

  /**
   * Ends the current call: cancels it while calling, rejects it while
   * ringing, hangs up when connected. Throws 9102 without a call.
   */
  hangup() {
    const c = this.call;
    if (!c) throw new NetcallError(CODE_CHANNEL_INVALID, 'no current call');
    if (c.state === RINGING) {
      if (!c.responding) this.respond(c.channel, false, { reason: 'user_hangup' }).catch(() => {});
      return;
    }
    this.endLocal(0, 'user_hangup', 'local');
  }

  /** Ends the current call abnormally from this side (media failure …). */
  fail(reason) {
    if (this.call) this.endLocal(-1, reason, 'system');
  }

  /** Trickles a local ICE candidate of the current call (see PROTOCOL.md "Media"). */
  sendCandidate(channelId, cand) {
    const c = this.call;
    if (!c || c.channel !== channelId) return;
    const to = c.dir === OUT && c.state === CALLING ? { account: c.peer.account } : c.peer;
    this.send(to, 'candidate', c.channel, cand);
  }

  /**
   * Sends an offer/answer to the peer of the current call: renegotiation in
   * a call, or (session 'preview') a ringing device's preview offer.
   */
  sendSDP(channelId, sdp) {
    const c = this.call;
    if (!c || c.channel !== channelId) return;
    const preview = sdp.session === PREVIEW && c.dir === IN && (c.state === RINGING || c.state === IN_CALL);
    if (!preview && c.state !== IN_CALL) return;
    this.send(c.peer, 'sdp', c.channel, { kind: sdp.kind, sdp: sdp.sdp, session: preview ? PREVIEW : undefined });
  }

  /** Marks device's SDP applied and hands its held candidates to media. */
  applyRemote(c, device) {
    c.applied = device;
    for (const cand of c.remote.get(device) || []) this.media.remoteCandidate(c.channel, cand);
    c.remote = new Map();
  }

  endLocal(hangupType, reason, by) {
    const c = this.call;
    if (!c) return;
    if (by === 'local') by = c.dir === OUT ? 'caller' : 'callee';
    const fi = { hangupType, reason, by };
    switch (c.state) {
      case CALLING:
        this.send({ account: c.peer.account }, 'hangup', c.channel, { type: hangupType, reason });
        fi.disposition = reason === 'peer_lost' ? 'FAILED' : 'CANCELLED';
        break;
      case RINGING:
        // A device that lost the caller says nothing: other devices may still answer.
        if (reason !== 'peer_lost' && reason !== 'shutdown') {
          this.send(c.peer, 'response', c.channel, { accepted: false, reason, clientType: this.clientType });
        }
        fi.disposition = reason === 'peer_lost' ? 'CANCELLED' : 'NO ANSWER';
        break;
      case IN_CALL:
        if (reason !== 'peer_lost') this.send(c.peer, 'hangup', c.channel, { type: hangupType, reason });
        fi.disposition = 'ANSWERED';
        break;
    }
    this.emitHangup(c, hangupType, reason, 'local');
    this.finish(c, fi);
  }

  emitHangup(c, type, reason, by) {
    this.emit('hangup', { timetag: this.clock.now(), channelId: c.channel, account: c.peer.account, type, reason, by });
  }

  // --- incoming messages ------------------------------------------------

  /** Processes one decoded envelope addressed to this device. */
  handleMessage(env) {
    if (sameAddress(env.from, this.self) || env.to.account !== this.self.account ||
        (env.to.device && env.to.device !== this.self.device)) return;
    if (this.seenMsg.has(env.id)) return;
    this.seenMsg.add(env.id);
    switch (env.type) {
      case 'invite': return this.onInvite(env, env.body);
      case 'control': return this.onControl(env, env.body);
      case 'response': return this.onResponse(env, env.body);
      case 'responseAck': return this.onResponseAck(env, env.body);
      case 'ackSync': return this.onAckSync(env, env.body);
      case 'hangup': return this.onHangup(env, env.body);
      case 'sdp':
      case 'candidate': return this.onMediaMessage(env);
      case 'sync': return this.onSync(env);
      case 'syncAck': return this.onSyncAck(env, env.body);
    }
  }

  // --- after a reconnect (PROTOCOL.md "After a reconnect") ------------------

  /** Call after every re-connect: asks the peer whether our call survived. */
  reconnected() {
    const c = this.call;
    if (!c || !c.peer.device || c.syncing) return; // nothing to check, or a caller waiting for any device
    c.syncing = true;
    this.sendSync(c, this.cfg.syncAttempts);
  }

  sendSync(c, left) {
    if (!c.syncing) return;
    if (left === 0) {
      c.syncing = false; // presence and media decide from here
      return;
    }
    this.send(c.peer, 'sync', c.channel, { state: c.state });
    this.after(c, this.cfg.syncInterval, () => this.sendSync(c, left - 1));
  }

  onSync(env) {
    const c = this.call;
    const alive = !!c && c.channel === env.channelId &&
      (sameAddress(env.from, c.peer) || (c.dir === OUT && c.state === CALLING && env.from.account === c.peer.account));
    this.send(env.from, 'syncAck', env.channelId, alive ? { alive, state: c.state } : { alive });
  }

  onSyncAck(env, a) {
    const c = this.call;
    if (!c || c.channel !== env.channelId || !sameAddress(env.from, c.peer) || !c.syncing) return;
    c.syncing = false;
    if (a.alive) return;
    // The peer ended this call while we were away: end it without a word.
    this.emitHangup(c, -1, 'peer_lost', 'system');
    const disposition = c.state === RINGING ? 'CANCELLED' : c.state === CALLING ? 'FAILED' : 'ANSWERED';
    this.finish(c, { disposition, hangupType: -1, reason: 'peer_lost', by: 'system' });
  }

  onInvite(env, inv) {
    if (this.seenChan.has(env.channelId)) return; // a re-sent invite we already handled
    const c = this.call;
    // Glare: the call whose channelId sorts lower survives.
    if (c && c.dir === OUT && c.state === CALLING && !c.decided && c.peer.account === env.from.account) {
      this.seenChan.add(env.channelId);
      if (c.channel < env.channelId) return; // keep ours, ignore theirs
      this.endLocal(0, 'glare', 'system');
      this.ring(env, inv, true);
      return;
    }
    this.seenChan.add(env.channelId);
    const from = env.from;
    this.send(from, 'control', env.channelId, { command: CMD_START_NOTIFY_RECEIVED });
    if (c) {
      this.send(from, 'control', env.channelId, { command: CMD_BUSY });
      this.send(from, 'response', env.channelId, { accepted: false, busy: true, reason: 'user_busy', clientType: this.clientType });
      const now = this.clock.now();
      this.writeBill(this.newCall({ channel: env.channelId, dir: IN, callType: inv.type, peer: from, start: now }),
        { disposition: 'BUSY', hangupType: 0, reason: 'user_busy', by: 'callee' }, now);
      this.emit('busy', { account: from.account, device: from.device, type: inv.type, channelId: env.channelId, timetag: env.time });
      return;
    }
    this.ring(env, inv, false);
  }

  ring(env, inv, autoAccept) {
    if (autoAccept) this.send(env.from, 'control', env.channelId, { command: CMD_START_NOTIFY_RECEIVED });
    const c = this.newCall({
      channel: env.channelId, dir: IN, callType: inv.type, peer: { ...env.from }, start: this.clock.now(),
      push: inv.pushConfig, session: inv.sessionConfig, invite: inv,
    });
    this.call = c;
    this.setState(RINGING);
    this.after(c, this.cfg.ringTimeout, () => this.onRingTimeout(c));
    const info = {
      account: env.from.account, device: env.from.device, type: inv.type, channelId: env.channelId, timetag: env.time,
      custom: inv.pushConfig?.custom, pushConfig: inv.pushConfig, sessionConfig: inv.sessionConfig,
    };
    if (autoAccept) info.autoAccept = true; // glare: the SDK answers at once
    this.emit('beCalling', info);
  }

  onRingTimeout(c) {
    if (c.state !== RINGING || c.responding) return;
    this.endLocal(-1, 'ring_timeout', 'system');
  }

  fromPeer(c, from) {
    // A caller's peer is the callee account until one device won.
    if (c.dir === IN) return sameAddress(from, c.peer);
    return from.account === c.peer.account && (!c.peer.device || from.device === c.peer.device);
  }

  onControl(env, { command }) {
    const c = this.call;
    if (!c || c.channel !== env.channelId || !this.fromPeer(c, env.from)) return;
    if (c.dir === OUT) {
      if (command === CMD_START_NOTIFY_RECEIVED) c.acked.add(env.from.device);
      if (command === CMD_BUSY) c.busy.add(env.from.device);
    }
    if (c.state === IN_CALL) this.media.control(c.channel, command);
    this.emit('control', { channelId: c.channel, account: env.from.account, device: env.from.device, command });
  }

  onResponse(env, r) {
    const c = this.call;
    const from = env.from;
    const ack = (ok, code, message) => this.send(from, 'responseAck', env.channelId, { ok, code, message });
    if (!c || c.channel !== env.channelId || c.dir !== OUT) {
      // A repeat from a device we confirmed (the confirmation was lost) is
      // confirmed again; any other late response lost to another device.
      const ended = this.ended.get(env.channelId);
      if (ended instanceof Set && ended.has(from.device)) ack(true);
      else if (ended) ack(false, CODE_ANSWERED_ELSEWHERE, 'the call was already answered, rejected or ended');
      return;
    }
    if (from.account !== c.peer.account) return;
    if (c.decided) {
      if (c.confirmed.has(from.device)) { ack(true); return; } // a repeat: our confirmation was lost
      ack(false, CODE_ANSWERED_ELSEWHERE, 'another device responded first');
      return;
    }
    if (r.busy) {
      c.busy.add(from.device);
      c.confirmed.add(from.device);
      ack(true);
      if (!this.allBusy(c)) return; // another device may still answer
      c.decided = true;
      this.send({ account: c.peer.account }, 'ackSync', c.channel, { accepted: false, device: from.device, clientType: r.clientType, type: c.callType });
      this.emit('callRejected', { account: from.account, device: from.device, type: c.callType, channelId: c.channel, busy: true, reason: 'user_busy' });
      this.finish(c, { disposition: 'BUSY', hangupType: 0, reason: 'user_busy', by: 'callee' });
      return;
    }
    c.decided = true;
    c.confirmed.add(from.device);
    ack(true);
    this.send({ account: c.peer.account }, 'ackSync', c.channel, { accepted: !!r.accepted, device: from.device, clientType: r.clientType, type: c.callType });
    if (!r.accepted) {
      const reason = r.reason || 'rejected';
      this.emit('callRejected', { account: from.account, device: from.device, type: c.callType, channelId: c.channel, reason });
      this.finish(c, { disposition: reason === 'ring_timeout' ? 'NO ANSWER' : 'REJECTED', hangupType: 0, reason, by: 'callee' });
      return;
    }
    c.peer = { ...from };
    c.answer = this.clock.now();
    this.setState(IN_CALL);
    this.after(c, this.cfg.maxCallDuration, () => this.onMaxDuration(c));
    this.media.answer(c.channel, r.answer || '');
    this.applyRemote(c, from.device);
    this.emit('callAccepted', { account: from.account, device: from.device, type: c.callType, channelId: c.channel });
  }

  allBusy(c) {
    for (const dev of c.acked) if (!c.busy.has(dev)) return false;
    for (const dev of this.onlineDevices(c.peer.account)) if (!c.busy.has(dev)) return false;
    return true;
  }

  onResponseAck(env, a) {
    const c = this.call;
    if (!c || c.channel !== env.channelId || c.dir !== IN || !sameAddress(env.from, c.peer)) return;
    const p = c.responding;
    if (!p) return;
    c.responding = null;
    p.timer.stop();
    if (!a.ok) {
      const code = a.code || CODE_CHANNEL_INVALID;
      p.reject(new NetcallError(code, `response refused by the caller: ${a.message || ''}`));
      this.emit('callerAckSync', { timetag: env.time, channelId: c.channel, type: c.callType, accepted: false, fromClientType: '', device: '' });
      this.finish(c, { disposition: 'NO ANSWER', hangupType: 0, reason: 'answered_elsewhere', by: 'callee' });
      return;
    }
    p.resolve();
    if (!p.accepted) {
      this.emitHangup(c, 0, 'rejected', 'local');
      this.finish(c, { disposition: 'REJECTED', hangupType: 0, reason: 'rejected', by: 'callee' });
      return;
    }
    c.answer = this.clock.now();
    this.setState(IN_CALL);
    this.after(c, this.cfg.maxCallDuration, () => this.onMaxDuration(c));
    this.emit('callAccepted', { account: c.peer.account, device: c.peer.device, type: c.callType, channelId: c.channel });
  }

  onAckSync(env, a) {
    const c = this.call;
    if (!c || c.channel !== env.channelId || c.dir !== IN || !sameAddress(env.from, c.peer)) return;
    if (a.device === this.self.device) return; // about our own response; the responseAck settles it
    if (c.responding) {
      const p = c.responding;
      c.responding = null;
      p.timer.stop();
      p.reject(new NetcallError(CODE_ANSWERED_ELSEWHERE, `answered on device ${a.device} first`));
    }
    this.emit('callerAckSync', {
      timetag: env.time, channelId: c.channel, type: a.type, accepted: !!a.accepted,
      fromClientType: a.clientType || '', device: a.device,
    });
    this.finish(c, { disposition: 'NO ANSWER', hangupType: 0, reason: 'answered_elsewhere', by: 'callee', answeredBy: a.device });
  }

  onHangup(env, h) {
    const c = this.call;
    if (!c || c.channel !== env.channelId || !this.fromPeer(c, env.from)) return;
    if (c.dir === OUT && c.state === CALLING) return; // a callee device declines by responding
    if (c.responding) {
      const p = c.responding;
      c.responding = null;
      p.timer.stop();
      p.reject(new NetcallError(CODE_CHANNEL_INVALID, 'the caller hung up'));
    }
    const type = h.type || 0;
    const fi = { hangupType: type, reason: h.reason || 'user_hangup', by: c.dir === OUT ? 'callee' : 'caller' };
    if (c.state === RINGING) fi.disposition = h.reason === 'invite_timeout' ? 'NO ANSWER' : 'CANCELLED';
    else fi.disposition = 'ANSWERED';
    this.emitHangup(c, type, fi.reason, 'remote');
    this.finish(c, fi);
  }

  onMediaMessage(env) {
    const c = this.call;
    if (!c || c.channel !== env.channelId || !this.fromPeer(c, env.from)) return;
    if (env.body.session === PREVIEW) {
      // Our preview session with the caller (PROTOCOL.md "Preview before
      // answer"); previews offered to us as a caller are not supported and
      // ignored: those devices then answer the invite's offer.
      if (c.dir !== IN) return;
      if (env.type === 'candidate') this.media.remoteCandidate(c.channel, env.body);
      else this.media.remoteSDP(c.channel, env.body);
      return;
    }
    if (env.type === 'candidate') {
      if (c.applied !== env.from.device) {
        // Before this device's SDP is applied (we ring, or no device won yet): keep it.
        const held = c.remote.get(env.from.device) || [];
        if (held.length < 64) held.push(env.body);
        c.remote.set(env.from.device, held);
        return;
      }
      this.media.remoteCandidate(c.channel, env.body);
      return;
    }
    if (c.state === IN_CALL) this.media.remoteSDP(c.channel, env.body);
  }

  onMaxDuration(c) {
    if (c.state === IN_CALL) this.endLocal(0, 'max_duration', 'system');
  }

  // --- the end of a call ------------------------------------------------

  finish(c, fi) {
    for (const t of c.timers) t.stop();
    c.timers = [];
    const stats = this.media.close(c.channel);
    if (c.responding) {
      const p = c.responding;
      c.responding = null;
      p.reject(new NetcallError(CODE_CHANNEL_INVALID, `call ended: ${fi.reason}`));
    }
    this.ended.add(c.channel, c.confirmed);
    if (this.call === c) {
      this.call = null;
      this.setState(IDLE);
    }
    this.writeBill(c, fi, this.clock.now(), stats);
  }

  writeBill(c, fi, end, media) {
    const self = this.self;
    const round = (ms) => (ms <= 0 ? 0 : Math.round(ms / 1000));
    const b = {
      type: 'netcallMiss', accounts: [], channelId: c.channel, duration: 0, netcallType: c.callType, time: end,
      id: `${c.channel}-${self.account}-${self.device}`, account: self.account, device: self.device,
      direction: c.dir, caller: '', callerDevice: '', callee: '',
      start: c.start, end, totalDuration: round(end - c.start), billsec: 0,
      disposition: fi.disposition, hangupType: fi.hangupType, hangupReason: fi.reason, hungUpBy: fi.by,
    };
    if (fi.answeredBy) b.answeredBy = fi.answeredBy;
    if (c.dir === OUT) {
      Object.assign(b, { caller: self.account, callerDevice: self.device, callee: c.peer.account });
      if (c.answer) b.answeredBy = c.peer.device;
    } else {
      Object.assign(b, { caller: c.peer.account, callerDevice: c.peer.device, callee: self.account });
      if (c.answer) b.answeredBy = self.device;
    }
    b.accounts = [b.caller, b.callee];
    if (c.answer) {
      b.answer = c.answer;
      b.billsec = round(end - c.answer);
      b.duration = b.billsec;
    }
    if (fi.disposition === 'ANSWERED') b.type = 'netcallBill';
    else if (fi.disposition === 'REJECTED' || fi.disposition === 'BUSY') b.type = 'netcallReject';
    if (media) b.media = media;
    try {
      this.bills?.add(b);
    } catch (e) {
      this.log.error?.('netcall: bill not stored', e);
    }
    this.emit('bill', b);
  }
}
