package device

// CAVLC residual coding (ITU-T H.264 clause 9.2): the variable-length codes
// of coeff_token (Table 9-5), total_zeros (Tables 9-7 to 9-9) and run_before
// (Table 9-10), and the writer of one residual_block_cavlc().

// h264VLC is one code word: its length in bits and its value.
type h264VLC struct {
	n    uint8
	bits uint8
}

// cavlcCoeffTokenLen/Bits are Table 9-5, indexed [table][4*TotalCoeff+TrailingOnes];
// table 0 is 0<=nC<2, 1 is 2<=nC<4, 2 is 4<=nC<8, 3 is nC>=8 (6-bit FLC).
var cavlcCoeffTokenLen = [4][4 * 17]uint8{
	{
		1, 0, 0, 0,
		6, 2, 0, 0, 8, 6, 3, 0, 9, 8, 7, 5, 10, 9, 8, 6,
		11, 10, 9, 7, 13, 11, 10, 8, 13, 13, 11, 9, 13, 13, 13, 10,
		14, 14, 13, 11, 14, 14, 14, 13, 15, 15, 14, 14, 15, 15, 15, 14,
		16, 15, 15, 15, 16, 16, 16, 15, 16, 16, 16, 16, 16, 16, 16, 16,
	},
	{
		2, 0, 0, 0,
		6, 2, 0, 0, 6, 5, 3, 0, 7, 6, 6, 4, 8, 6, 6, 4,
		8, 7, 7, 5, 9, 8, 8, 6, 11, 9, 9, 6, 11, 11, 11, 7,
		12, 11, 11, 9, 12, 12, 12, 11, 12, 12, 12, 11, 13, 13, 13, 12,
		13, 13, 13, 13, 13, 14, 13, 13, 14, 14, 14, 13, 14, 14, 14, 14,
	},
	{
		4, 0, 0, 0,
		6, 4, 0, 0, 6, 5, 4, 0, 6, 5, 5, 4, 7, 5, 5, 4,
		7, 5, 5, 4, 7, 6, 6, 4, 7, 6, 6, 4, 8, 7, 7, 5,
		8, 8, 7, 6, 9, 8, 8, 7, 9, 9, 8, 8, 9, 9, 9, 8,
		10, 9, 9, 9, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10,
	},
	{
		6, 0, 0, 0,
		6, 6, 0, 0, 6, 6, 6, 0, 6, 6, 6, 6, 6, 6, 6, 6,
		6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6,
		6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6,
		6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6,
	},
}

var cavlcCoeffTokenBits = [4][4 * 17]uint8{
	{
		1, 0, 0, 0,
		5, 1, 0, 0, 7, 4, 1, 0, 7, 6, 5, 3, 7, 6, 5, 3,
		7, 6, 5, 4, 15, 6, 5, 4, 11, 14, 5, 4, 8, 10, 13, 4,
		15, 14, 9, 4, 11, 10, 13, 12, 15, 14, 9, 12, 11, 10, 13, 8,
		15, 1, 9, 12, 11, 14, 13, 8, 7, 10, 9, 12, 4, 6, 5, 8,
	},
	{
		3, 0, 0, 0,
		11, 2, 0, 0, 7, 7, 3, 0, 7, 10, 9, 5, 7, 6, 5, 4,
		4, 6, 5, 6, 7, 6, 5, 8, 15, 6, 5, 4, 11, 14, 13, 4,
		15, 10, 9, 4, 11, 14, 13, 12, 8, 10, 9, 8, 15, 14, 13, 12,
		11, 10, 9, 12, 7, 11, 6, 8, 9, 8, 10, 1, 7, 6, 5, 4,
	},
	{
		15, 0, 0, 0,
		15, 14, 0, 0, 11, 15, 13, 0, 8, 12, 14, 12, 15, 10, 11, 11,
		11, 8, 9, 10, 9, 14, 13, 9, 8, 10, 9, 8, 15, 14, 13, 13,
		11, 14, 10, 12, 15, 10, 13, 12, 11, 14, 9, 12, 8, 10, 13, 8,
		13, 7, 9, 12, 9, 12, 11, 10, 5, 8, 7, 6, 1, 4, 3, 2,
	},
	{
		3, 0, 0, 0,
		0, 1, 0, 0, 4, 5, 6, 0, 8, 9, 10, 11, 12, 13, 14, 15,
		16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
		32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47,
		48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63,
	},
}

