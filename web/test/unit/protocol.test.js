import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeEnvelope, encodeEnvelope, Topics } from '../../sdk/protocol.js';

const env = (type, body, extra = {}) => JSON.stringify({
  v: 1, type, id: 'i1', from: { account: 'door', device: 'entrance' }, to: { account: 'flat1' }, channelId: 'c1', time: 5, body, ...extra,
});

test('decode: every protocol type with its body', () => {
  for (const [type, body] of [
    ['invite', { type: 2, offer: 'x', preview: true, attempt: 1, pushConfig: { custom: 'c', forceKeepCalling: true }, sessionConfig: { videoQuality: 3 } }],
    ['control', { command: 12 }],
    ['response', { accepted: true, busy: false, reason: '', clientType: 'web', answer: 'x', preview: true }],
    ['responseAck', { ok: false, code: 9103, message: 'm' }],
    ['ackSync', { accepted: true, device: 'tablet', clientType: 'web', type: 2 }],
    ['hangup', { type: -1, reason: 'ice_failed' }],
    ['sdp', { kind: 'offer', sdp: 'x', session: 'preview' }],
    ['candidate', { candidate: '', sdpMid: '0', sdpMLineIndex: 0, session: 'preview' }],
    ['sync', { state: 'in_call' }],
    ['syncAck', { alive: false }],
  ]) {
    assert.deepEqual(decodeEnvelope(env(type, body)).body, body, type);
  }
});

test('decode is strict like the daemon', () => {
  const bad = [
    env('invite', { type: 2, extra: 1 }), // unknown body field
    env('invite', { type: 3 }), // call type
    env('control', { command: 1 }, { foo: 1 }), // unknown envelope field
    env('control', { command: '1' }), // wrong type
    env('hangup', { type: 1 }),
    env('sdp', { kind: 'pranswer', sdp: 'x' }),
    env('sdp', { kind: 'offer', sdp: 'x', session: 'other' }),
    env('ackSync', { accepted: true }), // device required
    env('bogus', {}),
    env('control', { command: 1 }, { v: 2 }),
    env('control', { command: 1 }, { time: 0 }),
    env('control', { command: 1 }, { from: { account: 'door' } }),
    env('control', { command: 1 }, { from: { account: 'a/b', device: 'x' } }),
    env('control', { command: 1 }, { channelId: '' }),
    env('candidate', { candidate: 'c', sdpMLineIndex: 70000 }),
    JSON.stringify({ v: 1 }) + ' ',
  ];
  for (const b of bad) assert.throws(() => decodeEnvelope(b), b);
  assert.throws(() => decodeEnvelope('{"v":1,"type":"control"}x'));
  assert.throws(() => decodeEnvelope(env('invite', { type: 2, offer: 'x'.repeat(70000) })), /too large/);
});

test('encode keeps only known fields and round-trips', () => {
  const text = encodeEnvelope({
    type: 'response', id: 'a', from: { account: 'flat1', device: 'tablet', x: 1 }, to: { account: 'door', device: 'entrance' },
    channelId: 'c', time: 1, body: { accepted: true, answer: undefined, junk: 1 },
  });
  assert.deepEqual(JSON.parse(text).body, { accepted: true });
  assert.deepEqual(decodeEnvelope(text).from, { account: 'flat1', device: 'tablet' });
});

test('topics as the daemon names them', () => {
  const t = new Topics('intercom');
  const door = { account: 'door', device: 'entrance' };
  const tab = { account: 'flat1', device: 'tablet' };
  assert.equal(t.accountCall('flat1', door), 'intercom/account/flat1/call/door/entrance');
  assert.equal(t.inbox(tab, door), 'intercom/device/flat1/tablet/inbox/door/entrance');
  assert.equal(t.presenceFilter(), 'intercom/device/+/+/presence');
  assert.deepEqual(t.sender('intercom/device/flat1/tablet/inbox/door/entrance'), door);
  assert.deepEqual(t.presenceDevice('intercom/device/flat1/tablet/presence'), tab);
  assert.equal(t.presenceDevice('intercom/device/flat1/tablet/state'), null);
  assert.throws(() => new Topics('a/+'));
  assert.throws(() => new Topics('$SYS'));
});
