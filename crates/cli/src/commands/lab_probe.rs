//! `brindle lab probe`: what every pod reaches, as the Kubernetes network-policy tests' truth
//! tables (or `-o json`); and the hidden `brindle lab serve`, the listener it runs in each pod.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use brindle_lab::Lab;
use brindle_lab::probe::{PodFilter, ProbeOptions, Protocol};
use clap::Args;

use super::lab::NameArg;

#[derive(Debug, Args)]
pub struct ProbeArgs {
    #[command(flatten)]
    pub name: NameArg,
    /// Ports to probe, comma-separated.
    #[arg(long, default_value = "80,81", value_name = "PORTS")]
    pub ports: String,
    /// tcp or udp (repeat or comma-separate for both).
    #[arg(long, default_value = "tcp", value_name = "PROTOCOL")]
    pub protocol: Vec<String>,
    /// Only from these pods: NAMESPACE/POD (`*` for any), NAMESPACE, or a Calico selector over
    /// the pods' endpoint labels (`pod == 'a'`).
    #[arg(long, value_name = "SEL")]
    pub from: Option<String>,
    /// Only to these pods (as --from).
    #[arg(long, value_name = "SEL")]
    pub to: Option<String>,
    /// How long one attempt waits for an answer (every attempt runs at once).
    #[arg(long, default_value = "1s", value_name = "DURATION")]
    pub timeout: String,
    /// table (truth tables) or json.
    #[arg(short, long, default_value = "table")]
    pub output: String,
    /// Address families to probe: 4, 6 or dual (default: every family the lab has, one truth
    /// table per family).
    #[arg(long, value_name = "FAMILY")]
    pub ip_family: Option<String>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// What the listener answers with (the pod's NAMESPACE/NAME).
    #[arg(long)]
    pub identity: String,
    /// TCP ports, comma-separated.
    #[arg(long, default_value = "")]
    pub tcp: String,
    /// UDP ports, comma-separated.
    #[arg(long, default_value = "")]
    pub udp: String,
}

fn ports(s: &str, what: &str) -> Result<Vec<u16>> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.parse::<u16>() {
            Ok(n) if n > 0 => Ok(n),
            _ => bail!("{what} {s}: {p:?} is not a port (1-65535)"),
        })
        .collect()
}

fn duration(s: &str) -> Result<Duration> {
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map(|i| s.split_at(i))
        .unwrap_or((s, "s"));
    let n: f64 = num
        .parse()
        .with_context(|| format!("--timeout {s}: not a duration (e.g. 500ms, 2s)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        _ => bail!("--timeout {s}: unit must be ms or s"),
    };
    if !(0.001..=60.0).contains(&secs) {
        bail!("--timeout {s}: between 1ms and 60s");
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `lab probe`: exits non-zero only when probing itself failed, not for blocked cells.
pub fn probe(a: &ProbeArgs) -> Result<()> {
    if a.output != "table" && a.output != "json" {
        bail!("-o {}: expected table or json", a.output);
    }
    let mut protocols = Vec::new();
    for p in a.protocol.iter().flat_map(|p| p.split(',')) {
        let p: Protocol = p.trim().parse()?;
        if !protocols.contains(&p) {
            protocols.push(p);
        }
    }
    let opts = ProbeOptions {
        ports: ports(&a.ports, "--ports")?,
        protocols,
        from: a.from.as_deref().map(PodFilter::parse).transpose()?,
        to: a.to.as_deref().map(PodFilter::parse).transpose()?,
        timeout: duration(&a.timeout)?,
        families: a
            .ip_family
            .as_deref()
            .map(str::parse::<brindle_lab::spec::IpFamily>)
            .transpose()?,
    };
    let mut lab = Lab::open(&a.name.name)?;
    let result = lab.probe(&opts)?;
    if a.output == "json" {
        println!("{}", serde_json::to_string_pretty(&result.to_json())?);
    } else {
        print!("{}", result.render());
    }
    Ok(())
}

/// `lab serve` (inside a pod's namespace, started by `lab probe`).
pub fn serve(a: &ServeArgs) -> Result<()> {
    let tcp = ports(&a.tcp, "--tcp")?;
    let udp = ports(&a.udp, "--udp")?;
    if tcp.is_empty() && udp.is_empty() {
        bail!("lab serve: no --tcp or --udp ports");
    }
    brindle_lab::serve::serve(&tcp, &udp, &a.identity)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments() {
        assert_eq!(ports("80, 81", "--ports").unwrap(), [80, 81]);
        assert!(
            ports("80,x", "--ports")
                .unwrap_err()
                .to_string()
                .contains("\"x\"")
        );
        assert!(ports("0", "--ports").is_err());
        assert_eq!(duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(duration("1").unwrap(), Duration::from_secs(1));
        assert!(duration("2m").is_err());
        assert!(duration("0s").is_err());
    }
}
