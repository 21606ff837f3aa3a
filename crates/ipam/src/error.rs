//! What can go wrong in IPAM. Every message names the object (address, pool, block, handle,
//! node) and says what is wrong; an error always means the datastore was left as it was (or,
//! for the datastore's own failures, as the failed write left it: writes are atomic).

use std::net::IpAddr;

use ipnet::IpNet;

/// Result alias for IPAM operations.
pub type Result<T> = std::result::Result<T, IpamError>;

/// Calico's text for a compare-and-swap loop that never won (`datastoreRetries = 100`).
pub const MAX_RETRIES_TEXT: &str = "Max retries hit - excessive concurrent IPAM requests";

#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    /// No address could be found: which pools were tried and why each had nothing.
    #[error("no IPs available in pools: [{}]: {reason}", pools.join(" "))]
    PoolsExhausted { pools: Vec<String>, reason: String },

    /// The node needs a new block but already holds as many as it may.
    #[error(
        "cannot allocate new block due to per host block limit: node {node} already has {held} IPv{family} blocks and maxBlocksPerHost is {limit}"
    )]
    BlockLimit {
        node: String,
        held: usize,
        limit: usize,
        family: u8,
    },

    /// No enabled pool of this family selects the node.
    #[error("no configured Calico pools for node {node} (IPv{family})")]
    NoPoolsForNode { node: String, family: u8 },

    /// Pools select the node but none allows this use.
    #[error("cannot find a qualified ippool, no pools match the required use ({intended_use})")]
    NoPoolForUse { intended_use: String },

    /// An explicitly requested pool is missing or disabled.
    #[error("the given pool ({cidr}) does not exist, or is not enabled")]
    PoolNotEnabled { cidr: IpNet },

    /// An explicitly requested pool is of the wrong family.
    #[error("provided IPv{expected} IPPools list contains an IPv{found} pool ({cidr})")]
    PoolWrongFamily { cidr: IpNet, expected: u8, found: u8 },

    /// The address is in no configured (enabled) pool.
    #[error("IP address {addr} is not in any configured pool")]
    NotInPool { addr: IpAddr },

    /// The address is not allocated.
    #[error("IP address {addr} is not assigned")]
    NotAssigned { addr: IpAddr },

    /// `assign_ip` on an address already in use.
    #[error("IP address {addr} is already assigned (handle {})", handle.as_deref().unwrap_or("<none>"))]
    AlreadyAssigned { addr: IpAddr, handle: Option<String> },

    /// `assign_ip` into a block affine to another node while strict affinity is on.
    #[error(
        "IP address {addr} is in block {block} affine to {owner}, and strict affinity forbids borrowing it for node {node}"
    )]
    StrictAffinity {
        addr: IpAddr,
        block: IpNet,
        owner: String,
        node: String,
    },

    /// The handle does not exist.
    #[error("handle {handle} does not exist")]
    UnknownHandle { handle: String },

    /// A release named a handle the address does not belong to.
    #[error("IP address {addr} is held by handle {actual}, not {requested}: refusing to release it")]
    HandleMismatch {
        addr: IpAddr,
        requested: String,
        actual: String,
    },

    /// A release carried a sequence number from an earlier allocation of the address: the
    /// address was released and handed out again since the caller looked.
    #[error(
        "IP address {addr} was re-allocated since it was read (sequence number {requested}, now {actual}): refusing to release it"
    )]
    StaleSequence {
        addr: IpAddr,
        requested: u64,
        actual: u64,
    },

    /// The Node resource the request is for does not exist.
    #[error("node {node} does not exist")]
    NodeNotFound { node: String },

    /// Bad arguments (zero addresses requested for nothing, a bad IPAM configuration, …).
    #[error("{0}")]
    Invalid(String),

    /// A stored object is not what its key says.
    #[error("corrupt IPAM data at {key}: {detail}")]
    Corrupt { key: String, detail: String },

    /// A compare-and-swap loop lost every time.
    #[error("{MAX_RETRIES_TEXT} ({what})")]
    MaxRetries { what: String },

    /// The datastore failed.
    #[error(transparent)]
    Datastore(#[from] brindle_datastore::Error),

    /// A v3 resource could not be read or written (cleaning up after a deleted node).
    #[error(transparent)]
    Resource(#[from] brindle_datastore::ResourceError),
}

impl IpamError {
    /// A compare-and-swap conflict from the datastore: re-read and retry.
    pub(crate) fn is_conflict(&self) -> bool {
        matches!(self, IpamError::Datastore(e) if e.is_conflict())
    }

    /// The key was missing when written.
    pub(crate) fn is_not_found(&self) -> bool {
        matches!(self, IpamError::Datastore(e) if e.is_not_found())
    }
}
