//! The kernel-ipip path, which this machine's kernel cannot run (no ipip module): Debian's stock
//! kernel boots under qemu (TCG, never KVM here: this machine's `/dev/kvm` is a paravirtual KVM
//! that cannot boot an ordinary kernel) from an initramfs holding busybox, the ipip/veth modules
//! and this very test binary; inside, the ignored test `vm_payload_kernel_ipip` uses Brindle's code
//! to set up two nodes with kernel tunl0 and pods, and pings pod to pod through kernel IPIP, then
//! enforces a workload policy on the second node and checks it filters pod-to-pod traffic through
//! the tunnel. The result comes back as a serial marker line.
//!
//! The kernel and modules come from `.ci/deps` (cached in /opt/brindle-ci/kernel).
//! `BRINDLE_QEMU_ACCEL=kvm` switches to KVM on hosts where it works.

mod common;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use brindle_dataplane::{
    Dataplane, DataplaneConfig, DesiredState, EncapMode, IpipConfig, IpipPath, NodeInfo, RemoteBlock,
    Workload,
};
use brindle_netlink::{Handle, NetnsFd, Route, VethSpec, scope};
use brindle_policy::PolicyCalculator;
use brindle_policy::ir::Settings;
use brindle_testkit::{TempDir, require};
use common::policy::{labels, namespace_profile, network_policy, workload_endpoint};
use common::up;
use ipnet::{IpNet, Ipv4Net};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

const MARKER: &str = "BRINDLE-VM-RESULT";

/// Modules the VM loads, in dependency order: kernel IPIP and veth, then nf_tables and what
/// Brindle's tables use (conntrack, fib, NAT, log, limit).
const MODULES: [&str; 21] = [
    "tunnel4",
    "ip_tunnel",
    "ipip",
    "veth",
    "crc32c_generic",
    "libcrc32c",
    "nfnetlink",
    "nf_tables",
    "nf_defrag_ipv4",
    "nf_defrag_ipv6",
    "nf_conntrack",
    "nf_nat",
    "nft_ct",
    "nft_fib",
    "nft_fib_ipv4",
    "nft_fib_ipv6",
    "nft_limit",
    "nf_log_syslog",
    "nft_log",
    "nft_masq",
    "nft_chain_nat",
];

fn kernel_dir() -> PathBuf {
    let base = Path::new("/opt/brindle-ci/kernel");
    let ver = std::fs::read_to_string(base.join("current")).unwrap_or_else(|_| {
        panic!(
            "no VM kernel in {}: run `.ci/deps` (it downloads Debian's kernel .deb)",
            base.display()
        )
    });
    base.join(ver.trim())
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Copies `file` into `root` at the same absolute path.
fn copy_in(root: &Path, file: &Path) {
    let dst = root.join(file.strip_prefix("/").unwrap());
    std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
    std::fs::copy(file, &dst).unwrap_or_else(|e| panic!("copy {}: {e}", file.display()));
}

fn build_initramfs(dir: &TempDir, kdir: &Path) -> PathBuf {
    let root = dir.join("root");
    for d in ["bin", "proc", "sys", "dev", "modules", "tmp"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    let busybox = require::command("/bin/busybox", "busybox-static");
    // `ldd` fails on a static binary ("not a dynamic executable").
    let dynamic = Command::new("ldd")
        .arg(&busybox)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        !dynamic,
        "/bin/busybox must be busybox-static: `apt-get install -y busybox-static`"
    );
    std::fs::copy(&busybox, root.join("bin/busybox")).unwrap();
    for m in MODULES {
        std::fs::copy(
            kdir.join(format!("modules/{m}.ko")),
            root.join(format!("modules/{m}.ko")),
        )
        .unwrap();
    }
    // This test binary, stripped, and the libraries it links.
    let me = std::env::current_exe().unwrap();
    let strip = require::command("strip", "binutils");
    run(Command::new(strip)
        .arg("-o")
        .arg(root.join("brindle-test"))
        .arg(&me));
    for line in run(Command::new("ldd").arg(&me)).lines() {
        let path = line
            .split_whitespace()
            .find(|w| w.starts_with('/'))
            .map(PathBuf::from);
        if let Some(p) = path {
            copy_in(&root, &p);
        }
    }
    std::fs::write(
        root.join("init"),
        format!(
            "#!/bin/busybox sh\n\
             /bin/busybox mount -t proc proc /proc\n\
             /bin/busybox mount -t sysfs sys /sys\n\
             /bin/busybox mount -t devtmpfs dev /dev\n\
             for m in {}; do /bin/busybox insmod /modules/$m.ko || echo insmod $m failed; done\n\
             /brindle-test --ignored --exact vm_payload_kernel_ipip --nocapture --test-threads=1\n\
             echo \"{MARKER} rc=$?\"\n\
             /bin/busybox poweroff -f\n",
            MODULES.join(" ")
        ),
    )
    .unwrap();
    run(Command::new("chmod").arg("755").arg(root.join("init")));
    let img = dir.join("initramfs.cpio.gz");
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "cd {} && find . | cpio -o -H newc --quiet | gzip -1 > {}",
            root.display(),
            img.display()
        ))
        .status()
        .unwrap();
    assert!(status.success(), "cpio/gzip failed (apt-get install -y cpio)");
    img
}

