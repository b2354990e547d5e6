// intercomd's browser SDK: the seed's NetEase Netcall point-to-point Web
// API (call, response, control, hangup, events, devices, streams, volumes,
// bills) over MQTT-over-WebSocket (docs/PROTOCOL.md) and the browser's own
// WebRTC. A browser page becomes one intercom device: it publishes its
// presence (retained, with a last will), call state and bills like the
// daemon does.
//
//   import { Netcall } from './netcall.js';
//   const netcall = new Netcall({ broker: 'ws://127.0.0.1:1884', account: 'flat1', device: 'phone' });
//
// Everything below the API is in small modules: engine.js (call rules),
// transport.js (MQTT), media.js + codecs.js (WebRTC), devices.js (capture,
// views), outbox.js (bills), protocol.js (wire format).

import mqtt from 'mqtt';
import * as C from './constants.js';
import { NetcallError } from './constants.js';
import { Emitter } from './emitter.js';
import { CALLING, Engine, IN_CALL, IDLE } from './engine.js';
import { DEFAULT_PREFIX, nameError, PREVIEW, randomHex, Topics } from './protocol.js';
import { MqttTransport } from './transport.js';
import { BillOutbox, defaultStorage } from './outbox.js';
import { MediaSession } from './media.js';
import { attachVideo, detachVideo, Microphone, sizeView, videoConstraints } from './devices.js';

export * from './constants.js';
export { Topics } from './protocol.js';

export const SDK_VERSION = '0.1.0';

const {
  DEVICE_TYPE_AUDIO_IN, DEVICE_TYPE_AUDIO_OUT_CHAT, DEVICE_TYPE_AUDIO_OUT_LOCAL, DEVICE_TYPE_VIDEO,
  NETCALL_CONTROL_COMMAND_START_NOTIFY_RECEIVED: CMD_RINGING,
  NETCALL_CONTROL_COMMAND_SWITCH_AUDIO_TO_VIDEO: CMD_UPGRADE,
  NETCALL_CONTROL_COMMAND_SWITCH_AUDIO_TO_VIDEO_AGREE: CMD_UPGRADE_OK,
} = C;

// The events the application sees, as the seed names them, plus state,
// busy (an invite refused because we were busy), connected, disconnected,
// presence, mediaState and msg (bill notifications, also given to onmsg).
const APP_EVENTS = ['beCalling', 'callAccepted', 'callRejected', 'callerAckSync', 'control', 'hangup', 'busy'];

