package device

import (
	"fmt"
	"time"
)

// patternRenderer draws the synthetic door-camera picture: 75% colour bars,
// a box moving left and right, and a band with the capture clock
// (HH:MM:SS.mmm) and a frame counter in a built-in 5x7 font. Everything that
// moves is kept small and the box is aligned to macroblock rows so the P
// pictures of the I_PCM encoder stay a few kilobytes.
type patternRenderer struct {
	w, h       int
	background *I420Frame
	box        int // box edge in pixels, multiple of 16
	boxY       int // top of the box, multiple of 16
	bandY      int // top of the text band
	scale      int // font scale
	step       int // box movement per frame in pixels (even)
}

// BT.601 limited-range YCbCr of the 75% bars: white, yellow, cyan, green,
// magenta, red, blue.
var patternBars = [7][3]byte{
	{180, 128, 128}, {162, 44, 142}, {131, 156, 44}, {112, 72, 58},
	{84, 184, 198}, {65, 100, 212}, {35, 212, 114},
}

func newPatternRenderer(w, h, fps int) *patternRenderer {
	r := &patternRenderer{w: w, h: h}
	r.bandY = (h * 2 / 3) &^ 15
	r.box = max(16, (h/6)&^15)
	if r.box > r.bandY {
		r.box = 16
	}
	r.boxY = ((r.bandY - r.box) / 2) &^ 15
	r.scale = max(1, h/120)
	// Cross the picture in about two seconds whatever the frame rate.
	r.step = max(2, (w/(2*max(fps, 1)))&^1)

	bg := NewI420Frame(w, h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := [3]byte{40, 128, 128} // dark grey band under the bars
			if y < r.bandY {
				c = patternBars[min(x*7/w, 6)]
			}
			bg.Y[y*w+x] = c[0]
			if x%2 == 0 && y%2 == 0 {
				bg.Cb[(y/2)*(w/2)+x/2] = c[1]
				bg.Cr[(y/2)*(w/2)+x/2] = c[2]
			}
		}
	}
	r.background = bg
	return r
}

// render draws picture number n, stamped with t, into f.
func (r *patternRenderer) render(f *I420Frame, n uint64, t time.Time) {
	f.copyFrom(r.background)
	// Box position: a triangle wave over the free width.
	span := r.w - r.box
	if span > 0 {
		pos := int((n * uint64(r.step)) % uint64(2*span))
		if pos > span {
			pos = 2*span - pos
		}
		pos &^= 1
		fillRect(f, pos, r.boxY, r.box, r.box, 235, 128, 128)
		inner := r.box / 4 &^ 1
		fillRect(f, pos+inner, r.boxY+inner, r.box-2*inner, r.box-2*inner, 16, 128, 128)
	}
	margin := 2 * r.scale
	lineH := 9 * r.scale
	y := r.bandY + margin
	r.text(f, margin, y, t.Format("15:04:05.000"))
	if y+2*lineH <= r.h {
		r.text(f, margin, y+lineH, fmt.Sprintf("#%06d", n))
	}
}

func fillRect(f *I420Frame, x0, y0, w, h int, yv, cb, cr byte) {
	x1, y1 := min(x0+w, f.Width), min(y0+h, f.Height)
	x0, y0 = max(x0, 0), max(y0, 0)
	for y := y0; y < y1; y++ {
		row := f.Y[y*f.Width:]
		for x := x0; x < x1; x++ {
			row[x] = yv
		}
	}
	cw := f.Width / 2
	for y := y0 / 2; y < (y1+1)/2; y++ {
		for x := x0 / 2; x < (x1+1)/2; x++ {
			f.Cb[y*cw+x] = cb
			f.Cr[y*cw+x] = cr
		}
	}
}

// text draws s in white at (x, y), clipping at the picture edges. Only the
// luma plane is touched: the band is neutral grey, so chroma stays 128.
func (r *patternRenderer) text(f *I420Frame, x, y int, s string) {
	for _, ch := range s {
		g, ok := patternFont[ch]
		if ok {
			for gy, row := range g {
				for gx := 0; gx < 5; gx++ {
					if row[gx] != '#' {
						continue
					}
					px, py := x+gx*r.scale, y+gy*r.scale
					for dy := 0; dy < r.scale; dy++ {
						if py+dy >= f.Height {
							break
						}
						line := f.Y[(py+dy)*f.Width:]
						for dx := 0; dx < r.scale && px+dx < f.Width; dx++ {
							line[px+dx] = 235
						}
					}
				}
			}
		}
		x += 6 * r.scale
	}
}

// patternFont is a 5x7 bitmap font for the characters the overlay uses.
var patternFont = map[rune][7]string{
	'0': {" ### ", "#   #", "#  ##", "# # #", "##  #", "#   #", " ### "},
	'1': {"  #  ", " ##  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### "},
	'2': {" ### ", "#   #", "    #", "   # ", "  #  ", " #   ", "#####"},
	'3': {"#####", "   # ", "  #  ", "   # ", "    #", "#   #", " ### "},
	'4': {"   # ", "  ## ", " # # ", "#  # ", "#####", "   # ", "   # "},
	'5': {"#####", "#    ", "#### ", "    #", "    #", "#   #", " ### "},
	'6': {"  ## ", " #   ", "#    ", "#### ", "#   #", "#   #", " ### "},
	'7': {"#####", "    #", "   # ", "  #  ", " #   ", " #   ", " #   "},
	'8': {" ### ", "#   #", "#   #", " ### ", "#   #", "#   #", " ### "},
	'9': {" ### ", "#   #", "#   #", " ####", "    #", "   # ", " ##  "},
	':': {"     ", " ##  ", " ##  ", "     ", " ##  ", " ##  ", "     "},
	'.': {"     ", "     ", "     ", "     ", "     ", " ##  ", " ##  "},
	'#': {" # # ", " # # ", "#####", " # # ", "#####", " # # ", " # # "},
	'-': {"     ", "     ", "     ", "#####", "     ", "     ", "     "},
}
