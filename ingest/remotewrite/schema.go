package remotewrite

// Field numbers of the messages the decoders read, named as in the
// protobuf schemas (prometheus/prompb/remote.proto and types.proto for 1.0,
// io/prometheus/write/v2/types.proto for 2.0). A decoder switches on these;
// fields not listed are skipped, as protobuf requires.

// Remote write 1.0:
//
//	message WriteRequest {
//	  repeated TimeSeries timeseries = 1;
//	  reserved 2;
//	  repeated MetricMetadata metadata = 3;
//	}
//	message TimeSeries {
//	  repeated Label labels = 1;
//	  repeated Sample samples = 2;
//	  repeated Exemplar exemplars = 3;
//	  repeated Histogram histograms = 4;
//	}
//	message Label { string name = 1; string value = 2; }
//	message Sample { double value = 1; int64 timestamp = 2; }
//	message Exemplar { repeated Label labels = 1; double value = 2; int64 timestamp = 3; }
//	message MetricMetadata {
//	  MetricType type = 1;
//	  string metric_family_name = 2;
//	  string help = 4;
//	  string unit = 5;
//	}
const (
	v1RequestTimeseries = 1
	v1RequestMetadata   = 3

	v1SeriesLabels     = 1
	v1SeriesSamples    = 2
	v1SeriesExemplars  = 3
	v1SeriesHistograms = 4

	labelName  = 1
	labelValue = 2

	v1ExemplarLabels = 1

	v1MetadataType   = 1
	v1MetadataFamily = 2
	v1MetadataHelp   = 4
	v1MetadataUnit   = 5
)

// Shared by 1.0 and 2.0 (2.0 adds start_timestamp to Sample):
//
//	message Sample { double value = 1; int64 timestamp = 2; int64 start_timestamp = 3; }
//	message Exemplar { ... double value = 2; int64 timestamp = 3; }
const (
	sampleValue     = 1
	sampleTimestamp = 2
	sampleStart     = 3

	exemplarValue     = 2
	exemplarTimestamp = 3
)

// Remote write 2.0 (io.prometheus.write.v2):
//
//	message Request {
//	  reserved 1 to 3;
//	  repeated string symbols = 4;
//	  repeated TimeSeries timeseries = 5;
//	}
//	message TimeSeries {
//	  repeated uint32 labels_refs = 1;
//	  repeated Sample samples = 2;
//	  repeated Histogram histograms = 3;
//	  repeated Exemplar exemplars = 4;
//	  Metadata metadata = 5;
//	}
//	message Exemplar { repeated uint32 labels_refs = 1; double value = 2; int64 timestamp = 3; }
//	message Metadata { MetricType type = 1; uint32 help_ref = 3; uint32 unit_ref = 4; }
const (
	v2RequestSymbols    = 4
	v2RequestTimeseries = 5

	v2SeriesLabelsRefs = 1
	v2SeriesSamples    = 2
	v2SeriesHistograms = 3
	v2SeriesExemplars  = 4
	v2SeriesMetadata   = 5

	v2ExemplarLabelsRefs = 1

	v2MetadataType    = 1
	v2MetadataHelpRef = 3
	v2MetadataUnitRef = 4
)

// Native histograms, the same message in 1.0 and 2.0:
//
//	message Histogram {
//	  oneof count { uint64 count_int = 1; double count_float = 2; }
//	  double sum = 3;
//	  sint32 schema = 4;
//	  double zero_threshold = 5;
//	  oneof zero_count { uint64 zero_count_int = 6; double zero_count_float = 7; }
//	  repeated BucketSpan negative_spans = 8;
//	  repeated sint64 negative_deltas = 9;
//	  repeated double negative_counts = 10;
//	  repeated BucketSpan positive_spans = 11;
//	  repeated sint64 positive_deltas = 12;
//	  repeated double positive_counts = 13;
//	  ResetHint reset_hint = 14;
//	  int64 timestamp = 15;
//	  repeated double custom_values = 16;
//	  int64 start_timestamp = 17;
//	}
//	message BucketSpan { sint32 offset = 1; uint32 length = 2; }
const (
	histCountInt       = 1
	histCountFloat     = 2
	histSum            = 3
	histSchema         = 4
	histZeroThreshold  = 5
	histZeroCountInt   = 6
	histZeroCountFloat = 7
	histNegativeSpans  = 8
	histNegativeDeltas = 9
	histNegativeCounts = 10
	histPositiveSpans  = 11
	histPositiveDeltas = 12
	histPositiveCounts = 13
	histResetHint      = 14
	histTimestamp      = 15
	histCustomValues   = 16
	histStartTimestamp = 17

	spanOffset = 1
	spanLength = 2
)