export class Netcall extends Emitter {
  /**
   * @param {object} o
   * @param {string} o.broker  the broker's MQTT-over-WebSocket URL (ws:// or wss://)
   * @param {string} o.account  this device's account (what callers dial)
   * @param {string} o.device  this device's name within the account
   * @param {string} [o.prefix='intercom']  the topic prefix
   * @param {(message:object)=>void} [o.onmsg]  bill notifications, shaped like the seed's onmsg
   * @param {RTCConfiguration} [o.rtcConfig]  ICE servers etc. (default: none, LAN only)
   * @param {object} [o.timeouts]  callTimeout, ringTimeout, responseTimeout, … (ms)
   */
  constructor(o = {}) {
    super();
    const { account, device, prefix = DEFAULT_PREFIX, clientType = 'web', log = console } = o;
    const err = nameError('account', account) || nameError('device', device);
    if (err) throw new NetcallError(C.CODE_INVALID_ARGUMENT, err);
    this.log = log;
    this.self = { account, device };
    this.account = account;
    this.topics = new Topics(prefix);
    this.onmsg = o.onmsg;
    this.rtcConfig = o.rtcConfig;
    this.mediaDevices = o.mediaDevices || globalThis.navigator?.mediaDevices;
    this.document = o.document || globalThis.document;
    this.preAcquireMicrophone = o.preAcquireMicrophone !== false;
    this.previewEnabled = !!o.preview; // see the caller's video while ringing (PROTOCOL.md "Preview before answer")
    this.seenBills = new Set();
    this.busyRejected = new Set();

    this.engine = new Engine({
      self: this.self, clientType, log, ...(o.timeouts || {}),
      clock: o.clock,
      transport: { send: (env) => this.transport.send(env) },
      emit: (name, data) => this.onEngineEvent(name, data),
      bills: { add: (b) => this.outbox.add(b) },
      media: this.mediaHooks(),
    });
    this.transport = o.transport || new MqttTransport({
      connect: o.connect || mqtt.connect, url: o.broker, topics: this.topics, self: this.self,
      session: randomHex(8), clientType, version: SDK_VERSION, username: o.username, password: o.password, log,
      keepalive: o.keepalive || 5,
      handlers: {
        message: (env) => this.engine.handleMessage(env),
        presence: (p) => { this.engine.handlePresence(p); this.emit('presence', p); },
        bill: (b) => this.onBill(b),
        connected: () => this.onConnected(),
        lost: () => this.emit('disconnected'),
      },
    });
    this.outbox = new BillOutbox({
      storage: o.storage || defaultStorage(),
      key: `netcall.bills.${prefix}.${account}.${device}`,
      publish: (json) => this.transport.publishBill(json),
      log,
    });

    this.media = null; // { channelId, session } of the current call
    this.mic = null; // Microphone
    this.camera = null; // MediaStream
    this.sending = { audio: false, video: false };
    this.captureVolume = 255;
    this.playVolume = 255;
    this.views = { localNode: null, local: null, remoteNode: null, remote: null, chat: null, localAudio: null };
    this.localSize = null;
    this.remoteSize = null;
    this.upgradeRequested = false;
    this.pendingTracks = []; // remote tracks that arrived before the call was connected
    this.connectedOnce = new Promise((resolve) => { this.resolveConnected = resolve; });
    if (o.autoConnect !== false) this.connect();
  }

  // --- connection -------------------------------------------------------

  /** Connects to the broker; resolves once subscribed and online. */
  connect() {
    if (!this.started) {
      this.started = true;
      this.transport.start();
      this.transport.setState(this.engine.state);
    }
    return this.connectedOnce;
  }

  /** True while connected to the broker. */
  get connected() { return !!this.transport.connected; }

  onConnected() {
    // Sessions are clean: after a reconnect ask the peer whether our call survived.
    if (this.wasConnected) this.engine.reconnected();
    this.wasConnected = true;
    this.outbox.kick();
    this.resolveConnected();
    this.emit('connected');
  }

  /** Hangs up, publishes offline presence and disconnects. */
  async destroy() {
    await this.hangup();
    this.cleanupCall();
    await this.transport.close();
  }

  // --- call state (the seed's properties) ---------------------------------

  /** True while this device has a call going: calling out or connected. */
  get calling() { return this.engine.state.state === CALLING || this.engine.state.state === IN_CALL; }

  /** True once the current call is connected. */
  get callAccepted() { return this.engine.state.state === IN_CALL; }

  /** The current call's channelId, or undefined. */
  get channelId() { return this.engine.state.channelId; }

  /** The call state: {state: idle|calling|ringing|in_call, channelId, peer, type, since}. */
  get state() { return { ...this.engine.state }; }

  /** Whether obj (a beCalling object) is about another call than the current one. */
  notCurrentChannelId(obj) {
    const cur = this.engine.state.channelId;
    return !cur || !obj || obj.channelId !== cur;
  }

  // --- the API ----------------------------------------------------------

  /** Calls every device of `account`. Resolves {channelId, account, type} once the invite is out. */
  async call({ type = C.NETCALL_TYPE_VIDEO, account, pushConfig, sessionConfig } = {}) {
    this.engine.checkCall({ type, account, pushConfig });
    await this.warmUpMicrophone();
    const holder = { channelId: null };
    let session = null;
    let offer;
    try {
      session = this.newSession(type, holder, true);
      this.media = holder.media = { channelId: null, session };
      offer = await session.createOffer();
    } catch (e) {
      this.log.warn?.('netcall: no media for this call', e);
      this.dropSession(session);
      session = null;
    }
    let res;
    try {
      res = this.engine.startCall({ type, account, pushConfig: cleanPush(pushConfig), sessionConfig, offer });
    } catch (e) {
      this.dropSession(session);
      throw e;
    }
    this.sessionConfig = sessionConfig;
    holder.channelId = res.channelId;
    if (session) {
      this.media.channelId = res.channelId;
      session.startTrickle();
    }
    return res;
  }

