//! The dashboard in headless Chromium, driven over the DevTools protocol: the map draws as many
//! hexagons as the engine computes, re-renders on a metric and a location change, a hovered
//! hexagon's tooltip shows that cell's figures, and the attribution and placement tabs fill in.
//! Screenshots land in `$CARGO_TARGET_TMPDIR/dashboard-*.png` (and `$CUSTMAP_SCREENSHOTS` when set).
//!
//! Needs Chromium (`.ci/run` installs Debian's `chromium`). Without one the test says so and
//! passes, unless `CUSTMAP_REQUIRE_BROWSER` is set, as in CI, where it fails.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use custmap::http::{app, AppState};
use custmap_engine::analytics::{HeatmapBase, HeatmapParams, KFloor, Location};
use custmap_engine::demo::{generate, DemoFormat, DemoParams};
use custmap_engine::spatial::Res;
use custmap_engine::Dataset;
use serde_json::{json, Value};

fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CUSTMAP_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|d| ["chromium", "chromium-browser", "google-chrome"].map(|n| d.join(n)))
        .find(|p| p.is_file())
}

/// One DevTools session on a page.
struct Cdp {
    ws: tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>,
    next: u64,
}

impl Cdp {
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        let msg = json!({"id": id, "method": method, "params": params}).to_string();
        self.ws.send(tungstenite::Message::text(msg)).expect("send to the browser");
        loop {
            let reply = self.ws.read().expect("read from the browser");
            let Ok(text) = reply.to_text() else { continue };
            let doc: Value = serde_json::from_str(text).unwrap_or(Value::Null);
            if doc["id"].as_u64() == Some(id) {
                assert!(doc.get("error").is_none(), "{method}: {doc}");
                return doc["result"].clone();
            }
        }
    }

    fn eval(&mut self, expression: &str) -> Value {
        let r = self
            .call("Runtime.evaluate", json!({"expression": expression, "returnByValue": true, "awaitPromise": true}));
        assert!(r.get("exceptionDetails").is_none(), "{expression}: {r}");
        r["result"]["value"].clone()
    }

    fn wait_for(&mut self, what: &str, expression: &str) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(60) {
            if self.eval(expression) == Value::Bool(true) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let error = self.eval("document.getElementById('error').textContent");
        panic!("timed out waiting for {what} (page error: {error})");
    }

    fn screenshot(&mut self, name: &str) -> PathBuf {
        let shot = self.call("Page.captureScreenshot", json!({"format": "png"}));
        let png = base64::engine::general_purpose::STANDARD.decode(shot["data"].as_str().unwrap()).unwrap();
        assert_eq!(&png[..4], b"\x89PNG");
        let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("dashboard-{name}.png"));
        std::fs::write(&path, &png).unwrap();
        if let Some(dir) = std::env::var_os("CUSTMAP_SCREENSHOTS") {
            std::fs::write(Path::new(&dir).join(format!("dashboard-{name}.png")), &png).unwrap();
        }
        path
    }
}

struct Browser(Child);

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A GET to the DevTools HTTP endpoint, which keeps the connection open: the body is read to its
/// Content-Length.
fn http_get(port: u16, path: &str) -> String {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return String::new() };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let Ok(n) = s.read(&mut chunk) else { return String::new() };
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>()))
                .and_then(Result::ok);
            if length.is_some_and(|n| body.len() >= n) {
                return body.to_string();
            }
        }
    }
    String::from_utf8_lossy(&buf).split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default()
}

