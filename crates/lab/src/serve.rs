//! The listener `lab probe` runs in every pod (`brindle lab serve`, hidden): TCP on each port
//! (accept, write the pod's name, close) and UDP on each port (answer every datagram with the
//! pod's name), on every address of the pod, like the Kubernetes network-policy tests' agnhost
//! servers. Started detached in the pod's namespace and recorded in the lab's state, so `lab
//! down` and a pod's removal stop it.

use std::io::Write;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};

use crate::error::{Error, Result};
use crate::lab::Lab;
use crate::probe::{Job, Outcome, Protocol, probe_from};
use crate::state::serve_role;

/// A socket bound to `port` on every address: `[::]` dual-stack, or `0.0.0.0` where the pod
/// has no IPv6.
fn bind(port: u16, ty: Type) -> std::io::Result<Socket> {
    let six = Socket::new(Domain::IPV6, ty, None).and_then(|s| {
        s.set_only_v6(false)?;
        s.set_reuse_address(true)?;
        s.bind(&SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)).into())?;
        Ok(s)
    });
    match six {
        Ok(s) => Ok(s),
        Err(_) => {
            let s = Socket::new(Domain::IPV4, ty, None)?;
            s.set_reuse_address(true)?;
            s.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)).into())?;
            Ok(s)
        }
    }
}

/// Serves until killed. Every socket is bound before this returns an error or starts
/// answering, so a port in use fails at once and names the port.
pub fn serve(tcp: &[u16], udp: &[u16], identity: &str) -> Result<()> {
    let mut threads = Vec::new();
    let all = tcp
        .iter()
        .map(|p| (Protocol::Tcp, *p))
        .chain(udp.iter().map(|p| (Protocol::Udp, *p)));
    {
        for (proto, port) in all {
            let what = format!("listen on {proto}/{port}");
            let sock = match proto {
                Protocol::Tcp => bind(port, Type::STREAM).and_then(|s| {
                    s.listen(1024)?;
                    Ok(s)
                }),
                Protocol::Udp => bind(port, Type::DGRAM),
            }
            .map_err(|e| Error::step(&what, e))?;
            let reply = identity.as_bytes().to_vec();
            threads.push(std::thread::spawn(move || match proto {
                Protocol::Tcp => {
                    let l: std::net::TcpListener = sock.into();
                    for mut c in l.incoming().flatten() {
                        let _ = c.set_write_timeout(Some(Duration::from_secs(1)));
                        let _ = c.write_all(&reply);
                    }
                }
                Protocol::Udp => {
                    let u: std::net::UdpSocket = sock.into();
                    let mut buf = [0u8; 2048];
                    while let Ok((_, from)) = u.recv_from(&mut buf) {
                        let _ = u.send_to(&reply, from);
                    }
                }
            }));
        }
    }
    for t in threads {
        let _ = t.join();
    }
    Ok(())
}

/// What a pod's listener serves, as recorded (`tcp/80`).
fn listening(ports: &[u16], protocols: &[Protocol]) -> Vec<String> {
    let mut v: Vec<String> = protocols
        .iter()
        .flat_map(|p| ports.iter().map(move |port| format!("{p}/{port}")))
        .collect();
    v.sort();
    v.dedup();
    v
}

impl Lab {
    /// Makes sure every pod listens on `ports` over `protocols`: a listener already serving
    /// them is kept, one serving less is replaced by one serving both sets, and every new
    /// listener is waited for (it answers on the pod's loopback) before this returns.
    pub fn ensure_listeners(&mut self, ports: &[u16], protocols: &[Protocol]) -> Result<()> {
        let mut started = Vec::new();
        for i in 0..self.state().pods.len() {
            let pod = self.state().pods[i].clone();
            let role = serve_role(&pod.namespace, &pod.name);
            let want = listening(ports, protocols);
            let alive = self.state().process(&role).is_some_and(|p| p.is_alive());
            if alive && want.iter().all(|w| pod.listening.contains(w)) {
                continue;
            }
            if let Some(p) = self.state().process(&role) {
                p.stop(Duration::from_secs(5))?;
            }
            let mut all: Vec<String> = pod.listening.iter().chain(&want).cloned().collect();
            if !alive {
                all = want.clone();
            }
            all.sort();
            all.dedup();
            let (mut tcp, mut udp) = (Vec::new(), Vec::new());
            for l in &all {
                let (proto, port) = l.split_once('/').expect("proto/port");
                let port: u16 = port.parse().expect("port");
                match proto {
                    "tcp" => tcp.push(port),
                    _ => udp.push(port),
                }
            }
            let identity = format!("{}/{}", pod.namespace, pod.name);
            let mut args = vec!["lab".to_string(), "serve".into(), "--identity".into(), identity];
            for (proto, list) in [("tcp", &tcp), ("udp", &udp)] {
                if !list.is_empty() {
                    let ports: Vec<String> = list.iter().map(u16::to_string).collect();
                    args.extend([format!("--{proto}"), ports.join(",")]);
                }
            }
            let log = self.dir().dir.join("serve.log");
            let rec = crate::proc::spawn_detached(&role, &pod.netns, self.exe(), &args, &[], &log)?;
            let state = self.state_mut();
            state.processes.retain(|p| p.role != role);
            state.processes.push(rec);
            state.pods[i].listening = all.clone();
            self.save()?;
            started.push((i, all));
        }
        // Each new listener must answer on its pod's loopback before probes count.
        let deadline = Instant::now() + Duration::from_secs(10);
        for (i, all) in started {
            let pod = self.state().pods[i].clone();
            let identity = format!("{}/{}", pod.namespace, pod.name);
            let jobs: Vec<Job> = all
                .iter()
                .map(|l| {
                    let (proto, port) = l.split_once('/').expect("proto/port");
                    Job {
                        addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port.parse::<u16>().expect("port"))),
                        protocol: if proto == "tcp" {
                            Protocol::Tcp
                        } else {
                            Protocol::Udp
                        },
                        expect: identity.clone(),
                    }
                })
                .collect();
            loop {
                let ns = brindle_netlink::NetnsFd::named(&pod.netns)?;
                let out = ns.run(|| probe_from(&jobs, Duration::from_millis(300)))??;
                if out.iter().all(|o| *o == Outcome::Connected) {
                    break;
                }
                let role = serve_role(&pod.namespace, &pod.name);
                let dead = !self.state().process(&role).is_some_and(|p| p.is_alive());
                if dead || Instant::now() > deadline {
                    return Err(Error::step(
                        format!("listener of pod {identity}"),
                        format!(
                            "{} on its loopback ({:?}); log: {}",
                            if dead { "exited" } else { "does not answer" },
                            out,
                            self.dir().dir.join("serve.log").display()
                        ),
                    ));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(())
    }
}
