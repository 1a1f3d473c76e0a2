// Package anomaly is augur's per-series streaming anomaly detector.
//
// Each sample gets a score in [0, 1] computed only from the past and the
// sample itself, in constant work and with no allocation, from a fixed-size
// State of under 2 KiB. The score combines
//
//   - forecast residuals: the sample against an EWMA forecast at a fast and a
//     slow time scale, in units of the EWMA mean absolute residual, mapped
//     to [0, 1] by a ramp between ZLow and ZHigh;
//   - contextual novelty: the sample's quantised level following the two
//     previous levels (a 3-gram over 16 levels of the running range) never
//     seen before, or a level never seen at all;
//   - spatial anomaly: a sample beyond the range seen so far by more than
//     RangeTolerance of it scores 1 outright (as Numenta's NAB detector does);
//   - seasonality: a time-of-day profile (per hour of the day in UTC,
//     weekdays and weekends apart: an EWMA level and mean absolute residual
//     over SeasonalDays days, the daily and weekly shape CloudWatch's
//     anomaly-detection band models). While the profile explains the series
//     clearly better than the slow forecast (its residual below SeasonalGate
//     times the slow EWMA's), the raw score is the sample's residual from
//     its hour's profile, in place of the two terms above: a daily high
//     phase that fails to happen is caught, and the daily pattern itself no
//     longer raises scores. Other series are scored as if it were absent;
//
// turned into an anomaly likelihood (the Gaussian tail of the recent mean raw
// score against the long-run mean and spread of raw scores, as in Numenta's
// anomaly likelihood) and followed by a quiet period after each strong
// detection, so one incident yields one detection.
//
// Independently of the score, Update reports the band around the forecast
// (forecast ± BandWidth standard deviations of the one-step residual, as in
// CloudWatch's ANOMALY_DETECTION_BAND) and raises Alarm when AlarmM of the last
// AlarmN samples fell outside it.
//
// A Detector holds the shared, read-only configuration; each series owns a
// State value (no pointers, so a shard can keep a contiguous []State). Series
// bundles both for callers that keep one object per series.
package anomaly
