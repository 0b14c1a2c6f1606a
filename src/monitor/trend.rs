//! Telling a ramp from a sawtooth. Operators judged the old service's health by the shape of its
//! memory over time: growth then a drop (a collector at work) is health, steady growth is a leak.
//! This makes that call from a window of samples, with a least-squares slope, so that the monitor
//! can log it, `/metrics` can export it and the soak can fail on it. Pure: tested on synthetic
//! series.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Neither sustained growth nor swings: a flat line, or a level that stepped once.
    Flat,
    /// Rises and drops, with no sustained growth.
    Sawtooth,
    /// Sustained growth across the window, whatever swings ride on it.
    Ramp,
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Shape::Flat => "flat",
            Shape::Sawtooth => "sawtooth",
            Shape::Ramp => "ramp",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trend {
    /// Least-squares slope over the window.
    pub mb_per_hour: f64,
    /// What is noise at this footprint: a change smaller than this over the window is not one.
    pub tolerance_mb: f64,
    /// From the first sample to the last.
    pub span_secs: f64,
    pub min_mb: f64,
    pub max_mb: f64,
    pub last_mb: f64,
    pub shape: Shape,
}

impl Trend {
    /// Hours until `limit_mb` at this slope, when it grows.
    pub fn hours_to(&self, limit_mb: f64) -> Option<f64> {
        (self.mb_per_hour > 0.0).then(|| ((limit_mb - self.last_mb) / self.mb_per_hour).max(0.0))
    }
}

/// What the readings say so far: too short a span for a slope to mean anything, or a trend.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reading {
    /// The readings span `span_secs` of the `needed_secs` a trend is read over.
    Gathering {
        span_secs: f64,
        needed_secs: f64,
    },
    Known(Trend),
}

impl Reading {
    pub fn trend(&self) -> Option<Trend> {
        match self {
            Reading::Known(t) => Some(*t),
            Reading::Gathering { .. } => None,
        }
    }
}

/// The trend of `samples` once they span `min_span_secs`: before, a slope over a few seconds is
/// noise (start-up's allocations read as hundreds of MB an hour), and nothing is said of it.
pub fn read(samples: &[(f64, f64)], min_span_secs: f64) -> Reading {
    let span_secs = match samples {
        [first, .., last] => last.0 - first.0,
        _ => 0.0,
    };
    match classify(samples) {
        Some(trend) if span_secs >= min_span_secs => Reading::Known(trend),
        _ => Reading::Gathering {
            span_secs,
            needed_secs: min_span_secs,
        },
    }
}

impl fmt::Display for Reading {
    /// As the monitor logs it. A flat trend is said in MB (it stayed within the tolerance), never
    /// with a slope: a few MB over minutes, drawn as MB/h, reads as a ramp it is not.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let span = |secs: f64| match secs < 120.0 {
            true => format!("{secs:.0}s"),
            false => format!("{:.0}m", secs / 60.0),
        };
        match self {
            Reading::Gathering {
                span_secs,
                needed_secs,
            } => write!(f, "gathering ({span_secs:.0}s of {needed_secs:.0}s)"),
            Reading::Known(t) if t.shape == Shape::Flat => write!(
                f,
                "flat (within {:.1}MB over {})",
                t.tolerance_mb,
                span(t.span_secs)
            ),
            Reading::Known(t) => write!(
                f,
                "{:+.1}MB/h over {} ({})",
                t.mb_per_hour,
                span(t.span_secs),
                t.shape
            ),
        }
    }
}

/// Least-squares slope of `(secs, mb)` in MB per hour.
pub fn slope_per_hour(samples: &[(f64, f64)]) -> f64 {
    let n = samples.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let mx = samples.iter().map(|s| s.0).sum::<f64>() / n;
    // Σ(x - x̄)(y - ȳ) / Σ(x - x̄)², with the means that drop out left out (the deviations of x
    // sum to zero): each term left changes the slope when it is wrong.
    let (mut num, mut den) = (0.0, 0.0);
    for (x, y) in samples {
        num += (x - mx) * y;
        den += (x - mx) * x;
    }
    if den == 0.0 {
        0.0
    } else {
        num / den * 3600.0
    }
}

