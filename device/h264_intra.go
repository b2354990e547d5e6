package device

// Lossy intra coding for H264Encoder: Intra_16x16 macroblocks (ITU-T H.264
// clauses 8.3.3, 8.3.4, 8.5) with the forward transforms and quantisation
// an encoder needs, and the decoder's own scaling, inverse transforms and
// prediction, run on the encoder's reconstruction so that its reference
// pictures are bit-exact with any conforming decoder's.

// h264Zigzag4x4 maps a 4x4 frame zig-zag scan index to the raster position
// (row*4+col) of the coefficient (Table 8-13).
var h264Zigzag4x4 = [16]uint8{0, 1, 4, 8, 5, 2, 3, 6, 9, 12, 13, 10, 7, 11, 14, 15}

// h264CoefClass is the quantisation class of a raster position: 0 when row
// and column are both even, 1 when both are odd, 2 otherwise.
var h264CoefClass = [16]uint8{0, 2, 0, 2, 2, 1, 2, 1, 0, 2, 0, 2, 2, 1, 2, 1}

// h264QuantMF are the forward quantisation multipliers (2^15 scale) per
// QP%6 and class; h264DequantV the normAdjust4x4 values v of clause 8.5.9
// (with the flat scaling matrix, LevelScale4x4 = 16*v).
var (
	h264QuantMF = [6][3]int32{
		{13107, 5243, 8066}, {11916, 4660, 7490}, {10082, 4194, 6554},
		{9362, 3647, 5825}, {8192, 3355, 5243}, {7282, 2893, 4559},
	}
	h264DequantV = [6][3]int32{
		{10, 16, 13}, {11, 18, 14}, {13, 20, 16}, {14, 23, 18}, {16, 25, 20}, {18, 29, 23},
	}
)

// h264ChromaQP maps QP'Y (plus chroma_qp_index_offset, here 0) to QP'C for
// indices 30..51 (Table 8-15); below 30 QPc equals the index.
var h264ChromaQPHigh = [22]uint8{29, 30, 31, 32, 32, 33, 34, 34, 35, 35, 36, 36, 37, 37, 37, 38, 38, 38, 39, 39, 39, 39}

func h264ChromaQP(qp int) int {
	if qp < 30 {
		return qp
	}
	return int(h264ChromaQPHigh[qp-30])
}

// Intra_16x16 prediction modes (Table 8-4) and intra chroma modes (Table 8-5).
const (
	i16Vertical   = 0
	i16Horizontal = 1
	i16DC         = 2
	i16Plane      = 3

	chromaDC         = 0
	chromaHorizontal = 1
	chromaVertical   = 2
	chromaPlane      = 3
)

func clip255(v int32) byte {
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return byte(v)
}

// h264Neighbours are the reconstructed samples around a square block of n
// samples: the row above, the column to the left and the corner.
type h264Neighbours struct {
	top, left       [16]int32
	corner          int32
	haveTop, haveLe bool
}

func (nb *h264Neighbours) load(plane []byte, stride, x0, y0, n int, haveTop, haveLeft bool) {
	nb.haveTop, nb.haveLe = haveTop, haveLeft
	if haveTop {
		row := plane[(y0-1)*stride+x0:]
		for i := 0; i < n; i++ {
			nb.top[i] = int32(row[i])
		}
	}
	if haveLeft {
		o := y0*stride + x0 - 1
		for i := 0; i < n; i++ {
			nb.left[i] = int32(plane[o+i*stride])
		}
	}
	if haveTop && haveLeft {
		nb.corner = int32(plane[(y0-1)*stride+x0-1])
	}
}

// predLuma16 fills pred (16x16, raster) with Intra_16x16 prediction mode
// (clause 8.3.3); the mode must be available.
func predLuma16(pred *[256]byte, mode int, nb *h264Neighbours) {
	switch mode {
	case i16Vertical:
		for y := 0; y < 16; y++ {
			for x := 0; x < 16; x++ {
				pred[y*16+x] = byte(nb.top[x])
			}
		}
	case i16Horizontal:
		for y := 0; y < 16; y++ {
			v := byte(nb.left[y])
			for x := 0; x < 16; x++ {
				pred[y*16+x] = v
			}
		}
	case i16DC:
		var s int32
		switch {
		case nb.haveTop && nb.haveLe:
			for i := 0; i < 16; i++ {
				s += nb.top[i] + nb.left[i]
			}
			s = (s + 16) >> 5
		case nb.haveLe:
			for i := 0; i < 16; i++ {
				s += nb.left[i]
			}
			s = (s + 8) >> 4
		case nb.haveTop:
			for i := 0; i < 16; i++ {
				s += nb.top[i]
			}
			s = (s + 8) >> 4
		default:
			s = 128
		}
		for i := range pred {
			pred[i] = byte(s)
		}
	case i16Plane:
		predPlane(pred[:], 16, 5, nb)
	}
}

