//! Test hooks, compiled in on purpose: `BRINDLE_CNI_FAIL_AT=<step>` makes ADD fail right after
//! `<step>` has done its work, so tests can drive the real binary through every rollback path
//! (the failed step's own work must be undone too); `BRINDLE_CNI_PAUSE_AT=<step>` makes ADD
//! stop there (for up to 10 minutes, saying so on stderr) so a test can SIGKILL it at a known
//! point, as a node crash would (the IPAM garbage collector's leaks). Not for production use:
//! they only ever make an ADD fail or wait.

use std::fmt;

use crate::error::CniError;

/// The steps of ADD, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The datastore was opened and ClusterInformation read.
    Datastore,
    /// An address was allocated (IPAM).
    Ipam,
    /// The veth pair exists (host side in the node, peer in the pod).
    Veth,
    /// The host side is configured (sysctls).
    HostConfig,
    /// The pod side has its addresses and routes.
    PodConfig,
    /// The host route to the pod exists.
    HostRoute,
    /// The WorkloadEndpoint was written.
    Endpoint,
    /// Everything is done; only printing the result is left.
    Result,
}

impl Step {
    pub const ALL: [Step; 8] = [
        Step::Datastore,
        Step::Ipam,
        Step::Veth,
        Step::HostConfig,
        Step::PodConfig,
        Step::HostRoute,
        Step::Endpoint,
        Step::Result,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Step::Datastore => "datastore",
            Step::Ipam => "ipam",
            Step::Veth => "veth",
            Step::HostConfig => "host-config",
            Step::PodConfig => "pod-config",
            Step::HostRoute => "host-route",
            Step::Endpoint => "endpoint",
            Step::Result => "result",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The environment variable of the failure hook.
pub const FAIL_AT_ENV: &str = "BRINDLE_CNI_FAIL_AT";
/// The environment variable of the pause hook.
pub const PAUSE_AT_ENV: &str = "BRINDLE_CNI_PAUSE_AT";

/// Where to fail or pause, if anywhere.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    at: Option<Step>,
    pause_at: Option<Step>,
}

fn step_of(env: &str, v: &str) -> Result<Step, CniError> {
    Step::ALL.into_iter().find(|s| s.name() == v).ok_or_else(|| {
        let names: Vec<&str> = Step::ALL.iter().map(|s| s.name()).collect();
        CniError::invalid_env(format!("{env}={v}: unknown step (one of {})", names.join(", ")))
    })
}

impl Faults {
    /// Reads [`FAIL_AT_ENV`]; an unknown step name is an error (a typo must not make a test
    /// pass silently).
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Faults, CniError> {
        let read = |env: &str| match get(env).filter(|v| !v.is_empty()) {
            Some(v) => step_of(env, &v).map(Some),
            None => Ok(None),
        };
        Ok(Faults {
            at: read(FAIL_AT_ENV)?,
            pause_at: read(PAUSE_AT_ENV)?,
        })
    }

    /// Fails if the failure hook points at `step`; waits if the pause hook does.
    pub fn after(&self, step: Step) -> Result<(), CniError> {
        if self.pause_at == Some(step) {
            eprintln!("paused after step {step} ({PAUSE_AT_ENV})");
            std::thread::sleep(std::time::Duration::from_secs(600));
        }
        if self.at == Some(step) {
            return Err(CniError::internal(format!(
                "injected failure after step {step} ({FAIL_AT_ENV})"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_parses_and_fires_once() {
        // Only the failure hook: the same answer for the pause hook would sleep 600 s.
        let f = Faults::from_env(|e| (e == FAIL_AT_ENV).then(|| "veth".into())).unwrap();
        assert!(f.after(Step::Ipam).is_ok());
        let e = f.after(Step::Veth).unwrap_err();
        assert_eq!(e.msg, "injected failure after step veth (BRINDLE_CNI_FAIL_AT)");
        assert_eq!(Faults::from_env(|_| None).unwrap(), Faults::default());
        let e = Faults::from_env(|e| (e == FAIL_AT_ENV).then(|| "vteh".into())).unwrap_err();
        assert!(e.msg.contains("unknown step"), "{e}");
    }
}
