//! NAT outgoing with nftables (calico.md §6), in a table Brindle owns (`ip brindle`) and replaces
//! atomically: the whole table is declared, deleted and re-declared in one `nft -f` transaction,
//! so it never exists half-built and foreign rules are never read back or parsed.
//!
//! The rules are Calico's nftables-mode rules with its set names:
//! `ip saddr @cali40masq-ipam-pools ip daddr != @cali40all-ipam-pools counter masquerade`, and, when
//! tunl0 exists, the rule that makes host-originated traffic down the tunnel use the tunnel
//! address (`-o tunl0 -m addrtype ! --src-type LOCAL --limit-iface-out -m addrtype --src-type
//! LOCAL -j MASQUERADE`).
//!
//! This table is IPv4 only: the IPv6 pools of [`NatOutgoing`] (NAT66) are left to the netlink
//! nftables layer that replaces this module.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use ipnet::Ipv4Net;

use crate::error::Error;
use crate::state::NatOutgoing;

pub const TABLE: &str = "brindle";

fn set(name: &str, nets: &[Ipv4Net]) -> String {
    let mut s = format!("\tset {name} {{\n\t\ttype ipv4_addr\n\t\tflags interval\n");
    if !nets.is_empty() {
        let mut v: Vec<_> = nets.iter().map(|n| n.trunc()).collect();
        v.sort();
        v.dedup();
        let elems: Vec<String> = v.iter().map(|n| n.to_string()).collect();
        s.push_str(&format!(
            "\t\tauto-merge\n\t\telements = {{ {} }}\n",
            elems.join(", ")
        ));
    }
    s.push_str("\t}\n");
    s
}

/// The table as nft text (pure). With `tunl0`: the host-originated tunnel masquerade, and
/// Felix's INPUT rule accepting IPIP only from other nodes (`hosts`) — it guards the kernel
/// tunl0; the BPF tunl0 checks the same list itself (outer packets never reach netfilter there).
pub fn render(nat: &NatOutgoing, tunl0: bool, hosts: &[Ipv4Addr]) -> String {
    let (masq, all) = nat.v4();
    let mut s = format!("table ip {TABLE} {{\n");
    s.push_str(&set("cali40masq-ipam-pools", &masq));
    s.push_str(&set("cali40all-ipam-pools", &all));
    if tunl0 {
        let nets: Vec<Ipv4Net> = hosts.iter().map(|h| Ipv4Net::new(*h, 32).expect("/32")).collect();
        s.push_str(&set("cali40all-hosts-net", &nets));
        s.push_str(
            "\tchain filter-INPUT {\n\t\ttype filter hook input priority filter; policy accept;\n\t\tip protocol 4 ip saddr != @cali40all-hosts-net counter drop\n\t}\n",
        );
    }
    s.push_str("\tchain nat-cali-nat-outgoing {\n");
    if !masq.is_empty() {
        s.push_str(
            "\t\tip saddr @cali40masq-ipam-pools ip daddr != @cali40all-ipam-pools counter masquerade\n",
        );
    }
    s.push_str("\t}\n");
    s.push_str(
        "\tchain nat-POSTROUTING {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n\t\tjump nat-cali-nat-outgoing\n",
    );
    if tunl0 {
        s.push_str(
            "\t\toifname \"tunl0\" fib saddr . oif type != local fib saddr type local counter masquerade\n",
        );
    }
    s.push_str("\t}\n}\n");
    s
}

/// The transaction that replaces the table atomically (declare, delete, re-declare).
pub fn transaction(nat: &NatOutgoing, tunl0: bool, hosts: &[Ipv4Addr]) -> String {
    format!(
        "table ip {TABLE} {{}}\ndelete table ip {TABLE}\n{}",
        render(nat, tunl0, hosts)
    )
}

/// Runs `nft` (in the caller's namespace: an agent runs in its node's namespace).
pub struct Nft {
    bin: PathBuf,
    /// For namespaces other than the process's: run through `nsenter --net=PATH`.
    netns: Option<PathBuf>,
}

