//! Measurement helpers: latency percentiles, directory sizes, process I/O
//! counters and page-cache eviction (for cold reads).

use anyhow::Result;
use std::os::unix::fs::MetadataExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub struct Percentiles {
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

/// `lat` in nanoseconds; sorted in place.
pub fn percentiles(lat: &mut [u64]) -> Percentiles {
    lat.sort_unstable();
    let at = |q: f64| {
        let i = ((lat.len() as f64 * q).ceil() as usize).clamp(1, lat.len()) - 1;
        Duration::from_nanos(lat[i])
    };
    Percentiles {
        p50: at(0.50),
        p99: at(0.99),
        max: Duration::from_nanos(*lat.last().unwrap()),
    }
}

pub fn median(v: &mut [Duration]) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let ty = e.file_type()?;
        if ty.is_dir() {
            files(&e.path(), out)?;
        } else if ty.is_file() {
            out.push(e.path());
        }
    }
    Ok(())
}

/// (apparent bytes, allocated bytes) of all files under `dir`.
pub fn dir_size(dir: &Path) -> Result<(u64, u64)> {
    let mut fs = Vec::new();
    files(dir, &mut fs)?;
    let (mut apparent, mut allocated) = (0, 0);
    for f in fs {
        let m = std::fs::metadata(&f)?;
        apparent += m.len();
        allocated += m.blocks() * 512;
    }
    Ok((apparent, allocated))
}

/// Bytes this process has caused to be sent to the block layer (`/proc/self/io`).
pub fn proc_write_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| {
                    l.strip_prefix("write_bytes: ")
                        .map(|v| v.trim().parse().ok())
                })
                .flatten()
        })
        .unwrap_or(0)
}

/// Drops the OS page cache for every file under `dir` (the store must be
/// closed). Makes the next open/read genuinely cold without touching the rest
/// of the machine.
pub fn evict_page_cache(dir: &Path) -> Result<()> {
    let mut fs = Vec::new();
    files(dir, &mut fs)?;
    for f in fs {
        let file = std::fs::File::open(&f)?;
        file.sync_all()?; // dirty pages cannot be dropped
        unsafe {
            libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
        }
    }
    Ok(())
}

pub fn fresh_dir(root: &Path, name: &str) -> Result<PathBuf> {
    let d = root.join(name);
    if d.exists() {
        std::fs::remove_dir_all(&d)?;
    }
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

pub fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else if ms >= 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.2} ms")
    }
}

pub fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0))
}
