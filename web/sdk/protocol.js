// The wire format of docs/PROTOCOL.md: topic names, the envelope and its
// strict codec, presence and call state. No MQTT and no state here.

export const VERSION = 1;
export const DEFAULT_PREFIX = 'intercom';
export const MAX_MESSAGE_SIZE = 64 << 10;

/** The `session` tag of sdp and candidate envelopes of a preview session. */
export const PREVIEW = 'preview';

export const ONLINE = 'online';
export const OFFLINE = 'offline';

/** Topic names for one prefix (PROTOCOL.md "Topics"). */
export class Topics {
  constructor(prefix = DEFAULT_PREFIX) {
    validatePrefix(prefix);
    this.p = prefix;
  }
  accountCall(account, from) { return `${this.p}/account/${account}/call/${from.account}/${from.device}`; }
  accountCallFilter(account) { return `${this.p}/account/${account}/call/+/+`; }
  inbox(to, from) { return `${this.p}/device/${to.account}/${to.device}/inbox/${from.account}/${from.device}`; }
  inboxFilter(dev) { return `${this.p}/device/${dev.account}/${dev.device}/inbox/+/+`; }
  device(dev, leaf) { return `${this.p}/device/${dev.account}/${dev.device}/${leaf}`; }
  presenceFilter() { return `${this.p}/device/+/+/presence`; }
  /** The sender named by the last two levels of a call or inbox topic. */
  sender(topic) {
    const l = topic.split('/');
    return l.length < 2 ? null : { account: l[l.length - 2], device: l[l.length - 1] };
  }
  /** The device of a presence topic, or null. */
  presenceDevice(topic) {
    const head = `${this.p}/device/`;
    if (!topic.startsWith(head)) return null;
    const l = topic.slice(head.length).split('/');
    if (l.length !== 3 || l[2] !== 'presence') return null;
    return { account: l[0], device: l[1] };
  }
}