impl Nft {
    /// Finds the `nft` binary (Debian `nftables`), or uses `path`; a clear error when missing.
    pub fn find(path: Option<PathBuf>, netns: Option<PathBuf>) -> Result<Nft, Error> {
        if let Some(p) = path {
            return if p.is_file() {
                Ok(Nft { bin: p, netns })
            } else {
                Err(Error::Nft(format!(
                    "{} not found: install nftables (`apt-get install -y nftables`)",
                    p.display()
                )))
            };
        }
        for dir in ["/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
            let p = PathBuf::from(dir).join("nft");
            if p.is_file() {
                return Ok(Nft { bin: p, netns });
            }
        }
        Err(Error::Nft(
            "the `nft` binary was not found: install it with `apt-get install -y nftables`".into(),
        ))
    }

    /// The `nft` binary this runs.
    pub fn bin(&self) -> &std::path::Path {
        &self.bin
    }

    fn command(&self) -> Command {
        match &self.netns {
            None => Command::new(&self.bin),
            Some(ns) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net={}", ns.display())).arg("--").arg(&self.bin);
                c
            }
        }
    }

    fn run(&self, args: &[&str], stdin: Option<&str>, what: &str) -> Result<String, Error> {
        let mut c = self.command();
        c.args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c
            .spawn()
            .map_err(|e| Error::Nft(format!("{what}: run nft: {e}")))?;
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().expect("piped");
            pipe.write_all(input.as_bytes())
                .map_err(|e| Error::Nft(format!("{what}: write to nft: {e}")))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| Error::Nft(format!("{what}: wait for nft: {e}")))?;
        if !out.status.success() {
            return Err(Error::Nft(format!(
                "{what}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Replaces table `ip brindle` with `nat` in one transaction.
    pub fn apply(&self, nat: &NatOutgoing, tunl0: bool, hosts: &[Ipv4Addr]) -> Result<(), Error> {
        self.run(
            &["-f", "-"],
            Some(&transaction(nat, tunl0, hosts)),
            &format!("replace table ip {TABLE}"),
        )
        .map(|_| ())
    }

    /// `nft list table ip brindle`, or `None` when absent.
    pub fn list(&self) -> Result<Option<String>, Error> {
        match self.run(
            &["list", "table", "ip", TABLE],
            None,
            &format!("list table ip {TABLE}"),
        ) {
            Ok(s) => Ok(Some(s)),
            Err(Error::Nft(m)) if m.contains("No such file or directory") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Deletes the table (absent is fine).
    pub fn remove(&self) -> Result<(), Error> {
        self.run(
            &["-f", "-"],
            Some(&format!("table ip {TABLE} {{}}\ndelete table ip {TABLE}\n")),
            &format!("delete table ip {TABLE}"),
        )
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_calicos_rule() {
        let nat = NatOutgoing {
            masq: vec![
                "10.233.64.0/18".parse().unwrap(),
                "fd00:10:244::/64".parse().unwrap(),
            ],
            all: vec![
                "10.233.64.0/18".parse().unwrap(),
                "10.99.0.0/16".parse().unwrap(),
                "fd00:10:244::/64".parse().unwrap(),
            ],
        };
        let t = render(&nat, true, &["172.20.42.81".parse().unwrap()]);
        assert!(t.contains("elements = { 10.233.64.0/18 }"), "{t}");
        assert!(t.contains("elements = { 10.99.0.0/16, 10.233.64.0/18 }"), "{t}");
        assert!(t.contains(
            "ip saddr @cali40masq-ipam-pools ip daddr != @cali40all-ipam-pools counter masquerade"
        ));
        assert!(t.contains("oifname \"tunl0\""));
        assert!(t.contains("elements = { 172.20.42.81/32 }"), "{t}");
        assert!(t.contains("ip protocol 4 ip saddr != @cali40all-hosts-net counter drop"));
        let empty = render(&NatOutgoing::default(), false, &[]);
        assert!(!empty.contains("masquerade"), "{empty}");
        assert!(transaction(&nat, false, &[]).starts_with("table ip brindle {}\ndelete table ip brindle\n"));
    }
}
