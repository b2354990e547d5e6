import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeEngine, door, tablet, phone, chan } from './fakes.js';

const CH = chan('a');

test('callee: ring, START_NOTIFY_RECEIVED, answer, responseAck → callAccepted and in_call', async () => {
  const h = makeEngine(tablet);
  h.online('door', 'entrance');
  h.deliver(door, 'invite', CH, { type: 2, offer: 'v=0 offer' }, { account: 'flat1' });
  assert.deepEqual(h.sentOf('control').map((e) => e.body.command), [12]);
  const [ring] = h.eventsOf('beCalling');
  assert.equal(ring.account, 'door');
  assert.equal(ring.channelId, CH);
  assert.equal(h.engine.state.state, 'ringing');
  // Candidates from the ringing caller are held until we answer.
  h.deliver(door, 'candidate', CH, { candidate: 'candidate:1 1 udp 1 127.0.0.1 5000 typ host', sdpMid: '0', sdpMLineIndex: 0 }, { account: 'flat1' });
  assert.equal(h.mediaCalls.filter((m) => m[0] === 'candidate').length, 0);
  const p = h.engine.respond(CH, true, { answer: 'v=0 answer' });
  const [resp] = h.sentOf('response');
  assert.deepEqual(resp.to, door);
  assert.equal(resp.body.accepted, true);
  assert.equal(resp.body.answer, 'v=0 answer');
  assert.equal(h.mediaCalls.filter((m) => m[0] === 'candidate').length, 1, 'held candidate applied on answer');
  h.deliver(door, 'responseAck', CH, { ok: true });
  await p;
  assert.equal(h.engine.state.state, 'in_call');
  assert.equal(h.eventsOf('callAccepted').length, 1);
  h.clock.advance(3000);
  h.engine.hangup();
  const [hang] = h.sentOf('hangup');
  assert.deepEqual(hang.body, { type: 0, reason: 'user_hangup' });
  assert.equal(h.bills.length, 1);
  const b = h.bills[0];
  assert.equal(b.type, 'netcallBill');
  assert.equal(b.channelId, CH);
  assert.equal(b.duration, 3);
  assert.equal(b.disposition, 'ANSWERED');
  assert.equal(b.hungUpBy, 'callee');
  assert.deepEqual(b.accounts, ['door', 'flat1']);
  assert.equal(b.id, `${CH}-flat1-tablet`);
});

test('callee: duplicate invite (same channelId) is dropped', () => {
  const h = makeEngine(tablet);
  h.deliver(door, 'invite', CH, { type: 2 }, { account: 'flat1' });
  h.deliver(door, 'invite', CH, { type: 2, attempt: 1 }, { account: 'flat1' });
  assert.equal(h.eventsOf('beCalling').length, 1);
  assert.equal(h.sentOf('control').length, 1);
});

test('callee: duplicate message id is dropped', () => {
  const h = makeEngine(tablet);
  const env = { v: 1, type: 'invite', id: 'same', from: door, to: { account: 'flat1' }, channelId: CH, time: 1, body: { type: 1 } };
  h.engine.handleMessage(env);
  h.engine.handleMessage({ ...env, channelId: chan('b') });
  assert.equal(h.eventsOf('beCalling').length, 1);
});

test('callee: busy while ringing or in a call → BUSY control + busy response, current call kept', async () => {
  const h = makeEngine(tablet);
  h.deliver(door, 'invite', CH, { type: 2 }, { account: 'flat1' });
  const gate = { account: 'gate', device: 'main' };
  h.deliver(gate, 'invite', chan('b'), { type: 1 }, { account: 'flat1' });
  const toGate = h.sent.filter((e) => e.to.account === 'gate');
  assert.deepEqual(toGate.map((e) => [e.type, e.body.command ?? e.body.busy]), [['control', 12], ['control', 9], ['response', true]]);
  assert.equal(toGate[2].body.reason, 'user_busy');
  assert.equal(h.engine.current().channelId, CH);
  assert.equal(h.eventsOf('beCalling').length, 1);
  const busyBill = h.bills.find((b) => b.channelId === chan('b'));
  assert.equal(busyBill.disposition, 'BUSY');
  assert.equal(busyBill.type, 'netcallReject');
});