// cavlcChromaDCTokenLen/Bits: Table 9-5 for nC == -1 (4:2:0 chroma DC),
// indexed [4*TotalCoeff+TrailingOnes], TotalCoeff 0..4.
var cavlcChromaDCTokenLen = [4 * 5]uint8{
	2, 0, 0, 0,
	6, 1, 0, 0,
	6, 6, 3, 0,
	6, 7, 7, 6,
	6, 8, 8, 7,
}

var cavlcChromaDCTokenBits = [4 * 5]uint8{
	1, 0, 0, 0,
	7, 1, 0, 0,
	4, 6, 1, 0,
	3, 3, 2, 5,
	2, 3, 2, 0,
}

// cavlcTotalZeros[TotalCoeff-1][total_zeros] for 4x4 blocks (Tables 9-7, 9-8).
var cavlcTotalZeros = [15][16]h264VLC{
	{{1, 1}, {3, 3}, {3, 2}, {4, 3}, {4, 2}, {5, 3}, {5, 2}, {6, 3}, {6, 2}, {7, 3}, {7, 2}, {8, 3}, {8, 2}, {9, 3}, {9, 2}, {9, 1}},
	{{3, 7}, {3, 6}, {3, 5}, {3, 4}, {3, 3}, {4, 5}, {4, 4}, {4, 3}, {4, 2}, {5, 3}, {5, 2}, {6, 3}, {6, 2}, {6, 1}, {6, 0}},
	{{4, 5}, {3, 7}, {3, 6}, {3, 5}, {4, 4}, {4, 3}, {3, 4}, {3, 3}, {4, 2}, {5, 3}, {5, 2}, {6, 1}, {5, 1}, {6, 0}},
	{{5, 3}, {3, 7}, {4, 5}, {4, 4}, {3, 6}, {3, 5}, {3, 4}, {4, 3}, {3, 3}, {4, 2}, {5, 2}, {5, 1}, {5, 0}},
	{{4, 5}, {4, 4}, {4, 3}, {3, 7}, {3, 6}, {3, 5}, {3, 4}, {3, 3}, {4, 2}, {5, 1}, {4, 1}, {5, 0}},
	{{6, 1}, {5, 1}, {3, 7}, {3, 6}, {3, 5}, {3, 4}, {3, 3}, {3, 2}, {4, 1}, {3, 1}, {6, 0}},
	{{6, 1}, {5, 1}, {3, 5}, {3, 4}, {3, 3}, {2, 3}, {3, 2}, {4, 1}, {3, 1}, {6, 0}},
	{{6, 1}, {4, 1}, {5, 1}, {3, 3}, {2, 3}, {2, 2}, {3, 2}, {3, 1}, {6, 0}},
	{{6, 1}, {6, 0}, {4, 1}, {2, 3}, {2, 2}, {3, 1}, {2, 1}, {5, 1}},
	{{5, 1}, {5, 0}, {3, 1}, {2, 3}, {2, 2}, {2, 1}, {4, 1}},
	{{4, 0}, {4, 1}, {3, 1}, {3, 2}, {1, 1}, {3, 3}},
	{{4, 0}, {4, 1}, {2, 1}, {1, 1}, {3, 1}},
	{{3, 0}, {3, 1}, {1, 1}, {2, 1}},
	{{2, 0}, {2, 1}, {1, 1}},
	{{1, 0}, {1, 1}},
}

// cavlcChromaDCTotalZeros[TotalCoeff-1][total_zeros] for 4:2:0 chroma DC (Table 9-9a).
var cavlcChromaDCTotalZeros = [3][4]h264VLC{
	{{1, 1}, {2, 1}, {3, 1}, {3, 0}},
	{{1, 1}, {2, 1}, {2, 0}},
	{{1, 1}, {1, 0}},
}

// cavlcRunBefore[min(zerosLeft,7)-1][run_before] (Table 9-10).
var cavlcRunBefore = [7][15]h264VLC{
	{{1, 1}, {1, 0}},
	{{1, 1}, {2, 1}, {2, 0}},
	{{2, 3}, {2, 2}, {2, 1}, {2, 0}},
	{{2, 3}, {2, 2}, {2, 1}, {3, 1}, {3, 0}},
	{{2, 3}, {2, 2}, {3, 3}, {3, 2}, {3, 1}, {3, 0}},
	{{2, 3}, {3, 0}, {3, 1}, {3, 3}, {3, 2}, {3, 5}, {3, 4}},
	{{3, 7}, {3, 6}, {3, 5}, {3, 4}, {3, 3}, {3, 2}, {3, 1}, {4, 1}, {5, 1}, {6, 1}, {7, 1}, {8, 1}, {9, 1}, {10, 1}, {11, 1}},
}

