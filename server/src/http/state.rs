//! What the server holds: the datasets it serves (loaded at start, plus uploads), its limits,
//! and bounded caches of the expensive intermediate results.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use custmap_engine::analytics::placement::Coverage;
use custmap_engine::analytics::privacy::ledger::{write_records, Ledger};
use custmap_engine::analytics::privacy::segments::{Answered, AnsweredSegments, Members};
use custmap_engine::analytics::{HeatmapBase, Policy, PublicRelease};
use custmap_engine::{Dataset, Error};

use super::ApiError;

/// Prefix of upload directories that are still being written; never loaded, swept at start.
pub const UPLOAD_PREFIX: &str = ".upload-";

/// One served dataset. `version` is unique per process: cached results are keyed by it, so a
/// dataset id that is ever reused can never be answered from another dataset's cache.
#[derive(Clone)]
pub struct Entry {
    pub dataset: Arc<Dataset>,
    pub version: u64,
}

/// The served datasets. Uploaded ones live under `data_dir/<id>/`, which appears at once (a
/// rename) when complete, so neither a reader nor a restart ever sees a half-written dataset.
#[derive(Default)]
pub struct Registry {
    data_dir: Option<PathBuf>,
    entries: RwLock<BTreeMap<String, Entry>>,
    versions: AtomicU64,
    /// Serialises the publish step (the existence check, the rename and the insert).
    pub(crate) publish: Mutex<()>,
}

impl Registry {
    /// A registry with no data directory: uploads are refused.
    #[must_use]
    pub fn in_memory(datasets: Vec<Dataset>) -> Self {
        let reg = Registry::default();
        for d in datasets {
            reg.insert(d);
        }
        reg
    }

    /// Opens `data_dir` (created if missing): removes what interrupted uploads left and loads
    /// every dataset directory in it. A directory that no longer loads is skipped with a warning
    /// rather than stopping the server.
    pub fn open(data_dir: &Path, served: Vec<Dataset>) -> Result<Self, Error> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| Error::Write { path: data_dir.into(), message: format!("data directory: {e}") })?;
        let reg = Registry { data_dir: Some(data_dir.to_path_buf()), ..Registry::in_memory(served) };
        let listing = std::fs::read_dir(data_dir).map_err(|source| Error::Read { path: data_dir.into(), source })?;
        let mut dirs: Vec<PathBuf> = listing.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_dir()).collect();
        dirs.sort();
        for dir in dirs {
            let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
            if name.starts_with(UPLOAD_PREFIX) {
                tracing::warn!(dir = %dir.display(), "removing an interrupted upload");
                let _ = std::fs::remove_dir_all(&dir);
                continue;
            }
            if name.starts_with('.') || valid_id(&name).is_err() {
                continue;
            }
            match Dataset::load(&dir) {
                Ok(d) if reg.get(&d.name).is_none() => {
                    tracing::info!(dataset = %d.name, customers = d.customers.height(), "loaded");
                    reg.insert(d);
                }
                Ok(d) => tracing::warn!(dataset = %d.name, "a dataset of this name is already served; skipped"),
                Err(e) => tracing::warn!(dir = %dir.display(), error = %e, "skipped a dataset that does not load"),
            }
        }
        Ok(reg)
    }

    #[must_use]
    pub fn data_dir(&self) -> Option<&Path> {
        self.data_dir.as_deref()
    }

    /// Serves `dataset` under its name, replacing nothing (callers check first).
    pub fn insert(&self, dataset: Dataset) -> Entry {
        let entry = Entry { version: self.versions.fetch_add(1, Ordering::Relaxed) + 1, dataset: Arc::new(dataset) };
        let mut map = self.entries.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.insert(entry.dataset.name.clone(), entry.clone());
        entry
    }

    #[must_use]
    pub fn get(&self, id: &str) -> Option<Entry> {
        self.entries.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(id).cloned()
    }

    pub fn entry(&self, id: &str) -> Result<Entry, ApiError> {
        self.get(id).ok_or_else(|| ApiError::not_found(format!("no dataset '{}'", super::error::bounded(id, 80))))
    }

    /// Every served dataset, by id.
    #[must_use]
    pub fn list(&self) -> Vec<Entry> {
        self.entries.read().unwrap_or_else(std::sync::PoisonError::into_inner).values().cloned().collect()
    }
}

