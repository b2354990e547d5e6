// Local devices and views: microphone and camera capture (getUserMedia),
// capture volume through Web Audio, the peer's audio playback, and the
// <video> elements of startLocalStream / startRemoteStream.

import { VIDEO_FRAME_RATE, VIDEO_QUALITY_SIZE } from './constants.js';

/** Creates (or reuses) the SDK's <video> inside node and plays stream in it. */
export function attachVideo(node, stream, { muted = true, mirror = false, className = 'netcall-video' } = {}) {
  let el = node.querySelector(`video.${className}`);
  if (!el) {
    el = node.ownerDocument.createElement('video');
    el.className = className;
    el.autoplay = true;
    el.playsInline = true;
    el.setAttribute('playsinline', '');
    el.style.width = '100%';
    el.style.height = '100%';
    el.style.objectFit = 'cover';
    node.appendChild(el);
  }
  el.muted = muted;
  if (mirror) el.style.transform = 'scaleX(-1)';
  if (el.srcObject !== stream) el.srcObject = stream;
  el.play?.().catch(() => {}); // autoplay may wait for a user gesture
  return el;
}

export function detachVideo(el) {
  if (!el) return;
  el.srcObject = null;
  el.remove();
}

/** Sizes a view: width/height in CSS pixels; cut crops to fill, else letterboxes. */
export function sizeView(el, { width, height, cut } = {}) {
  if (!el) return;
  const box = el.parentElement || el;
  if (width) box.style.width = `${width}px`;
  if (height) box.style.height = `${height}px`;
  el.style.objectFit = cut ? 'cover' : 'contain';
}

/** Video constraints from startDevice options or a sessionConfig. */
export function videoConstraints({ width, height, frameRate, deviceId } = {}, session = {}) {
  const [qw, qh] = VIDEO_QUALITY_SIZE[session.videoQuality || 0] || VIDEO_QUALITY_SIZE[0];
  const fps = frameRate || VIDEO_FRAME_RATE[session.videoFrameRate || 0] || 15;
  const c = { width: { ideal: width || qw }, height: { ideal: height || qh }, frameRate: { ideal: fps } };
  if (deviceId) c.deviceId = { exact: deviceId };
  return c;
}

/**
 * A microphone track whose level follows setCaptureVolume (0..255). At full
 * volume the raw track is sent; below it the track goes through a GainNode.
 */
export class Microphone {
  constructor(stream) {
    this.stream = stream;
    this.raw = stream.getAudioTracks()[0];
    this.ctx = null;
    this.gain = null;
    this.out = null;
  }

  /** The track to send for `volume` (0..255). */
  track(volume) {
    if (volume >= 255 && !this.gain) return this.raw;
    if (!this.gain) {
      const Ctx = globalThis.AudioContext || globalThis.webkitAudioContext;
      if (!Ctx) return this.raw;
      this.ctx = new Ctx();
      const src = this.ctx.createMediaStreamSource(this.stream);
      this.gain = this.ctx.createGain();
      this.out = this.ctx.createMediaStreamDestination();
      src.connect(this.gain).connect(this.out);
      this.ctx.resume?.().catch(() => {});
    }
    this.gain.gain.value = Math.max(0, Math.min(255, volume)) / 255;
    return this.out.stream.getAudioTracks()[0];
  }

  stop() {
    for (const t of this.stream.getTracks()) t.stop();
    this.ctx?.close?.().catch(() => {});
  }
}