// cavlcTokenTable maps nC (0..16 and above) to the coeff_token table index.
func cavlcTokenTable(nC int) int {
	switch {
	case nC < 2:
		return 0
	case nC < 4:
		return 1
	case nC < 8:
		return 2
	}
	return 3
}

// h264MaxLevel bounds coefficient magnitudes so every level fits
// level_prefix <= 15, the limit for Baseline streams (clause 9.2.2.1).
const h264MaxLevel = 2047

// cavlcBlock writes residual_block_cavlc() for coef, the block's
// coefficients in scan order (len(coef) = maxNumCoeff: 16, 15 or 4). nC is
// the predicted non-zero count, -1 for chroma DC. Every |coef| must be at
// most h264MaxLevel. It returns TotalCoeff.
func (w *h264BitWriter) cavlcBlock(coef []int32, nC int) int {
	var levels [16]int32 // non-zero levels, highest frequency first
	var runs [16]uint8   // zeros before each level (towards lower frequency)
	total := 0
	last := -1
	for i := len(coef) - 1; i >= 0; i-- {
		if coef[i] != 0 {
			if last < 0 {
				last = i
			}
			levels[total] = coef[i]
			total++
		}
	}
	if total > 0 {
		// Runs: walk again from the lowest frequency.
		k := total - 1
		run := uint8(0)
		for i := 0; i <= last; i++ {
			if coef[i] == 0 {
				run++
				continue
			}
			runs[k] = run
			run = 0
			k--
		}
	}
	t1 := 0
	for t1 < total && t1 < 3 && (levels[t1] == 1 || levels[t1] == -1) {
		t1++
	}

	// coeff_token
	if nC < 0 {
		i := 4*total + t1
		w.u(uint(cavlcChromaDCTokenLen[i]), uint32(cavlcChromaDCTokenBits[i]))
	} else {
		t := cavlcTokenTable(nC)
		i := 4*total + t1
		w.u(uint(cavlcCoeffTokenLen[t][i]), uint32(cavlcCoeffTokenBits[t][i]))
	}
	if total == 0 {
		return 0
	}
	// trailing_ones_sign_flag
	for i := 0; i < t1; i++ {
		if levels[i] < 0 {
			w.u(1, 1)
		} else {
			w.u(1, 0)
		}
	}
	// level_prefix / level_suffix
	suffixLen := uint(0)
	if total > 10 && t1 < 3 {
		suffixLen = 1
	}
	for i := t1; i < total; i++ {
		l := levels[i]
		var code int32
		if l > 0 {
			code = 2*l - 2
		} else {
			code = -2*l - 1
		}
		if i == t1 && t1 < 3 {
			code -= 2 // the first level after fewer than 3 trailing ones is not +-1
		}
		if suffixLen == 0 {
			switch {
			case code < 14:
				w.u(uint(code)+1, 1)
			case code < 30:
				w.u(15, 1) // prefix 14
				w.u(4, uint32(code-14))
			default:
				w.u(16, 1) // prefix 15
				w.u(12, uint32(code-30))
			}
		} else {
			if code < 15<<suffixLen {
				w.u(uint(code>>suffixLen)+1, 1)
				w.u(suffixLen, uint32(code)&(1<<suffixLen-1))
			} else {
				w.u(16, 1) // prefix 15
				w.u(12, uint32(code-15<<suffixLen))
			}
		}
		if suffixLen == 0 {
			suffixLen = 1
		}
		a := l
		if a < 0 {
			a = -a
		}
		if a > 3<<(suffixLen-1) && suffixLen < 6 {
			suffixLen++
		}
	}
	// total_zeros
	zerosLeft := last + 1 - total
	if total < len(coef) {
		var c h264VLC
		if nC < 0 {
			c = cavlcChromaDCTotalZeros[total-1][zerosLeft]
		} else {
			c = cavlcTotalZeros[total-1][zerosLeft]
		}
		w.u(uint(c.n), uint32(c.bits))
	}
	// run_before for all but the lowest-frequency coefficient
	for i := 0; i < total-1 && zerosLeft > 0; i++ {
		r := int(runs[i])
		c := cavlcRunBefore[min(zerosLeft, 7)-1][r]
		w.u(uint(c.n), uint32(c.bits))
		zerosLeft -= r
	}
	return total
}
