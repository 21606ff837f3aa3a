#!/bin/bash
# Captures BGP sessions between BIRD 2 (hub) and BIRD 1.6, GoBGP, FRR, ExaBGP, in namespaces.
set -e
S=bcap$$
D=/tmp/bgpcap/run; rm -rf $D; mkdir -p $D; chmod 777 $D
HUB=${S}h
ip netns add $HUB; ip -n $HUB link set lo up
i=0
for p in gob frr exa b16; do
  i=$((i+1)); ns=${S}$p
  ip netns add $ns; ip -n $ns link set lo up
  ip -n $HUB link add h$p type veth peer name e$p netns $ns
  ip -n $HUB addr add 10.77.$i.1/24 dev h$p; ip -n $HUB addr add fd77:$i::1/64 dev h$p nodad; ip -n $HUB link set h$p up
  ip -n $ns addr add 10.77.$i.2/24 dev e$p; ip -n $ns addr add fd77:$i::2/64 dev e$p nodad; ip -n $ns link set e$p up
done
cat > $D/hub.conf <<B
log stderr all;
router id 10.77.0.1;
protocol device { scan time 10; }
protocol direct { ipv4; ipv6; }
protocol static s4 { ipv4; route 10.233.94.0/24 blackhole; route 10.233.95.0/26 blackhole; }
protocol static s6 { ipv6; route fd00:94::/122 blackhole; }
template bgp T { local as 64512; hold time 9; connect delay time 1; connect retry time 2; error wait time 1,3; graceful restart; 
  ipv4 { import all; export where proto = "s4"; next hop self; add paths on; };
  ipv6 { import all; export where proto = "s6"; next hop self; }; }
protocol bgp gob from T { neighbor 10.77.1.2 as 64512; }
protocol bgp frr from T { neighbor 10.77.2.2 as 64512; }
protocol bgp exa from T { neighbor 10.77.3.2 as 64512; }
protocol bgp b16 { local as 64512; neighbor 10.77.4.2 as 64513; hold time 9; connect delay time 1; connect retry time 2; error wait time 1,3;
  ipv4 { import all; export where proto = "s4"; next hop self; }; }
B
cat > $D/gob.toml <<G
[global.config]
  as = 64512
  router-id = "10.77.1.2"
  local-address-list = ["10.77.1.2"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "10.77.1.1"
    peer-as = 64512
  [neighbors.timers.config]
    connect-retry = 1
  [neighbors.transport.config]
    local-address = "10.77.1.2"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
G
mkdir -p $D/frr; chown frr:frr $D/frr
cat > $D/frr/bgpd.conf <<F
hostname capfrr
router bgp 64512
 bgp router-id 10.77.2.2
 no bgp ebgp-requires-policy
 no bgp network import-check
 neighbor 10.77.2.1 remote-as 64512
 neighbor 10.77.2.1 timers connect 1
 address-family ipv4 unicast
  network 10.233.124.0/24
  network 10.233.125.128/25
 exit-address-family
 address-family ipv6 unicast
  neighbor 10.77.2.1 activate
  network fd00:124::/64
 exit-address-family
F
echo "hostname capz" > $D/frr/zebra.conf; chown -R frr:frr $D/frr
cat > $D/exa.conf <<X
neighbor 10.77.3.1 {
  router-id 10.77.3.2; local-address 10.77.3.2; local-as 64512; peer-as 64512;
  family { ipv4 unicast; ipv6 unicast; }
  static {
    route 198.51.100.0/24 next-hop 10.77.3.2 med 50 community [64512:100 65000:1] large-community [64512:1:2] as-path [ 65001 4200000001 ] origin egp;
    route 198.51.101.0/25 next-hop 10.77.3.2 local-preference 200 atomic-aggregate aggregator ( 65001:10.0.0.1 ) originator-id 10.9.9.9 cluster-list [ 10.8.8.8 ];
    route 2001:db8:77::/48 next-hop fd77:3::2;
  }
}
X
cat > $D/b16.conf <<O
router id 10.77.4.2;
protocol device { scan time 2; }
protocol direct { interface "*"; }
protocol static { route 203.0.113.0/24 blackhole; }
protocol bgp Mesh_10_77_4_1 { local as 64513; neighbor 10.77.4.1 as 64512; hold time 9; connect delay time 1; connect retry time 2;
  import all; export where proto = "static1"; add paths on; graceful restart; source address 10.77.4.2; }
O
ip netns exec $HUB tcpdump -i any -U -w $D/cap.pcap 'tcp port 179' >$D/tcpdump.log 2>&1 & echo $! > $D/pids
sleep 1
ip netns exec $HUB bird -f -c $D/hub.conf -s $D/hub.ctl -P $D/hub.pid >$D/hub.log 2>&1 & echo $! >> $D/pids
ip netns exec ${S}gob gobgpd -f $D/gob.toml -p --api-hosts 127.0.0.1:50051 --pprof-disable > $D/gob.log 2>&1 & echo $! >> $D/pids
ip netns exec ${S}frr /usr/lib/frr/zebra -f $D/frr/zebra.conf -i $D/frr/zebra.pid -z $D/frr/zserv.api --vty_socket $D/frr > $D/zebra.log 2>&1 & echo $! >> $D/pids
sleep 0.5
ip netns exec ${S}frr /usr/lib/frr/bgpd -f $D/frr/bgpd.conf -i $D/frr/bgpd.pid -z $D/frr/zserv.api --vty_socket $D/frr -n > $D/bgpd.log 2>&1 & echo $! >> $D/pids
ip netns exec ${S}exa env exabgp.daemon.user=root exabgp.daemon.daemonize=false exabgp.log.destination=stdout exabgp $D/exa.conf > $D/exa.log 2>&1 & echo $! >> $D/pids
ip netns exec ${S}b16 /opt/brindle-ci/bird16/usr/sbin/bird -f -c $D/b16.conf -s $D/b16.ctl -P $D/b16.pid > $D/b16.log 2>&1 & echo $! >> $D/pids
sleep 6
ip netns exec ${S}gob gobgp -u 127.0.0.1 -p 50051 global rib add 10.233.87.0/24 nexthop 10.77.1.2 origin igp community 64512:7 >/dev/null
ip netns exec ${S}gob gobgp -u 127.0.0.1 -p 50051 global rib -a ipv6 add fd00:87::/64 nexthop fd77:1::2 >/dev/null || true
sleep 2
ip netns exec ${S}gob gobgp -u 127.0.0.1 -p 50051 global rib del 10.233.87.0/24 >/dev/null
sleep 1
birdc -s $D/hub.ctl disable s4 >/dev/null; sleep 1; birdc -s $D/hub.ctl enable s4 > /dev/null
sleep 1
birdc -s $D/hub.ctl reload in all > /dev/null; birdc -s $D/hub.ctl show protocols > $D/protocols.txt
sleep 1
birdc -s $D/hub.ctl disable b16 > /dev/null; birdc -s $D/hub.ctl disable gob >/dev/null
sleep 2
for p in $(tac $D/pids); do kill $p 2>/dev/null || true; done
sleep 1
for p in gob frr exa b16; do ip netns del ${S}$p; done; ip netns del $HUB
cat $D/protocols.txt
