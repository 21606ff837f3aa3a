//! Calico's BGPFilter, evaluated as BIRD evaluates what confd renders from it
//! (`confd/pkg/resource/template/template_funcs.go`, `bird{,6}.cfg.template`):
//!
//! - each filter becomes one BIRD function per direction and family; a rule is
//!   `if (<conditions joined by &&>) then { accept; | reject; }`, a rule without conditions is a
//!   bare `accept;` / `reject;`;
//! - a peer's `filters` are called in the order listed, before anything else of its import or
//!   export filter, so **the first rule that matches, over all its filters, decides**;
//! - nothing matches on import: `accept` (what `import all` did before BGPFilter);
//! - nothing matches on export: Calico's own export rules decide (`calico_export_to_bgp_peers`:
//!   the node's blocks, service prefixes, pool routes), and the rest is rejected. An `Accept`
//!   rule therefore exports a route Calico's rules would not (a learned route outside the
//!   pools, say) and skips what those rules add on the way (prefix-advertisement communities);
//!   BGP's own rules (no iBGP-learned route to an iBGP peer except by reflection, nothing back
//!   to where it came from) still come first, as BIRD applies them before any filter.
//!
//! Conditions (all must hold):
//! - `cidr` + `matchOperator`: `Equal` (`net = cidr`), `NotEqual`, `In` (`net ~ cidr`: inside or
//!   equal), `NotIn`. With `prefixLength` the cidr becomes BIRD's prefix set
//!   `[cidr{min,max}]`, min defaulting to (and at least) the cidr's length, max to (at most)
//!   32/128, and `In`/`NotIn` test membership. `Equal`/`NotEqual` against a prefix set is a BIRD
//!   runtime error ("Can't compare values of incompatible types"), which rejects the route: such
//!   a rule rejects every route that reaches it ([`Verdict::Error`]).
//! - `source: RemotePeers`: the route was learned from a BGP peer (`source ~ [RTS_BGP]`),
//!   always true on import, false for what this node originates.
//! - `interface`: the route's interface matches the pattern with BIRD's `*` and `?` wildcards
//!   (`ifname ~ "…"`). A learned route's interface is the one its session runs on; an
//!   originated one's is what the agent gives (a borrowed /32's cali device) or none, which
//!   BIRD reads as the empty name (so `*` matches it, as BIRD's blackholes).
//!
//! [`from_model`] builds these from `BGPFilter` resources.

pub mod from_model;

use ipnet::IpNet;

/// `matchOperator`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatchOperator {
    Equal,
    NotEqual,
    In,
    NotIn,
}

/// `action`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Accept,
    Reject,
}

/// What a filter list says about a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    Accept,
    Reject,
    /// BIRD stops the filter with a runtime error: the route is rejected.
    Error,
}

impl Verdict {
    pub fn accepts(self) -> bool {
        self == Verdict::Accept
    }
}

/// The `cidr` condition of a rule.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PrefixMatch {
    pub cidr: IpNet,
    pub op: MatchOperator,
    /// `prefixLength` (min, max), already clamped as confd renders it; `None` without one.
    pub lengths: Option<(u8, u8)>,
}

impl PrefixMatch {
    /// A prefix-length range as confd renders it: min at least the cidr's length, max at most
    /// the family's.
    pub fn with_lengths(cidr: IpNet, op: MatchOperator, min: Option<i32>, max: Option<i32>) -> PrefixMatch {
        let lo = i32::from(cidr.prefix_len()).max(min.unwrap_or(0));
        let hi = i32::from(cidr.max_prefix_len()).min(max.unwrap_or(i32::MAX));
        PrefixMatch {
            cidr,
            op,
            lengths: Some((lo.clamp(0, 128) as u8, hi.clamp(0, 128) as u8)),
        }
    }

    /// `Some(matched)`, or `None` where BIRD would stop with a runtime error.
    fn test(&self, net: &IpNet) -> Option<bool> {
        let inside = self.cidr.contains(net);
        match (self.op, self.lengths) {
            (MatchOperator::Equal, None) => Some(*net == self.cidr),
            (MatchOperator::NotEqual, None) => Some(*net != self.cidr),
            (MatchOperator::In, None) => Some(inside),
            (MatchOperator::NotIn, None) => Some(!inside),
            (MatchOperator::In | MatchOperator::NotIn, Some((lo, hi))) => {
                let len = net.prefix_len();
                let member = inside && lo <= len && len <= hi;
                Some(member == (self.op == MatchOperator::In))
            }
            (MatchOperator::Equal | MatchOperator::NotEqual, Some(_)) => None,
        }
    }
}

