// The indoor-unit page: sign in as a device of an account, ring on
// incoming calls, answer / reject / hang up, mute, camera, call timer and
// bill history. Written against the SDK's seed-shaped API only.
import { Netcall } from './netcall.js';

const $ = (id) => document.getElementById(id);
const app = $('app');
const SETTINGS_KEY = 'intercom.page.settings';
const HISTORY_KEY = 'intercom.page.bills';

let netcall = null;
let beCalledInfo = null; // the ringing call
let peer = null; // {account, device} of the current call
let timer = null;
let toastTimer = null;
const ui = { muted: false, camera: false };

function show(screen) {
  app.dataset.screen = screen;
}

function toast(text, ms = 3000) {
  const t = $('toast');
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, ms);
}

function loadJSON(key, fallback) {
  try { return JSON.parse(localStorage.getItem(key)) ?? fallback; } catch { return fallback; }
}

// --- sign in --------------------------------------------------------------

async function init() {
  const cfg = await fetch('config.json').then((r) => (r.ok ? r.json() : {})).catch(() => ({}));
  const saved = loadJSON(SETTINGS_KEY, {});
  const params = new URLSearchParams(location.search);
  $('account').value = params.get('account') || saved.account || '';
  $('device').value = params.get('device') || saved.device || '';
  $('broker').value = params.get('broker') || saved.broker || cfg.brokerWS || `ws://${location.hostname || '127.0.0.1'}:1884`;
  $('prefix').value = params.get('prefix') || saved.prefix || cfg.prefix || 'intercom';
  $('signin-form').addEventListener('submit', (e) => { e.preventDefault(); signIn(); });
  $('signout').addEventListener('click', signOut);
  $('call-form').addEventListener('submit', (e) => { e.preventDefault(); callOut($('call-account').value.trim()); });
  $('answer').addEventListener('click', answer);
  $('reject').addEventListener('click', reject);
  $('cancel').addEventListener('click', () => netcall.hangup());
  $('hangup').addEventListener('click', () => netcall.hangup());
  $('mute').addEventListener('click', toggleMute);
  $('camera').addEventListener('click', toggleCamera);
  renderBills();
  if (params.get('autosignin') === '1' || (saved.account && saved.device && saved.auto)) signIn();
}

function signIn() {
  const settings = {
    account: $('account').value.trim(), device: $('device').value.trim(),
    broker: $('broker').value.trim(), prefix: $('prefix').value.trim() || 'intercom', auto: true,
  };
  $('signin-error').textContent = '';
  try {
    netcall = new Netcall({ ...settings, preview: true, onmsg: onMessage });
  } catch (e) {
    $('signin-error').textContent = e.event?.message || e.message;
    return;
  }
  localStorage.setItem(SETTINGS_KEY, JSON.stringify(settings));
  window.netcall = netcall; // for the console and the end-to-end tests
  $('whoami').textContent = `${settings.account}/${settings.device}`;
  wire(netcall);
  renderBills();
  show('home');
}

async function signOut() {
  const s = loadJSON(SETTINGS_KEY, {});
  localStorage.setItem(SETTINGS_KEY, JSON.stringify({ ...s, auto: false }));
  await netcall?.destroy();
  netcall = null;
  $('whoami').textContent = '';
  setStatus(false);
  show('signin');
}

function setStatus(online) {
  const s = $('status');
  s.textContent = online ? 'online' : 'offline';
  s.classList.toggle('online', online);
  s.classList.toggle('offline', !online);
}

// --- SDK events (the seed's handlers) ---------------------------------------

