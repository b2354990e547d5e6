// The end-to-end stack: the daemon's demo (embedded broker with its
// WebSocket listener, door/entrance and flat1/tablet with media), the page
// server (cmd/intercom-web), an MQTT observer and Debian's Chromium driven
// by playwright-core. Every process is tied to this one's stdin pipe and
// stops when the tests end, even if node is killed.
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import mqtt from 'mqtt';
import { chromium } from 'playwright-core';

export const ROOT = resolve(import.meta.dirname, '../../..');
export const WEB = resolve(import.meta.dirname, '../..');
export const OUT = join(WEB, 'test-output');

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const CHROMIUM_FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
  '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic',
];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls f until it returns a truthy value (returned) or the timeout passes. */
export async function waitFor(f, { timeout = 10_000, interval = 100, what = 'condition' } = {}) {
  const end = Date.now() + timeout;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await sleep(interval);
  }
}

/**
 * Starts cmd under a bash guard that SIGTERMs it when our stdin pipe to the
 * guard closes (normal stop, or this process dying), and resolves once a
 * line of its stdout matches `ready`.
 */
function startGuarded(name, cmd, args, ready, { timeout = 30_000 } = {}) {
  const guard = 'exec 3<&0; "$@" </dev/null & pid=$!; { cat <&3 >/dev/null; kill -TERM $pid 2>/dev/null; } & wait $pid';
  const p = spawn('bash', ['-c', guard, name, cmd, ...args], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  const log = [];
  let buf = '';
  return new Promise((resolveStart, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} not ready in ${timeout} ms:\n${log.join('\n')}`)), timeout);
    const onLine = (line) => {
      log.push(line);
      if (process.env.E2E_VERBOSE) console.error(`[${name}] ${line}`);
      const m = line.match(ready);
      if (m && timer) {
        clearTimeout(timer);
        resolveStart({ proc: p, match: m, log, stop: () => stopProc(p) });
      }
    };
    p.stdout.on('data', (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        onLine(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    });
    p.stderr.on('data', (d) => {
      for (const l of String(d).split('\n')) if (l) log.push(`stderr: ${l}`);
      if (process.env.E2E_VERBOSE) process.stderr.write(`[${name}] ${d}`);
    });
    p.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code}):\n${log.join('\n')}`));
    });
  });
}

function stopProc(p) {
  return new Promise((res) => {
    if (p.exitCode !== null) return res();
    p.once('exit', res);
    p.stdin.end();
    setTimeout(() => p.kill('SIGKILL'), 8000).unref();
  });
}

/** Everything the scenarios need, started once. */
export async function startStack() {
  mkdirSync(OUT, { recursive: true });
  const stack = { procs: [] };
  const demo = await startGuarded('intercomd', join(ROOT, 'bin/intercomd'),
    ['demo', '-stay', '-talk', '500ms', '-answer-after', '300ms', '-out', join(OUT, 'demo-recordings')],
    /embedded MQTT broker on tcp:\/\/(\S+) \(WebSocket (\S+)\)/);
  stack.procs.push(demo);
  stack.brokerTCP = `mqtt://${demo.match[1]}`;
  stack.brokerWS = `ws://${demo.match[2]}`;
  stack.demoLog = demo.log;
  // The demo's own first call ends with "still running".
  await waitFor(() => demo.log.some((l) => l.includes('still running')), { timeout: 30_000, what: 'the demo call' });

  const web = await startGuarded('intercom-web', join(OUT, 'bin/intercom-web'),
    ['-listen', '127.0.0.1:0', '-broker-ws', stack.brokerWS], /listening on (\S+)/);
  stack.procs.push(web);
  stack.url = web.match[1];

  stack.observer = await observe(stack.brokerTCP);
  stack.userDataDir = mkdtempSync(join(tmpdir(), 'intercom-chromium-'));
  stack.browser = await chromium.launchPersistentContext(stack.userDataDir, {
    executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS, viewport: { width: 390, height: 780 },
  });
  stack.stop = async () => {
    await stack.browser?.close().catch(() => {});
    stack.observer?.client.end(true);
    await Promise.all(stack.procs.map((p) => p.stop()));
    rmSync(stack.userDataDir, { recursive: true, force: true });
  };
  return stack;
}