  /** Accepts or rejects a call: pass the beCalling object as beCalledInfo. */
  async response({ accepted, beCalledInfo, sessionConfig } = {}) {
    const channelId = beCalledInfo?.channelId;
    if (!channelId) throw new NetcallError(C.CODE_INVALID_ARGUMENT, 'beCalledInfo (the beCalling object) is required');
    if (!accepted) {
      if (this.busyRejected.has(channelId)) return undefined; // already refused as busy by the SDK
      return this.engine.respond(channelId, false);
    }
    let c = this.engine.checkResponse(channelId);
    const m = this.media;
    if (m?.preview && m.channelId === channelId) {
      if (m.previewAnswered) {
        // Go on with the preview session: it becomes the call's (audio on
        // with startDevice as usual), no new negotiation.
        m.preview = false;
        this.sessionConfig = sessionConfig;
        return this.engine.respond(channelId, true, { preview: true });
      }
      this.dropSession(m.session); // the caller never answered the preview: answer the invite's offer
    }
    const offer = c.invite?.offer;
    let session = null;
    let answer;
    if (offer) {
      await this.warmUpMicrophone();
      c = this.engine.checkResponse(channelId);
      const holder = { channelId };
      try {
        session = this.newSession(c.callType, holder);
        this.media = { channelId, session };
        answer = await session.acceptOffer(offer);
      } catch (e) {
        this.log.warn?.('netcall: cannot answer the offer; answering without media', e);
        this.dropSession(session);
        session = null;
        answer = undefined;
      }
      try {
        this.engine.checkResponse(channelId);
      } catch (e) {
        this.dropSession(session);
        throw e;
      }
    }
    this.sessionConfig = sessionConfig;
    const done = this.engine.respond(channelId, true, { answer });
    session?.startTrickle();
    return done;
  }

  /** Sends a control command in the current call (channelId optional). */
  async control({ channelId, command } = {}) {
    const cur = this.engine.current();
    // The SDK already acknowledged the invite with START_NOTIFY_RECEIVED and
    // refused busy invites itself; the seed's code sending them again is fine.
    if (command === CMD_RINGING && cur && cur.direction === 'incoming' && (!channelId || channelId === cur.channelId)) return;
    if (channelId && this.busyRejected.has(channelId)) return;
    this.engine.control(channelId, command);
    if (command === CMD_UPGRADE) this.upgradeRequested = true;
    this.applyLocalControl(command);
  }

  /** Ends, cancels or declines the current call and cleans up devices and views. Never rejects. */
  async hangup() {
    try {
      this.engine.hangup();
    } catch {
      // No call: nothing to end (the seed calls hangup() in clean-up paths).
    }
    if (this.engine.state.state === IDLE) this.cleanupCall();
  }

  /** Connects the call's media (the seed's media gateway step). */
  async startRtc() {
    const cur = this.engine.current();
    if (!cur || cur.state !== IN_CALL) throw new NetcallError(C.CODE_CHANNEL_INVALID, 'no connected call');
    if (this.media?.channelId === cur.channelId) return;
    // The peer carried no SDP (e.g. media off on its side): offer ours.
    const holder = { channelId: cur.channelId };
    const session = this.newSession(cur.type, holder);
    this.media = { channelId: cur.channelId, session };
    session.startTrickle();
    const offer = await session.createOffer();
    this.engine.sendSDP(cur.channelId, { kind: 'offer', sdp: offer });
  }

  /** Asks the peer to turn an audio call into a video call (control 5, then renegotiation on 6). */
  async switchAudioToVideo() {
    await this.control({ command: CMD_UPGRADE });
  }