test('callee: callerAckSync for another device stops ringing; late answer fails with 9103', async () => {
  const h = makeEngine(phone);
  h.deliver(door, 'invite', CH, { type: 2 }, { account: 'flat1' });
  h.deliver(door, 'ackSync', CH, { accepted: true, device: 'tablet', clientType: 'web', type: 2 }, { account: 'flat1' });
  const [sync] = h.eventsOf('callerAckSync');
  assert.deepEqual(sync, { timetag: h.clock.now(), channelId: CH, type: 2, accepted: true, fromClientType: 'web', device: 'tablet' });
  assert.equal(h.engine.state.state, 'idle');
  await assert.rejects(h.engine.respond(CH, true), (e) => e.event.code === 9103);
  assert.equal(h.bills[0].disposition, 'NO ANSWER');
  assert.equal(h.bills[0].answeredBy, 'tablet');
});

test('callee: responseAck 9103 rejects the answer', async () => {
  const h = makeEngine(phone);
  h.deliver(door, 'invite', CH, { type: 2 }, { account: 'flat1' });
  const p = h.engine.respond(CH, true);
  h.deliver(door, 'responseAck', CH, { ok: false, code: 9103, message: 'another device responded first' });
  await assert.rejects(p, (e) => e.code === 9103 && e.event.code === 9103);
  assert.equal(h.engine.state.state, 'idle');
});

test('callee: no responseAck within 5 s → 9003 and an abnormal hangup', async () => {
  const h = makeEngine(tablet);
  h.deliver(door, 'invite', CH, { type: 2 }, { account: 'flat1' });
  const p = h.engine.respond(CH, true);
  h.clock.advance(5000);
  await assert.rejects(p, (e) => e.code === 9003);
  assert.equal(h.eventsOf('hangup')[0].type, -1);
  assert.equal(h.bills[0].disposition, 'FAILED');
});

test('callee: ring timeout after 60 s → response ring_timeout', () => {
  const h = makeEngine(tablet);
  h.deliver(door, 'invite', CH, { type: 2 }, { account: 'flat1' });
  h.clock.advance(59_999);
  assert.equal(h.engine.state.state, 'ringing');
  h.clock.advance(1);
  const [r] = h.sentOf('response');
  assert.deepEqual(r.body, { accepted: false, reason: 'ring_timeout', clientType: 'web' });
  assert.equal(h.engine.state.state, 'idle');
});

test('callee: caller cancels (hangup on the account topic) → hangup event, CANCELLED bill', () => {
  const h = makeEngine(tablet);
  h.deliver(door, 'invite', CH, { type: 2 }, { account: 'flat1' });
  h.deliver(door, 'hangup', CH, { type: 0, reason: 'cancelled' }, { account: 'flat1' });
  assert.equal(h.eventsOf('hangup')[0].by, 'remote');
  assert.equal(h.bills[0].disposition, 'CANCELLED');
});

test('callee: caller offline past the grace ends the call with peer_lost; a restart ends it at once', async () => {
  const h = makeEngine(tablet);
  h.online('door', 'entrance', 's1');
  h.deliver(door, 'invite', CH, { type: 2 }, { account: 'flat1' });
  const p = h.engine.respond(CH, true);
  h.deliver(door, 'responseAck', CH, { ok: true });
  await p;
  h.offline('door', 'entrance', 's1');
  h.clock.advance(2000);
  h.online('door', 'entrance', 's1'); // back within the grace
  h.clock.advance(5000);
  assert.equal(h.engine.state.state, 'in_call');
  h.online('door', 'entrance', 's2'); // restarted
  assert.equal(h.engine.state.state, 'idle');
  const [hang] = h.eventsOf('hangup');
  assert.equal(hang.type, -1);
  assert.equal(hang.reason, 'peer_lost');
});

