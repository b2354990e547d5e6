// End to end against the real daemon (bin/intercomd demo -stay) in Debian's
// Chromium: the five scenarios. Media assertions use the browser's
// getStats and the daemon's bill `media` statistics.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodePNG, imageStats } from './png.js';
import { intercomctl, openPage, OUT, pageStats, startStack, waitFor, waitScreen } from './harness.js';

let stack;

before(async () => { stack = await startStack(); }, { timeout: 90_000 });
after(async () => { await stack?.stop(); });

/** Waits until framesDecoded grows between two reads (the picture is live). */
async function videoFlows(page) {
  const first = await waitFor(async () => {
    const s = await pageStats(page);
    return s.framesDecoded > 0 && s;
  }, { timeout: 15_000, what: 'the first decoded video frame' });
  const later = await waitFor(async () => {
    const s = await pageStats(page);
    return s.framesDecoded > first.framesDecoded + 5 && s;
  }, { timeout: 10_000, what: 'framesDecoded to grow' });
  return { first, later };
}

async function bothBills(channelId, devices) {
  return waitFor(() => {
    const bills = stack.observer.bills(channelId);
    return devices.every((d) => bills.some((b) => `${b.account}/${b.device}` === d)) && bills;
  }, { timeout: 15_000, what: `bills of ${devices.join(' and ')}` });
}

const billOf = (bills, device) => bills.find((b) => `${b.account}/${b.device}` === device);

test('1: the door calls the browser; answer, video decoded, audio reaches the daemon, browser hangs up, both bills', { timeout: 90_000 }, async () => {
  const page = await openPage(stack, 'flat2', 'phone');
  const res = await intercomctl(stack, 'door/entrance', 'call', 'flat2');
  const channelId = res.data.channelId;
  await waitScreen(page, 'incoming');
  assert.equal(await page.textContent('#caller'), 'door');
  // The page acknowledged the invite (START_NOTIFY_RECEIVED) like a daemon would.
  await waitFor(() => stack.observer.events('door/entrance', 'control').some((c) => c.channelId === channelId && c.command === 12),
    { what: 'control 12 at the door' });
  // Preview: the door's picture on the ringing screen, before answering.
  await videoFlows(page);
  await page.waitForSelector('#preview video', { timeout: 5000 });
  assert.equal((await pageStats(page)).audioPacketsSent, 0, 'no audio before the answer');
  await page.screenshot({ path: join(OUT, 'ringing.png') });
  await page.click('#answer');
  await waitScreen(page, 'call');
  await waitFor(() => stack.observer.events('door/entrance', 'callAccepted').some((e) => e.channelId === channelId), { what: 'callAccepted at the door' });

  // The call goes on over the preview session: response {preview:true}, no answer SDP.
  const [resp] = stack.observer.sent('response', channelId);
  assert.equal(resp.body.preview, true);
  assert.equal(resp.body.answer, undefined);
  assert.ok(stack.observer.sent('sdp', channelId).some((e) => e.body.session === 'preview' && e.body.kind === 'offer' && e.from.account === 'flat2'));
  // Media: the browser decodes the door's H.264 video.
  const { later } = await videoFlows(page);
  assert.match(later.videoCodec, /H264/i);
  await waitFor(async () => (await pageStats(page)).audioPacketsSent > 20, { what: 'the browser sending audio' });

  // 5: a screenshot of the in-call page, not blank.
  const png = await page.screenshot({ path: join(OUT, 'in-call.png') });
  const img = decodePNG(png);
  const whole = imageStats(img);
  // The middle of the screen is the door's picture (a moving test pattern).
  const picture = imageStats(img, { y0: Math.floor(img.height * 0.25), y1: Math.floor(img.height * 0.75) });
  writeFileSync(join(OUT, 'in-call.json'), JSON.stringify({ whole, picture }));
  assert.ok(whole.variance > 100 && whole.colours > 20, `screenshot looks blank: ${JSON.stringify(whole)}`);
  assert.ok(picture.variance > 300 && picture.colours > 8, `no video picture in the screenshot: ${JSON.stringify(picture)}`);

  await page.click('#hangup');
  await waitScreen(page, 'home');
  const bills = await bothBills(channelId, ['door/entrance', 'flat2/phone']);
  const door = billOf(bills, 'door/entrance');
  const phone = billOf(bills, 'flat2/phone');
  assert.equal(door.hangupType, 0);
  assert.equal(door.hungUpBy, 'callee');
  assert.equal(door.disposition, 'ANSWERED');
  assert.equal(phone.disposition, 'ANSWERED');
  assert.equal(phone.type, 'netcallBill');
  const doorHangup = stack.observer.events('door/entrance', 'hangup').find((h) => h.channelId === channelId);
  assert.equal(doorHangup.type, 0);
  assert.equal(doorHangup.by, 'remote');
  // The daemon received the browser's audio.
  assert.ok(door.media?.audio?.packetsReceived > 10, `door received no audio: ${JSON.stringify(door.media)}`);
  // The page's bill history shows the call (fed by its own bill topic, onmsg).
  await page.waitForSelector(`#bills li[data-channel-id="${channelId}"]`, { timeout: 5000 });
  await page.close();
});

