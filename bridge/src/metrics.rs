//! The relayer's Prometheus metrics, in one registry it serves on its own
//! port. Names follow the node's (`conclave_` namespace, base units).

use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};

/// Every metric of a relayer process.
#[derive(Clone, Debug)]
pub struct Metrics {
    pub registry: Registry,
    /// Height of the latest checkpoint the proxy holds.
    pub anchor_height: IntGaugeVec,
    /// Committed height of the context minus the proxy's latest checkpoint.
    pub anchor_lag_blocks: IntGaugeVec,
    /// Submissions by kind (`checkpoint`, `action`) and result (`sent`,
    /// `already_done`, `action_fails`, `error`).
    pub submissions_total: IntCounterVec,
    /// Gas of the relayer's own confirmed transactions.
    pub gas_used_total: IntCounterVec,
    /// Errors by reason (`crate::Error::reason`).
    pub errors_total: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(g.clone()))
                .expect("unique metric");
            g
        };
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
            c
        };
        Self {
            anchor_height: gauge(
                "conclave_anchor_height",
                "Height of the latest checkpoint the proxy holds",
                &["chain", "context"],
            ),
            anchor_lag_blocks: gauge(
                "conclave_anchor_lag_blocks",
                "Committed height minus the proxy's latest checkpoint height",
                &["chain", "context"],
            ),
            submissions_total: counter(
                "conclave_relay_submissions_total",
                "Checkpoint and action submissions by result",
                &["chain", "kind", "result"],
            ),
            gas_used_total: counter(
                "conclave_relay_gas_used_total",
                "Gas used by the relayer's confirmed transactions",
                &["chain"],
            ),
            errors_total: counter(
                "conclave_relay_errors_total",
                "Relay errors by reason",
                &["chain", "reason"],
            ),
            registry,
        }
    }

    /// Starts every error series of `chain` at zero, so that a healthy
    /// relayer exports its error counters (as zeros) and a dashboard or
    /// alert on them has data, not an absent series.
    pub fn init_chain(&self, chain: &str) {
        for reason in crate::error::ERROR_REASONS {
            let _ = self.errors_total.with_label_values(&[chain, reason]);
        }
    }

    /// The registry's text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let encoder = prometheus::TextEncoder::new();
        // Encoding our own registry into a String cannot fail.
        let _ = encoder.encode_utf8(&self.registry.gather(), &mut out);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chains_error_series_start_at_zero() {
        let m = Metrics::new();
        assert!(!m.render().contains("conclave_relay_errors_total{"));
        m.init_chain("evm:31337");
        let text = m.render();
        for reason in crate::error::ERROR_REASONS {
            let line =
                format!("conclave_relay_errors_total{{chain=\"evm:31337\",reason=\"{reason}\"}} 0");
            assert!(text.contains(&line), "{line} missing from\n{text}");
        }
    }

    #[test]
    fn every_error_reason_is_listed() {
        #[allow(unused_mut)] // without the `near` feature nothing is added
        let mut errors = vec![
            crate::Error::Config("x".into()),
            crate::Error::Node("x".into()),
            crate::Error::Malformed("x".into()),
        ];
        #[cfg(feature = "near")]
        errors.extend([
            conclave_bridge_near::Error::Rpc("x".into()).into(),
            conclave_bridge_near::Error::WrongNetwork {
                url: "u".into(),
                expected: "a".into(),
                got: "b".into(),
            }
            .into(),
            conclave_bridge_near::Error::Refused {
                call: "c",
                reason: "r".into(),
            }
            .into(),
        ]);
        for e in errors {
            assert!(
                crate::error::ERROR_REASONS.contains(&e.reason()),
                "{}",
                e.reason()
            );
        }
    }
}