function wire(n) {
  n.on('connected', () => setStatus(true));
  n.on('disconnected', () => setStatus(false));
  n.on('beCalling', (obj) => {
    n.control({ channelId: obj.channelId, command: Netcall.NETCALL_CONTROL_COMMAND_START_NOTIFY_RECEIVED });
    if (n.calling || beCalledInfo) return; // the SDK refuses a second call as busy
    beCalledInfo = obj;
    $('caller').textContent = obj.account;
    $('caller-device').textContent = obj.device || '';
    $('caller-initial').textContent = (obj.account || '?')[0];
    $('incoming-kind').textContent = obj.type === Netcall.NETCALL_TYPE_VIDEO ? 'Video call' : 'Audio call';
    show('incoming');
  });
  n.on('preview', (obj) => {
    // The door's picture while ringing (audio stays off until answered).
    if (obj.kind === 'video' && beCalledInfo?.channelId === obj.channelId) {
      n.startRemoteStream({ account: obj.account, node: $('preview') });
      n.setVideoViewRemoteSize({ account: obj.account, cut: false });
    }
  });
  n.on('callerAckSync', (obj) => {
    if (beCalledInfo && obj.channelId === beCalledInfo.channelId) {
      beCalledInfo = null;
      toast(obj.accepted ? `Answered on ${obj.device || 'another device'}` : `Declined on ${obj.device || 'another device'}`);
      show('home');
    }
  });
  n.on('callAccepted', (obj) => {
    peer = { account: obj.account, device: obj.device };
    enterCall();
  });
  n.on('callRejected', (obj) => {
    toast(obj.busy ? `${obj.account} is busy` : `${obj.account} declined`);
    endCall();
  });
  n.on('remoteTrack', (obj) => {
    n.startDevice({ type: Netcall.DEVICE_TYPE_AUDIO_OUT_CHAT }).catch(() => {});
    n.startRemoteStream({ account: obj.account, node: $('remote') });
    n.setVideoViewRemoteSize({ account: obj.account, cut: false }); // the whole door picture
  });
  n.on('control', (obj) => {
    if (obj.command === Netcall.NETCALL_CONTROL_COMMAND_SWITCH_AUDIO_TO_VIDEO) {
      n.control({ command: Netcall.NETCALL_CONTROL_COMMAND_SWITCH_AUDIO_TO_VIDEO_AGREE }).catch(() => {});
    }
  });
  n.on('hangup', (obj) => {
    if (beCalledInfo && beCalledInfo.channelId !== obj.channelId) return; // not the call on screen
    if (obj.type !== 0) toast(`Call ended (${obj.reason || 'error'})`);
    endCall();
  });
}

// --- answering and calling ------------------------------------------------

async function answer() {
  const info = beCalledInfo;
  if (!info) return;
  beCalledInfo = null;
  try {
    await netcall.response({ accepted: true, beCalledInfo: info });
  } catch (e) {
    toast(e.event?.code === 9103 ? 'Answered on another device' : `Could not answer (${e.event?.code || e.message})`);
    show('home');
  }
}

function reject() {
  const info = beCalledInfo;
  beCalledInfo = null;
  show('home');
  if (!info) return;
  netcall.control({ channelId: info.channelId, command: Netcall.NETCALL_CONTROL_COMMAND_BUSY }).catch(() => {});
  netcall.response({ accepted: false, beCalledInfo: info }).catch(() => {});
}

async function callOut(account) {
  if (!account) return;
  $('callee').textContent = account;
  show('calling');
  try {
    await netcall.call({ type: Netcall.NETCALL_TYPE_VIDEO, account, webrtcEnable: true });
  } catch (e) {
    toast(e.event?.code === 11001 ? `${account} is offline` : `Call failed (${e.event?.code || e.message})`);
    show('home');
  }
}

// The seed's media steps once the call is connected.
async function enterCall() {
  $('peer').textContent = peer.account;
  $('peer-initial').textContent = (peer.account || '?')[0];
  show('call');
  startTimer();
  ui.muted = false;
  $('mute').setAttribute('aria-pressed', 'false');
  try {
    await netcall.startRtc();
    await netcall.startDevice({ type: Netcall.DEVICE_TYPE_AUDIO_IN }).catch((err) => {
      netcall.control({ command: Netcall.NETCALL_CONTROL_COMMAND_SELF_AUDIO_INVALID }).catch(() => {});
      toast('Microphone unavailable');
      throw err;
    });
    netcall.setCaptureVolume(255);
    netcall.setPlayVolume(255);
    if (ui.camera) await startCamera();
  } catch (e) {
    console.warn('media', e);
  }
}

function endCall() {
  beCalledInfo = null;
  peer = null;
  stopTimer();
  $('local').hidden = true;
  show(netcall ? 'home' : 'signin');
}

