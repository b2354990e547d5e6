package device

import (
	"fmt"
	"math"

	"github.com/blackjack/webcam"
)

// DefaultCameraFormats is the preference order: camera-native H.264 is
// passed through without touching the CPU; raw formats go to an encoder
// (the Pi's M2M encoder takes YUYV/NV12/I420); MJPEG would need a JPEG
// decode first, so it comes last.
var DefaultCameraFormats = []uint32{FourCCH264, FourCCYUYV, FourCCNV12, FourCCYU12, FourCCMJPG}

type cameraMode struct {
	FourCC uint32
	Sizes  []webcam.FrameSize
}

type cameraChoice struct {
	FourCC        uint32
	Width, Height int
}

// chooseCameraFormat picks the first preferred format the device has, and
// within it the frame size closest to w x h (640x480 when unset).
func chooseCameraFormat(modes []cameraMode, pref []uint32, w, h int) (cameraChoice, error) {
	if w <= 0 || h <= 0 {
		w, h = 640, 480
	}
	for _, want := range pref {
		for _, m := range modes {
			if m.FourCC != want {
				continue
			}
			cw, ch, ok := closestSize(m.Sizes, w, h)
			if !ok {
				// Drivers that do not enumerate sizes take what S_FMT grants.
				cw, ch = w, h
			}
			return cameraChoice{FourCC: want, Width: cw, Height: ch}, nil
		}
	}
	have := make([]string, 0, len(modes))
	for _, m := range modes {
		have = append(have, FourCCString(m.FourCC))
	}
	wanted := make([]string, 0, len(pref))
	for _, p := range pref {
		wanted = append(wanted, FourCCString(p))
	}
	return cameraChoice{}, fmt.Errorf("no usable pixel format: camera has %v, intercomd takes %v", have, wanted)
}

func closestSize(sizes []webcam.FrameSize, w, h int) (int, int, bool) {
	best, bw, bh := math.MaxInt, 0, 0
	for _, s := range sizes {
		cw := stepClamp(w, int(s.MinWidth), int(s.MaxWidth), int(s.StepWidth))
		ch := stepClamp(h, int(s.MinHeight), int(s.MaxHeight), int(s.StepHeight))
		d := camAbs(cw-w) + camAbs(ch-h)
		// On a tie, the larger size: scaling down is better than up.
		if d < best || (d == best && cw*ch > bw*bh) {
			best, bw, bh = d, cw, ch
		}
	}
	return bw, bh, best != math.MaxInt
}

func stepClamp(v, lo, hi, step int) int {
	if v < lo {
		v = lo
	}
	if v > hi {
		v = hi
	}
	if step > 1 {
		v = lo + (v-lo)/step*step
	}
	return v
}

func camAbs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// chooseFrameRate picks the frame rate closest to fps from the intervals
// the driver lists (seconds per frame as num/den), ties to the faster one.
func chooseFrameRate(rates []webcam.FrameRate, fps int) (float64, bool) {
	best, bestD := 0.0, math.Inf(1)
	for _, r := range rates {
		for _, iv := range [][2]uint32{{r.MinNumerator, r.MinDenominator}, {r.MaxNumerator, r.MaxDenominator}} {
			if iv[0] == 0 || iv[1] == 0 {
				continue
			}
			f := float64(iv[1]) / float64(iv[0])
			if r.StepNumerator != 0 || r.StepDenominator != 0 {
				// Stepwise/continuous: anything between the ends.
				lo := float64(r.MaxDenominator) / float64(max(r.MaxNumerator, 1))
				hi := float64(r.MinDenominator) / float64(max(r.MinNumerator, 1))
				if lo > hi {
					lo, hi = hi, lo
				}
				f = math.Min(math.Max(float64(fps), lo), hi)
			}
			d := math.Abs(f - float64(fps))
			if d < bestD || (d == bestD && f > best) {
				best, bestD = f, d
			}
		}
	}
	return best, !math.IsInf(bestD, 1)
}
