//! `node diags`' collectors of the node's network state: `ip` addresses, links, routes, rules
//! and neighbours, the tunnel devices' details and FDB, Brindle's nftables tables (by `nft` and
//! by Brindle's own reader) and the sysctls that matter. All read the calling process's network
//! namespace.

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, Result, bail};

use super::node_diags::Bundle;

/// Runs `program args` and returns its standard output, or an error naming it.
pub(super) fn run(program: &str, args: &[&str]) -> Result<Vec<u8>> {
    let o = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("run {program}"))?;
    if !o.status.success() {
        bail!(
            "{program} {} exited {}: {}",
            args.join(" "),
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        );
    }
    Ok(o.stdout)
}

const TUNNELS: &[&str] = &["tunl0", "vxlan.calico", "vxlan-v6.calico", "wireguard.cali"];

pub(super) fn network(b: &mut Bundle) {
    for (what, rel, args) in [
        (
            "interface info (IPv4)",
            "network/ip-addr-v4.txt",
            &["-4", "addr"][..],
        ),
        ("interface info (IPv6)", "network/ip-addr-v6.txt", &["-6", "addr"]),
        ("links", "network/ip-link.txt", &["-d", "-s", "link"]),
        (
            "routes (IPv4)",
            "network/ip-route-v4.txt",
            &["-4", "route", "show", "table", "all"],
        ),
        (
            "routes (IPv6)",
            "network/ip-route-v6.txt",
            &["-6", "route", "show", "table", "all"],
        ),
        ("routing rules (IPv4)", "network/ip-rule-v4.txt", &["-4", "rule"]),
        ("routing rules (IPv6)", "network/ip-rule-v6.txt", &["-6", "rule"]),
        ("neighbours", "network/ip-neigh.txt", &["neigh", "show"]),
    ] {
        b.collect(what, rel, || run("ip", args));
    }
    let ifaces = interfaces();
    for dev in TUNNELS {
        if !ifaces.iter().any(|i| i == dev) {
            continue;
        }
        b.collect(
            &format!("{dev} details"),
            &format!("network/{dev}/link.txt"),
            || run("ip", &["-d", "-s", "link", "show", "dev", dev]),
        );
        b.collect(
            &format!("{dev} neighbours"),
            &format!("network/{dev}/neigh.txt"),
            || run("ip", &["neigh", "show", "dev", dev]),
        );
        if dev.starts_with("vxlan") {
            b.collect(&format!("{dev} FDB"), &format!("network/{dev}/fdb.txt"), || {
                run("bridge", &["fdb", "show", "dev", dev])
            });
        }
    }
}

pub(super) fn nftables(b: &mut Bundle) {
    use brindle_netlink::nftables::{Nft, TableFamily};
    b.collect("nftables (nft)", "nftables/brindle.nft", || {
        let mut out = Vec::new();
        for fam in ["ip", "ip6"] {
            match Command::new("nft")
                .args(["list", "table", fam, "brindle"])
                .output()
            {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Ok(b"# nft is not installed: see brindle-reader.txt\n".to_vec());
                }
                Err(e) => bail!("run nft: {e}"),
                Ok(o) if o.status.success() => out.extend_from_slice(&o.stdout),
                Ok(o) => out.extend_from_slice(
                    format!(
                        "# nft list table {fam} brindle: {}\n",
                        String::from_utf8_lossy(&o.stderr).trim()
                    )
                    .as_bytes(),
                ),
            }
        }
        Ok(out)
    });
    b.collect(
        "nftables (brindle's reader)",
        "nftables/brindle-reader.txt",
        || {
            let mut nft = Nft::new().context("open an nf_tables socket")?;
            let mut out = String::new();
            for fam in [TableFamily::Ip, TableFamily::Ip6] {
                match nft
                    .list_table(fam, "brindle")
                    .with_context(|| format!("list table {fam} brindle"))?
                {
                    None => out.push_str(&format!("# no table {fam} brindle\n")),
                    Some(d) => out.push_str(&render_table(fam, &d)),
                }
            }
            Ok(out.into_bytes())
        },
    );
}

/// nft-like text of a dumped table (rules as the reader decodes them, with handles).
fn render_table(
    fam: brindle_netlink::nftables::TableFamily,
    d: &brindle_netlink::nftables::TableDump,
) -> String {
    let mut s = format!("table {fam} brindle {{\n");
    for c in &d.chains {
        s.push_str(&format!("\tchain {} {{ # handle {}\n", c.name, c.handle));
        if let Some((point, prio, kind, accept)) = &c.hook {
            s.push_str(&format!(
                "\t\ttype {kind} hook {} priority {prio}; policy {};\n",
                point.name(),
                if *accept { "accept" } else { "drop" }
            ));
        }
        for r in d.rules.iter().filter(|r| r.chain == c.name) {
            let exprs: Vec<String> = r.rule.exprs.iter().map(|e| format!("{e:?}")).collect();
            let comment = r
                .rule
                .comment
                .as_deref()
                .map(|c| format!(" comment {c:?}"))
                .unwrap_or_default();
            s.push_str(&format!(
                "\t\t{}{comment} # handle {}\n",
                exprs.join(" "),
                r.handle
            ));
        }
        s.push_str("\t}\n");
    }
    for set in &d.sets {
        let n = d.elements.get(&set.name).map_or(0, Vec::len);
        s.push_str(&format!(
            "\tset {} {{ # key type {}, {n} elements\n",
            set.name, set.key_type
        ));
        for e in d.elements.get(&set.name).into_iter().flatten() {
            s.push_str(&format!("\t\t{e:?}\n"));
        }
        s.push_str("\t}\n");
    }
    s.push_str("}\n");
    s
}

/// The interfaces of this process's network namespace, sorted. From `/proc/self/net/dev`:
/// `/sys` may belong to another namespace (`nsenter --net` keeps the caller's mounts).
fn interfaces() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_to_string("/proc/self/net/dev")
        .unwrap_or_default()
        .lines()
        .skip(2)
        .filter_map(|l| Some(l.split_once(':')?.0.trim().to_string()))
        .collect();
    v.sort();
    v
}

/// Forwarding and reverse-path filtering, globally and on the tunnels and workload interfaces.
pub(super) fn sysctls(prefixes: &[String]) -> String {
    let mut keys: Vec<String> = [
        "net/ipv4/ip_forward",
        "net/ipv6/conf/all/forwarding",
        "net/ipv4/conf/all/rp_filter",
        "net/ipv4/conf/default/rp_filter",
        "net/ipv4/conf/all/src_valid_mark",
        "net/ipv6/conf/all/disable_ipv6",
    ]
    .iter()
    .map(|k| k.to_string())
    .collect();
    for i in interfaces()
        .iter()
        .filter(|i| TUNNELS.contains(&i.as_str()) || prefixes.iter().any(|p| i.starts_with(p.as_str())))
    {
        for k in ["rp_filter", "forwarding", "proxy_arp", "route_localnet"] {
            keys.push(format!("net/ipv4/conf/{i}/{k}"));
        }
        keys.push(format!("net/ipv4/neigh/{i}/proxy_delay"));
        for k in ["forwarding", "proxy_ndp", "accept_ra"] {
            keys.push(format!("net/ipv6/conf/{i}/{k}"));
        }
    }
    keys.iter()
        .map(|k| {
            let v = std::fs::read_to_string(Path::new("/proc/sys").join(k))
                .map(|v| v.trim().to_string())
                .unwrap_or_else(|e| format!("<{e}>"));
            format!("{} = {v}\n", k.replace('/', "."))
        })
        .collect()
}
