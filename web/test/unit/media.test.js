// MediaSession's ICE restart against a scripted RTCPeerConnection (the
// real browser path is covered by the Playwright suite; a path that dies
// mid-call cannot be staged there).
import { test } from 'node:test';
import assert from 'node:assert/strict';

class FakePC {
  constructor() {
    this.signalingState = 'stable';
    this.iceConnectionState = 'new';
    this.connectionState = 'new';
    this.iceGatheringState = 'complete';
    this.restarts = 0;
    this.offers = [];
    this.localDescription = null;
  }
  getTransceivers() { return []; }
  addTransceiver() {}
  restartIce() { this.restarts++; }
  async createOffer() { this.offers.push({ restart: this.restarts }); return { type: 'offer', sdp: `offer-${this.offers.length}` }; }
  async setLocalDescription(d) { this.localDescription = d; this.signalingState = 'have-local-offer'; }
  async getStats() { return new Map(); }
  close() {}
  set(ice, conn) {
    this.iceConnectionState = ice;
    this.oniceconnectionstatechange?.();
    if (conn) { this.connectionState = conn; this.onconnectionstatechange?.(); }
  }
}

globalThis.RTCPeerConnection = FakePC;
globalThis.MediaStream = class { getTracks() { return []; } addTrack() {} };
const { MediaSession } = await import('../../sdk/media.js');

function session(outgoing) {
  const sent = [];
  const s = new MediaSession({ callType: 1, outgoing, onRenegotiate: (d) => sent.push(d), onState: () => {}, log: { warn() {}, debug() {} } });
  return { s, sent, pc: s.pc };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

test('the caller restarts ICE when the connected path goes silent', async () => {
  const { s, sent, pc } = session(true);
  pc.set('disconnected'); // before ever connecting: nothing to restart
  await tick();
  assert.equal(sent.length, 0);
  pc.set('connected', 'connected');
  pc.set('disconnected', 'disconnected');
  await tick();
  assert.equal(pc.restarts, 1);
  assert.deepEqual(sent, [{ kind: 'offer', sdp: 'offer-1' }]);
  assert.equal((await s.snapshot()).iceRestarts, 1);
  // While that offer waits for its answer, another disconnect does not stack a second one.
  pc.set('disconnected');
  await tick();
  assert.equal(sent.length, 1);
  s.close();
});

test('the callee waits for the caller\'s restart', async () => {
  const { s, sent, pc } = session(false);
  pc.set('connected', 'connected');
  pc.set('disconnected', 'disconnected');
  await tick();
  assert.equal(pc.restarts, 0);
  assert.equal(sent.length, 0);
  s.close();
});
