//! A cache of large float buffers, reused across calls.
//!
//! A training step allocates the same large arrays (outputs, gradients, packed weights) every step.
//! Fresh allocations of that size come from `mmap`, so every step page-faults and zeroes them again:
//! measured at ~30% of a CNN-LSTM training step. Buffers handed back here (when NumPy frees an
//! output array, or a packed matrix is dropped) are kept by exact length and handed out again.
//! Bounded: at most `MAX_PER_LEN` buffers per length and `MAX_BYTES` in all; small buffers (which
//! malloc serves well) are not kept.
use std::collections::HashMap;
use std::sync::Mutex;

const MIN_FLOATS: usize = 16 << 10; // 64 KiB
const MAX_PER_LEN: usize = 8;
const MAX_BYTES: usize = 1 << 30;

struct Pool {
    free: HashMap<usize, Vec<Vec<f32>>>,
    bytes: usize,
}

static POOL: Mutex<Option<Pool>> = Mutex::new(None);

/// `SEQCORE_BUFFER_POOL=0` turns caching off (every buffer is freed when dropped).
fn enabled() -> bool {
    static ENABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ENABLED.get_or_init(|| std::env::var("SEQCORE_BUFFER_POOL").map_or(true, |v| v.trim() != "0"))
}

fn with_pool<R>(f: impl FnOnce(&mut Pool) -> R) -> R {
    let mut guard = POOL.lock().unwrap_or_else(|e| e.into_inner());
    f(guard.get_or_insert_with(|| Pool { free: HashMap::new(), bytes: 0 }))
}

/// A buffer of exactly `len` floats. Its contents are unspecified (zeros when new, stale data
/// when reused): callers write every element before reading any.
pub fn take(len: usize) -> Vec<f32> {
    if len >= MIN_FLOATS {
        let reused = with_pool(|p| {
            let v = p.free.get_mut(&len).and_then(|list| list.pop());
            if let Some(v) = &v {
                p.bytes -= v.capacity() * 4;
            }
            v
        });
        if let Some(mut v) = reused {
            v.truncate(len);
            return v;
        }
    }
    vec![0.0; len]
}

/// Hands a buffer back for reuse (or frees it when the pool is full or it is small).
pub fn give(mut v: Vec<f32>) {
    if v.capacity() < MIN_FLOATS || !enabled() {
        return;
    }
    // Keyed by the length it will be asked for again: the current length if set, else capacity.
    let len = if v.is_empty() { v.capacity() } else { v.len() };
    if v.len() < len {
        v.resize(len, 0.0);
    }
    with_pool(|p| {
        let bytes = v.capacity() * 4;
        let list = p.free.entry(len).or_default();
        if list.len() < MAX_PER_LEN && p.bytes + bytes <= MAX_BYTES {
            p.bytes += bytes;
            list.push(v);
        }
    });
}

/// Frees every cached buffer (`seqcore.release_memory()`).
pub fn clear() {
    with_pool(|p| {
        p.free.clear();
        p.bytes = 0;
    });
}

/// Bytes currently cached.
pub fn cached_bytes() -> usize {
    with_pool(|p| p.bytes)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reuses_by_length_and_bounds() {
        let n = super::MIN_FLOATS + 3;
        let mut a = super::take(n);
        a[0] = 42.0;
        let ptr = a.as_ptr();
        super::give(a);
        let b = super::take(n);
        assert_eq!(b.len(), n);
        assert_eq!(b.as_ptr(), ptr, "the same buffer comes back");
        super::give(b);
        assert!(super::cached_bytes() >= n * 4);
        let small = super::take(10);
        super::give(small); // not cached
        super::clear();
        assert_eq!(super::cached_bytes(), 0);
    }
}