/// The shape of `samples`, `(seconds, MB)` in time order; `None` under three samples.
///
/// A change smaller than `tolerance` (1 MB, or 3% of the mean when that is more) is noise. Ramp:
/// the window grew by more than that, and so did each of its halves, so one level shift (a cache
/// filling up, a step) is not a ramp, and a ramp under a sawtooth still is. Sawtooth: at least one
/// drop larger than the tolerance between samples. Flat otherwise.
pub fn classify(samples: &[(f64, f64)]) -> Option<Trend> {
    if samples.len() < 3 {
        return None;
    }
    let mbs = samples.iter().map(|s| s.1);
    let (min_mb, max_mb) = mbs
        .clone()
        .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let mean = mbs.sum::<f64>() / samples.len() as f64;
    let tolerance = (0.03 * mean).max(1.0);
    let span_secs = samples[samples.len() - 1].0 - samples[0].0;
    let growth = |part: &[(f64, f64)]| {
        let span = part[part.len() - 1].0 - part[0].0;
        slope_per_hour(part) * span / 3600.0
    };
    let mb_per_hour = slope_per_hour(samples);
    let (first, second) = samples.split_at(samples.len() / 2);
    let halves_grow = first.len() >= 2
        && second.len() >= 2
        && growth(first) > tolerance / 2.0
        && growth(second) > tolerance / 2.0;
    let drops = samples.windows(2).any(|w| w[0].1 - w[1].1 > tolerance);
    let shape = if growth(samples) > tolerance && halves_grow {
        Shape::Ramp
    } else if drops {
        Shape::Sawtooth
    } else {
        Shape::Flat
    };
    Some(Trend {
        mb_per_hour,
        tolerance_mb: tolerance,
        span_secs,
        min_mb,
        max_mb,
        last_mb: samples[samples.len() - 1].1,
        shape,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One sample every 5 minutes for an hour, `mb(minute)`.
    fn hour(mb: impl Fn(f64) -> f64) -> Vec<(f64, f64)> {
        (0..=12)
            .map(|i| (i as f64 * 300.0, mb(i as f64 * 5.0)))
            .collect()
    }

    /// The old service's healthy shape: grows 30 MB over 15 minutes, drops back.
    fn tooth(minute: f64) -> f64 {
        (minute % 15.0) * 2.0
    }

    #[test]
    fn a_flat_line_with_noise_is_flat() {
        let t = classify(&hour(|m| 40.0 + (m * 7.0).sin() * 0.4)).unwrap();
        assert_eq!(t.shape, Shape::Flat);
        assert!(t.mb_per_hour.abs() < 1.0, "{t:?}");
    }

    #[test]
    fn growth_then_drops_is_a_sawtooth() {
        let t = classify(&hour(|m| 40.0 + tooth(m))).unwrap();
        assert_eq!(t.shape, Shape::Sawtooth, "{t:?}");
    }

    #[test]
    fn a_slow_ramp_under_a_sawtooth_is_a_ramp() {
        // +24 MB an hour beneath the same teeth.
        let t = classify(&hour(|m| 40.0 + tooth(m) + m * 0.4)).unwrap();
        assert_eq!(t.shape, Shape::Ramp, "{t:?}");
        assert!((t.mb_per_hour - 24.0).abs() < 8.0, "{t:?}");
    }

    #[test]
    fn a_plain_ramp_is_a_ramp_and_projects() {
        let t = classify(&hour(|m| 100.0 + m * 2.0)).unwrap();
        assert_eq!(t.shape, Shape::Ramp);
        assert!((t.mb_per_hour - 120.0).abs() < 0.1, "{t:?}");
        let hours = t.hours_to(4096.0).unwrap();
        assert!((hours - (4096.0 - 220.0) / 120.0).abs() < 0.1, "{hours}");
    }

    #[test]
    fn a_ramp_on_a_large_footprint_is_a_ramp() {
        // 2 GB resident, growing 120 MB an hour: 6% over the hour, past a 3% tolerance.
        let t = classify(&hour(|m| 2000.0 + m * 2.0)).unwrap();
        assert_eq!(t.shape, Shape::Ramp, "{t:?}");
        // 2% over the hour is within it.
        let t = classify(&hour(|m| 2000.0 + m * 0.6)).unwrap();
        assert_eq!(t.shape, Shape::Flat, "{t:?}");
    }

    #[test]
    fn a_ramp_just_past_the_tolerance_is_a_ramp() {
        // 1.6 MB over the hour on 20 MB: past the 1 MB tolerance, and each half past half of it
        // (0.67 and 0.8 MB), though neither half alone grows by the whole tolerance.
        let t = classify(&hour(|m| 20.0 + m * 1.6 / 60.0)).unwrap();
        assert_eq!(t.shape, Shape::Ramp, "{t:?}");
        // A half that grows by exactly half of it (0.5 MB, hourly readings) is not enough,
        // whichever half it is.
        for mbs in [[20.0, 20.5, 21.0, 21.75], [20.0, 20.75, 21.0, 21.5]] {
            let hourly: Vec<(f64, f64)> = (0..4).map(|i| (i as f64 * 3600.0, mbs[i])).collect();
            let t = classify(&hourly).unwrap();
            assert_eq!(t.shape, Shape::Flat, "{mbs:?}: {t:?}");
        }
    }

    #[test]
    fn a_drop_of_exactly_the_tolerance_is_noise() {
        // Swings of 1 MB on 20 MB: no larger than the tolerance, so flat; of 1.5 MB, a sawtooth.
        let swing = |high: f64| {
            move |m: f64| {
                if (m / 5.0) as i64 % 2 == 0 {
                    20.0
                } else {
                    high
                }
            }
        };
        let t = classify(&hour(swing(21.0))).unwrap();
        assert_eq!(t.shape, Shape::Flat, "{t:?}");
        let t = classify(&hour(swing(21.5))).unwrap();
        assert_eq!(t.shape, Shape::Sawtooth, "{t:?}");
    }

    #[test]
    fn one_step_up_is_not_a_ramp() {
        // A cache filling up at minute 20, then level.
        let t = classify(&hour(|m| if m < 20.0 { 30.0 } else { 60.0 })).unwrap();
        assert_eq!(t.shape, Shape::Flat, "{t:?}");
        assert!(t.mb_per_hour > 0.0, "the slope still shows the step");
    }

    #[test]
    fn too_few_samples_say_nothing() {
        assert_eq!(classify(&[(0.0, 1.0), (1.0, 2.0)]), None);
        assert_eq!(
            Trend::hours_to(&classify(&hour(|_| 5.0)).unwrap(), 10.0),
            None
        );
    }

    #[test]
    fn no_slope_and_no_shape_until_the_readings_span_enough() {
        let ramp = hour(|m| 40.0 + m * 2.0);
        let early = &ramp[..3];
        assert_eq!(
            read(early, 900.0),
            Reading::Gathering {
                span_secs: 600.0,
                needed_secs: 900.0
            }
        );
        assert_eq!(read(early, 900.0).to_string(), "gathering (600s of 900s)");
        assert!(
            read(&ramp[..1], 0.0).trend().is_none(),
            "one reading is no trend"
        );
        let known = read(&ramp[..4], 900.0).trend().expect("900 s of readings");
        assert_eq!(known.shape, Shape::Ramp);
        assert!(read(&ramp[..4], 900.0)
            .to_string()
            .ends_with("over 15m (ramp)"));
    }

    /// The monitor's readings are stamped from its start, so the first is rarely at 0: spans
    /// and growth are measured between readings, wherever they lie.
    #[test]
    fn spans_are_from_the_first_reading_to_the_last_wherever_they_start() {
        let late = |mb: fn(f64) -> f64| -> Vec<(f64, f64)> {
            hour(mb)
                .into_iter()
                .map(|(secs, mb)| (secs + 7200.0, mb))
                .collect()
        };
        let ramp = late(|m| 40.0 + m * 2.0);
        assert_eq!(
            read(&ramp[..3], 900.0),
            Reading::Gathering {
                span_secs: 600.0,
                needed_secs: 900.0
            }
        );
        assert!(
            read(&ramp, 900.0).to_string().ends_with("over 60m (ramp)"),
            "{}",
            read(&ramp, 900.0)
        );
        // 2% over the hour on 2 GB is within the tolerance, however late the hour.
        let t = classify(&late(|m| 2000.0 + m * 0.6)).unwrap();
        assert_eq!(t.shape, Shape::Flat, "{t:?}");
    }

    /// Spans under two minutes are said in seconds, longer ones in minutes.
    #[test]
    fn a_span_is_said_in_seconds_then_in_minutes() {
        let said = |span: f64| {
            let samples: Vec<(f64, f64)> = (0..=2).map(|i| (i as f64 * span / 2.0, 20.0)).collect();
            read(&samples, 0.0).to_string()
        };
        assert_eq!(said(90.0), "flat (within 1.0MB over 90s)");
        assert_eq!(said(119.0), "flat (within 1.0MB over 119s)");
        assert_eq!(said(120.0), "flat (within 1.0MB over 2m)");
        assert_eq!(said(5400.0), "flat (within 1.0MB over 90m)");
    }

    #[test]
    fn flat_is_said_in_megabytes_never_beside_a_slope() {
        // 0.9 MB over ten minutes: within the 1 MB tolerance, though +5.4 MB/h if it held.
        let samples: Vec<(f64, f64)> = (0..=2)
            .map(|i| (i as f64 * 300.0, 20.0 + i as f64 * 0.45))
            .collect();
        let reading = read(&samples, 600.0);
        let t = reading.trend().unwrap();
        assert_eq!(t.shape, Shape::Flat);
        assert!(t.mb_per_hour > 5.0, "{t:?}");
        assert_eq!(reading.to_string(), "flat (within 1.0MB over 10m)");
        assert!(!reading.to_string().contains("MB/h"));
    }
}