function validatePrefix(p) {
  if (typeof p !== 'string' || p === '') throw new Error('prefix is empty');
  if (/[+#\0]/.test(p)) throw new Error(`prefix ${JSON.stringify(p)} contains + # or NUL`);
  if (p.startsWith('$')) throw new Error(`prefix ${JSON.stringify(p)} starts with $`);
  if (p.split('/').some((l) => l === '')) throw new Error(`prefix ${JSON.stringify(p)} has an empty level`);
}

const utf8 = new TextEncoder();

/** Checks an account or device name (a topic level); returns an error text or ''. */
export function nameError(field, s) {
  if (typeof s !== 'string' || s === '') return `${field} is empty`;
  if (utf8.encode(s).length > 64) return `${field} ${JSON.stringify(s)} is longer than 64 bytes`;
  if (/[/+#\0 ]/.test(s)) return `${field} ${JSON.stringify(s)} contains one of / + # NUL or space`;
  return '';
}

export const sameAddress = (a, b) => !!a && !!b && a.account === b.account && (a.device || '') === (b.device || '');
export const addressString = (a) => (a.device ? `${a.account}/${a.device}` : a.account);

// --- schemas: field → type, as the Go structs declare them ---------------
// 'int' and 'u16' are JSON numbers without fraction; '?' marks required.

const PUSH = {
  enable: 'bool', needBadge: 'bool', needPushNick: 'bool', pushContent: 'string', custom: 'string',
  pushPayload: 'string', sound: 'string', forceKeepCalling: 'bool',
};
const SESSION = {
  videoQuality: 'int', videoFrameRate: 'int', videoBitrate: 'int', recordVideo: 'bool', recordAudio: 'bool',
  highAudio: 'bool', bypassRtmp: 'bool', rtmpUrl: 'string', rtmpRecord: 'bool', splitMode: 'int',
};
const BODIES = {
  invite: { type: 'int', pushConfig: PUSH, sessionConfig: SESSION, attempt: 'int', offer: 'string', preview: 'bool' },
  control: { command: 'int' },
  response: { accepted: 'bool', busy: 'bool', reason: 'string', clientType: 'string', answer: 'string', preview: 'bool' },
  responseAck: { ok: 'bool', code: 'int', message: 'string' },
  ackSync: { accepted: 'bool', device: 'string', clientType: 'string', type: 'int' },
  hangup: { type: 'int', reason: 'string' },
  sdp: { kind: 'string', sdp: 'string', session: 'string' },
  candidate: { candidate: 'string', sdpMid: 'string', sdpMLineIndex: 'u16', session: 'string' },
  sync: { state: 'string' },
  syncAck: { alive: 'bool', state: 'string' },
};
export const MESSAGE_TYPES = Object.keys(BODIES);

const ENVELOPE_KEYS = new Set(['v', 'type', 'id', 'from', 'to', 'channelId', 'time', 'body']);

function checkValue(type, v, path) {
  if (v === null) return; // Go leaves the zero value for null
  if (typeof type === 'object') return checkObject(type, v, path);
  switch (type) {
    case 'bool': if (typeof v !== 'boolean') throw new Error(`${path}: want a boolean`); return;
    case 'string': if (typeof v !== 'string') throw new Error(`${path}: want a string`); return;
    case 'int': if (!Number.isSafeInteger(v)) throw new Error(`${path}: want an integer`); return;
    case 'u16': if (!Number.isInteger(v) || v < 0 || v > 65535) throw new Error(`${path}: want 0..65535`); return;
  }
}

function checkObject(schema, v, path) {
  if (typeof v !== 'object' || Array.isArray(v)) throw new Error(`${path}: want an object`);
  for (const [k, val] of Object.entries(v)) {
    if (!(k in schema)) throw new Error(`${path}: unknown field ${JSON.stringify(k)}`);
    checkValue(schema[k], val, `${path}.${k}`);
  }
}

/** Keeps only the schema's fields that are set (drops undefined), recursively. */
function clean(schema, v) {
  const out = {};
  for (const k of Object.keys(schema)) {
    const val = v[k];
    if (val === undefined || val === null) continue;
    out[k] = typeof schema[k] === 'object' ? clean(schema[k], val) : val;
  }
  return out;
}

function checkAddress(a, path, deviceRequired) {
  if (typeof a !== 'object' || a === null || Array.isArray(a)) throw new Error(`${path}: want an object`);
  for (const k of Object.keys(a)) if (k !== 'account' && k !== 'device') throw new Error(`${path}: unknown field ${k}`);
  let e = nameError(`${path}.account`, a.account);
  if (e) throw new Error(e);
  if (deviceRequired || (a.device !== undefined && a.device !== '')) {
    e = nameError(`${path}.device`, a.device);
    if (e) throw new Error(e);
  }
}

/**
 * Strictly decodes one envelope (a string or bytes), as the daemon does:
 * unknown fields, wrong types, a missing required field, another version or
 * an oversized message throw. Returns {v,type,id,from,to,channelId,time,body}.
 */
export function decodeEnvelope(data) {
  const text = typeof data === 'string' ? data : new TextDecoder().decode(data);
  if (utf8.encode(text).length > MAX_MESSAGE_SIZE) throw new Error('message too large');
  const env = JSON.parse(text);
  if (typeof env !== 'object' || env === null || Array.isArray(env)) throw new Error('envelope is not an object');
  for (const k of Object.keys(env)) if (!ENVELOPE_KEYS.has(k)) throw new Error(`unknown envelope field ${JSON.stringify(k)}`);
  if (env.v !== VERSION) throw new Error(`unsupported envelope version ${env.v}`);
  const schema = BODIES[env.type];
  if (!schema) throw new Error(`unknown message type ${JSON.stringify(env.type)}`);
  if (typeof env.id !== 'string' || env.id === '' || env.id.length > 64) throw new Error('id must be 1-64 characters');
  checkAddress(env.from, 'from', true);
  checkAddress(env.to, 'to', false);
  if (typeof env.channelId !== 'string' || env.channelId === '' || env.channelId.length > 64) {
    throw new Error('channelId must be 1-64 characters');
  }
  if (!Number.isSafeInteger(env.time) || env.time <= 0) throw new Error('time must be a positive Unix ms timestamp');
  const body = env.body === undefined || env.body === null ? {} : env.body;
  checkObject(schema, body, `${env.type}.body`);
  validateBody(env.type, body);
  return { ...env, body };
}

function validateBody(type, b) {
  switch (type) {
    case 'invite':
      if (b.type !== 1 && b.type !== 2) throw new Error(`invite type ${b.type} is neither 1 nor 2`);
      break;
    case 'ackSync':
      if (!b.device) throw new Error('ackSync device is required');
      break;
    case 'hangup':
      if ((b.type ?? 0) !== 0 && b.type !== -1) throw new Error(`hangup type ${b.type} is neither 0 nor -1`);
      break;
    case 'sdp':
      if (b.kind !== 'offer' && b.kind !== 'answer') throw new Error(`sdp kind ${JSON.stringify(b.kind)}`);
      if (b.session && b.session !== PREVIEW) throw new Error(`sdp session ${JSON.stringify(b.session)}`);
      break;
    case 'candidate':
      if (b.session && b.session !== PREVIEW) throw new Error(`candidate session ${JSON.stringify(b.session)}`);
      break;
  }
}

/** Encodes an envelope with only the fields the protocol knows. */
export function encodeEnvelope({ type, id, from, to, channelId, time, body }) {
  const schema = BODIES[type];
  if (!schema) throw new Error(`unknown message type ${type}`);
  const env = {
    v: VERSION, type, id,
    from: { account: from.account, device: from.device },
    to: to.device ? { account: to.account, device: to.device } : { account: to.account },
    channelId, time, body: clean(schema, body || {}),
  };
  const text = JSON.stringify(env);
  if (utf8.encode(text).length > MAX_MESSAGE_SIZE) throw new Error(`${type} message too large`);
  return text;
}

const PRESENCE = { v: 'int', state: 'string', account: 'string', device: 'string', session: 'string', clientType: 'string', version: 'string', since: 'int' };

/** Strictly decodes a presence payload published on the topic of `dev`. */
export function decodePresence(data, dev) {
  const text = typeof data === 'string' ? data : new TextDecoder().decode(data);
  const p = JSON.parse(text);
  checkObject(PRESENCE, p, 'presence');
  if (p.v !== VERSION) throw new Error(`presence v${p.v}`);
  if (p.state !== ONLINE && p.state !== OFFLINE) throw new Error(`presence state ${JSON.stringify(p.state)}`);
  if (p.account !== dev.account || p.device !== dev.device) throw new Error('presence of another device');
  if (typeof p.session !== 'string' || p.session === '' || p.session.length > 64) throw new Error('presence session must be 1-64 characters');
  return p;
}

export function encodePresence({ state, account, device, session, clientType, version, since }) {
  return JSON.stringify(clean(PRESENCE, { v: VERSION, state, account, device, session, clientType, version, since }));
}

/** The retained call state: {v, state, channelId?, peer?, type?, since}. */
export function encodeCallState(s) {
  const out = { v: VERSION, state: s.state };
  if (s.channelId) out.channelId = s.channelId;
  if (s.peer) out.peer = s.peer.device ? { account: s.peer.account, device: s.peer.device } : { account: s.peer.account };
  if (s.type) out.type = s.type;
  out.since = s.since;
  return JSON.stringify(out);
}

/** Random lowercase hex of `bytes` random bytes. */
export function randomHex(bytes) {
  const b = new Uint8Array(bytes);
  globalThis.crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

/** A call id: 32 lowercase hex digits (128 random bits). */
export const newChannelId = () => randomHex(16);
