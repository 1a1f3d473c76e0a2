// Package gpu watches GPU nodes through the NVIDIA DCGM exporter's metrics
// and decides what to do about sick GPUs: taint the node NoSchedule on
// hardware faults (XID codes of NVIDIA's catalog, double-bit ECC errors,
// row-remap failures), alert on application XIDs and on thermal or power
// throttling, find stragglers (a GPU or worker slower than its peers in the
// same job) and the "GPU idle while the network is saturated" bottleneck, and
// untaint a node once it has been healthy for a hold-down.
//
// The stream feeds it one sample at a time (Detector.Observe, constant work,
// no allocation for a known GPU) and closes windows with Detector.Tick, which
// compares peers (work linear in the number of GPUs). Decisions are returned
// unsigned; the stream signs them. The package knows nothing of Kafka or
// Kubernetes.
package gpu

import (
	"math"
)

// Metric identifies a DCGM exporter series (or a companion series) the
// detector understands.
type Metric uint8

// Metrics understood by the detector. Values of counters must be per-second
// rates (the stream's counter-to-rate conversion); gauges as sampled.
const (
	MetricUnknown Metric = iota
	// MetricXID is DCGM_FI_DEV_XID_ERRORS: a gauge holding the last XID
	// code seen on the GPU (0 when none since the driver loaded).
	MetricXID
	// MetricECCDBE is DCGM_FI_DEV_ECC_DBE_VOL_TOTAL or
	// DCGM_FI_DEV_ECC_DBE_AGG_TOTAL, as a rate: any increase is a
	// double-bit (uncorrectable) ECC error.
	MetricECCDBE
	// MetricRowRemapFailure is DCGM_FI_DEV_ROW_REMAP_FAILURE: 1 when the
	// GPU failed to remap a row.
	MetricRowRemapFailure
	// MetricUtil is DCGM_FI_DEV_GPU_UTIL in percent, or
	// DCGM_FI_PROF_GR_ENGINE_ACTIVE as a ratio (scaled to percent).
	MetricUtil
	// MetricThrottleReasons is DCGM_FI_DEV_CLOCK_THROTTLE_REASONS or its
	// newer name DCGM_FI_DEV_CLOCKS_EVENT_REASONS: the NVML bit mask.
	MetricThrottleReasons
	// MetricThermalViolation and MetricPowerViolation are
	// DCGM_FI_DEV_THERMAL_VIOLATION and DCGM_FI_DEV_POWER_VIOLATION as
	// rates: microseconds throttled per second.
	MetricThermalViolation
	MetricPowerViolation
	// MetricPCIeRx is DCGM_FI_PROF_PCIE_RX_BYTES (bytes/s) or
	// DCGM_FI_DEV_PCIE_RX_THROUGHPUT (KB/s as NVML reports it, scaled).
	MetricPCIeRx
	// MetricNetRx is the pod's network receive rate in bytes/s, e.g. the
	// rate of cAdvisor's container_network_receive_bytes_total summed over
	// the pod's interfaces. Sample.Pod names the pod, Node/GPU are ignored.
	MetricNetRx
)

// metricNames maps exporter metric names to metrics; scale converts the
// value to the unit the detector uses.
var metricNames = map[string]struct {
	m     Metric
	scale float64
	float bool // a DCGM double field (blank at 2^47), else int64
}{
	"DCGM_FI_DEV_XID_ERRORS":                {MetricXID, 1, false},
	"DCGM_FI_DEV_ECC_DBE_VOL_TOTAL":         {MetricECCDBE, 1, false},
	"DCGM_FI_DEV_ECC_DBE_AGG_TOTAL":         {MetricECCDBE, 1, false},
	"DCGM_FI_DEV_ROW_REMAP_FAILURE":         {MetricRowRemapFailure, 1, false},
	"DCGM_FI_DEV_GPU_UTIL":                  {MetricUtil, 1, false},
	"DCGM_FI_PROF_GR_ENGINE_ACTIVE":         {MetricUtil, 100, true},
	"DCGM_FI_DEV_CLOCK_THROTTLE_REASONS":    {MetricThrottleReasons, 1, false},
	"DCGM_FI_DEV_CLOCKS_EVENT_REASONS":      {MetricThrottleReasons, 1, false},
	"DCGM_FI_DEV_THERMAL_VIOLATION":         {MetricThermalViolation, 1, false},
	"DCGM_FI_DEV_POWER_VIOLATION":           {MetricPowerViolation, 1, false},
	"DCGM_FI_PROF_PCIE_RX_BYTES":            {MetricPCIeRx, 1, false},
	"DCGM_FI_DEV_PCIE_RX_THROUGHPUT":        {MetricPCIeRx, 1024, false},
	"container_network_receive_bytes_total": {MetricNetRx, 1, true},
}

