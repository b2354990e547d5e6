import { test } from 'node:test';
import assert from 'node:assert/strict';
import { preferredCodecs } from '../../sdk/codecs.js';

const caps = [
  { mimeType: 'video/VP8', clockRate: 90000 },
  { mimeType: 'video/H264', clockRate: 90000, sdpFmtpLine: 'level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f' },
  { mimeType: 'video/H264', clockRate: 90000, sdpFmtpLine: 'level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f' },
  { mimeType: 'video/H264', clockRate: 90000, sdpFmtpLine: 'level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640034' },
  { mimeType: 'audio/opus', clockRate: 48000, channels: 2 },
  { mimeType: 'audio/PCMA', clockRate: 8000 },
  { mimeType: 'audio/PCMU', clockRate: 8000 },
];

test('video: only H.264 packetization-mode=1 42e01f', () => {
  const v = preferredCodecs('video', caps);
  assert.equal(v.length, 1);
  assert.match(v[0].sdpFmtpLine, /packetization-mode=1;profile-level-id=42e01f/);
});

test('video: falls back to another constrained-baseline level', () => {
  const v = preferredCodecs('video', [{ mimeType: 'video/H264', sdpFmtpLine: 'packetization-mode=1;profile-level-id=42e034' }]);
  assert.equal(v.length, 1);
  assert.equal(preferredCodecs('video', [{ mimeType: 'video/VP8' }]).length, 0);
});

test('audio: PCMU then PCMA, no opus', () => {
  assert.deepEqual(preferredCodecs('audio', caps).map((c) => c.mimeType), ['audio/PCMU', 'audio/PCMA']);
});
