//! A fixed-bucket histogram the agent's loops fill and `/metrics` writes (Felix's summaries of
//! durations become histograms here: the `_sum` and `_count` series keep Felix's names, and
//! buckets aggregate across nodes where quantiles cannot).

/// Durations of things the agent does: 100 µs to 10 s.
pub const SECONDS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// CNI calls take a few milliseconds here, Calico's tens to hundreds.
pub const CNI_SECONDS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Per bucket (not cumulative); values above the last bound only count in `count`.
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    pub fn observe(&mut self, v: f64) {
        if let Some(i) = self.bounds.iter().position(|b| v <= *b) {
            self.counts[i] += 1;
        }
        self.sum += v;
        self.count += 1;
    }

    pub fn sum(&self) -> f64 {
        self.sum
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// `(upper bound, count in that bucket alone)`, as prometheus-client's encoder takes them.
    pub fn buckets(&self) -> Vec<(f64, u64)> {
        self.bounds
            .iter()
            .copied()
            .zip(self.counts.iter().copied())
            .collect()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new(SECONDS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_sum_and_count() {
        let mut h = Histogram::new(CNI_SECONDS);
        for v in [0.004, 0.02, 3.0] {
            h.observe(v);
        }
        assert_eq!(h.count(), 3);
        assert!((h.sum() - 3.024).abs() < 1e-9);
        let b = h.buckets();
        assert_eq!(b[2], (0.005, 1));
        assert_eq!(b[4], (0.025, 1));
        assert_eq!(b.iter().map(|x| x.1).sum::<u64>(), 2);
    }
}
