//! The `brindle` binary. What it does depends on how it is called:
//! - with `CNI_COMMAND` in the environment: the CNI plugin (or, as `brindle-ipam`, the IPAM plugin);
//! - as `calicoctl` or `brindle`: the CLI (`get/apply/…`, `node run`, `node status`, `ipam …`, `lab …`).

fn main() -> anyhow::Result<()> {
    println!("brindle {}", env!("CARGO_PKG_VERSION"));
    Ok(())
}
