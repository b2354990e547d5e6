package media

import "github.com/intercomd/intercomd/device"

// encodeG711 appends the G.711 encoding of pcm (payload type ptPCMU or
// ptPCMA) to dst, using device's table-driven codec.
func encodeG711(dst []byte, pcm []int16, pt uint8) []byte {
	if pt == ptPCMA {
		return device.AppendALaw(dst, pcm)
	}
	return device.AppendMuLaw(dst, pcm)
}

// decodeG711 appends the PCM decoding of payload to dst.
func decodeG711(dst []int16, payload []byte, pt uint8) []int16 {
	if pt == ptPCMA {
		return device.AppendALawPCM(dst, payload)
	}
	return device.AppendMuLawPCM(dst, payload)
}
