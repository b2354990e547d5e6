// The SDK's public API over its real MQTT transport and codec, on an
// in-memory broker: two browser devices, the seed's example code, bills.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { Netcall, WebRTC } from '../../sdk/netcall.js';
import { MemoryStorage } from '../../sdk/outbox.js';
import { FakeBroker, settle } from './fakebroker.js';

const quiet = { error() {}, warn() {}, debug() {}, info() {} };

const live = [];
afterEach(async () => {
  await Promise.all(live.splice(0).map((n) => n.destroy()));
});

function device(broker, account, device, extra = {}) {
  return track({ broker: 'ws://fake', account, device, connect: broker.connect, log: quiet, storage: new MemoryStorage(), ...extra });
}

function track(opts) {
  const n = new Netcall(opts);
  live.push(n);
  return n;
}

test('presence: retained online with an offline last will; state retained; client id as the daemon derives it', async () => {
  const broker = new FakeBroker();
  const n = device(broker, 'flat1', 'tablet');
  await n.connect();
  await settle();
  const pres = JSON.parse(broker.retained.get('intercom/device/flat1/tablet/presence'));
  assert.equal(pres.state, 'online');
  assert.equal(pres.clientType, 'web');
  const client = [...broker.clients][0];
  assert.equal(client.opts.clientId, 'icd-b02ba064e540d3b5b1e');
  assert.equal(client.opts.keepalive, 5);
  assert.equal(JSON.parse(client.opts.will.payload).state, 'offline');
  assert.equal(client.opts.will.retain, true);
  assert.deepEqual(JSON.parse(broker.retained.get('intercom/device/flat1/tablet/state')).state, 'idle');
  broker.kill(client);
  assert.equal(JSON.parse(broker.retained.get('intercom/device/flat1/tablet/presence')).state, 'offline');
});

test('call to an offline account fails with err.event.code 11001', async () => {
  const broker = new FakeBroker();
  const n = device(broker, 'flat1', 'tablet');
  await n.connect();
  await assert.rejects(n.call({ type: WebRTC.NETCALL_TYPE_VIDEO, account: 'nobody' }), (e) => e.event.code === 11001);
});

test("the seed's example code: call, beCalling, response, callAccepted, hangup, netcallBill via onmsg", async () => {
  const broker = new FakeBroker();
  const calleeMsgs = [];
  const callerMsgs = [];
  const caller = device(broker, 'door', 'entrance', { onmsg: (m) => callerMsgs.push(m) });
  const netcall = device(broker, 'flat1', 'tablet', { onmsg: (m) => calleeMsgs.push(m) });
  await Promise.all([caller.connect(), netcall.connect()]);
  await settle();

  // --- the seed's callee code, verbatim apart from the initialisation ---
  let beCalling = false;
  let type = null;
  let beCalledInfo = null;
  let busy = false;
  netcall.on('beCalling', function (obj) {
    const channelId = obj.channelId;
    netcall.control({ channelId: channelId, command: WebRTC.NETCALL_CONTROL_COMMAND_START_NOTIFY_RECEIVED });
    if (!netcall.calling && !beCalling) {
      type = obj.type;
      beCalling = true;
      beCalledInfo = obj;
    } else {
      if (netcall.calling) {
        busy = netcall.notCurrentChannelId(obj);
      } else if (beCalling) {
        busy = beCalledInfo.channelId !== channelId;
      }
      if (busy) {
        netcall.control({ channelId: channelId, command: WebRTC.NETCALL_CONTROL_COMMAND_BUSY });
        netcall.response({ accepted: false, beCalledInfo: obj });
      }
    }
  });
  const accepted = [];
  caller.on('callAccepted', (obj) => accepted.push(['caller', obj]));
  netcall.on('callAccepted', (obj) => accepted.push(['callee', obj]));
  const hangups = [];
  netcall.on('hangup', (obj) => hangups.push(obj));

  const res = await caller.call({
    type: Netcall.NETCALL_TYPE_VIDEO, account: 'flat1',
    pushConfig: { enable: true, custom: '测试自定义数据', forceKeepCalling: 0 },
    sessionConfig: { videoQuality: Netcall.CHAT_VIDEO_QUALITY_HIGH, videoFrameRate: Netcall.CHAT_VIDEO_FRAME_RATE_15, splitMode: Netcall.LAYOUT_SPLITLATTICETILE },
    webrtcEnable: true,
  });
  await settle();
  assert.equal(beCalling, true);
  assert.equal(beCalledInfo.channelId, res.channelId);
  assert.equal(beCalledInfo.custom, '测试自定义数据');
  assert.equal(type, 2);
  const ringing = broker.published(/inbox\/flat1\/tablet$/).map((m) => JSON.parse(m.payload)).filter((e) => e.type === 'control');
  assert.deepEqual(ringing.map((e) => e.body.command), [12], 'START_NOTIFY_RECEIVED sent once');

  beCalling = false;
  await netcall.response({ accepted: true, beCalledInfo, sessionConfig: {} });
  await settle();
  assert.deepEqual(accepted.map((a) => a[0]).sort(), ['callee', 'caller']);
  assert.equal(netcall.callAccepted, true);
  assert.equal(caller.calling, true);

  await caller.hangup();
  await settle();
  assert.equal(hangups.length, 1);
  assert.equal(hangups[0].type, 0);
  assert.equal(hangups[0].channelId, res.channelId);
  assert.equal(calleeMsgs.length, 1);
  assert.equal(callerMsgs.length, 1);
  for (const m of [...calleeMsgs, ...callerMsgs]) {
    assert.ok(/notification/i.test(m.type));
    assert.ok(/netcallbill/i.test(m.attach.type));
    assert.equal(m.attach.channelId, res.channelId);
    assert.deepEqual(m.attach.accounts, ['door', 'flat1']);
  }
  assert.equal(netcall.pendingBills().length, 0, 'bills removed after PUBACK');
});

