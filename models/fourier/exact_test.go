//go:build amd64 && !amd64.v3

package fourier

// exactFloat reports that the compiler rounds every multiplication and
// addition separately here (amd64 below v3 has no fused multiply-add), so
// two loops doing the same operations in the same order agree bit for
// bit. Elsewhere it may fuse a*b+c depending on how the code is laid out.
const exactFloat = true