function startTimer() {
  const t0 = Date.now();
  const tick = () => {
    const s = Math.floor((Date.now() - t0) / 1000);
    $('timer').textContent = `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
  };
  stopTimer();
  tick();
  timer = setInterval(tick, 500);
}

function stopTimer() {
  clearInterval(timer);
  timer = null;
  $('timer').textContent = '00:00';
}

async function toggleMute() {
  ui.muted = !ui.muted;
  $('mute').setAttribute('aria-pressed', String(ui.muted));
  const C = Netcall;
  if (ui.muted) {
    await netcall.stopDevice(C.DEVICE_TYPE_AUDIO_IN);
    await netcall.control({ command: C.NETCALL_CONTROL_COMMAND_NOTIFY_AUDIO_OFF }).catch(() => {});
  } else {
    await netcall.startDevice({ type: C.DEVICE_TYPE_AUDIO_IN }).catch(() => toast('Microphone unavailable'));
    await netcall.control({ command: C.NETCALL_CONTROL_COMMAND_NOTIFY_AUDIO_ON }).catch(() => {});
  }
}

async function startCamera() {
  const C = Netcall;
  try {
    await netcall.startDevice({ type: C.DEVICE_TYPE_VIDEO, width: 640, height: 480 });
    $('local').hidden = false;
    await netcall.startLocalStream($('local'));
    netcall.setVideoViewSize({ cut: true });
    await netcall.control({ command: C.NETCALL_CONTROL_COMMAND_NOTIFY_VIDEO_ON }).catch(() => {});
  } catch (e) {
    ui.camera = false;
    $('camera').setAttribute('aria-pressed', 'false');
    netcall.control({ command: C.NETCALL_CONTROL_COMMAND_SELF_CAMERA_INVALID }).catch(() => {});
    toast('Camera unavailable');
  }
}

async function toggleCamera() {
  ui.camera = !ui.camera;
  $('camera').setAttribute('aria-pressed', String(ui.camera));
  if (!netcall?.callAccepted) return;
  if (ui.camera) {
    await startCamera();
  } else {
    await netcall.stopDevice(Netcall.DEVICE_TYPE_VIDEO);
    netcall.stopLocalStream();
    $('local').hidden = true;
    await netcall.control({ command: Netcall.NETCALL_CONTROL_COMMAND_NOTIFY_VIDEO_OFF }).catch(() => {});
  }
}

// --- bills (the seed's onmsg) ---------------------------------------------

function onMessage(message) {
  if (!/notification/i.test(message.type)) return;
  const bill = message.attach;
  if (!/^netcall(bill|miss|reject)$/i.test(bill?.type || '')) return;
  const history = loadJSON(HISTORY_KEY, []).filter((b) => b.id !== bill.id);
  history.unshift(bill);
  localStorage.setItem(HISTORY_KEY, JSON.stringify(history.slice(0, 50)));
  renderBills();
}

function renderBills() {
  const me = loadJSON(SETTINGS_KEY, {});
  const list = $('bills');
  const bills = loadJSON(HISTORY_KEY, []).filter((b) => b.account === me.account && b.device === me.device);
  list.replaceChildren(...bills.map((b) => {
    const li = document.createElement('li');
    const outgoing = b.direction === 'outgoing';
    const other = outgoing ? b.callee : b.caller;
    li.className = b.type === 'netcallBill' ? 'answered' : 'missed';
    li.dataset.channelId = b.channelId;
    const when = new Date(b.time).toLocaleString([], { dateStyle: 'short', timeStyle: 'short' });
    const dur = b.type === 'netcallBill' ? `${Math.floor(b.duration / 60)}:${String(b.duration % 60).padStart(2, '0')}` : (b.disposition || '').toLowerCase();
    li.innerHTML = '<span class="peer"></span><span class="disp"></span><span class="when"></span><span class="dir"></span>';
    li.querySelector('.peer').textContent = `${outgoing ? '↗' : '↙'} ${other}`;
    li.querySelector('.disp').textContent = dur;
    li.querySelector('.when').textContent = when;
    li.querySelector('.dir').textContent = b.netcallType === 2 ? 'video' : 'audio';
    return li;
  }));
  $('bills-empty').hidden = bills.length > 0;
}

init();