test('2: the browser calls the door; answered through intercomctl; media both ways; the daemon hangs up', { timeout: 90_000 }, async () => {
  const page = await openPage(stack, 'flat2', 'phone');
  await page.fill('#call-account', 'door');
  await page.click('#call-video');
  await waitScreen(page, 'calling');
  const channelId = await waitFor(() => page.evaluate(() => window.netcall.channelId), { what: 'a channelId' });
  await waitFor(() => stack.observer.events('door/entrance', 'beCalling').some((e) => e.channelId === channelId), { what: 'the door ringing' });
  await intercomctl(stack, 'door/entrance', 'answer');
  await waitScreen(page, 'call');
  await page.click('#camera'); // the browser sends video too
  await videoFlows(page);
  await waitFor(async () => {
    const s = await pageStats(page);
    return s.audioPacketsSent > 20 && s.videoPacketsSent > 20;
  }, { what: 'the browser sending audio and video' });
  await intercomctl(stack, 'door/entrance', 'hangup');
  await waitScreen(page, 'home');
  const hang = await page.evaluate(() => window.netcall.state);
  assert.equal(hang.state, 'idle');
  const bills = await bothBills(channelId, ['door/entrance', 'flat2/phone']);
  const door = billOf(bills, 'door/entrance');
  const phone = billOf(bills, 'flat2/phone');
  assert.equal(phone.direction, 'outgoing');
  assert.equal(phone.hungUpBy, 'callee');
  assert.equal(phone.hangupType, 0);
  assert.equal(door.direction, 'incoming');
  assert.ok(door.media?.audio?.packetsReceived > 10, `door received no audio: ${JSON.stringify(door.media)}`);
  assert.ok(door.media?.video?.framesReceived > 0, `door received no video: ${JSON.stringify(door.media)}`);
  await page.close();
});