/// A dataset id: 1-64 of `a-z 0-9 _ -`, starting with a letter or digit, so it is a safe
/// directory name and URL segment.
pub fn valid_id(id: &str) -> Result<(), ApiError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        && id.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "name '{}': a dataset name is 1-64 characters of a-z, 0-9, '_' and '-', starting with a letter or digit",
            super::error::bounded(id, 80)
        )))
    }
}

/// Limits and secrets.
#[derive(Clone)]
pub struct Config {
    /// Bearer token for writes (and exact reads); `None` refuses every write.
    pub token: Option<String>,
    /// Bearer token for exact reads under the floor (`CUSTMAP_ANALYST_TOKEN`); `None`: only the
    /// admin token reads exact figures.
    pub analyst_token: Option<String>,
    /// The floor, the filter rules and the public release (SPEC §3).
    pub policy: Policy,
    /// Key of the public release's noise: with it, the same data always gets the same noise, so
    /// a release recomputed (after a cache eviction or a restart with the same key) spends no
    /// new privacy budget. Random per process unless the data directory keeps one.
    pub noise_key: [u8; 32],
    /// Largest upload body, bytes.
    pub max_upload_bytes: usize,
    /// Most rows an upload may hold, all tables together.
    pub max_upload_rows: u64,
    /// Longest a request may take before it is answered 503.
    pub timeout: Duration,
    /// Engine computations run at once (default: the machine's cores).
    pub heavy_workers: usize,
    /// Engine computations that may wait for a worker; more are refused at once (503).
    pub heavy_queue: usize,
    /// A Ballista scheduler that reduces customers for heatmaps (`serve --engine`); `None`:
    /// the local engine.
    pub cluster: Option<ClusterTarget>,
    /// Longest a client may take to send a request's headers (and to start the next one on a
    /// kept-alive connection) before the connection is closed: a slow client holds nothing.
    pub header_timeout: Duration,
    /// Connections served at once; further clients wait in the kernel's accept queue.
    pub max_connections: usize,
    /// Longest an upload's body may stall between two pieces before it is answered 408 and its
    /// temporary files removed (uploads have no overall deadline: a large file on a slow link
    /// may take long, but it must keep moving).
    pub body_idle_timeout: Duration,
}

/// Where a server's heatmap reductions run when not locally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterTarget {
    pub host: String,
    pub port: u16,
    /// Longest one cluster query may take.
    pub timeout: Duration,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets are never printed.
        f.debug_struct("Config")
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("analyst_token", &self.analyst_token.as_ref().map(|_| "<set>"))
            .field("policy", &self.policy)
            .field("max_upload_bytes", &self.max_upload_bytes)
            .field("max_upload_rows", &self.max_upload_rows)
            .field("timeout", &self.timeout)
            .field("heavy_workers", &self.heavy_workers)
            .field("heavy_queue", &self.heavy_queue)
            .field("cluster", &self.cluster)
            .finish_non_exhaustive()
    }
}

/// 32 bytes from the operating system's generator.
#[must_use]
pub fn random_key() -> [u8; 32] {
    use rand::{RngCore, TryRngCore};
    let mut key = [0u8; 32];
    if rand::rngs::OsRng.try_fill_bytes(&mut key).is_err() {
        rand::rng().fill_bytes(&mut key);
    }
    key
}

/// The noise key kept in `data_dir/.noise-key` (created, readable by the owner only, when
/// missing), so a restart draws the same public noise for the same data.
pub fn noise_key_in(data_dir: &Path) -> Result<[u8; 32], Error> {
    let path = data_dir.join(".noise-key");
    if let Ok(bytes) = std::fs::read(&path) {
        if let Ok(key) = <[u8; 32]>::try_from(bytes.as_slice()) {
            return Ok(key);
        }
        tracing::warn!(path = %path.display(), "the noise key is not 32 bytes; writing a new one");
    }
    std::fs::create_dir_all(data_dir)
        .map_err(|e| Error::Write { path: data_dir.into(), message: format!("data directory: {e}") })?;
    let key = random_key();
    let tmp = data_dir.join(".noise-key.tmp");
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(&tmp)?;
        f.write_all(&key)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|e| Error::Write { path: path.clone(), message: e.to_string() })?;
    Ok(key)
}

