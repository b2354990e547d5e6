// One call's WebRTC media: the RTCPeerConnection, the SDP offer/answer
// carried by invite/response (PROTOCOL.md "Media"), trickle ICE in both
// directions with buffering on each side, renegotiation through `sdp`
// envelopes, local tracks swapped in without renegotiation, the remote
// stream and a statistics snapshot for the bill.

import { applyCodecPolicy } from './codecs.js';

const KINDS = ['audio', 'video'];

export class MediaSession {
  /**
   * @param {object} o
   * @param {number} o.callType  1 audio, 2 video
   * @param {RTCConfiguration} [o.rtcConfig]
   * @param {(cand:object)=>void} o.onCandidate  a local candidate for the peer ({candidate:''} ends gathering)
   * @param {(sdp:{kind:string, sdp:string})=>void} o.onRenegotiate  an offer/answer for the peer
   * @param {(track:MediaStreamTrack, stream:MediaStream)=>void} o.onTrack
   * @param {(state:string)=>void} o.onState  connected | failed | disconnected | closed
   */
  constructor({ callType, outgoing = false, rtcConfig, onCandidate, onRenegotiate, onTrack, onState, log = console }) {
    this.callType = callType;
    this.outgoing = outgoing; // the caller's renegotiation offer wins a collision
    this.muted = { audio: false, video: false };
    this.cb = { onCandidate, onRenegotiate, onTrack, onState };
    this.log = log;
    this.pc = new RTCPeerConnection(rtcConfig || { iceServers: [] });
    this.remoteStream = new MediaStream();
    this.localTracks = { audio: null, video: null };
    this.pendingRemote = []; // remote candidates before the remote description
    this.pendingLocal = []; // local candidates until trickling may start
    this.trickling = false;
    this.closed = false;
    this.everConnected = false;
    this.iceRestarts = 0;
    this.lastStats = undefined;
    this.pc.onicecandidate = (e) => {
      const c = e.candidate;
      const cand = c && c.candidate
        ? { candidate: c.candidate, sdpMid: c.sdpMid ?? undefined, sdpMLineIndex: c.sdpMLineIndex ?? undefined }
        : { candidate: '' };
      if (this.trickling) this.cb.onCandidate?.(cand);
      else this.pendingLocal.push(cand);
    };
    this.pc.ontrack = (e) => {
      if (!this.remoteStream.getTracks().includes(e.track)) this.remoteStream.addTrack(e.track);
      this.cb.onTrack?.(e.track, this.remoteStream);
    };
    this.pc.oniceconnectionstatechange = () => {
      // The path died (Wi-Fi roamed, an address changed): the caller
      // restarts ICE, as the daemon does (PROTOCOL.md "Media"); the callee
      // follows the new credentials in the caller's offer.
      if (this.pc.iceConnectionState === 'disconnected' && this.everConnected && this.outgoing) {
        this.restartIce().catch((e) => this.log.warn?.('netcall: ICE restart failed', e?.message));
      }
    };
    this.pc.onconnectionstatechange = () => {
      const s = this.pc.connectionState;
      if (s === 'connected') {
        this.everConnected = true;
        this.startStatsPolling();
      }
      if (s === 'connected' || s === 'failed' || s === 'disconnected' || s === 'closed') this.cb.onState?.(s);
    };
  }

  /** Lets local candidates flow (after the invite/response carrying our SDP is out). */
  startTrickle() {
    this.trickling = true;
    for (const c of this.pendingLocal.splice(0)) this.cb.onCandidate?.(c);
  }

  transceiver(kind) {
    return this.pc.getTransceivers().find((t) => t.receiver.track?.kind === kind && t.direction !== 'stopped');
  }

  /** Caller: transceivers for the call type and the SDP offer for the invite. */
  async createOffer() {
    this.pc.addTransceiver('audio', { direction: 'sendrecv' });
    if (this.callType === 2) this.pc.addTransceiver('video', { direction: 'sendrecv' });
    return this.makeOffer();
  }