/** An MQTT client that records presence, state, events and bills of every device. */
async function observe(url) {
  const client = mqtt.connect(url, { clientId: `e2e-observer-${process.pid}`, clean: true, reconnectPeriod: 500 });
  const o = { client, msgs: [], envelopes: [] };
  client.on('message', (topic, payload) => {
    if (topic.includes('/inbox/')) {
      try { o.envelopes.push(JSON.parse(payload.toString())); } catch { /* not ours to judge */ }
      return;
    }
    const m = topic.match(/^intercom\/device\/([^/]+)\/([^/]+)\/(presence|state|event|bill)$/);
    if (!m || payload.length === 0) return;
    let json;
    try { json = JSON.parse(payload.toString()); } catch { return; }
    o.msgs.push({ device: `${m[1]}/${m[2]}`, leaf: m[3], json, t: Date.now() });
  });
  await new Promise((res, rej) => { client.once('connect', res); client.once('error', rej); });
  await client.subscribeAsync(['intercom/device/+/+/presence', 'intercom/device/+/+/state', 'intercom/device/+/+/event', 'intercom/device/+/+/bill', 'intercom/device/+/+/inbox/+/+'], { qos: 1 });
  o.sent = (type, channelId) => o.envelopes.filter((e) => e.type === type && e.channelId === channelId);
  o.bills = (channelId) => o.msgs.filter((m) => m.leaf === 'bill' && m.json.channelId === channelId).map((m) => m.json);
  o.events = (device, name) => o.msgs.filter((m) => m.leaf === 'event' && m.device === device && m.json.event === name).map((m) => m.json.data);
  o.online = (device) => {
    const p = o.msgs.filter((m) => m.leaf === 'presence' && m.device === device).at(-1);
    return p?.json.state === 'online';
  };
  return o;
}

/** Runs bin/intercomctl against the demo's broker; returns the parsed JSON response. */
export function intercomctl(stack, device, ...args) {
  return new Promise((res, rej) => {
    const p = spawn(join(ROOT, 'bin/intercomctl'), ['-broker', stack.brokerTCP.replace('mqtt://', 'tcp://'), '-json', '-device', device, ...args], { cwd: ROOT });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    p.on('exit', (code) => {
      try {
        const j = JSON.parse(out.trim().split('\n').at(-1) || '{}');
        if (code !== 0 || j.status !== 'ok') rej(new Error(`intercomctl ${args.join(' ')}: ${code} ${out} ${err}`));
        else res(j);
      } catch (e) {
        rej(new Error(`intercomctl ${args.join(' ')}: ${code} ${out} ${err}`));
      }
    });
  });
}

/** Opens the page signed in as account/device and waits until it is online. */
export async function openPage(stack, account, device) {
  const page = await stack.browser.newPage();
  page.on('pageerror', (e) => console.error(`[page ${account}/${device}] ${e.message}`));
  if (process.env.E2E_VERBOSE) page.on('console', (m) => console.error(`[page ${account}/${device}] ${m.text()}`));
  const q = new URLSearchParams({ account, device, broker: stack.brokerWS, autosignin: '1' });
  await page.goto(`${stack.url}?${q}`);
  await page.waitForSelector('#status.online', { timeout: 10_000 });
  await waitFor(() => stack.observer.online(`${account}/${device}`), { what: `${account}/${device} online` });
  await sleep(200); // the daemons see the retained presence at the same moment
  return page;
}

export const screenOf = (page) => page.evaluate(() => document.getElementById('app').dataset.screen);

export async function waitScreen(page, screen, timeout = 10_000) {
  await page.waitForFunction((s) => document.getElementById('app').dataset.screen === s, screen, { timeout });
}

/** Summed RTP figures of the page's current call (getStats). */
export function pageStats(page) {
  return page.evaluate(async () => {
    const r = await window.netcall.getStats();
    const s = { framesDecoded: 0, videoPacketsReceived: 0, audioPacketsReceived: 0, audioPacketsSent: 0, videoPacketsSent: 0, videoCodec: '', audioCodec: '' };
    if (!r) return s;
    const codecs = new Map();
    r.forEach((x) => { if (x.type === 'codec') codecs.set(x.id, x.mimeType); });
    r.forEach((x) => {
      if (x.type === 'inbound-rtp' && x.kind === 'video') {
        s.framesDecoded += x.framesDecoded || 0;
        s.videoPacketsReceived += x.packetsReceived || 0;
        s.videoCodec = codecs.get(x.codecId) || s.videoCodec;
      }
      if (x.type === 'inbound-rtp' && x.kind === 'audio') {
        s.audioPacketsReceived += x.packetsReceived || 0;
        s.audioCodec = codecs.get(x.codecId) || s.audioCodec;
      }
      if (x.type === 'outbound-rtp' && x.kind === 'audio') s.audioPacketsSent += x.packetsSent || 0;
      if (x.type === 'outbound-rtp' && x.kind === 'video') s.videoPacketsSent += x.packetsSent || 0;
    });
    return s;
  });
}
