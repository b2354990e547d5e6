// Constants of the seed's Web SDK (NetEase Netcall point-to-point), with the
// values in shared/reference/netcall-semantics.md. DEVICE_TYPE_*, the
// quality/frame-rate names and LAYOUT_* follow the vendor's Web SDK naming;
// their numeric values are not on the wire (local settings only).

export const NETCALL_TYPE_AUDIO = 1;
export const NETCALL_TYPE_VIDEO = 2;

export const NETCALL_CONTROL_COMMAND_NOTIFY_AUDIO_ON = 1;
export const NETCALL_CONTROL_COMMAND_NOTIFY_AUDIO_OFF = 2;
export const NETCALL_CONTROL_COMMAND_NOTIFY_VIDEO_ON = 3;
export const NETCALL_CONTROL_COMMAND_NOTIFY_VIDEO_OFF = 4;
export const NETCALL_CONTROL_COMMAND_SWITCH_AUDIO_TO_VIDEO = 5;
export const NETCALL_CONTROL_COMMAND_SWITCH_AUDIO_TO_VIDEO_AGREE = 6;
export const NETCALL_CONTROL_COMMAND_SWITCH_AUDIO_TO_VIDEO_REJECT = 7;
export const NETCALL_CONTROL_COMMAND_SWITCH_VIDEO_TO_AUDIO = 8;
export const NETCALL_CONTROL_COMMAND_BUSY = 9;
export const NETCALL_CONTROL_COMMAND_SELF_CAMERA_INVALID = 10;
export const NETCALL_CONTROL_COMMAND_SELF_ON_BACKGROUND = 11;
export const NETCALL_CONTROL_COMMAND_START_NOTIFY_RECEIVED = 12;
export const NETCALL_CONTROL_COMMAND_NOTIFY_RECORD_START = 13;
export const NETCALL_CONTROL_COMMAND_NOTIFY_RECORD_STOP = 14;
export const NETCALL_CONTROL_COMMAND_SELF_AUDIO_INVALID = 16;

// Local devices (startDevice / stopDevice).
export const DEVICE_TYPE_AUDIO_IN = 0; // microphone
export const DEVICE_TYPE_AUDIO_OUT_LOCAL = 1; // play our own microphone back
export const DEVICE_TYPE_AUDIO_OUT_CHAT = 2; // play the peer's audio
export const DEVICE_TYPE_VIDEO = 3; // camera

// sessionConfig.videoQuality: 0 default (640x480) … 7 1920x1080.
export const CHAT_VIDEO_QUALITY_NORMAL = 0;
export const CHAT_VIDEO_QUALITY_LOW = 1;
export const CHAT_VIDEO_QUALITY_MEDIUM = 2;
export const CHAT_VIDEO_QUALITY_HIGH = 3;
export const CHAT_VIDEO_QUALITY_480P = 4;
export const CHAT_VIDEO_QUALITY_540P = 5;
export const CHAT_VIDEO_QUALITY_720P = 6;
export const CHAT_VIDEO_QUALITY_1080P = 7;

// sessionConfig.videoFrameRate: 0 default (15 fps), 1..5 = 5/10/15/20/25 fps.
export const CHAT_VIDEO_FRAME_RATE_NORMAL = 0;
export const CHAT_VIDEO_FRAME_RATE_5 = 1;
export const CHAT_VIDEO_FRAME_RATE_10 = 2;
export const CHAT_VIDEO_FRAME_RATE_15 = 3;
export const CHAT_VIDEO_FRAME_RATE_20 = 4;
export const CHAT_VIDEO_FRAME_RATE_25 = 5;

// sessionConfig.splitMode (RTMP relay layout; informative here).
export const LAYOUT_SPLITBOTTOMHORFLOATING = 0;
export const LAYOUT_SPLITTOPHORFLOATING = 1;
export const LAYOUT_SPLITLATTICETILE = 2;
export const LAYOUT_SPLITLATTICECUTTINGTILE = 3;
export const LAYOUT_SPLITCUSTOM = 4;
export const LAYOUT_SPLITAUDIO = 5;

/** Width × height for each videoQuality value. */
export const VIDEO_QUALITY_SIZE = [
  [640, 480], [176, 144], [352, 288], [480, 360],
  [640, 480], [960, 540], [1280, 720], [1920, 1080],
];
/** Frames per second for each videoFrameRate value. */
export const VIDEO_FRAME_RATE = [15, 5, 10, 15, 20, 25];

// Error codes (err.event.code), as docs/PROTOCOL.md lists them.
export const CODE_CHANNEL_INVALID = 9102; // no such call / the call already ended
export const CODE_ANSWERED_ELSEWHERE = 9103; // another device of the account responded first
export const CODE_CALLEE_OFFLINE = 11001; // no device of the callee account is online
export const CODE_BUSY = 9001; // local: this device is already in a call
export const CODE_INVALID_ARGUMENT = 9002; // local: bad parameters
export const CODE_TIMEOUT = 9003; // local: the peer did not confirm in time
export const CODE_NOT_CONNECTED = 9004; // local: no broker connection
export const CODE_MEDIA = 9005; // local: a media (WebRTC / device) operation failed

/**
 * The error every promise of the SDK rejects with: like the seed's,
 * `err.event.code` holds the numeric code (also `err.code`).
 */
export class NetcallError extends Error {
  constructor(code, message, cause) {
    super(`netcall: ${message} (code ${code})`);
    this.name = 'NetcallError';
    this.code = code;
    this.event = { code, message };
    if (cause !== undefined) this.cause = cause;
  }
}