// predChroma8 fills pred (8x8, raster) with intra chroma prediction mode
// for 4:2:0 (clause 8.3.4).
func predChroma8(pred *[64]byte, mode int, nb *h264Neighbours) {
	switch mode {
	case chromaDC:
		for blk := 0; blk < 4; blk++ {
			xo, yo := (blk&1)*4, (blk>>1)*4
			var st, sl int32
			for i := 0; i < 4; i++ {
				st += nb.top[xo+i]
				sl += nb.left[yo+i]
			}
			var s int32
			useTop, useLeft := nb.haveTop, nb.haveLe
			if xo > 0 && yo == 0 { // top-right block prefers the top row
				if useTop {
					useLeft = false
				}
			} else if xo == 0 && yo > 0 { // bottom-left prefers the left column
				if useLeft {
					useTop = false
				}
			}
			switch {
			case useTop && useLeft:
				s = (st + sl + 4) >> 3
			case useLeft:
				s = (sl + 2) >> 2
			case useTop:
				s = (st + 2) >> 2
			default:
				s = 128
			}
			for y := 0; y < 4; y++ {
				for x := 0; x < 4; x++ {
					pred[(yo+y)*8+xo+x] = byte(s)
				}
			}
		}
	case chromaHorizontal:
		for y := 0; y < 8; y++ {
			v := byte(nb.left[y])
			for x := 0; x < 8; x++ {
				pred[y*8+x] = v
			}
		}
	case chromaVertical:
		for y := 0; y < 8; y++ {
			for x := 0; x < 8; x++ {
				pred[y*8+x] = byte(nb.top[x])
			}
		}
	case chromaPlane:
		predPlane(pred[:], 8, 34, nb)
	}
}

// sadConst is the SAD of a block against a flat prediction v.
func sadConst(a []byte, v byte) int32 {
	var s int32
	for _, x := range a {
		d := int32(x) - int32(v)
		if d < 0 {
			d = -d
		}
		s += d
	}
	return s
}

// sadRows is the SAD of a square block (side len(top)) against the
// vertical prediction from top; when limited, it may stop early once the
// sum reaches limit.
func sadRows(a []byte, top []int32, limit int32, limited bool) int32 {
	n := len(top)
	var s int32
	for y := 0; y < n; y++ {
		row := a[y*n : y*n+n]
		for x, v := range row {
			d := int32(v) - top[x]
			if d < 0 {
				d = -d
			}
			s += d
		}
		if limited && s >= limit {
			return s
		}
	}
	return s
}

// sadCols is sadRows for the horizontal prediction from left.
func sadCols(a []byte, left []int32, limit int32, limited bool) int32 {
	n := len(left)
	var s int32
	for y := 0; y < n; y++ {
		row := a[y*n : y*n+n]
		l := left[y]
		for _, v := range row {
			d := int32(v) - l
			if d < 0 {
				d = -d
			}
			s += d
		}
		if limited && s >= limit {
			return s
		}
	}
	return s
}

func sad(a, b []byte) int32 {
	var s int32
	b = b[:len(a)]
	for i, v := range a {
		d := int32(v) - int32(b[i])
		if d < 0 {
			d = -d
		}
		s += d
	}
	return s
}

// fdct4 is the forward core transform Cf*X*Cf^T of a 4x4 residual block
// (raster), in place.
func fdct4(d *[16]int32) {
	for i := 0; i < 16; i += 4 {
		s03, d03 := d[i]+d[i+3], d[i]-d[i+3]
		s12, d12 := d[i+1]+d[i+2], d[i+1]-d[i+2]
		d[i], d[i+2] = s03+s12, s03-s12
		d[i+1], d[i+3] = 2*d03+d12, d03-2*d12
	}
	for i := 0; i < 4; i++ {
		s03, d03 := d[i]+d[i+12], d[i]-d[i+12]
		s12, d12 := d[i+4]+d[i+8], d[i+4]-d[i+8]
		d[i], d[i+8] = s03+s12, s03-s12
		d[i+4], d[i+12] = 2*d03+d12, d03-2*d12
	}
}

