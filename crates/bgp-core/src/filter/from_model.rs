//! [`BgpFilter`] from a `BGPFilter` resource, as confd renders it. The resource is expected to
//! have passed validation (`brindle_model::validate`); what validation lets through but BIRD
//! would refuse is handled the way the rendered config behaves, and only what cannot be read
//! at all is an error.

use brindle_model::resources::{
    BGPFilter, BGPFilterAction, BGPFilterMatchOperator, BGPFilterMatchSource, BGPFilterRule,
};
use ipnet::IpNet;

use super::{Action, BgpFilter, MatchOperator, PrefixMatch, Rule};

/// A rule that cannot be turned into a filter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("BGPFilter({filter}): {list} rule {index}: {reason}")]
pub struct FilterError {
    pub filter: String,
    /// `exportV4`, `importV6`, …
    pub list: &'static str,
    /// 0-based position in the list.
    pub index: usize,
    pub reason: String,
}

fn cidr(s: &str, v6: bool) -> Result<IpNet, String> {
    let net = s
        .parse::<IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| format!("cidr {s:?} is not a CIDR"))?;
    if net.addr().is_ipv6() != v6 {
        return Err(format!("cidr {s:?} is not an IPv{} CIDR", if v6 { 6 } else { 4 }));
    }
    Ok(net)
}

fn rule(r: &BGPFilterRule, v6: bool) -> Result<Rule, String> {
    let action = match r.action {
        Some(BGPFilterAction::Accept) => Action::Accept,
        Some(BGPFilterAction::Reject) => Action::Reject,
        None => return Err("no action".into()),
    };
    let prefix = match (r.cidr.as_str(), r.match_operator) {
        ("", None) => {
            if r.prefix_length.is_some() {
                return Err("prefixLength without cidr".into());
            }
            None
        }
        ("", Some(_)) => return Err("matchOperator without cidr".into()),
        (_, None) => return Err("cidr without matchOperator".into()),
        (c, Some(op)) => {
            let net = cidr(c, v6)?;
            let op = match op {
                BGPFilterMatchOperator::Equal => MatchOperator::Equal,
                BGPFilterMatchOperator::NotEqual => MatchOperator::NotEqual,
                BGPFilterMatchOperator::In => MatchOperator::In,
                BGPFilterMatchOperator::NotIn => MatchOperator::NotIn,
            };
            Some(match r.prefix_length {
                // BIRD masks the prefix of a set pattern; confd passes the cidr as written.
                Some(pl) => PrefixMatch::with_lengths(net.trunc(), op, pl.min, pl.max),
                None => PrefixMatch {
                    cidr: net,
                    op,
                    lengths: None,
                },
            })
        }
    };
    Ok(Rule {
        prefix,
        remote_peers_only: r.source == Some(BGPFilterMatchSource::RemotePeers),
        interface: (!r.interface.is_empty()).then(|| r.interface.clone()),
        action,
    })
}

impl BgpFilter {
    /// The filter a `BGPFilter` resource describes (its name is the resource's).
    pub fn from_resource(f: &BGPFilter) -> Result<BgpFilter, FilterError> {
        let name = f.metadata.name.clone();
        let list = |which: &'static str, rules: &[BGPFilterRule], v6: bool| {
            rules
                .iter()
                .enumerate()
                .map(|(index, r)| {
                    rule(r, v6).map_err(|reason| FilterError {
                        filter: name.clone(),
                        list: which,
                        index,
                        reason,
                    })
                })
                .collect::<Result<Vec<Rule>, FilterError>>()
        };
        let s = &f.spec;
        Ok(BgpFilter {
            export_v4: list("exportV4", &s.export_v4, false)?,
            import_v4: list("importV4", &s.import_v4, false)?,
            export_v6: list("exportV6", &s.export_v6, true)?,
            import_v6: list("importV6", &s.import_v6, true)?,
            name: name.clone(),
        })
    }
}

/// A BGPPeer's `filters` (names, in order) as confd renders them: each existing BGPFilter in
/// turn; a name with no BGPFilter is left out (confd's `if exists`), and so is one that cannot
/// be read. Returns the filters and, for logging, what was left out and why.
pub fn peer_filters<'a>(
    names: &[String],
    lookup: impl Fn(&str) -> Option<&'a BGPFilter>,
) -> (Vec<BgpFilter>, Vec<String>) {
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    for n in names {
        match lookup(n).map(BgpFilter::from_resource) {
            Some(Ok(f)) => out.push(f),
            Some(Err(e)) => skipped.push(e.to_string()),
            None => skipped.push(format!("BGPFilter({n}) does not exist")),
        }
    }
    (out, skipped)
}
