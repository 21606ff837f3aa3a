//! Anchors the policy benchmarks run in the same run: a flat rule set of a given size for
//! `iptables-restore` and for `nft -f`, the tools Brindle's programming is compared with.

use std::net::Ipv4Addr;

/// `chains` chains × `rules` rules `-p tcp -s ADDR --dport PORT -j ACCEPT`, as
/// (`iptables-restore` input, `nft -f` input of table `ip flat`).
pub fn flat_ruleset(chains: usize, rules: usize) -> (String, String) {
    let mut ipt = String::from("*filter\n");
    let mut nft = String::from("table ip flat {\n");
    for c in 0..chains {
        ipt.push_str(&format!(":cali-pi-{c} - [0:0]\n"));
    }
    for c in 0..chains {
        nft.push_str(&format!("\tchain cali-pi-{c} {{\n"));
        for r in 0..rules {
            let n = c * rules + r;
            let src = Ipv4Addr::new(10, 200 + (n >> 16) as u8, (n >> 8) as u8, n as u8);
            let port = 1000 + n % 20000;
            ipt.push_str(&format!(
                "-A cali-pi-{c} -s {src}/32 -p tcp -m tcp --dport {port} -j ACCEPT\n"
            ));
            nft.push_str(&format!("\t\tip saddr {src} tcp dport {port} accept\n"));
        }
        nft.push_str("\t}\n");
    }
    ipt.push_str("COMMIT\n");
    nft.push_str("}\n");
    (ipt, nft)
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes() {
        let (ipt, nft) = super::flat_ruleset(3, 2);
        assert_eq!(ipt.lines().filter(|l| l.starts_with("-A ")).count(), 6);
        assert_eq!(nft.lines().filter(|l| l.contains("accept")).count(), 6);
    }
}