#[test]
fn kernel_ipip_in_qemu() {
    let qemu = require::command("qemu-system-x86_64", "qemu-system-x86");
    require::command("cpio", "cpio");
    let kdir = kernel_dir();
    let dir = TempDir::new("dp-vm");
    let initrd = build_initramfs(&dir, &kdir);
    let log = dir.join("serial.log");
    let accel = match std::env::var("BRINDLE_QEMU_ACCEL").as_deref() {
        Ok("kvm") => vec!["-accel", "kvm", "-cpu", "host"],
        _ => vec!["-accel", "tcg,tb-size=64"],
    };
    let out = Command::new("timeout")
        .arg("240")
        .arg(qemu)
        .args([
            "-machine",
            "pc",
            "-smp",
            "1",
            "-m",
            "384M",
            "-nodefaults",
            "-display",
            "none",
            "-no-reboot",
        ])
        .args(accel)
        .arg("-kernel")
        .arg(kdir.join("vmlinuz"))
        .arg("-initrd")
        .arg(&initrd)
        .args(["-append", "console=ttyS0 panic=-1 quiet"])
        .arg("-serial")
        .arg(format!("file:{}", log.display()))
        .output()
        .expect("run qemu");
    let serial = std::fs::read_to_string(&log).unwrap_or_default();
    let verdict = serial.lines().map(str::trim_end).find(|l| l.starts_with(MARKER));
    assert_eq!(
        verdict,
        Some(format!("{MARKER} rc=0").as_str()),
        "VM run failed (qemu {}):\n{serial}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(serial.contains("test result: ok. 1 passed"), "{serial}");
}

// ---------------------------------------------------------------- inside the VM

fn net(ip: Ipv4Addr, len: u8) -> IpNet {
    IpNet::V4(Ipv4Net::new(ip, len).unwrap())
}

/// A pod on `node` with address `ip` behind host interface `iface` (as the CNI plugin does).
fn pod(node: &mut Handle, iface: &str, ip: Ipv4Addr) -> (NetnsFd, Workload) {
    let ns = NetnsFd::new_anonymous().unwrap();
    node.add_veth(&VethSpec {
        name: iface,
        mac: Some([0xee; 6]),
        mtu: Some(1480),
        up: true,
        peer_name: "eth0",
        peer_mtu: Some(1480),
        peer_netns: Some(&ns),
        ..Default::default()
    })
    .unwrap();
    brindle_netlink::workload::configure_workload_iface(node, iface).unwrap();
    let mut h = Handle::open(&ns).unwrap();
    up(&mut h, "lo");
    let eth0 = up(&mut h, "eth0");
    h.add_address(eth0, "eth0", net(ip, 32)).unwrap();
    h.add_route(&Route::dev("169.254.1.1/32".parse().unwrap(), eth0, scope::LINK))
        .unwrap();
    h.add_route(&Route::via(
        "0.0.0.0/0".parse().unwrap(),
        "169.254.1.1".parse().unwrap(),
        eth0,
    ))
    .unwrap();
    let mac = h.require_link("eth0").unwrap().mac;
    (
        ns,
        Workload {
            ip: ip.into(),
            iface: iface.into(),
            mac,
        },
    )
}

fn desired(
    name: &str,
    me: Ipv4Addr,
    block: &str,
    peer: Ipv4Addr,
    peer_block: &str,
    w: Workload,
) -> DesiredState {
    let block: Ipv4Net = block.parse().unwrap();
    let mut d = DesiredState::new(NodeInfo::v4(name, Ipv4Net::new(me, 22).unwrap()));
    d.local_blocks = vec![block.into()];
    d.remote_blocks = vec![RemoteBlock {
        dst: peer_block.parse().unwrap(),
        node_ip: peer.into(),
        ipip: EncapMode::Always,
        vxlan: EncapMode::Never,
    }];
    d.workloads = vec![w];
    d.ipip = Some(IpipConfig {
        tunnel_addr: Some(block.network()),
        mtu: 1480,
    });
    d.peer_nodes = vec![peer];
    d
}

fn proc_net_dev(ns: &NetnsFd, dev: &str) -> (u64, u64) {
    let text = ns
        .run(|| std::fs::read_to_string("/proc/thread-self/net/dev").unwrap())
        .unwrap();
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{dev}:")))
        .unwrap();
    let f: Vec<u64> = line
        .split(':')
        .nth(1)
        .unwrap()
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    (f[1], f[9]) // rx packets, tx packets
}

#[test]
#[ignore = "runs inside the qemu VM that kernel_ipip_in_qemu boots"]
fn vm_payload_kernel_ipip() {
    let a_ip: Ipv4Addr = "172.20.42.80".parse().unwrap();
    let b_ip: Ipv4Addr = "172.20.42.81".parse().unwrap();
    let a_ns = NetnsFd::new_anonymous().unwrap();
    let b_ns = NetnsFd::new_anonymous().unwrap();
    let mut a = Handle::open(&a_ns).unwrap();
    let mut b = Handle::open(&b_ns).unwrap();
    a.add_veth(&VethSpec {
        name: "eth0",
        peer_name: "eth0",
        peer_netns: Some(&b_ns),
        ..Default::default()
    })
    .unwrap();
    for (h, ip, gw) in [(&mut a, a_ip, b_ip), (&mut b, b_ip, a_ip)] {
        up(h, "lo");
        let e = up(h, "eth0");
        h.add_address(e, "eth0", net(ip, 22)).unwrap();
        // Proxy ARP for the pods' gateway needs a route covering it on the node.
        h.add_route(&Route::via("0.0.0.0/0".parse().unwrap(), gw.into(), e))
            .unwrap();
    }
    let (pod_a, wa) = pod(&mut a, "calia0000000001", "10.233.94.1".parse().unwrap());
    let (_pod_b, wb) = pod(&mut b, "calib0000000001", "10.233.87.1".parse().unwrap());
    let da = desired("bgp-master1", a_ip, "10.233.94.0/24", b_ip, "10.233.87.0/24", wa);
    let db = desired("bgp-master2", b_ip, "10.233.87.0/24", a_ip, "10.233.94.0/24", wb);
    let mut dps = Vec::new();
    for (n, (h, d)) in [(a, &da), (b, &db)].into_iter().enumerate() {
        // Node B enforces workload policy (written at its first resync, below).
        let cfg = DataplaneConfig {
            policy: brindle_dataplane::PolicyConfig {
                enabled: n == 1,
                ..Default::default()
            },
            ..Default::default()
        };
        let (dp, report) = Dataplane::start(h, cfg, d).unwrap();
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert_eq!(
            dp.status().ipip,
            Some(IpipPath::Kernel),
            "expected the kernel's tunl0"
        );
        dps.push(dp);
    }
    let routes = dps[0].handle().routes(Some(brindle_netlink::TABLE_MAIN)).unwrap();
    let names = dps[0].handle().link_names().unwrap();
    let lines: Vec<String> = routes
        .iter()
        .map(|r| r.render(&|i| names.get(&i).cloned()))
        .collect();
    println!("node A routes:\n{}", lines.join("\n"));
    assert!(lines.contains(&"10.233.87.0/24 via 172.20.42.81 dev tunl0 proto bird onlink".to_string()));
    assert!(lines.contains(&"blackhole 10.233.94.0/24 proto bird".to_string()));
    assert!(lines.contains(&"10.233.94.1 dev calia0000000001 scope link".to_string()));
    let tunl = dps[0].handle().require_link("tunl0").unwrap();
    assert_eq!((tunl.kind.as_deref(), tunl.mtu), (Some("ipip"), 1480));

    let before = proc_net_dev(&a_ns, "tunl0");
    let ok = pod_a
        .run(|| {
            Command::new("/bin/busybox")
                .args(["ping", "-c", "3", "-W", "2", "10.233.87.1"])
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
        })
        .unwrap();
    assert!(ok, "pod A cannot ping pod B through kernel IPIP");
    let after = proc_net_dev(&a_ns, "tunl0");
    println!(
        "tunl0 on node A: rx {} -> {}, tx {} -> {}",
        before.0, after.0, before.1, after.1
    );
    assert!(
        after.0 > before.0 && after.1 > before.1,
        "tunl0 counters did not move"
    );

    // Policy over kernel IPIP: pod B admits TCP 80 from pod A, nothing else. The outer IPIP
    // packets pass node B's tunnel guard (node A is a peer), the inner ones meet the policy.
    let mut calc = PolicyCalculator::new("bgp-master2", Settings::default());
    calc.upsert_profile(&namespace_profile("default")).unwrap();
    for (node, name, w) in [
        ("bgp-master1", "a", &da.workloads[0]),
        ("bgp-master2", "b", &db.workloads[0]),
    ] {
        let wep = workload_endpoint(node, "default", name, &labels(&[("app", name)]), w.ip, &w.iface);
        calc.upsert_workload_endpoint(&wep).unwrap();
    }
    calc.upsert_policy(network_policy(
        "default",
        "b-from-a",
        "app == 'b'",
        Some("- action: Allow\n  protocol: TCP\n  source:\n    selector: app == 'a'\n  destination:\n    ports: [80]\n"),
        None,
    ))
    .unwrap();
    let w = dps[1].policy().resync(calc.state()).unwrap();
    println!("policy on node B: {:?}", w.changes.objects);
    let b_fd = _pod_b.try_clone().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::os::fd::AsRawFd;
        // SAFETY: setns on a valid namespace fd affects only this thread.
        let rc = unsafe { libc::setns(b_fd.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns");
        let l80 = TcpListener::bind("0.0.0.0:80").unwrap();
        let _l81 = TcpListener::bind("0.0.0.0:81").unwrap();
        tx.send(()).unwrap();
        for s in l80.incoming() {
            drop(s);
        }
    });
    rx.recv().unwrap();
    let tcp = |port: u16| {
        pod_a
            .run(move || {
                TcpStream::connect_timeout(
                    &SocketAddr::from(([10, 233, 87, 1], port)),
                    Duration::from_secs(3),
                )
                .is_ok()
            })
            .unwrap()
    };
    assert!(tcp(80), "TCP 80 from pod A is allowed");
    assert!(!tcp(81), "TCP 81 is not");
    let pinged = pod_a
        .run(|| {
            Command::new("/bin/busybox")
                .args(["ping", "-c", "1", "-W", "2", "10.233.87.1"])
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
        })
        .unwrap();
    assert!(!pinged, "ICMP is not allowed either");
    println!("policy enforced over kernel IPIP");
}