  /** Starts a local device: microphone, camera, or playback of the peer's / our own audio. */
  async startDevice(opts = {}) {
    const type = typeof opts === 'number' ? opts : opts.type;
    switch (type) {
      case DEVICE_TYPE_AUDIO_IN: {
        if (!this.mic) this.mic = new Microphone(await this.getUserMedia({ audio: audioConstraints(opts, this.sessionConfig) }));
        this.sending.audio = true;
        await this.media?.session.setLocalTrack('audio', this.mic.track(this.captureVolume));
        return;
      }
      case DEVICE_TYPE_VIDEO: {
        if (!this.camera) this.camera = await this.getUserMedia({ video: videoConstraints(opts, this.sessionConfig) });
        this.sending.video = true;
        await this.media?.session.setLocalTrack('video', this.camera.getVideoTracks()[0]);
        this.refreshViews();
        return;
      }
      case DEVICE_TYPE_AUDIO_OUT_CHAT:
        this.views.chat = this.playAudio(this.views.chat, this.media?.session.remoteStream);
        return;
      case DEVICE_TYPE_AUDIO_OUT_LOCAL:
        if (!this.mic) throw new NetcallError(C.CODE_MEDIA, 'the microphone is not started');
        this.views.localAudio = this.playAudio(this.views.localAudio, this.mic.stream);
        return;
      default:
        throw new NetcallError(C.CODE_INVALID_ARGUMENT, `unknown device type ${type}`);
    }
  }

  /** Stops a device started with startDevice (accepts the type or {type}). */
  async stopDevice(opts) {
    const type = typeof opts === 'number' ? opts : opts?.type;
    switch (type) {
      case DEVICE_TYPE_AUDIO_IN:
        this.sending.audio = false;
        await this.media?.session.setLocalTrack('audio', null);
        this.mic?.stop();
        this.mic = null;
        if (this.views.localAudio) this.views.localAudio = stopAudio(this.views.localAudio);
        return;
      case DEVICE_TYPE_VIDEO:
        this.sending.video = false;
        await this.media?.session.setLocalTrack('video', null);
        for (const t of this.camera?.getTracks() || []) t.stop();
        this.camera = null;
        this.refreshViews();
        return;
      case DEVICE_TYPE_AUDIO_OUT_CHAT:
        this.views.chat = stopAudio(this.views.chat);
        return;
      case DEVICE_TYPE_AUDIO_OUT_LOCAL:
        this.views.localAudio = stopAudio(this.views.localAudio);
        return;
    }
  }

  /** Shows the local camera in node (a container element). */
  startLocalStream(node) {
    if (node) this.views.localNode = node;
    this.refreshViews();
    return Promise.resolve();
  }

  stopLocalStream() {
    detachVideo(this.views.local);
    this.views.local = null;
    this.views.localNode = null;
  }

  /** Shows the peer's video in node. */
  startRemoteStream({ node } = {}) {
    if (node && node !== this.views.remoteNode) {
      detachVideo(this.views.remote); // moving the picture (e.g. from the preview to the call screen)
      this.views.remote = null;
      this.views.remoteNode = node;
    }
    this.refreshViews();
    return Promise.resolve();
  }

  stopRemoteStream() {
    detachVideo(this.views.remote);
    this.views.remote = null;
    this.views.remoteNode = null;
  }

  /** Capture volume 0..255 (255: the microphone as it is). */
  setCaptureVolume(volume = 255) {
    this.captureVolume = clampVolume(volume);
    if (this.mic && this.sending.audio) this.media?.session.setLocalTrack('audio', this.mic.track(this.captureVolume));
    return Promise.resolve();
  }

  /** Playback volume of the peer's audio, 0..255. */
  setPlayVolume(volume = 255) {
    this.playVolume = clampVolume(volume);
    if (this.views.chat) this.views.chat.volume = this.playVolume / 255;
    return Promise.resolve();
  }

  setVideoViewSize(size = {}) {
    this.localSize = size;
    sizeView(this.views.local, size);
    return Promise.resolve();
  }