// idct4 is the inverse transform of clause 8.5.12.2 including the final
// (x+32)>>6, in place.
func idct4(d *[16]int32) {
	for i := 0; i < 16; i += 4 {
		e0, e1 := d[i]+d[i+2], d[i]-d[i+2]
		e2, e3 := (d[i+1]>>1)-d[i+3], d[i+1]+(d[i+3]>>1)
		d[i], d[i+1], d[i+2], d[i+3] = e0+e3, e1+e2, e1-e2, e0-e3
	}
	for i := 0; i < 4; i++ {
		e0, e1 := d[i]+d[i+8], d[i]-d[i+8]
		e2, e3 := (d[i+4]>>1)-d[i+12], d[i+4]+(d[i+12]>>1)
		d[i], d[i+4], d[i+8], d[i+12] = (e0+e3+32)>>6, (e1+e2+32)>>6, (e1-e2+32)>>6, (e0-e3+32)>>6
	}
}

// hadamard4 is the 4x4 Hadamard transform H*X*H used for the Intra_16x16
// luma DC in both directions (no normalisation), in place.
func hadamard4(d *[16]int32) {
	for i := 0; i < 16; i += 4 {
		s01, d01 := d[i]+d[i+1], d[i]-d[i+1]
		s23, d23 := d[i+2]+d[i+3], d[i+2]-d[i+3]
		d[i], d[i+1], d[i+2], d[i+3] = s01+s23, s01-s23, d01-d23, d01+d23
	}
	for i := 0; i < 4; i++ {
		s01, d01 := d[i]+d[i+4], d[i]-d[i+4]
		s23, d23 := d[i+8]+d[i+12], d[i+8]-d[i+12]
		d[i], d[i+4], d[i+8], d[i+12] = s01+s23, s01-s23, d01-d23, d01+d23
	}
}

// hadamard2 is the 2x2 transform of the chroma DC, in both directions.
func hadamard2(c *[4]int32) {
	c0, c1, c2, c3 := c[0], c[1], c[2], c[3]
	c[0], c[1], c[2], c[3] = c0+c1+c2+c3, c0-c1+c2-c3, c0+c1-c2-c3, c0-c1-c2+c3
}

// quantLevel quantises |x|*mf with rounding offset off and shift, keeping
// the sign and the Baseline level limit.
func quantLevel(x, mf, off int32, shift uint) int32 {
	if x < 0 {
		q := (-x*mf + off) >> shift
		return -min(q, h264MaxLevel)
	}
	return min((x*mf+off)>>shift, h264MaxLevel)
}

// h264Quant holds the per-QP constants of one colour component.
type h264Quant struct {
	qp      int
	per     uint // qp/6
	mf      [16]int32
	scale   [16]int32 // dequantisation v<<per per raster position
	qbits   uint
	offIntr int32 // intra rounding offset, 1/3 of the step
	dcScale int32 // LevelScale4x4(qp%6,0,0) = 16*v(0)
}

func newH264Quant(qp int) h264Quant {
	q := h264Quant{qp: qp, per: uint(qp / 6), qbits: 15 + uint(qp/6)}
	rem := qp % 6
	for i := 0; i < 16; i++ {
		cls := h264CoefClass[i]
		q.mf[i] = h264QuantMF[rem][cls]
		q.scale[i] = h264DequantV[rem][cls] << q.per
	}
	q.offIntr = int32(1<<q.qbits) / 3
	q.dcScale = 16 * h264DequantV[rem][0]
	return q
}

// lumaDCDequant turns the 16 Intra16x16DCLevel values (raster over the
// macroblock's 4x4 blocks) into dcY (clause 8.5.10), in place.
func (q *h264Quant) lumaDCDequant(c *[16]int32) {
	hadamard4(c)
	if q.qp >= 36 {
		sh := uint(q.qp/6 - 6)
		for i := range c {
			c[i] = (c[i] * q.dcScale) << sh
		}
		return
	}
	sh := uint(6 - q.qp/6)
	rnd := int32(1) << (sh - 1)
	for i := range c {
		c[i] = (c[i]*q.dcScale + rnd) >> sh
	}
}