test('caller: callee offline → 11001 and a FAILED bill', () => {
  const h = makeEngine(tablet);
  assert.throws(() => h.engine.startCall({ type: 2, account: 'door' }), (e) => e.event.code === 11001);
  assert.equal(h.bills[0].disposition, 'FAILED');
  assert.equal(h.sent.length, 0);
});

test('caller: a repeated reject after the call ended is confirmed again; another device gets 9103', () => {
  const h = makeEngine(door);
  h.online('flat1', 'tablet');
  h.online('flat1', 'phone');
  const res = h.engine.startCall({ type: 1, account: 'flat1' });
  h.deliver(tablet, 'response', res.channelId, { accepted: false });
  assert.equal(h.engine.state.state, 'idle');
  // The tablet's confirmation was lost: it sends the reject again.
  h.deliver(tablet, 'response', res.channelId, { accepted: false });
  h.deliver(phone, 'response', res.channelId, { accepted: true });
  const acks = h.sentOf('responseAck');
  assert.deepEqual(acks.map((a) => [a.to.device, a.body.ok, a.body.code]),
    [['tablet', true, undefined], ['tablet', true, undefined], ['phone', false, 9103]]);
  assert.equal(h.bills.length, 1);
});

test('caller: first response wins; a later one gets 9103; ackSync goes to the account', () => {
  const h = makeEngine(door);
  h.online('flat1', 'tablet');
  h.online('flat1', 'phone');
  const res = h.engine.startCall({ type: 2, account: 'flat1', offer: 'v=0 o' });
  const [inv] = h.sentOf('invite');
  assert.deepEqual(inv.to, { account: 'flat1' });
  assert.equal(inv.body.offer, 'v=0 o');
  h.deliver(tablet, 'control', res.channelId, { command: 12 });
  h.deliver(phone, 'control', res.channelId, { command: 12 });
  h.deliver(phone, 'candidate', res.channelId, { candidate: 'c-phone' });
  h.deliver(tablet, 'candidate', res.channelId, { candidate: 'c-tablet' });
  h.deliver(tablet, 'response', res.channelId, { accepted: true, answer: 'v=0 a', clientType: 'web' });
  h.deliver(phone, 'response', res.channelId, { accepted: true });
  const acks = h.sentOf('responseAck');
  assert.deepEqual(acks.map((a) => [a.to.device, a.body.ok, a.body.code]), [['tablet', true, undefined], ['phone', false, 9103]]);
  const [sync] = h.sentOf('ackSync');
  assert.deepEqual(sync.to, { account: 'flat1' });
  assert.deepEqual(sync.body, { accepted: true, device: 'tablet', clientType: 'web', type: 2 });
  assert.deepEqual(h.mediaCalls.filter((m) => m[0] !== 'close').map((m) => [m[0], m[2]]),
    [['answer', 'v=0 a'], ['candidate', { candidate: 'c-tablet' }]]);
  assert.equal(h.engine.state.state, 'in_call');
  assert.deepEqual(h.engine.state.peer, tablet);
  // Candidates go to the winner's inbox from now on.
  h.engine.sendCandidate(res.channelId, { candidate: 'mine' });
  assert.deepEqual(h.sentOf('candidate').at(-1).to, tablet);
});

test('caller: candidates go to the account topic while no device answered', () => {
  const h = makeEngine(door);
  h.online('flat1', 'tablet');
  const res = h.engine.startCall({ type: 2, account: 'flat1' });
  h.engine.sendCandidate(res.channelId, { candidate: 'x', sdpMid: '0', sdpMLineIndex: 0 });
  assert.deepEqual(h.sentOf('candidate')[0].to, { account: 'flat1' });
});

test('caller: busy from every online device ends the call (callRejected busy)', () => {
  const h = makeEngine(door);
  h.online('flat1', 'tablet');
  h.online('flat1', 'phone');
  const res = h.engine.startCall({ type: 1, account: 'flat1' });
  h.deliver(tablet, 'response', res.channelId, { accepted: false, busy: true, reason: 'user_busy' });
  assert.equal(h.engine.state.state, 'calling', 'phone may still answer');
  h.deliver(phone, 'response', res.channelId, { accepted: false, busy: true, reason: 'user_busy' });
  const [rej] = h.eventsOf('callRejected');
  assert.equal(rej.busy, true);
  assert.equal(h.bills[0].disposition, 'BUSY');
});

