// Codec policy of intercomd's media (PROTOCOL.md "Media"): H.264
// packetization-mode=1, profile-level-id 42e01f for video; PCMU/PCMA for
// audio. Kept apart so a change in the daemon's codecs is a change here only.

export const CODEC_POLICY = {
  audio: [
    { mimeType: 'audio/PCMU' },
    { mimeType: 'audio/PCMA' },
  ],
  video: [
    { mimeType: 'video/H264', fmtp: { 'packetization-mode': '1', 'profile-level-id': '42e01f' } },
    // Any constrained-baseline H.264 with packetization-mode=1, if the
    // browser lacks the exact level.
    { mimeType: 'video/H264', fmtp: { 'packetization-mode': '1' }, profile: /^42e0/i },
  ],
};

function fmtp(line) {
  const out = {};
  for (const kv of (line || '').split(';')) {
    const i = kv.indexOf('=');
    if (i > 0) out[kv.slice(0, i).trim().toLowerCase()] = kv.slice(i + 1).trim().toLowerCase();
  }
  return out;
}

function matches(codec, rule) {
  if (codec.mimeType.toLowerCase() !== rule.mimeType.toLowerCase()) return false;
  const f = fmtp(codec.sdpFmtpLine);
  for (const [k, v] of Object.entries(rule.fmtp || {})) if (f[k] !== v.toLowerCase()) return false;
  if (rule.profile && !rule.profile.test(f['profile-level-id'] || '')) return false;
  return true;
}

/**
 * The codecs of `capabilities` (RTCRtpReceiver.getCapabilities(kind).codecs)
 * the policy allows, in the policy's order. The first rule that matches for
 * video wins (one H.264 variant); audio keeps every match.
 */
export function preferredCodecs(kind, capabilities, policy = CODEC_POLICY) {
  const rules = policy[kind] || [];
  const out = [];
  for (const rule of rules) {
    const found = capabilities.filter((c) => matches(c, rule) && !out.includes(c));
    if (kind === 'video' && found.length) return found;
    out.push(...found);
  }
  return out;
}

/** Applies the policy to a transceiver; returns false when the browser has no allowed codec. */
export function applyCodecPolicy(transceiver, kind) {
  const caps = globalThis.RTCRtpReceiver?.getCapabilities?.(kind);
  if (!caps || typeof transceiver.setCodecPreferences !== 'function') return false;
  const codecs = preferredCodecs(kind, caps.codecs);
  if (!codecs.length) return false;
  transceiver.setCodecPreferences(codecs);
  return true;
}