/// One rule: conditions (all must hold; none means always) and an action.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Rule {
    pub prefix: Option<PrefixMatch>,
    /// `source: RemotePeers`.
    pub remote_peers_only: bool,
    /// `interface`, a pattern with `*` and `?`.
    pub interface: Option<String>,
    pub action: Action,
}

impl Rule {
    /// A rule with no conditions.
    pub fn always(action: Action) -> Rule {
        Rule {
            prefix: None,
            remote_peers_only: false,
            interface: None,
            action,
        }
    }

    /// `Some(result)` if the rule matches (or errors), `None` to go on to the next rule.
    fn eval(&self, r: &RouteFacts<'_>) -> Option<Verdict> {
        // BIRD evaluates `&&` left to right and stops at the first false: cidr, source,
        // interface, in confd's order.
        if let Some(p) = &self.prefix {
            match p.test(&r.prefix) {
                None => return Some(Verdict::Error),
                Some(false) => return None,
                Some(true) => {}
            }
        }
        if self.remote_peers_only && !r.learned {
            return None;
        }
        if let Some(pat) = &self.interface
            && !glob_match(pat, r.interface.unwrap_or(""))
        {
            return None;
        }
        Some(match self.action {
            Action::Accept => Verdict::Accept,
            Action::Reject => Verdict::Reject,
        })
    }
}

/// Import or export.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    Import,
    Export,
}

/// One BGPFilter: its name and rule lists.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct BgpFilter {
    pub name: String,
    pub export_v4: Vec<Rule>,
    pub import_v4: Vec<Rule>,
    pub export_v6: Vec<Rule>,
    pub import_v6: Vec<Rule>,
}

impl BgpFilter {
    /// The rules that apply to `prefix` in `dir` (a route's family picks the list).
    pub fn rules(&self, dir: Direction, prefix: &IpNet) -> &[Rule] {
        match (dir, prefix) {
            (Direction::Import, IpNet::V4(_)) => &self.import_v4,
            (Direction::Import, IpNet::V6(_)) => &self.import_v6,
            (Direction::Export, IpNet::V4(_)) => &self.export_v4,
            (Direction::Export, IpNet::V6(_)) => &self.export_v6,
        }
    }

    /// True if the filter has rules for `dir` (either family).
    pub fn has(&self, dir: Direction) -> bool {
        match dir {
            Direction::Import => !self.import_v4.is_empty() || !self.import_v6.is_empty(),
            Direction::Export => !self.export_v4.is_empty() || !self.export_v6.is_empty(),
        }
    }
}

/// What a rule can look at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteFacts<'a> {
    pub prefix: IpNet,
    /// Learned from a BGP peer (BIRD's `source = RTS_BGP`), not originated here.
    pub learned: bool,
    /// The route's interface (`ifname`); `None` reads as the empty name.
    pub interface: Option<&'a str>,
}

/// The first matching rule over `filters`, in order; `None` if no rule matches (then import
/// accepts and export falls through to Calico's rules).
pub fn evaluate(filters: &[BgpFilter], dir: Direction, route: &RouteFacts<'_>) -> Option<Verdict> {
    filters
        .iter()
        .flat_map(|f| f.rules(dir, &route.prefix))
        .find_map(|rule| rule.eval(route))
}

/// Import: the filters' verdict, accept when none matches.
pub fn import_accepts(filters: &[BgpFilter], route: &RouteFacts<'_>) -> bool {
    evaluate(filters, Direction::Import, route).is_none_or(Verdict::accepts)
}

/// BIRD's `patmatch`: `*` matches any run of characters, `?` any one; the rest literally.
pub fn glob_match(pattern: &str, s: &str) -> bool {
    let (p, s) = (pattern.as_bytes(), s.as_bytes());
    let (mut pi, mut si) = (0, 0);
    // Backtracking point: the last `*` and where the text stood when it was seen.
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == b'*')
}