  setVideoViewRemoteSize(size = {}) {
    this.remoteSize = size;
    sizeView(this.views.remote, size);
    return Promise.resolve();
  }

  /** The call's RTCStatsReport (getStats of the PeerConnection), or null without media. */
  async getStats() {
    return this.media ? this.media.session.getStats() : null;
  }

  /** Bills not yet acknowledged by the broker (ids). */
  pendingBills() { return this.outbox.pending(); }

  // --- internals ----------------------------------------------------------

  onEngineEvent(name, data) {
    if (name === 'state') {
      this.transport.setState(data);
      this.transport.publishEvent('state', data);
      if (data.state === IDLE) this.cleanupCall();
      this.emit('state', { ...data });
      return;
    }
    this.transport.publishEvent(name, data);
    if (name === 'busy') {
      this.busyRejected.add(data.channelId);
      if (this.busyRejected.size > 256) this.busyRejected.delete(this.busyRejected.values().next().value);
    }
    if (name === 'callAccepted' || name === 'hangup' || name === 'callRejected') this.upgradeRequested = false;
    if (APP_EVENTS.includes(name)) this.emit(name, { ...data });
    if (name === 'callAccepted') this.flushRemoteTracks();
    if (name === 'beCalling' && !data.autoAccept && this.previewEnabled) {
      this.startPreview(data).catch((e) => this.log.warn?.('netcall: preview failed', e));
    }
    if (name === 'beCalling' && data.autoAccept) {
      // Glare: our own call was the one to go; answer theirs at once.
      this.response({ accepted: true, beCalledInfo: data }).catch((e) => this.log.warn?.('netcall: glare answer failed', e));
    }
  }

  onBill(bill) {
    if (!bill || typeof bill.id !== 'string' || this.seenBills.has(bill.id)) return; // at least once: de-duplicate
    this.seenBills.add(bill.id);
    const message = {
      type: 'notification', scene: 'p2p', from: bill.account, to: bill.account, time: bill.time, idServer: bill.id,
      attach: bill,
    };
    try {
      this.onmsg?.(message);
    } catch (e) {
      this.log.error?.('netcall: onmsg threw', e);
    }
    this.emit('msg', message);
  }

  mediaHooks() {
    const current = (ch) => (this.media && this.media.channelId === ch ? this.media.session : null);
    return {
      remoteCandidate: (ch, cand) => current(ch)?.addCandidate(cand),
      remoteSDP: (ch, sdp) => {
        const m = this.media;
        if (sdp.session === PREVIEW && m?.channelId === ch && m.preview && !m.previewAnswered && sdp.kind === 'answer') {
          m.previewAnswered = true;
          m.session.setAnswer(sdp.sdp).catch((e) => {
            this.log.warn?.('netcall: the preview answer could not be applied', e);
            m.previewAnswered = false;
          });
          return;
        }
        let s = current(ch);
        if (!s && sdp.kind === 'offer') {
          // The peer starts media (no SDP in invite/response): answer it.
          const cur = this.engine.current();
          s = this.newSession(cur.type, { channelId: ch });
          this.media = { channelId: ch, session: s };
          s.startTrickle();
        }
        s?.handleSDP(sdp).catch((e) => this.log.warn?.('netcall: renegotiation failed', e));
      },
      answer: (ch, sdp) => {
        const s = current(ch);
        if (!s || !sdp) return;
        s.setAnswer(sdp).catch((e) => {
          this.log.warn?.('netcall: the answer could not be applied', e);
          this.engine.fail('user_media_failed');
        });
      },
      control: (ch, command) => {
        const s = current(ch);
        if (s && command === CMD_UPGRADE_OK && this.upgradeRequested) {
          this.upgradeRequested = false;
          s.upgradeToVideo().catch((e) => this.log.warn?.('netcall: upgrade to video failed', e));
        }
      },
      close: (ch) => {
        const s = current(ch);
        if (!s) return undefined;
        this.media = null;
        return s.close();
      },
    };
  }