  async makeOffer() {
    this.applyPolicy();
    await this.attachLocalTracks();
    await this.pc.setLocalDescription(await this.pc.createOffer());
    return this.sdpWithEarlyCandidates();
  }

  /**
   * Our SDP after up to `ms` of gathering: it carries the host candidates
   * found so far (PROTOCOL.md "Media" 1), which are then not trickled again.
   */
  async sdpWithEarlyCandidates(ms = 50) {
    if (this.pc.iceGatheringState !== 'complete') {
      await new Promise((resolve) => {
        const t = setTimeout(done, ms);
        const pc = this.pc;
        function done() {
          clearTimeout(t);
          pc.removeEventListener('icegatheringstatechange', check);
          resolve();
        }
        function check() { if (pc.iceGatheringState === 'complete') done(); }
        pc.addEventListener('icegatheringstatechange', check);
      });
    }
    if (!this.trickling) this.pendingLocal = this.pendingLocal.filter((c) => !c.candidate);
    return this.pc.localDescription.sdp;
  }

  /** Callee: applies the invite's offer and returns our answer. */
  async acceptOffer(offer) {
    await this.pc.setRemoteDescription({ type: 'offer', sdp: offer });
    return this.makeAnswer();
  }

  async makeAnswer() {
    for (const t of this.pc.getTransceivers()) {
      // Offer to send on every m-line the peer offered; the answer keeps what both allow.
      if (t.direction !== 'stopped') t.direction = 'sendrecv';
    }
    this.applyPolicy();
    await this.attachLocalTracks();
    await this.pc.setLocalDescription(await this.pc.createAnswer());
    this.flushRemote();
    return this.sdpWithEarlyCandidates();
  }

  /** Caller: applies the winning device's answer. */
  async setAnswer(answer) {
    await this.pc.setRemoteDescription({ type: 'answer', sdp: answer });
    this.flushRemote();
  }

  applyPolicy() {
    for (const kind of KINDS) {
      const t = this.transceiver(kind);
      if (t && !applyCodecPolicy(t, kind)) this.log.warn?.(`netcall: the browser has no ${kind} codec intercomd speaks`);
    }
  }

  /** A remote candidate; kept until the remote description is set. */
  addCandidate(c) {
    if (!this.pc.remoteDescription) {
      this.pendingRemote.push(c);
      return;
    }
    const init = c.candidate ? { candidate: c.candidate, sdpMid: c.sdpMid, sdpMLineIndex: c.sdpMLineIndex } : null;
    if (init && init.sdpMid === undefined && init.sdpMLineIndex === undefined) init.sdpMLineIndex = 0;
    this.pc.addIceCandidate(init).catch((e) => this.log.debug?.('netcall: remote candidate rejected', e?.message));
  }

  flushRemote() {
    for (const c of this.pendingRemote.splice(0)) this.addCandidate(c);
  }

  /** A renegotiation offer or answer from the peer. */
  async handleSDP({ kind, sdp }) {
    if (kind === 'answer') {
      await this.pc.setRemoteDescription({ type: 'answer', sdp });
      return;
    }
    if (this.pc.signalingState === 'have-local-offer' && this.outgoing) return; // both offered: the caller's wins
    // A callee with an offer of its own out rolls it back (implicitly) and answers.
    await this.pc.setRemoteDescription({ type: 'offer', sdp });
    const answer = await this.makeAnswer();
    this.cb.onRenegotiate?.({ kind: 'answer', sdp: answer });
  }

  /** Caller: renegotiates with new ICE credentials and candidates. */
  async restartIce() {
    if (this.closed || this.pc.signalingState !== 'stable') return; // an answer is due; ICE retries after it
    this.iceRestarts++;
    this.pc.restartIce();
    const offer = await this.makeOffer();
    this.cb.onRenegotiate?.({ kind: 'offer', sdp: offer });
  }

