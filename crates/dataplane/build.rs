//! Builds the BPF programs under bpf/ with clang (Debian: `clang`, `libbpf-dev`).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let src = "bpf/ipip.c";
    println!("cargo:rerun-if-changed={src}");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("ipip.o");
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let multiarch = match arch.as_str() {
        "x86_64" => "x86_64-linux-gnu",
        "aarch64" => "aarch64-linux-gnu",
        other => panic!("brindle-dataplane: no BPF include path known for target arch {other}"),
    };
    if !std::path::Path::new("/usr/include/bpf/bpf_helpers.h").exists() {
        panic!(
            "brindle-dataplane: /usr/include/bpf/bpf_helpers.h is missing; \
             install the BPF toolchain with `apt-get install -y clang llvm libbpf-dev`"
        );
    }
    let status = Command::new("clang")
        .args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror"])
        .arg(format!("-I/usr/include/{multiarch}"))
        .args(["-c", src, "-o"])
        .arg(&out)
        .status()
        .unwrap_or_else(|e| {
            panic!(
                "brindle-dataplane: cannot run clang to build {src} ({e}); \
                 install it with `apt-get install -y clang llvm libbpf-dev`"
            )
        });
    assert!(status.success(), "brindle-dataplane: clang failed to build {src}");
}