  /** A ringing device's preview session: our offer, the caller's answer, its video one way. */
  async startPreview(info) {
    const ringing = () => {
      const cur = this.engine.current();
      return cur && cur.channelId === info.channelId && cur.state === 'ringing' && cur.invite?.offer;
    };
    if (!ringing() || this.media) return;
    const s = this.newSession(info.type, { channelId: info.channelId, tag: PREVIEW }, false);
    this.media = { channelId: info.channelId, session: s, preview: true, previewAnswered: false };
    try {
      const offer = await s.createOffer();
      if (this.media?.session !== s || !ringing()) return;
      this.engine.sendSDP(info.channelId, { kind: 'offer', sdp: offer, session: PREVIEW });
      s.startTrickle();
    } catch (e) {
      this.dropSession(s);
      throw e;
    }
  }

  /** Closes a session that never became the call's. */
  dropSession(session) {
    if (!session) return;
    if (this.media?.session === session) this.media = null;
    session.close();
  }

  newSession(callType, holder, outgoing = this.engine.current()?.direction === 'outgoing') {
    const s = new MediaSession({
      callType, outgoing, rtcConfig: this.rtcConfig, log: this.log,
      onCandidate: (cand) => holder.channelId && this.engine.sendCandidate(holder.channelId, holder.tag ? { ...cand, session: holder.tag } : cand),
      onRenegotiate: (sdp) => holder.channelId && this.engine.sendSDP(holder.channelId, sdp),
      onTrack: (track, stream) => this.onRemoteTrack(track, stream),
      onState: (state) => this.onMediaState(holder.channelId, state),
    });
    if (this.sending.audio && this.mic) s.localTracks.audio = this.mic.track(this.captureVolume);
    if (this.sending.video && this.camera) s.localTracks.video = this.camera.getVideoTracks()[0];
    return s;
  }

  /** A remote track; reported (remoteTrack) once the call is connected. */
  onRemoteTrack(track, stream) {
    this.refreshViews();
    if (this.media?.preview) {
      const peer = this.engine.state.peer || {};
      this.emit('preview', { channelId: this.media.channelId, account: peer.account, device: peer.device, kind: track.kind, track, stream });
    }
    if (this.views.chat && this.views.chat.srcObject !== stream) this.views.chat.srcObject = stream;
    this.pendingTracks.push({ track, stream });
    if (this.callAccepted) this.flushRemoteTracks();
  }

  flushRemoteTracks() {
    const peer = this.engine.state.peer || {};
    for (const { track, stream } of this.pendingTracks.splice(0)) {
      if (track.readyState === 'ended') continue;
      this.emit('remoteTrack', { account: peer.account, device: peer.device, kind: track.kind, track, stream });
    }
  }

  onMediaState(channelId, state) {
    this.emit('mediaState', { channelId, state });
    if (state === 'failed' && this.engine.state.channelId === channelId && this.engine.state.state === IN_CALL) {
      this.engine.fail('ice_failed');
    }
  }

  /** What a control command we send does to our own media (PROTOCOL.md "Media"). */
  applyLocalControl(command) {
    const s = this.media?.session;
    if (!s) return;
    const fail = (e) => this.log.warn?.(`netcall: control ${command} on media failed`, e);
    switch (command) {
      case C.NETCALL_CONTROL_COMMAND_NOTIFY_AUDIO_ON: s.setMuted('audio', false).catch(fail); break;
      case C.NETCALL_CONTROL_COMMAND_NOTIFY_AUDIO_OFF: s.setMuted('audio', true).catch(fail); break;
      case C.NETCALL_CONTROL_COMMAND_NOTIFY_VIDEO_ON: s.setMuted('video', false).catch(fail); break;
      case C.NETCALL_CONTROL_COMMAND_NOTIFY_VIDEO_OFF: s.setMuted('video', true).catch(fail); break;
      case C.NETCALL_CONTROL_COMMAND_SWITCH_VIDEO_TO_AUDIO: s.downgradeToAudio().catch(fail); break;
    }
  }