test('bills stay in storage until PUBACK and are re-sent by the next instance', async () => {
  const broker = new FakeBroker();
  const storage = new MemoryStorage();
  const a = device(broker, 'door', 'entrance', { storage });
  const b = device(broker, 'flat1', 'tablet');
  await Promise.all([a.connect(), b.connect()]);
  await settle();
  b.on('beCalling', (obj) => b.response({ accepted: true, beCalledInfo: obj }));
  broker.holdPubacks = true;
  await a.call({ type: 1, account: 'flat1' });
  await settle();
  await a.hangup();
  await settle();
  assert.equal(a.pendingBills().length, 1);
  // The tab closes before the PUBACK; a new page of the same device publishes it again.
  const a2 = device(broker, 'door', 'entrance', { storage });
  broker.holdPubacks = false;
  await a2.connect();
  await settle();
  assert.equal(a2.pendingBills().length, 0);
  const bills = broker.published(/door\/entrance\/bill$/).map((m) => JSON.parse(m.payload));
  assert.equal(bills.length, 2, 'at least once: published twice, same id');
  assert.equal(bills[0].id, bills[1].id);
});

test('busy: a device in a call refuses a second invite (BUSY control + busy response)', async () => {
  const broker = new FakeBroker();
  const door = device(broker, 'door', 'entrance');
  const gate = device(broker, 'gate', 'main');
  const flat = device(broker, 'flat1', 'tablet');
  await Promise.all([door.connect(), gate.connect(), flat.connect()]);
  await settle();
  flat.on('beCalling', (obj) => flat.response({ accepted: true, beCalledInfo: obj }));
  await door.call({ type: 2, account: 'flat1' });
  await settle();
  assert.equal(flat.callAccepted, true);
  const rejected = [];
  const controls = [];
  gate.on('callRejected', (o) => rejected.push(o));
  gate.on('control', (o) => controls.push(o.command));
  await gate.call({ type: 2, account: 'flat1' });
  await settle();
  assert.deepEqual(controls, [12, 9]);
  assert.equal(rejected.length, 1);
  assert.equal(rejected[0].busy, true);
  assert.equal(flat.callAccepted, true, 'the current call goes on');
});

test('two devices of one account: the loser gets callerAckSync and a late answer fails with 9103', async () => {
  const broker = new FakeBroker();
  const door = device(broker, 'door', 'entrance');
  const tab = device(broker, 'flat1', 'tablet');
  const phone = device(broker, 'flat1', 'phone');
  await Promise.all([door.connect(), tab.connect(), phone.connect()]);
  await settle();
  const rings = { tab: null, phone: null };
  tab.on('beCalling', (o) => { rings.tab = o; });
  phone.on('beCalling', (o) => { rings.phone = o; });
  const syncs = [];
  phone.on('callerAckSync', (o) => syncs.push(o));
  await door.call({ type: 2, account: 'flat1' });
  await settle();
  assert.ok(rings.tab && rings.phone);
  await tab.response({ accepted: true, beCalledInfo: rings.tab });
  await settle();
  assert.equal(syncs.length, 1);
  assert.equal(syncs[0].device, 'tablet');
  assert.equal(syncs[0].accepted, true);
  await assert.rejects(phone.response({ accepted: true, beCalledInfo: rings.phone }), (e) => e.event.code === 9103);
});

test('an invalid envelope (unknown field) is dropped, never changes state', async () => {
  const broker = new FakeBroker();
  const flat = device(broker, 'flat1', 'tablet');
  await flat.connect();
  await settle();
  const rings = [];
  flat.on('beCalling', (o) => rings.push(o));
  const env = { v: 1, type: 'invite', id: 'x1', from: { account: 'door', device: 'entrance' }, to: { account: 'flat1' }, channelId: 'c'.repeat(32), time: 1, body: { type: 2, bogus: 1 } };
  broker.publish(null, 'intercom/account/flat1/call/door/entrance', JSON.stringify(env), { qos: 1 });
  // A sender speaking for another device is dropped too.
  broker.publish(null, 'intercom/account/flat1/call/gate/main', JSON.stringify({ ...env, id: 'x2', body: { type: 2 } }), { qos: 1 });
  await settle();
  assert.equal(rings.length, 0);
  broker.publish(null, 'intercom/account/flat1/call/door/entrance', JSON.stringify({ ...env, id: 'x3', body: { type: 2 } }), { qos: 1 });
  await settle();
  assert.equal(rings.length, 1);
});