test('caller: no answer in 30 s → hangup -1 invite_timeout to the account', () => {
  const h = makeEngine(door);
  h.online('flat1', 'tablet');
  h.engine.startCall({ type: 2, account: 'flat1' });
  h.clock.advance(30_000);
  const [hang] = h.sentOf('hangup');
  assert.deepEqual(hang.to, { account: 'flat1' });
  assert.deepEqual(hang.body, { type: -1, reason: 'invite_timeout' });
  assert.equal(h.bills[0].disposition, 'NO ANSWER');
});

test('caller: forceKeepCalling re-sends the invite every 2.5 s until acknowledged', () => {
  const h = makeEngine(door);
  const res = h.engine.startCall({ type: 2, account: 'flat1', pushConfig: { forceKeepCalling: true } });
  h.clock.advance(5000);
  assert.deepEqual(h.sentOf('invite').map((e) => e.body.attempt), [undefined, 1, 2]);
  h.deliver(tablet, 'control', res.channelId, { command: 12 });
  h.clock.advance(5000);
  assert.equal(h.sentOf('invite').length, 3);
});

test('caller: a callee device coming online gets the invite again', () => {
  const h = makeEngine(door);
  h.online('flat1', 'tablet');
  h.engine.startCall({ type: 2, account: 'flat1' });
  h.online('flat1', 'phone');
  assert.equal(h.sentOf('invite').length, 2);
});

test('caller: while calling, a busy call attempt fails locally with 9001', () => {
  const h = makeEngine(door);
  h.online('flat1', 'tablet');
  h.engine.startCall({ type: 2, account: 'flat1' });
  assert.throws(() => h.engine.startCall({ type: 2, account: 'flat1' }), (e) => e.code === 9001);
});

test('glare: the lower channelId survives on both sides', () => {
  const a = makeEngine(door);
  const b = makeEngine(tablet);
  a.online('flat1', 'tablet');
  b.online('door', 'entrance');
  const low = chan('1');
  const high = chan('f');
  a.engine.startCall({ type: 2, account: 'flat1', channelId: low });
  b.engine.startCall({ type: 2, account: 'door', channelId: high });
  // Each receives the other's invite.
  a.deliver(tablet, 'invite', high, { type: 2 }, { account: 'door' });
  b.deliver(door, 'invite', low, { type: 2 }, { account: 'flat1' });
  assert.equal(a.engine.current().channelId, low, 'door keeps its lower call');
  assert.equal(a.sentOf('control').length, 0, 'the losing invite is ignored');
  assert.equal(b.engine.current().channelId, low, 'tablet now rings for the lower call');
  const [cancel] = b.sentOf('hangup');
  assert.deepEqual(cancel.body, { type: 0, reason: 'glare' });
  const [ring] = b.eventsOf('beCalling');
  assert.equal(ring.autoAccept, true);
});

test('control: refused before the call is answered, passed on while ringing', () => {
  const h = makeEngine(door);
  h.online('flat1', 'tablet');
  const res = h.engine.startCall({ type: 2, account: 'flat1' });
  assert.throws(() => h.engine.control(res.channelId, 1), (e) => e.code === 9102);
  const c = makeEngine(tablet);
  c.deliver(door, 'invite', CH, { type: 2 }, { account: 'flat1' });
  c.engine.control(CH, 12);
  assert.equal(c.sentOf('control').length, 2);
});

test('events for other channels are ignored', () => {
  const h = makeEngine(tablet);
  h.deliver(door, 'invite', CH, { type: 2 }, { account: 'flat1' });
  h.deliver(door, 'hangup', chan('b'), { type: 0 }, { account: 'flat1' });
  h.deliver(door, 'control', chan('b'), { command: 1 });
  assert.equal(h.engine.state.state, 'ringing');
  assert.equal(h.eventsOf('control').length, 0);
});

