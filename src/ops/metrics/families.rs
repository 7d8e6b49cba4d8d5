//! Builds Prometheus metric families from values read at scrape time; the `prometheus`
//! crate's text encoder writes them out (escaping, `le` buckets, `_sum`, `_count`).

use prometheus::proto::{
    Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType,
};

/// Label names and values of one series.
pub type Labels<'a> = Vec<(&'static str, &'a str)>;

/// A histogram's reading: non-cumulative counts per upper bound (in seconds), then the
/// count above every bound, and the sum in seconds.
pub struct HistogramReading<'a> {
    pub bounds: &'a [f64],
    pub counts: &'a [u64],
    pub sum: f64,
}

#[derive(Default)]
pub struct Families(Vec<MetricFamily>);

/// The families of one value per series (counters, gauges): their type, and how a value is
/// set on a series.
macro_rules! scalar_families {
    ($($name:ident => $kind:expr, $set:expr;)*) => {$(
        pub fn $name<'a>(
            &mut self,
            name: &str,
            help: &str,
            series: impl IntoIterator<Item = (Labels<'a>, f64)>,
        ) {
            self.push(name, help, $kind, series, $set);
        }
    )*};
}

impl Families {
    scalar_families! {
        counter => MetricType::COUNTER, |m: &mut Metric, v| {
            let mut c = Counter::default();
            c.set_value(v);
            m.set_counter(c);
        };
        gauge => MetricType::GAUGE, |m: &mut Metric, v| {
            let mut g = Gauge::default();
            g.set_value(v);
            m.set_gauge(g);
        };
    }

    pub fn histogram<'a>(
        &mut self,
        name: &str,
        help: &str,
        series: impl IntoIterator<Item = (Labels<'a>, HistogramReading<'a>)>,
    ) {
        self.push(name, help, MetricType::HISTOGRAM, series, |m, r| {
            let mut h = Histogram::default();
            let mut cumulative = 0;
            let mut buckets = Vec::with_capacity(r.bounds.len());
            for (bound, n) in r.bounds.iter().zip(r.counts) {
                cumulative += n;
                let mut b = Bucket::default();
                b.set_upper_bound(*bound);
                b.set_cumulative_count(cumulative);
                buckets.push(b);
            }
            h.set_bucket(buckets);
            // The encoder adds the `+Inf` bucket from the total count.
            h.set_sample_count(r.counts.iter().sum());
            h.set_sample_sum(r.sum);
            m.set_histogram(h);
        });
    }

    /// A family without series is left out: an empty `# TYPE` block says nothing.
    fn push<'a, V>(
        &mut self,
        name: &str,
        help: &str,
        kind: MetricType,
        series: impl IntoIterator<Item = (Labels<'a>, V)>,
        fill: impl Fn(&mut Metric, V),
    ) {
        let metrics: Vec<Metric> = series
            .into_iter()
            .map(|(labels, v)| {
                let mut m = Metric::from_label(
                    labels
                        .into_iter()
                        .map(|(k, v)| {
                            let mut l = LabelPair::default();
                            l.set_name(k.to_string());
                            l.set_value(v.to_string());
                            l
                        })
                        .collect(),
                );
                fill(&mut m, v);
                m
            })
            .collect();
        if metrics.is_empty() {
            return;
        }
        let mut f = MetricFamily::default();
        f.set_name(name.to_string());
        f.set_help(help.to_string());
        f.set_field_type(kind);
        f.set_metric(metrics);
        self.0.push(f);
    }

    /// The text exposition format (version 0.0.4).
    pub fn encode(&self) -> anyhow::Result<String> {
        use anyhow::Context;
        prometheus::TextEncoder::new()
            .encode_to_string(&self.0)
            .context("encoding the metrics")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_counters_and_cumulative_histograms() {
        let mut f = Families::default();
        f.counter(
            "kairos_x_total",
            "X.",
            [(vec![("type", "call")], 3.0), (vec![("type", "sms")], 1.0)],
        );
        f.counter("kairos_empty_total", "Nothing.", []);
        f.histogram(
            "kairos_t_seconds",
            "T.",
            [(
                vec![("rule", "r1")],
                HistogramReading {
                    bounds: &[0.001, 0.01],
                    counts: &[2, 1, 4],
                    sum: 0.5,
                },
            )],
        );
        let text = f.encode().unwrap();
        assert!(text.contains("# TYPE kairos_x_total counter\n"), "{text}");
        assert!(text.contains("kairos_x_total{type=\"call\"} 3\n"), "{text}");
        assert!(!text.contains("kairos_empty_total"), "{text}");
        assert!(
            text.contains("kairos_t_seconds_bucket{rule=\"r1\",le=\"0.01\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("kairos_t_seconds_bucket{rule=\"r1\",le=\"+Inf\"} 7\n"),
            "{text}"
        );
        assert!(
            text.contains("kairos_t_seconds_count{rule=\"r1\"} 7\n"),
            "{text}"
        );
    }
}