// chromaDCDequant turns the four chroma DC levels into dcC (clause 8.5.11.2).
func (q *h264Quant) chromaDCDequant(c *[4]int32) {
	hadamard2(c)
	for i := range c {
		c[i] = ((c[i] * q.dcScale) << q.per) >> 5
	}
}

// h264MBCoder codes Intra_16x16 macroblocks against a reconstruction. It
// holds scratch space only; the planes and counts belong to the encoder.
type h264MBCoder struct {
	lq, cq h264Quant // luma and chroma quantisers

	src   [384]byte // gathered source macroblock: Y 16x16, Cb 8x8, Cr 8x8
	pred  [4][256]byte
	predC [4][2][64]byte

	coef  [16][16]int32 // per 4x4 block (raster over the MB), raster coefficients
	dc    [16]int32     // quantised luma DC, raster over the blocks
	coefC [2][4][16]int32
	dcC   [2][4]int32
	scan  [16]int32
}

// h264IntraMB is the decided content of one Intra_16x16 macroblock.
type h264IntraMB struct {
	lumaMode, chromaMode int
	cbpLuma, cbpChroma   int // 0/15 and 0..2
}

// mbType returns mb_type in an I slice (Table 7-11).
func (m *h264IntraMB) mbType() uint32 {
	t := 1 + m.lumaMode + 4*m.cbpChroma
	if m.cbpLuma != 0 {
		t += 12
	}
	return uint32(t)
}

// h264Blk4x4XY is the position (in 4x4 blocks) of luma4x4BlkIdx (6.4.3).
var h264Blk4x4XY = [16][2]uint8{
	{0, 0}, {1, 0}, {0, 1}, {1, 1}, {2, 0}, {3, 0}, {2, 1}, {3, 1},
	{0, 2}, {1, 2}, {0, 3}, {1, 3}, {2, 2}, {3, 2}, {2, 3}, {3, 3},
}

// decide chooses prediction modes, transforms and quantises the gathered
// source macroblock c.src against the reconstruction around (mx, my), and
// writes the reconstruction of the macroblock into the planes.
func (c *h264MBCoder) decide(rec *h264Picture, mx, my int) h264IntraMB {
	var m h264IntraMB
	haveTop, haveLeft := my > 0, mx > 0
	var nb h264Neighbours
	nb.load(rec.y, rec.strideY, mx*16, my*16, 16, haveTop, haveLeft)

	// Luma mode by SAD.
	src := c.src[:256]
	best, bestCost := -1, int32(0)
	// DC, vertical and horizontal are scored without building them; plane
	// only when the others leave a residual, and stops at the first exact
	// prediction.
	for _, mode := range [4]int{i16Vertical, i16Horizontal, i16DC, i16Plane} {
		var cost int32
		switch mode {
		case i16DC:
			predLuma16(&c.pred[mode], mode, &nb)
			cost = sadConst(src, c.pred[mode][0])
		case i16Vertical:
			if !haveTop {
				continue
			}
			cost = sadRows(src, nb.top[:16], bestCost, best >= 0)
		case i16Horizontal:
			if !haveLeft {
				continue
			}
			cost = sadCols(src, nb.left[:16], bestCost, best >= 0)
		case i16Plane:
			if !(haveTop && haveLeft) {
				continue
			}
			predLuma16(&c.pred[mode], mode, &nb)
			cost = sad(src, c.pred[mode][:])
		}
		if best < 0 || cost < bestCost {
			best, bestCost = mode, cost
			if cost == 0 {
				break // exact prediction: nothing can be cheaper
			}
		}
	}
	m.lumaMode = best
	pred := &c.pred[best]
	if best == i16Vertical || best == i16Horizontal {
		predLuma16(pred, best, &nb)
	}
	out := rec.y[my*16*rec.strideY+mx*16:]
	if bestCost == 0 {
		// No residual at all: cbp 0, zero DC levels, reconstruction = prediction.
		c.dc = [16]int32{}
		for y := 0; y < 16; y++ {
			copy(out[y*rec.strideY:y*rec.strideY+16], pred[y*16:y*16+16])
		}
	} else {
		c.lumaResidual(&m, src, pred, out, rec.strideY)
	}
	c.chroma(&m, rec, mx, my, haveTop, haveLeft)
	return m
}