test('3: two pages of one account ring; one answers; the other gets callerAckSync, stops, and a late answer fails with 9103', { timeout: 90_000 }, async () => {
  const a = await openPage(stack, 'flat3', 'kitchen');
  const b = await openPage(stack, 'flat3', 'hall');
  await b.evaluate(() => {
    window.__rings = [];
    window.__syncs = [];
    window.netcall.on('beCalling', (o) => window.__rings.push(o));
    window.netcall.on('callerAckSync', (o) => window.__syncs.push(o));
  });
  const res = await intercomctl(stack, 'door/entrance', 'call', 'flat3');
  const channelId = res.data.channelId;
  await Promise.all([waitScreen(a, 'incoming'), waitScreen(b, 'incoming')]);
  await a.click('#answer');
  await waitScreen(a, 'call');
  await waitScreen(b, 'home');
  const syncs = await b.evaluate(() => window.__syncs);
  assert.equal(syncs.length, 1);
  assert.equal(syncs[0].channelId, channelId);
  assert.equal(syncs[0].accepted, true);
  assert.equal(syncs[0].device, 'kitchen');
  const late = await b.evaluate(async () => {
    try {
      await window.netcall.response({ accepted: true, beCalledInfo: window.__rings[0] });
      return 'accepted';
    } catch (e) {
      return e.event.code;
    }
  });
  assert.equal(late, 9103);
  await videoFlows(a);
  await a.click('#hangup');
  const bills = await bothBills(channelId, ['door/entrance', 'flat3/kitchen', 'flat3/hall']);
  assert.equal(billOf(bills, 'flat3/hall').disposition, 'NO ANSWER');
  assert.equal(billOf(bills, 'flat3/hall').answeredBy, 'kitchen');
  assert.equal(billOf(bills, 'door/entrance').answeredBy, 'kitchen');
  await a.close();
  await b.close();
});

test('4: busy — a page in a call refuses a second invite; BUSY and the reject reach the second caller', { timeout: 90_000 }, async () => {
  const page = await openPage(stack, 'flat2', 'phone');
  const first = await intercomctl(stack, 'door/entrance', 'call', 'flat2');
  await waitScreen(page, 'incoming');
  await page.click('#answer');
  await waitScreen(page, 'call');
  const second = await intercomctl(stack, 'flat1/tablet', 'call', 'flat2', 'audio');
  const ch2 = second.data.channelId;
  await waitFor(() => stack.observer.events('flat1/tablet', 'callRejected').some((e) => e.channelId === ch2), { what: 'callRejected at flat1/tablet' });
  const rejected = stack.observer.events('flat1/tablet', 'callRejected').find((e) => e.channelId === ch2);
  assert.equal(rejected.busy, true);
  const controls = stack.observer.events('flat1/tablet', 'control').filter((c) => c.channelId === ch2).map((c) => c.command);
  assert.deepEqual(controls, [12, 9]);
  assert.equal(await page.evaluate(() => window.netcall.channelId), first.data.channelId, 'the first call goes on');
  const busyBill = await waitFor(() => stack.observer.bills(ch2).find((b) => b.account === 'flat2'), { what: 'the busy bill' });
  assert.equal(busyBill.disposition, 'BUSY');
  await page.click('#hangup');
  await bothBills(first.data.channelId, ['door/entrance', 'flat2/phone']);
  await page.close();
});

test('upgrade: an audio call to the door becomes video (control 5 → 6, sdp offer/answer)', { timeout: 90_000 }, async () => {
  const page = await openPage(stack, 'flat2', 'phone');
  const channelId = await page.evaluate(async () => (await window.netcall.call({ type: 1, account: 'door' })).channelId);
  await waitFor(() => stack.observer.events('door/entrance', 'beCalling').some((e) => e.channelId === channelId), { what: 'the door ringing' });
  await intercomctl(stack, 'door/entrance', 'answer');
  await waitScreen(page, 'call');
  await waitFor(async () => (await pageStats(page)).audioPacketsReceived > 10, { what: 'audio from the door' });
  assert.equal((await pageStats(page)).framesDecoded, 0, 'no video before the upgrade');
  await page.evaluate(() => window.netcall.switchAudioToVideo());
  await waitFor(() => stack.observer.events('flat2/phone', 'control').some((c) => c.channelId === channelId && c.command === 6),
    { what: 'the door agreeing (control 6)' });
  await videoFlows(page);
  await page.click('#hangup');
  const bills = await bothBills(channelId, ['door/entrance', 'flat2/phone']);
  assert.equal(billOf(bills, 'door/entrance').netcallType, 2, 'the bill records the upgraded call type');
  await page.close();
});
