//! What the server holds: the datasets it serves (loaded at start, plus uploads), its limits,
//! and bounded caches of the expensive intermediate results.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use custmap_engine::analytics::placement::Coverage;
use custmap_engine::analytics::HeatmapBase;
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
        self.get(id).ok_or_else(|| ApiError::not_found(format!("no dataset '{id}'")))
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
            "name '{id}': a dataset name is 1-64 characters of a-z, 0-9, '_' and '-', starting with a letter or digit"
        )))
    }
}

/// Limits and secrets.
#[derive(Debug, Clone)]
pub struct Config {
    /// Bearer token for writes; `None` refuses every write.
    pub token: Option<String>,
    /// Largest upload body, bytes.
    pub max_upload_bytes: usize,
    /// Most rows an upload may hold, all tables together.
    pub max_upload_rows: u64,
    /// Longest a request may take before it is answered 503.
    pub timeout: Duration,
    /// A Ballista scheduler that reduces customers for heatmaps (`serve --engine`); `None`:
    /// the local engine.
    pub cluster: Option<ClusterTarget>,
}

/// Where a server's heatmap reductions run when not locally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterTarget {
    pub host: String,
    pub port: u16,
    /// Longest one cluster query may take.
    pub timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            token: None,
            max_upload_bytes: 512 << 20,
            max_upload_rows: 20_000_000,
            timeout: Duration::from_secs(120),
            cluster: None,
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

/// Most heatmap bases and coverages kept.
pub const CACHE_ENTRIES: usize = 64;

/// Most computed replies (response bodies) kept.
pub const REPLY_ENTRIES: usize = 256;

/// Largest reply kept in the cache (bytes); bigger ones are recomputed from the cached base.
pub const REPLY_MAX_BYTES: usize = 4 << 20;

/// Shared state of every route.
#[derive(Clone)]
pub struct AppState {
    pub registry: Arc<Registry>,
    pub config: Arc<Config>,
    pub bases: Arc<Cache<BaseKey, HeatmapBase>>,
    pub coverages: Arc<Cache<CoverageKey, Coverage>>,
    /// Response bodies by (dataset version, route and normalised parameters).
    pub replies: Arc<Cache<(u64, String), super::Reply>>,
}

impl AppState {
    /// State serving `datasets` from memory, with no data directory and writes refused.
    #[must_use]
    pub fn new(datasets: Vec<Dataset>) -> Self {
        AppState::with(Registry::in_memory(datasets), Config::default())
    }

    #[must_use]
    pub fn with(registry: Registry, config: Config) -> Self {
        AppState {
            registry: Arc::new(registry),
            config: Arc::new(config),
            bases: Arc::new(Cache::new(CACHE_ENTRIES)),
            coverages: Arc::new(Cache::new(CACHE_ENTRIES)),
            replies: Arc::new(Cache::new(REPLY_ENTRIES)),
        }
    }
}