// DCGM's blank sentinels: a field with no value is reported as a huge number
// rather than omitted.
const (
	// BlankInt64 is DCGM_INT64_BLANK; integer values at or above it are
	// blank.
	BlankInt64 = 0x7ffffffffffffff0
	// BlankFloat64 is DCGM_FP64_BLANK (2^47); double values at or above it
	// are blank.
	BlankFloat64 = 140737488355328.0
)

// Lookup returns the metric a series name denotes and the factor its value
// is multiplied by; MetricUnknown for names the detector does not use.
func Lookup(name string) (Metric, float64) {
	e, ok := metricNames[name]
	if !ok {
		return MetricUnknown, 0
	}
	return e.m, e.scale
}

// Blank reports whether v is one of DCGM's blank sentinels (or not a
// number) for the named metric: integer fields at or above BlankInt64,
// double fields at or above BlankFloat64. The stream should drop blank
// samples before converting counters to rates.
func Blank(name string, v float64) bool {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return true
	}
	if e, ok := metricNames[name]; ok && e.float {
		return v >= BlankFloat64
	}
	return v >= BlankInt64
}

// Node returns the node a DCGM series is about: the exporter's Hostname
// label, or hostname (both spellings are in use), else the Kubernetes node
// label as relabelled by common scrape configs (node, kubernetes_node).
func Node(label func(name string) string) string {
	for _, k := range [...]string{"Hostname", "hostname", "node", "kubernetes_node"} {
		if v := label(k); v != "" {
			return v
		}
	}
	return ""
}

// nodeOf returns the node a series is about: its label nodeLabel (a gpu
// rule's node_label; "" none) when it has one, else Node's.
func nodeOf(label func(name string) string, nodeLabel string) string {
	if nodeLabel != "" {
		if v := label(nodeLabel); v != "" {
			return v
		}
	}
	return Node(label)
}

// Index returns the GPU a DCGM series is about: the gpu (index) label, else
// the UUID.
func Index(label func(name string) string) string {
	for _, k := range [...]string{"gpu", "UUID", "uuid"} {
		if v := label(k); v != "" {
			return v
		}
	}
	return ""
}

// Pod returns "namespace/pod" from the pod and namespace labels (the
// exporter's Kubernetes mapping, or cAdvisor's), or "" when there is none.
func Pod(label func(name string) string) string {
	p := label("pod")
	if p == "" {
		return ""
	}
	return label("namespace") + "/" + p
}

// Action is what an XID error asks for.
type Action uint8

// Actions an XID code maps to.
const (
	// ActionAlert raises a warning alert.
	ActionAlert Action = iota
	// ActionTaint taints the node NoSchedule and raises a critical alert.
	ActionTaint
	// ActionIgnore does nothing (informational codes).
	ActionIgnore
)

// DefaultXIDActions maps XID codes to actions, from NVIDIA's XID catalog:
// application-level faults alert; uncontained or hardware faults take the
// node out of scheduling. Codes not listed alert.
var DefaultXIDActions = map[int]Action{
	13:  ActionAlert,  // graphics engine exception (usually the application)
	31:  ActionAlert,  // GPU memory page fault (usually the application)
	43:  ActionAlert,  // GPU stopped processing (application fault)
	45:  ActionAlert,  // preemptive cleanup after a previous fault
	48:  ActionTaint,  // double-bit ECC error
	63:  ActionIgnore, // ECC page retirement or row remap recorded
	64:  ActionTaint,  // ECC page retirement or row remapper recording failure
	74:  ActionTaint,  // NVLink error
	79:  ActionTaint,  // GPU has fallen off the bus
	92:  ActionTaint,  // high single-bit ECC error rate
	94:  ActionAlert,  // contained ECC error (the application was killed)
	95:  ActionTaint,  // uncontained ECC error
	119: ActionTaint,  // GSP RPC timeout
	120: ActionTaint,  // GSP error
}

// NVML clock event (throttle) reason bits.
const (
	ThrottleGPUIdle             = 0x1
	ThrottleAppClocks           = 0x2
	ThrottleSWPowerCap          = 0x4
	ThrottleHWSlowdown          = 0x8
	ThrottleSyncBoost           = 0x10
	ThrottleSWThermal           = 0x20
	ThrottleHWThermal           = 0x40
	ThrottleHWPowerBrake        = 0x80
	throttleThermal             = ThrottleSWThermal | ThrottleHWThermal
	throttlePower               = ThrottleHWSlowdown | ThrottleHWPowerBrake | ThrottleSWPowerCap
	defaultThrottleMask  uint64 = ThrottleHWSlowdown | ThrottleSWThermal | ThrottleHWThermal | ThrottleHWPowerBrake
)
