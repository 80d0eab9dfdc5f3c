//! Reusable scratch memory for kernels.
//!
//! Kernels need large temporaries (a backward pass's pre-activation gradient is as big as its
//! output). Allocating them on every call costs page faults that show in the profile, so each
//! calling thread keeps one grow-only buffer and lends it out. The buffer is taken out of its cell
//! while lent, so a nested call simply gets a fresh one.
use std::cell::RefCell;

/// Buffers larger than this are not kept after use (they are freed instead).
const KEEP_LIMIT_FLOATS: usize = 64 << 20; // 256 MiB

thread_local! {
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Calls `f` with a scratch slice of `len` floats. Its contents are unspecified (stale data from an
/// earlier use): `f` must write before it reads.
pub fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    let mut buf = SCRATCH.with(|c| std::mem::take(&mut *c.borrow_mut()));
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    let r = f(&mut buf[..len]);
    if buf.len() <= KEEP_LIMIT_FLOATS {
        SCRATCH.with(|c| {
            let mut cell = c.borrow_mut();
            if cell.len() < buf.len() {
                *cell = buf;
            }
        });
    }
    r
}

#[cfg(test)]
mod tests {
    #[test]
    fn nested_calls_get_distinct_buffers() {
        super::with_scratch(10, |a| {
            a.fill(1.0);
            super::with_scratch(10, |b| {
                b.fill(2.0);
            });
            assert!(a.iter().all(|&v| v == 1.0));
        });
    }
}
