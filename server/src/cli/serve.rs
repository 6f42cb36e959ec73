//! `serve`: the HTTP API and dashboard.

#[allow(clippy::wildcard_imports)]
use super::*;

pub(super) fn run_serve(
    dir: Option<&Path>,
    addr: &str,
    data_dir: &Path,
    config: custmap::http::Config,
) -> Result<(), Error> {
    // Keeps a generated demo city alive for as long as the server runs.
    let mut demo_dir = None;
    let dir = match dir {
        Some(d) => d.to_path_buf(),
        None => {
            let tmp = tempfile::tempdir().map_err(|e| Error::Internal(format!("temporary directory: {e}")))?;
            let city = tmp.path().join("demo");
            eprintln!("generating the demo city ({} customers) ...", DemoParams::default().customers);
            demo::generate(&city, &DemoParams::default(), &|_, _| {})?;
            demo_dir = Some(tmp);
            city
        }
    };
    let ds = load(&dir, &Table::ALL)?;
    let registry = custmap::http::Registry::open(data_dir, vec![ds])?;
    let names: Vec<String> = registry.list().iter().map(|e| e.dataset.name.clone()).collect();
    let writes = if config.token.is_some() { "uploads on" } else { "uploads off (set CUSTMAP_TOKEN)" };
    let exact = if config.analyst_token.is_some() || config.token.is_some() {
        format!("exact figures with a token, floor k = {}", config.policy.min_k.get())
    } else {
        "exact figures off (set CUSTMAP_ANALYST_TOKEN)".to_string()
    };
    let public = format!(
        "public: differentially private heatmaps, epsilon {} per dataset version, res {:?}",
        config.policy.public.epsilon, config.policy.public.resolutions
    );
    let runtime = tokio::runtime::Runtime::new().map_err(|e| Error::Internal(format!("runtime: {e}")))?;
    eprintln!(
        "serving {} on http://{addr}/ (API under /api/v1/; {public}; {exact}; {writes}, data directory {}); Ctrl-C to stop",
        names.join(", "),
        data_dir.display()
    );
    let state = custmap::http::AppState::with(registry, config);
    let result = runtime.block_on(custmap::http::serve(state, addr));
    drop(demo_dir);
    result.map_err(|e| Error::Write { path: addr.into(), message: format!("cannot serve: {e}") })
}
