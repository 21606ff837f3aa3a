//! Address families (AFI/SAFI pairs, RFC 4760 §3 and IANA registries).

use std::fmt;

/// An AFI/SAFI pair. Only IPv4 and IPv6 unicast carry routes here; other pairs are kept so a
/// peer's capabilities can be shown and compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Family {
    pub afi: u16,
    pub safi: u8,
}

pub const AFI_IPV4: u16 = 1;
pub const AFI_IPV6: u16 = 2;
pub const SAFI_UNICAST: u8 = 1;

impl Family {
    pub const IPV4_UNICAST: Family = Family {
        afi: AFI_IPV4,
        safi: SAFI_UNICAST,
    };
    pub const IPV6_UNICAST: Family = Family {
        afi: AFI_IPV6,
        safi: SAFI_UNICAST,
    };

    pub const fn new(afi: u16, safi: u8) -> Family {
        Family { afi, safi }
    }

    /// True for the families whose NLRI this codec decodes into prefixes.
    pub fn is_supported(self) -> bool {
        self == Family::IPV4_UNICAST || self == Family::IPV6_UNICAST
    }

    /// True for IPv6 unicast (addresses of 128 bits).
    pub fn is_ipv6(self) -> bool {
        self.afi == AFI_IPV6
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Family::IPV4_UNICAST => f.write_str("ipv4-unicast"),
            Family::IPV6_UNICAST => f.write_str("ipv6-unicast"),
            Family { afi, safi } => write!(f, "afi {afi}/safi {safi}"),
        }
    }
}

/// Which supported families use ADD-PATH path identifiers (RFC 7911) in one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AddPathFamilies {
    pub ipv4: bool,
    pub ipv6: bool,
}

impl AddPathFamilies {
    pub fn get(self, family: Family) -> bool {
        match family {
            Family::IPV4_UNICAST => self.ipv4,
            Family::IPV6_UNICAST => self.ipv6,
            _ => false,
        }
    }
}