// lumaResidual transforms, quantises and reconstructs the luma residual.
func (c *h264MBCoder) lumaResidual(m *h264IntraMB, src []byte, pred *[256]byte, out []byte, stride int) {
	// Transform and quantise the 16 blocks.
	lq := &c.lq
	for b := 0; b < 16; b++ {
		bx, by := (b&3)*4, (b>>2)*4
		blk := &c.coef[b]
		for y := 0; y < 4; y++ {
			o := (by+y)*16 + bx
			s, p, d := src[o:o+4], pred[o:o+4], blk[y*4:y*4+4]
			d[0], d[1], d[2], d[3] = int32(s[0])-int32(p[0]), int32(s[1])-int32(p[1]), int32(s[2])-int32(p[2]), int32(s[3])-int32(p[3])
		}
		fdct4(blk)
		c.dc[b] = blk[0]
		nz := false
		for i := 1; i < 16; i++ {
			blk[i] = quantLevel(blk[i], lq.mf[i], lq.offIntr, lq.qbits)
			nz = nz || blk[i] != 0
		}
		if nz {
			m.cbpLuma = 15
		}
	}
	hadamard4(&c.dc)
	for i := range c.dc {
		c.dc[i] = quantLevel(c.dc[i], lq.mf[0], 4*lq.offIntr, lq.qbits+2)
	}

	// Reconstruct luma.
	var dcY [16]int32 = c.dc
	lq.lumaDCDequant(&dcY)
	for b := 0; b < 16; b++ {
		bx, by := (b&3)*4, (b>>2)*4
		var d [16]int32
		d[0] = dcY[b]
		any := d[0] != 0
		if m.cbpLuma != 0 {
			blk := &c.coef[b]
			for i := 1; i < 16; i++ {
				if blk[i] != 0 {
					d[i] = blk[i] * lq.scale[i]
					any = true
				}
			}
		}
		if any {
			idct4(&d)
		}
		for y := 0; y < 4; y++ {
			row := out[(by+y)*stride+bx : (by+y)*stride+bx+4]
			p := pred[(by+y)*16+bx : (by+y)*16+bx+4]
			dr := d[y*4 : y*4+4]
			for x := range row {
				row[x] = clip255(int32(p[x]) + dr[x])
			}
		}
	}
}

