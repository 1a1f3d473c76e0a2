package main

import "io"

func runAugur(files []dataFile) [][]float64 { return nil }

func printOperational(out io.Writer, files []dataFile, scores [][]float64) {}