/// Starts Chromium and attaches to its page.
fn launch(binary: &Path, profile: &Path) -> (Browser, Cdp) {
    let child = Command::new(binary)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--remote-debugging-port=0",
            "--window-size=1400,900",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("about:blank")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let browser = Browser(child);
    let port_file = profile.join("DevToolsActivePort");
    let start = Instant::now();
    let port: u16 = loop {
        if let Some(p) = std::fs::read_to_string(&port_file).ok().and_then(|t| t.lines().next()?.parse().ok()) {
            break p;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "chromium did not open its DevTools port");
        std::thread::sleep(Duration::from_millis(100));
    };
    let ws_url = loop {
        let list: Value = serde_json::from_str(&http_get(port, "/json/list")).unwrap_or(Value::Null);
        let page = list.as_array().and_then(|l| l.iter().find(|t| t["type"] == "page").cloned());
        if let Some(url) = page.and_then(|p| p["webSocketDebuggerUrl"].as_str().map(str::to_string)) {
            break url;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "chromium shows no page target");
        std::thread::sleep(Duration::from_millis(100));
    };
    let (ws, _) = tungstenite::connect(ws_url.as_str()).expect("attach to the page");
    (browser, Cdp { ws, next: 0 })
}

fn expected_cells(ds: &Dataset, location: Location) -> custmap_engine::polars::prelude::DataFrame {
    let params =
        HeatmapParams { res: Res::new(8).unwrap(), location, k: KFloor::new(5).unwrap(), ..HeatmapParams::default() };
    HeatmapBase::build(ds, location, None, params.res).unwrap().at(&params).unwrap().cells
}