// chroma chooses the chroma mode, codes and reconstructs both components.
func (c *h264MBCoder) chroma(m *h264IntraMB, rec *h264Picture, mx, my int, haveTop, haveLeft bool) {
	var nbC [2]h264Neighbours
	planes := [2][]byte{rec.cb, rec.cr}
	for k := 0; k < 2; k++ {
		nbC[k].load(planes[k], rec.strideC, mx*8, my*8, 8, haveTop, haveLeft)
	}
	best, bestCost := -1, int32(0)
	for _, mode := range [4]int{chromaDC, chromaVertical, chromaHorizontal, chromaPlane} {
		if (mode == chromaHorizontal && !haveLeft) || (mode == chromaVertical && !haveTop) ||
			(mode == chromaPlane && !(haveTop && haveLeft)) {
			continue
		}
		var cost int32
		for k := 0; k < 2; k++ {
			src := c.src[256+64*k : 320+64*k]
			switch mode {
			case chromaVertical:
				cost += sadRows(src, nbC[k].top[:8], 0, false)
			case chromaHorizontal:
				cost += sadCols(src, nbC[k].left[:8], 0, false)
			default:
				predChroma8(&c.predC[mode][k], mode, &nbC[k])
				cost += sad(src, c.predC[mode][k][:])
			}
		}
		if best < 0 || cost < bestCost {
			best, bestCost = mode, cost
			if cost == 0 {
				break
			}
		}
	}
	m.chromaMode = best
	if best == chromaVertical || best == chromaHorizontal {
		for k := 0; k < 2; k++ {
			predChroma8(&c.predC[best][k], best, &nbC[k])
		}
	}
	if bestCost == 0 {
		c.dcC = [2][4]int32{}
		for k := 0; k < 2; k++ {
			out := planes[k][my*8*rec.strideC+mx*8:]
			for y := 0; y < 8; y++ {
				copy(out[y*rec.strideC:y*rec.strideC+8], c.predC[best][k][y*8:y*8+8])
			}
		}
		return
	}
	cq := &c.cq
	anyDC, anyAC := false, false
	for k := 0; k < 2; k++ {
		srcC := c.src[256+64*k : 320+64*k]
		predC := &c.predC[best][k]
		for b := 0; b < 4; b++ {
			bx, by := (b&1)*4, (b>>1)*4
			blk := &c.coefC[k][b]
			for y := 0; y < 4; y++ {
				o := (by+y)*8 + bx
				for x := 0; x < 4; x++ {
					blk[y*4+x] = int32(srcC[o+x]) - int32(predC[o+x])
				}
			}
			fdct4(blk)
			c.dcC[k][b] = blk[0]
			for i := 1; i < 16; i++ {
				blk[i] = quantLevel(blk[i], cq.mf[i], cq.offIntr, cq.qbits)
				anyAC = anyAC || blk[i] != 0
			}
		}
		hadamard2(&c.dcC[k])
		for i := range c.dcC[k] {
			c.dcC[k][i] = quantLevel(c.dcC[k][i], cq.mf[0], 2*cq.offIntr, cq.qbits+1)
			anyDC = anyDC || c.dcC[k][i] != 0
		}
	}
	switch {
	case anyAC:
		m.cbpChroma = 2
	case anyDC:
		m.cbpChroma = 1
	}
	for k := 0; k < 2; k++ {
		dcv := c.dcC[k]
		cq.chromaDCDequant(&dcv)
		predC := &c.predC[best][k]
		out := planes[k][my*8*rec.strideC+mx*8:]
		for b := 0; b < 4; b++ {
			bx, by := (b&1)*4, (b>>1)*4
			var d [16]int32
			d[0] = dcv[b]
			any := d[0] != 0
			if m.cbpChroma == 2 {
				blk := &c.coefC[k][b]
				for i := 1; i < 16; i++ {
					if blk[i] != 0 {
						d[i] = blk[i] * cq.scale[i]
						any = true
					}
				}
			}
			if any {
				idct4(&d)
			}
			for y := 0; y < 4; y++ {
				row := out[(by+y)*rec.strideC+bx : (by+y)*rec.strideC+bx+4]
				p := predC[(by+y)*8+bx : (by+y)*8+bx+4]
				dr := d[y*4 : y*4+4]
				for x := range row {
					row[x] = clip255(int32(p[x]) + dr[x])
				}
			}
		}
	}
}

// write emits macroblock_layer() of a decided Intra_16x16 macroblock
// (mb_type already offset for P slices by the caller) after mb_type, and
// records the non-zero counts used to predict nC.
func (c *h264MBCoder) write(w *h264BitWriter, m *h264IntraMB, rec *h264Picture, mx, my int) {
	w.ue(uint32(m.chromaMode)) // intra_chroma_pred_mode
	w.se(0)                    // mb_qp_delta

	// Intra16x16DCLevel, nC of block 0.
	for k := 0; k < 16; k++ {
		c.scan[k] = c.dc[h264Zigzag4x4[k]]
	}
	w.cavlcBlock(c.scan[:16], rec.nCLuma(mx*4, my*4))
	for b := 0; b < 16; b++ {
		bx, by := mx*4+int(h264Blk4x4XY[b][0]), my*4+int(h264Blk4x4XY[b][1])
		n := 0
		if m.cbpLuma != 0 {
			blk := &c.coef[int(h264Blk4x4XY[b][1])*4+int(h264Blk4x4XY[b][0])]
			for k := 1; k < 16; k++ {
				c.scan[k-1] = blk[h264Zigzag4x4[k]]
			}
			n = w.cavlcBlock(c.scan[:15], rec.nCLuma(bx, by))
		}
		rec.nzY[by*rec.nzStrideY+bx] = uint8(n)
	}
	if m.cbpChroma != 0 {
		for k := 0; k < 2; k++ {
			w.cavlcBlock(c.dcC[k][:], -1)
		}
	}
	for k := 0; k < 2; k++ {
		for b := 0; b < 4; b++ {
			bx, by := mx*2+b&1, my*2+b>>1
			n := 0
			if m.cbpChroma == 2 {
				blk := &c.coefC[k][b]
				for i := 1; i < 16; i++ {
					c.scan[i-1] = blk[h264Zigzag4x4[i]]
				}
				n = w.cavlcBlock(c.scan[:15], rec.nCChroma(k, bx, by))
			}
			rec.nzC[k][by*rec.nzStrideC+bx] = uint8(n)
		}
	}
}