  /** Drops video (control 8) and sends a renegotiation offer. */
  async downgradeToAudio() {
    this.callType = 1;
    const t = this.transceiver('video');
    if (!t) return;
    t.direction = 'inactive';
    await t.sender.replaceTrack(null);
    const offer = await this.makeOffer();
    this.cb.onRenegotiate?.({ kind: 'offer', sdp: offer });
  }

  /** Mutes (no packets at all) or unmutes our audio or video (control 2/1, 4/3). */
  async setMuted(kind, muted) {
    this.muted[kind] = muted;
    const t = this.transceiver(kind);
    if (t) await t.sender.replaceTrack(muted ? null : this.localTracks[kind]);
  }

  /** Adds (or re-enables) video and sends a renegotiation offer. */
  async upgradeToVideo() {
    this.callType = 2;
    const t = this.transceiver('video');
    if (t) t.direction = 'sendrecv';
    else this.pc.addTransceiver('video', { direction: 'sendrecv' });
    const offer = await this.makeOffer();
    this.cb.onRenegotiate?.({ kind: 'offer', sdp: offer });
  }

  /** Sends `track` (or nothing, with null) as our audio or video, without renegotiation. */
  async setLocalTrack(kind, track) {
    this.localTracks[kind] = track;
    const t = this.transceiver(kind);
    if (t && !this.muted[kind]) await t.sender.replaceTrack(track);
  }

  async attachLocalTracks() {
    for (const kind of KINDS) {
      const t = this.transceiver(kind);
      const want = this.muted[kind] ? null : this.localTracks[kind];
      if (t && want && t.sender.track !== want && t.direction !== 'inactive') await t.sender.replaceTrack(want);
    }
  }

  getStats() { return this.pc.getStats(); }

  startStatsPolling() {
    if (this.statsTimer || this.closed) return;
    const poll = () => this.snapshot().catch(() => {});
    poll();
    this.statsTimer = setInterval(poll, 1000);
  }

  /** Summarises getStats like the daemon's bill `media` field. */
  async snapshot() {
    const r = await this.pc.getStats();
    const s = { audio: {}, video: {}, rttMs: 0 };
    if (this.iceRestarts) s.iceRestarts = this.iceRestarts;
    r.forEach((x) => {
      const k = x.kind || x.mediaType;
      if (x.type === 'outbound-rtp' && s[k]) {
        s[k].packetsSent = x.packetsSent || 0;
        s[k].bytesSent = x.bytesSent || 0;
        if (k === 'video') s[k].framesSent = x.framesEncoded || x.framesSent || 0;
      } else if (x.type === 'inbound-rtp' && s[k]) {
        s[k].packetsReceived = x.packetsReceived || 0;
        s[k].bytesReceived = x.bytesReceived || 0;
        s[k].packetsLost = x.packetsLost || 0;
        s[k].jitterMs = Math.round((x.jitter || 0) * 1000 * 10) / 10;
        if (k === 'video') {
          s[k].framesReceived = x.framesReceived || 0;
          s[k].framesDecoded = x.framesDecoded || 0;
          s[k].framesDropped = x.framesDropped || 0;
        }
      } else if (x.type === 'candidate-pair' && x.nominated && x.currentRoundTripTime) {
        s.rttMs = Math.round(x.currentRoundTripTime * 1000 * 10) / 10;
      }
    });
    this.lastStats = s;
    return s;
  }

  /** Closes the connection; returns the last statistics snapshot. */
  close() {
    if (this.closed) return this.lastStats;
    this.closed = true;
    clearInterval(this.statsTimer);
    this.pc.onicecandidate = this.pc.ontrack = this.pc.onconnectionstatechange = this.pc.oniceconnectionstatechange = null;
    this.pc.close();
    for (const t of this.remoteStream.getTracks()) t.stop();
    return this.lastStats;
  }
}
