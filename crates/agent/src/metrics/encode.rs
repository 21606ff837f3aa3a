//! Writing families with prometheus-client's encoder (Prometheus text format 0.0.4; label values
//! escaped by the encoder): one descriptor (`# HELP`, `# TYPE`) then every sample.
//!
//! Counter names: prometheus-client appends `_total` to a counter. Felix's and kube-controllers'
//! counters are named without it (`felix_int_dataplane_failures`), and dashboards query those
//! exact names, so those are written `untyped` under their own name ([`Families::untyped`]);
//! Brindle's own counters are real counters ending in `_total`.

use std::fmt;

use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;

use super::histogram::Histogram;

/// Label pairs of one sample.
pub type Labels = Vec<(&'static str, String)>;

/// The encoder of one scrape.
pub struct Families<'a> {
    pub(crate) enc: DescriptorEncoder<'a>,
}

impl Families<'_> {
    fn values(&mut self, name: &str, help: &str, ty: MetricType, samples: &[(Labels, f64)]) -> fmt::Result {
        let mut m = self.enc.encode_descriptor(name, help, None, ty)?;
        for (labels, v) in samples {
            let one = |m: &mut prometheus_client::encoding::MetricEncoder<'_>| -> fmt::Result {
                // Whole numbers are written as integers (`3`, as Go's client writes them).
                let whole = v.fract() == 0.0 && v.abs() < 9.0e15;
                match (ty, whole) {
                    (MetricType::Counter, true) => m.encode_counter::<Labels, u64, u64>(&(*v as u64), None),
                    (MetricType::Counter, false) => m.encode_counter::<Labels, f64, f64>(v, None),
                    (_, true) => m.encode_gauge(&(*v as i64)),
                    (_, false) => m.encode_gauge(v),
                }
            };
            if labels.is_empty() {
                one(&mut m)?;
            } else {
                one(&mut m.encode_family(labels)?)?;
            }
        }
        Ok(())
    }

    pub fn gauge(&mut self, name: &str, help: &str, samples: &[(Labels, f64)]) -> fmt::Result {
        self.values(name, help, MetricType::Gauge, samples)
    }

    /// A counter: written `<name>_total`.
    pub fn counter(&mut self, name: &str, help: &str, samples: &[(Labels, f64)]) -> fmt::Result {
        self.values(name, help, MetricType::Counter, samples)
    }

    /// A counter Calico names without `_total`: written under exactly `name`.
    pub fn untyped(&mut self, name: &str, help: &str, samples: &[(Labels, f64)]) -> fmt::Result {
        self.values(name, help, MetricType::Unknown, samples)
    }

    pub fn histogram(&mut self, name: &str, help: &str, samples: &[(Labels, &Histogram)]) -> fmt::Result {
        let mut m = self
            .enc
            .encode_descriptor(name, help, None, MetricType::Histogram)?;
        for (labels, h) in samples {
            let buckets = h.buckets();
            if labels.is_empty() {
                m.encode_histogram::<Labels>(h.sum(), h.count(), &buckets, None)?;
            } else {
                m.encode_family(labels)?
                    .encode_histogram::<Labels>(h.sum(), h.count(), &buckets, None)?;
            }
        }
        Ok(())
    }

    /// One gauge sample without labels.
    pub fn one(&mut self, name: &str, help: &str, v: f64) -> fmt::Result {
        self.gauge(name, help, &[(Vec::new(), v)])
    }

    /// One Calico-named counter without labels.
    pub fn one_untyped(&mut self, name: &str, help: &str, v: f64) -> fmt::Result {
        self.untyped(name, help, &[(Vec::new(), v)])
    }
}