impl Default for Config {
    fn default() -> Self {
        Config {
            token: None,
            analyst_token: None,
            policy: Policy::default(),
            noise_key: random_key(),
            max_upload_bytes: 512 << 20,
            max_upload_rows: 20_000_000,
            timeout: Duration::from_secs(120),
            heavy_workers: std::thread::available_parallelism().map_or(2, std::num::NonZero::get),
            heavy_queue: 16,
            cluster: None,
            header_timeout: Duration::from_secs(10),
            max_connections: 1024,
            body_idle_timeout: Duration::from_secs(30),
        }
    }
}

/// A bounded map that forgets the least recently used entry when full.
pub struct Cache<K, V> {
    capacity: usize,
    inner: Mutex<(u64, HashMap<K, (u64, Arc<V>)>)>,
}

impl<K: Eq + Hash + Clone, V> Cache<K, V> {
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Cache { capacity: capacity.max(1), inner: Mutex::new((0, HashMap::new())) }
    }

    pub fn get(&self, key: &K) -> Option<Arc<V>> {
        let mut guard = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (clock, map) = &mut *guard;
        *clock += 1;
        let now = *clock;
        map.get_mut(key).map(|(used, v)| {
            *used = now;
            v.clone()
        })
    }

    /// The first cached value whose key satisfies `pick`.
    pub fn find(&self, pick: impl Fn(&K) -> bool) -> Option<Arc<V>> {
        let guard = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        guard.1.iter().find(|(k, _)| pick(k)).map(|(_, (_, v))| v.clone())
    }

    pub fn insert(&self, key: K, value: Arc<V>) {
        let mut guard = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (clock, map) = &mut *guard;
        *clock += 1;
        if map.len() >= self.capacity && !map.contains_key(&key) {
            if let Some(oldest) = map.iter().min_by_key(|(_, (used, _))| *used).map(|(k, _)| k.clone()) {
                map.remove(&oldest);
            }
        }
        map.insert(key, (*clock, value));
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner).1.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Key of a cached heatmap base: dataset version, location, segment, resolution.
pub type BaseKey = (u64, &'static str, Option<String>, u8);

/// Key of a cached coverage: dataset version, segment, reach mode, weight, radius overrides.
pub type CoverageKey = (u64, Option<String>, String, String, String);

/// Key of a cached public release: dataset version, location, resolution.
pub type PublicKey = (u64, &'static str, u8);

/// Most heatmap bases and coverages kept.
pub const CACHE_ENTRIES: usize = 64;

/// Most computed replies (response bodies) kept.
pub const REPLY_ENTRIES: usize = 256;

/// Largest reply kept in the cache (bytes); bigger ones are recomputed from the cached base.
pub const REPLY_MAX_BYTES: usize = 4 << 20;

/// The outcome of one computation, shared by every request waiting on it.
pub type Outcome = Option<Result<Arc<super::Reply>, (axum::http::StatusCode, String)>>;

/// Admission control and single flight for heavy engine work (see [`super::cached`]).
pub struct Heavy {
    /// Permits to run engine work: the machine's cores by default.
    running: Arc<tokio::sync::Semaphore>,
    /// Computations admitted (running or waiting for a permit).
    admitted: Arc<AtomicU64>,
    /// Most computations admitted at once: running plus queued.
    limit: u64,
    in_flight: Mutex<HashMap<(u64, String), tokio::sync::watch::Receiver<Outcome>>>,
    /// Computations started (each distinct key once while in flight).
    pub started: AtomicU64,
    /// Computations dropped before they ran because every caller had left.
    pub abandoned: AtomicU64,
}

impl Heavy {
    #[must_use]
    pub fn new(workers: usize, queue: usize) -> Self {
        let workers = workers.max(1);
        Heavy {
            running: Arc::new(tokio::sync::Semaphore::new(workers)),
            admitted: Arc::new(AtomicU64::new(0)),
            limit: (workers + queue) as u64,
            in_flight: Mutex::new(HashMap::new()),
            started: AtomicU64::new(0),
            abandoned: AtomicU64::new(0),
        }
    }

    /// Removes `key`'s flight when no caller watches it any more (the map's own receiver is the
    /// only one left); says whether it did.
    fn forget_if_unwatched(&self, key: &(u64, String), tx: &tokio::sync::watch::Sender<Outcome>) -> bool {
        let mut flights = self.in_flight.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let unwatched = tx.receiver_count() <= 1;
        if unwatched {
            flights.remove(key);
        }
        unwatched
    }

    /// The computation of `key`: the one in flight, or a new one if admitted.
    pub fn join_or_start<F>(
        &self,
        state: &AppState,
        key: (u64, String),
        work: F,
    ) -> Result<tokio::sync::watch::Receiver<Outcome>, ApiError>
    where
        F: FnOnce() -> Result<super::Reply, ApiError> + Send + 'static,
    {
        let mut flights = self.in_flight.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // A sender gone without an answer (its task panicked) is replaced, never joined.
        if let Some(rx) = flights.get(&key).filter(|rx| rx.has_changed().is_ok()) {
            return Ok(rx.clone());
        }
        if self.admitted.fetch_add(1, Ordering::SeqCst) >= self.limit {
            self.admitted.fetch_sub(1, Ordering::SeqCst);
            return Err(ApiError::busy(self.limit));
        }
        self.started.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = tokio::sync::watch::channel(None);
        flights.insert(key.clone(), rx.clone());
        drop(flights);
        let (running, admitted, state) = (self.running.clone(), self.admitted.clone(), state.clone());
        let span = tracing::Span::current();
        tokio::spawn(async move {
            /// Gives the admission back however the task ends.
            struct Admitted(Arc<AtomicU64>);
            impl Drop for Admitted {
                fn drop(&mut self) {
                    self.0.fetch_sub(1, Ordering::SeqCst);
                }
            }
            let admitted = Admitted(admitted);
            let outcome = match running.acquire_owned().await {
                // Every caller left (gave up, or passed the deadline) while it queued: nobody
                // would read it, so it never starts (the flight map's own receiver is the one).
                // Checked under the flight map's lock, and the flight removed with it, so no caller
                // can join between the check and the removal.
                Ok(_permit) if state.heavy.forget_if_unwatched(&key, &tx) => {
                    state.heavy.abandoned.fetch_add(1, Ordering::Relaxed);
                    Err(ApiError::new(
                        axum::http::StatusCode::SERVICE_UNAVAILABLE,
                        "every caller left before this computation started; ask again",
                    ))
                }
                Ok(_permit) => super::blocking(move || span.in_scope(work)).await,
                Err(e) => Err(ApiError::internal(e)),
            };
            drop(admitted);
            let outcome = outcome.map(Arc::new).map_err(|e| (e.status, e.detail));
            if let Ok(reply) = &outcome {
                if reply.body.len() <= REPLY_MAX_BYTES {
                    state.replies.insert(key.clone(), reply.clone());
                }
            }
            state.heavy.in_flight.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&key);
            let _ = tx.send(Some(outcome));
        });
        Ok(rx)
    }
}

/// Shared state of every route.
#[derive(Clone)]
pub struct AppState {
    pub registry: Arc<Registry>,
    pub config: Arc<Config>,
    pub bases: Arc<Cache<BaseKey, HeatmapBase>>,
    pub coverages: Arc<Cache<CoverageKey, Coverage>>,
    /// Public releases (deterministic in the noise key and the data, so an eviction costs time,
    /// never privacy budget).
    pub public: Arc<Cache<PublicKey, PublicRelease>>,
    /// Response bodies by (dataset version, route and normalised parameters).
    pub replies: Arc<Cache<(u64, String), super::Reply>>,
    /// Admission control and single flight of engine work.
    pub heavy: Arc<Heavy>,
    /// What each dataset has released exactly, against differencing.
    pub ledgers: Arc<Ledgers>,
}

impl AppState {
    /// State serving `datasets` from memory, with no data directory and writes refused.
    #[must_use]
    pub fn new(datasets: Vec<Dataset>) -> Self {
        AppState::with(Registry::in_memory(datasets), Config::default())
    }

    #[must_use]
    pub fn with(registry: Registry, config: Config) -> Self {
        let heavy = Arc::new(Heavy::new(config.heavy_workers, config.heavy_queue));
        let ledgers = Arc::new(Ledgers::new(registry.data_dir().map(|d| d.join(LEDGER_DIR))));
        AppState {
            heavy,
            ledgers,
            registry: Arc::new(registry),
            config: Arc::new(config),
            bases: Arc::new(Cache::new(CACHE_ENTRIES)),
            coverages: Arc::new(Cache::new(CACHE_ENTRIES)),
            public: Arc::new(Cache::new(CACHE_ENTRIES)),
            replies: Arc::new(Cache::new(REPLY_ENTRIES)),
        }
    }
}

/// The folder of `data_dir` that holds the release ledgers, one file per dataset id.
pub const LEDGER_DIR: &str = ".ledger";

/// The release ledger of each dataset id (see `custmap_engine::analytics::privacy::ledger`):
/// kept by id, not version, so a new upload under the same id is held to what the old one
/// released. With a data directory each ledger is an append-only file there, read back at the
/// first use after a restart; without one, in memory.
pub struct Ledgers {
    dir: Option<PathBuf>,
    open: Mutex<HashMap<String, Arc<Mutex<LedgerSlot>>>>,
}

struct LedgerSlot {
    ledger: Ledger,
    file: Option<std::fs::File>,
    /// The members of the segments answered, for the dataset version in use.
    segments: Option<AnsweredSegments>,
}

impl Ledgers {
    #[must_use]
    pub fn new(dir: Option<PathBuf>) -> Self {
        Ledgers { dir, open: Mutex::new(HashMap::new()) }
    }

    fn slot(&self, id: &str) -> Result<Arc<Mutex<LedgerSlot>>, ApiError> {
        let mut open = self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(slot) = open.get(id) {
            return Ok(slot.clone());
        }
        let slot = match &self.dir {
            None => LedgerSlot { ledger: Ledger::new(), file: None, segments: None },
            Some(dir) => {
                let failed = |e: std::io::Error| ApiError::internal(format!("release ledger of '{id}': {e}"));
                std::fs::create_dir_all(dir).map_err(failed)?;
                let path = dir.join(id);
                let bytes = match std::fs::read(&path) {
                    Ok(b) => b,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                    Err(e) => return Err(failed(e)),
                };
                // A last line cut short by a crash is dropped from the file too, so the next record
                // starts a line of its own.
                let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
                let ledger = Ledger::read(&bytes[..whole])?;
                let file = std::fs::OpenOptions::new().create(true).append(true).open(&path).map_err(failed)?;
                if whole < bytes.len() {
                    file.set_len(whole as u64).map_err(failed)?;
                }
                LedgerSlot { ledger, file: Some(file), segments: None }
            }
        };
        let slot = Arc::new(Mutex::new(slot));
        open.insert(id.to_string(), slot.clone());
        Ok(slot)
    }

    /// What segment `text` (members `members`) of dataset `id` at `version` is answered as,
    /// under floor `k` (see `custmap_engine::analytics::privacy::segments`): under the
    /// dataset's lock, with the answered segments' sets rebuilt from the ledger when the
    /// version changed; a new segment is written down before the answer goes out.
    pub fn answer_segment(
        &self,
        id: &str,
        version: u64,
        customers: &custmap_engine::polars::prelude::DataFrame,
        text: &str,
        members: Members,
        k: u32,
    ) -> Result<Answered, ApiError> {
        let slot = self.slot(id)?;
        let mut slot = slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let slot = &mut *slot;
        if slot.segments.as_ref().is_none_or(|s| s.version() != version) {
            slot.segments = Some(AnsweredSegments::new(version, customers)?);
        }
        let seen = slot.segments.as_mut().expect("set above");
        seen.sync(&slot.ledger, customers, k);
        let answered = seen.answer(&mut slot.ledger, text, members, k)?;
        let fresh = slot.ledger.take_fresh();
        if let Some(file) = slot.file.as_mut() {
            write_records(file, &fresh).map_err(|e| ApiError::internal(format!("release ledger of '{id}': {e}")))?;
        }
        Ok(answered)
    }

    /// Runs `f` on dataset `id`'s ledger, alone, then writes down what it recorded. Releases
    /// of one dataset are checked one at a time, so two at once cannot both pass.
    pub fn with<R>(&self, id: &str, f: impl FnOnce(&mut Ledger) -> Result<R, ApiError>) -> Result<R, ApiError> {
        let slot = self.slot(id)?;
        let mut slot = slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let out = f(&mut slot.ledger)?;
        let fresh = slot.ledger.take_fresh();
        if let Some(file) = slot.file.as_mut() {
            write_records(file, &fresh).map_err(|e| ApiError::internal(format!("release ledger of '{id}': {e}")))?;
        }
        Ok(out)
    }
}