// h264Picture is the encoder's reconstruction of the current picture at
// the coded size, which becomes the reference for the next, plus the
// per-4x4-block non-zero coefficient counts (TotalCoeff) CAVLC predicts
// from.
type h264Picture struct {
	y, cb, cr        []byte
	strideY, strideC int
	nzY              []uint8
	nzC              [2][]uint8
	nzStrideY        int
	nzStrideC        int
}

func newH264Picture(mbW, mbH int) *h264Picture {
	p := &h264Picture{
		strideY: mbW * 16, strideC: mbW * 8,
		nzStrideY: mbW * 4, nzStrideC: mbW * 2,
	}
	p.y = make([]byte, mbW*16*mbH*16)
	p.cb = make([]byte, mbW*8*mbH*8)
	p.cr = make([]byte, mbW*8*mbH*8)
	p.nzY = make([]uint8, mbW*4*mbH*4)
	p.nzC[0] = make([]uint8, mbW*2*mbH*2)
	p.nzC[1] = make([]uint8, mbW*2*mbH*2)
	return p
}

// nCPred is clause 9.2.1 for a grid of counts: the average of the left and
// upper neighbours' counts when both exist (one slice per picture, so
// availability is just "inside the picture").
func nCPred(grid []uint8, stride, x, y int) int {
	switch {
	case x > 0 && y > 0:
		return (int(grid[y*stride+x-1]) + int(grid[(y-1)*stride+x]) + 1) >> 1
	case x > 0:
		return int(grid[y*stride+x-1])
	case y > 0:
		return int(grid[(y-1)*stride+x])
	}
	return 0
}

func (p *h264Picture) nCLuma(bx, by int) int { return nCPred(p.nzY, p.nzStrideY, bx, by) }

func (p *h264Picture) nCChroma(k, bx, by int) int { return nCPred(p.nzC[k], p.nzStrideC, bx, by) }

// setMBCounts sets all counts of a macroblock (0 for P_Skip, 16 for I_PCM).
func (p *h264Picture) setMBCounts(mx, my int, n uint8) {
	for y := 0; y < 4; y++ {
		row := p.nzY[(my*4+y)*p.nzStrideY+mx*4:]
		row[0], row[1], row[2], row[3] = n, n, n, n
	}
	for k := 0; k < 2; k++ {
		for y := 0; y < 2; y++ {
			row := p.nzC[k][(my*2+y)*p.nzStrideC+mx*2:]
			row[0], row[1] = n, n
		}
	}
}

// putMB writes a gathered macroblock (Y, Cb, Cr samples) into the planes.
func (p *h264Picture) putMB(mb []byte, mx, my int) {
	for r := 0; r < 16; r++ {
		copy(p.y[(my*16+r)*p.strideY+mx*16:], mb[r*16:r*16+16])
	}
	for r := 0; r < 8; r++ {
		copy(p.cb[(my*8+r)*p.strideC+mx*8:], mb[256+r*8:256+r*8+8])
		copy(p.cr[(my*8+r)*p.strideC+mx*8:], mb[320+r*8:320+r*8+8])
	}
}

// predPlane is the plane prediction of an n×n block (8.3.3.4 for 16×16
// luma with scale 5, 8.3.4.4 for 8×8 chroma with scale 34).
func predPlane(pred []byte, n, scale int32, nb *h264Neighbours) {
	half := n / 2
	var h, v int32
	for i := int32(0); i < half; i++ {
		tm, lm := nb.corner, nb.corner // p[-1,-1] where half-2-i = -1
		if i < half-1 {
			tm, lm = nb.top[half-2-i], nb.left[half-2-i]
		}
		h += (i + 1) * (nb.top[half+i] - tm)
		v += (i + 1) * (nb.left[half+i] - lm)
	}
	a := 16 * (nb.left[n-1] + nb.top[n-1])
	b := (scale*h + 32) >> 6
	c := (scale*v + 32) >> 6
	for y := int32(0); y < n; y++ {
		base := a + c*(y-(half-1)) + 16
		for x := int32(0); x < n; x++ {
			pred[y*n+x] = clip255((base + b*(x-(half-1))) >> 5)
		}
	}
}
