use super::*;

fn view() -> ClusterView {
    ClusterView {
        title: "lab </script><b>x".into(),
        generated: "2026-12-07T16:00:00Z".into(),
        pools: vec![PoolEntry {
            name: "default-pool".into(),
            cidr: "10.233.64.0/18".into(),
        }],
        nodes: vec![NodeEntry {
            name: "bgp-master1".into(),
            address: "172.20.42.80/22".into(),
            asn: "64512".into(),
            agent: None,
            not_asked: false,
            blocks: vec![BlockEntry {
                cidr: "10.233.94.0/24".into(),
                pool: "default-pool".into(),
                capacity: 256,
                in_use: 3,
                pods: Vec::new(),
                other: vec!["10.233.94.0 ipipTunnelAddress".into()],
            }],
        }],
        sessions: Vec::new(),
    }
}

#[test]
fn the_state_is_embedded_and_cannot_close_its_script() {
    let page = page(Some(&view()));
    assert!(!page.contains("/*STATE*/"));
    assert!(
        !page.contains("</script><b>"),
        "a value closed the script element"
    );
    let start = page.find("type=\"application/json\">").unwrap() + "type=\"application/json\">".len();
    let end = start + page[start..].find("</script>").unwrap();
    let back: ClusterView = serde_json::from_str(&page[start..end]).unwrap();
    assert_eq!(back, view());
}

#[test]
fn served_page_fetches_its_state() {
    let page = page(None);
    assert!(page.contains(">null</script>"));
    assert!(page.contains("fetch(\"view.json\""));
    // Self-contained: nothing is loaded from elsewhere.
    for needle in ["http://", "https://", "src=", "<link"] {
        let hits: Vec<&str> = page.matches(needle).collect();
        let allowed = if needle == "http://" { 1 } else { 0 }; // the SVG namespace
        assert_eq!(hits.len(), allowed, "{needle} in the page");
    }
}