#[test]
fn dashboard_in_headless_chromium() {
    let Some(binary) = chromium() else {
        assert!(
            std::env::var_os("CUSTMAP_REQUIRE_BROWSER").is_none(),
            "CUSTMAP_REQUIRE_BROWSER is set but no chromium was found"
        );
        eprintln!("no chromium on PATH: the dashboard browser test is skipped");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let city = dir.path().join("city");
    generate(
        &city,
        &DemoParams { customers: 4_000, seed: 8, format: DemoFormat::Csv, ..DemoParams::default() },
        &|_, _| {},
    )
    .unwrap();
    let ds = Dataset::load(&city).unwrap();
    let work = expected_cells(&ds, Location::Work);
    let home = expected_cells(&ds, Location::Home);
    assert_ne!(work.height(), home.height(), "the test needs the two maps to differ");

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    let config = custmap::http::Config { analyst_token: Some("dash-analyst".into()), ..Default::default() };
    let served = AppState::with(custmap::http::Registry::in_memory(vec![ds]), config);
    rt.spawn(async move { axum::serve(listener, app(served)).await });

    let profile = tempfile::tempdir().unwrap();
    let (_browser, mut cdp) = launch(&binary, profile.path());
    cdp.call(
        "Emulation.setDeviceMetricsOverride",
        json!({"width": 1400, "height": 900, "deviceScaleFactor": 1, "mobile": false}),
    );
    cdp.call("Page.navigate", json!({"url": format!("http://{addr}/")}));
    let map = "document.getElementById('map')";
    // A viewer without a token sees the public, differentially private map, and says so.
    cdp.wait_for("the first map", &format!("{map}?.dataset.state === 'ready'"));
    fn text(cdp: &mut Cdp, id: &str) -> String {
        cdp.eval(&format!("document.getElementById('{id}').textContent")).as_str().unwrap().to_string()
    }
    let badge = text(&mut cdp, "access");
    assert!(badge.contains("public view"), "{badge}");
    let status = text(&mut cdp, "map-status");
    assert!(status.contains("differentially private"), "{status}");
    assert_eq!(cdp.eval("document.getElementById('where').disabled"), json!(true));
    let shot = cdp.screenshot("public-map");
    eprintln!("screenshot: {}", shot.display());

    // An analyst pastes a token: the exact map under the floor, as the engine computes it.
    let change = |id: &str, value: &str| {
        format!("(() => {{ const s = document.getElementById('{id}'); s.value = '{value}'; s.dispatchEvent(new Event('change')); }})()")
    };
    cdp.eval(&change("token", "dash-analyst"));
    cdp.wait_for("the analyst map", &format!("{map}.dataset.state === 'ready' && {map}.dataset.draws === '2'"));
    let badge = text(&mut cdp, "access");
    assert!(badge.contains("analyst view"), "{badge}");
    let hexes = format!("{map}.querySelectorAll('path.hex').length");
    assert_eq!(cdp.eval(&hexes), json!(work.height()), "work map");
    assert_eq!(cdp.eval(&format!("{map}.querySelectorAll('path.district').length")), json!(13));

    // Change the metric: the map re-renders coloured by revenue, the same cells.
    cdp.eval(&change("metric", "revenue"));
    cdp.wait_for(
        "the revenue map",
        &format!(
            "{map}.dataset.state === 'ready' && {map}.dataset.metric === 'revenue' && {map}.dataset.draws === '3'"
        ),
    );
    assert_eq!(cdp.eval(&hexes), json!(work.height()));
    let legend = cdp.eval("document.getElementById('legend').textContent");
    assert!(legend.as_str().unwrap().contains("revenue"), "{legend}");

    // Change the location: a different set of cells, as many as the engine's home map.
    cdp.eval(&change("location", "home"));
    cdp.wait_for("the home map", &format!("{map}.dataset.state === 'ready' && {map}.dataset.draws === '4'"));
    assert_eq!(cdp.eval(&hexes), json!(home.height()), "home map");

    // Hover the largest hexagon's centre: the tooltip names that cell and its customer count.
    let centre = cdp.eval(&format!(
        "(() => {{ const hs = [...{map}.querySelectorAll('path.hex')]; \
         const r = hs.map(h => h.getBoundingClientRect()).sort((a, b) => b.width * b.height - a.width * a.height)[0]; \
         return [r.x + r.width / 2, r.y + r.height / 2]; }})()"
    ));
    let (x, y) = (centre[0].as_f64().unwrap(), centre[1].as_f64().unwrap());
    cdp.call("Input.dispatchMouseEvent", json!({"type": "mouseMoved", "x": x, "y": y}));
    cdp.wait_for("the tooltip", "!document.getElementById('tooltip').hidden");
    let tip = cdp.eval("document.getElementById('tooltip').innerText").as_str().unwrap().to_string();
    let hex = tip.split_whitespace().next().unwrap().to_string();
    let ids: Vec<Option<&str>> = home.column("hex_id").unwrap().str().unwrap().iter().collect();
    let row = ids
        .iter()
        .position(|h| *h == Some(hex.as_str()))
        .unwrap_or_else(|| panic!("tooltip cell {hex} not in the map: {tip}"));
    let customers = home.column("customers").unwrap().i64().unwrap().get(row).unwrap();
    let line = tip.lines().find(|l| l.starts_with("customers")).unwrap_or_else(|| panic!("no customers line: {tip}"));
    assert_eq!(line.split_whitespace().last(), Some(customers.to_string().as_str()), "{tip}");
    let shot = cdp.screenshot("map");
    eprintln!("screenshot: {}", shot.display());

    // Attribution tab: the charts load as images and the table fills.
    cdp.eval("document.querySelector('.tab[data-tab=attribution]').click()");
    cdp.wait_for(
        "the attribution charts",
        "['chart-roi','chart-compare','chart-funnel','chart-monthly'].every(id => { const i = document.getElementById(id); return i.complete && i.naturalWidth > 0; }) && document.querySelectorAll('#attr-table tr').length > 2",
    );
    cdp.screenshot("attribution");

    // Placement tab: a plan within budget, its table and its map.
    cdp.eval("document.querySelector('.tab[data-tab=placement]').click()");
    cdp.wait_for(
        "the placement plan",
        "document.querySelectorAll('#plan-table tr').length > 1 && document.getElementById('plan-map').naturalWidth > 0",
    );
    let status = cdp.eval("document.getElementById('plan-status').textContent");
    assert!(status.as_str().unwrap().contains("prospects"), "{status}");
    cdp.screenshot("placement");

    // Referrals tab: the channel multiplier table and the member-value summary.
    cdp.eval("document.querySelector('.tab[data-tab=referrals]').click()");
    cdp.wait_for(
        "the referrals table",
        "document.querySelectorAll('#ref-table tr').length > 1 && document.getElementById('ref-summary').textContent.includes('advocates')",
    );
    let header = cdp.eval("document.querySelector('#ref-table tr').innerText");
    assert!(header.as_str().unwrap().contains("multiplier"), "{header}");
    cdp.screenshot("referrals");
}