  refreshViews() {
    const v = this.views;
    if (v.localNode && this.camera) {
      v.local = attachVideo(v.localNode, this.camera, { muted: true, mirror: true, className: 'netcall-local' });
      if (this.localSize) sizeView(v.local, this.localSize);
    } else if (v.local && !this.camera) {
      detachVideo(v.local);
      v.local = null;
    }
    const remote = this.media?.session.remoteStream;
    if (v.remoteNode && remote) {
      v.remote = attachVideo(v.remoteNode, remote, { muted: true, className: 'netcall-remote' });
      if (this.remoteSize) sizeView(v.remote, this.remoteSize);
    }
  }

  playAudio(el, stream) {
    if (!el) {
      el = this.document.createElement('audio');
      el.autoplay = true;
      el.style.display = 'none';
      this.document.body.appendChild(el);
    }
    el.volume = this.playVolume / 255;
    if (stream && el.srcObject !== stream) el.srcObject = stream;
    el.play?.().catch(() => {});
    return el;
  }

  async getUserMedia(constraints) {
    if (!this.mediaDevices?.getUserMedia) throw new NetcallError(C.CODE_MEDIA, 'getUserMedia is not available (a secure context is needed)');
    try {
      return await this.mediaDevices.getUserMedia(constraints);
    } catch (e) {
      throw new NetcallError(C.CODE_MEDIA, `getUserMedia: ${e?.name || ''} ${e?.message || e}`, e);
    }
  }

  /**
   * Opens the microphone (not sent until startDevice) before ICE gathering:
   * with capture permission the browser gathers its real host addresses
   * instead of mDNS names the daemon may not resolve.
   */
  async warmUpMicrophone() {
    if (!this.preAcquireMicrophone || this.mic) return;
    try {
      this.mic = new Microphone(await this.getUserMedia({ audio: audioConstraints({}, this.sessionConfig) }));
    } catch (e) {
      this.log.warn?.('netcall: no microphone; the call goes on receive-only', e?.message || e);
    }
  }

  /** After a call: the SDK's own clean-up (the seed: hangup() cleans everything). */
  cleanupCall() {
    this.pendingTracks = [];
    if (this.media) {
      this.media.session.close();
      this.media = null;
    }
    this.stopDevice(DEVICE_TYPE_AUDIO_OUT_CHAT);
    this.stopDevice(DEVICE_TYPE_AUDIO_OUT_LOCAL);
    this.stopDevice(DEVICE_TYPE_AUDIO_IN);
    this.stopDevice(DEVICE_TYPE_VIDEO);
    this.stopLocalStream();
    this.stopRemoteStream();
    this.upgradeRequested = false;
  }
}

function clampVolume(v) {
  const n = Number(v);
  return Number.isFinite(n) ? Math.max(0, Math.min(255, n)) : 255;
}

function audioConstraints(opts = {}, session = {}) {
  const c = { echoCancellation: true, noiseSuppression: !session?.highAudio, autoGainControl: true };
  if (opts.deviceId) c.deviceId = { exact: opts.deviceId };
  return c;
}

function stopAudio(el) {
  if (!el) return null;
  el.pause?.();
  el.srcObject = null;
  el.remove();
  return null;
}

/** pushConfig as the wire knows it: the seed passes forceKeepCalling as 0/1. */
function cleanPush(p) {
  if (!p) return undefined;
  const out = { ...p };
  for (const k of ['enable', 'needBadge', 'needPushNick', 'forceKeepCalling']) if (k in out) out[k] = !!out[k];
  return out;
}

// Constants on the class, as the seed uses them (Netcall.NETCALL_TYPE_VIDEO, WebRTC.…).
for (const [k, v] of Object.entries(C)) if (/^[A-Z][A-Z0-9_]+$/.test(k)) Netcall[k] = v;
Netcall.NetcallError = NetcallError;
Netcall.SDK_VERSION = SDK_VERSION;

/** The seed also reaches the constants as WebRTC.*. */
export const WebRTC = Netcall;
export default Netcall;
