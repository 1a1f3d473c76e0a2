//go:build !amd64 || amd64.v3

package fourier

// exactFloat: see exact_test.go.
const exactFloat = false