test('hangup while ringing rejects; the reject completes on the ack', () => {
  const h = makeEngine(tablet);
  h.deliver(door, 'invite', CH, { type: 2 }, { account: 'flat1' });
  h.engine.hangup();
  const [r] = h.sentOf('response');
  assert.equal(r.body.accepted, false);
  assert.equal(r.body.reason, 'user_hangup');
  h.deliver(door, 'responseAck', CH, { ok: true });
  assert.equal(h.bills[0].disposition, 'REJECTED');
  assert.throws(() => h.engine.hangup(), (e) => e.code === 9102);
});

test('sync: answered alive for the current call, not alive otherwise', () => {
  const h = makeEngine(tablet);
  h.deliver(door, 'invite', CH, { type: 2 }, { account: 'flat1' });
  h.deliver(door, 'sync', CH, { state: 'in_call' });
  h.deliver(door, 'sync', chan('b'), { state: 'in_call' });
  assert.deepEqual(h.sentOf('syncAck').map((e) => e.body), [{ alive: true, state: 'ringing' }, { alive: false }]);
});

test('sync: after a reconnect in a call, sync every 2 s (5 at most); alive:false ends the call silently', async () => {
  const h = makeEngine(tablet);
  h.deliver(door, 'invite', CH, { type: 2 }, { account: 'flat1' });
  const p = h.engine.respond(CH, true);
  h.deliver(door, 'responseAck', CH, { ok: true });
  await p;
  h.engine.reconnected();
  h.clock.advance(20_000);
  assert.equal(h.sentOf('sync').length, 5);
  h.engine.reconnected();
  const before = h.sent.length;
  h.deliver(door, 'syncAck', CH, { alive: false });
  assert.equal(h.sent.length, before, 'nothing more is sent');
  assert.equal(h.engine.state.state, 'idle');
  const [hang] = h.eventsOf('hangup');
  assert.deepEqual([hang.type, hang.reason], [-1, 'peer_lost']);
});

test('preview: a ringing device offers a preview session; its candidates pass at once; accepting says preview:true', async () => {
  const h = makeEngine(tablet);
  h.deliver(door, 'invite', CH, { type: 2, offer: 'v=0 o' }, { account: 'flat1' });
  h.engine.sendSDP(CH, { kind: 'offer', sdp: 'v=0 preview', session: 'preview' });
  const [offer] = h.sentOf('sdp');
  assert.deepEqual(offer.to, door);
  assert.deepEqual(offer.body, { kind: 'offer', sdp: 'v=0 preview', session: 'preview' });
  h.engine.sendSDP(CH, { kind: 'offer', sdp: 'v=0 renegotiation' });
  assert.equal(h.sentOf('sdp').length, 1, 'no renegotiation before the call is connected');
  h.deliver(door, 'sdp', CH, { kind: 'answer', sdp: 'v=0 a', session: 'preview' });
  h.deliver(door, 'candidate', CH, { candidate: 'p', session: 'preview' });
  h.deliver(door, 'candidate', CH, { candidate: 'call' });
  assert.deepEqual(h.mediaCalls.map((m) => [m[0], m[2].sdp || m[2].candidate]), [['sdp', 'v=0 a'], ['candidate', 'p']]);
  const p = h.engine.respond(CH, true, { preview: true });
  const [resp] = h.sentOf('response');
  assert.equal(resp.body.preview, true);
  assert.equal(resp.body.answer, undefined);
  h.deliver(door, 'responseAck', CH, { ok: true });
  await p;
  assert.equal(h.engine.state.state, 'in_call');
});

test('preview: offers to a caller are ignored (the device then answers the invite)', () => {
  const h = makeEngine(door);
  h.online('flat1', 'tablet');
  const res = h.engine.startCall({ type: 2, account: 'flat1', offer: 'v=0 o' });
  h.deliver(tablet, 'sdp', res.channelId, { kind: 'offer', sdp: 'v=0 p', session: 'preview' });
  assert.equal(h.mediaCalls.length, 0);
  assert.equal(h.sentOf('sdp').length, 0);
});
