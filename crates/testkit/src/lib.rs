//! Test harness shared by Brindle's integration tests.
//!
//! Rules it enforces (the machine is shared): every namespace, link, daemon, port and directory a
//! test makes has a unique name (PID plus a counter) and is removed by that exact name when its
//! guard drops, also when the test fails. Nothing is cleaned up by pattern; nothing is killed by
//! name. A test that cannot run (not root, a package missing) fails loudly with what to install.
//!
//! Module map:
//! - [`anchors`]: the flat rule sets the policy benchmarks compare with (`iptables-restore`,
//!   `nft -f`).
//! - [`alloc`]: [`alloc::Counting`], a counting global allocator for benchmarks' heap figures.
//! - [`conntrack`]: a namespace's conntrack table as the kernel lists it, and a UDP exchange
//!   that leaves an established flow in it.
//! - [`chromium`]: pages loaded in headless Chromium (DOM and screenshot).
//! - [`names`]: unique names for namespaces, links and directories.
//! - [`netpol`]: the Kubernetes network-policy e2e model (pods x/a … z/c) and its expected
//!   truth tables, shared by the policy evaluator's tests and the lab's netpol suite.
//! - [`require`]: loud preconditions (root, commands on PATH).
//! - [`netns`]: [`Netns`], a named network namespace removed on drop; veth plumbing; running
//!   commands inside it (via `nsenter`, which keeps the mount namespace, unlike `ip netns exec`).
//! - [`process`]: [`Daemon`], a child process killed (SIGKILL, by PID) and reaped on drop;
//!   [`process::rss_kib`], a process's resident memory for benchmarks.
//! - [`tmp`]: [`TempDir`], a unique directory removed on drop.
//! - [`etcd`]: [`Etcd`], a real etcd on free ports (loopback, or an address inside a namespace),
//!   plain or TLS with client certificates, restartable, with authentication on demand.
//! - [`pki`]: [`Pki`], a throwaway CA with server and client certificates (openssl).
//! - [`privilege`]: running code with an unprivileged user's file access (per thread).
//! - [`port`]: free loopback ports.
//! - [`sqlite_lock`]: [`SqliteLock`], another process holding a SQLite file's write lock.

pub mod alloc;
pub mod anchors;
pub mod chromium;
pub mod conntrack;
pub mod etcd;
pub mod names;
pub mod netns;
pub mod netpol;
pub mod pki;
pub mod port;
pub mod privilege;
pub mod process;
pub mod require;
pub mod sqlite_lock;
pub mod tmp;

pub use etcd::Etcd;
pub use netns::Netns;
pub use pki::Pki;
pub use process::Daemon;
pub use sqlite_lock::SqliteLock;
pub use tmp::TempDir;
