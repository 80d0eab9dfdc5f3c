//! The thread pool every kernel runs in.
//!
//! Why our own pool rather than rayon's global one: the global pool cannot be resized once built, and
//! `seqcore.set_num_threads(n)` must work at any time. Why a pid check: a process forked from one
//! that used the pool inherits the pool's bookkeeping but none of its threads, so any job sent to it
//! would wait forever. Every entry point compares the current pid with the pool owner's and, in a
//! forked child, abandons the inherited pool (it is leaked on purpose: dropping it would try to
//! signal threads that do not exist in this process) and builds a fresh one.
//!
//! Every kernel runs with subnormal floats flushed to zero (FTZ and DAZ in MXCSR), as TensorFlow's
//! CPU threads do: a state gradient carried back through thousands of steps decays into the
//! subnormal range, where each multiply-add costs ~100 cycles on Intel cores. Measured on this
//! machine (Sapphire Rapids, AVX-512), LSTM(128) backward over (8, 5000, 8): 1.94 s with
//! subnormals, about 0.1 s without. The pool's threads keep the mode; a kernel run inline on the
//! caller's thread sets it for its duration and restores the caller's (NumPy's) mode after.
use std::sync::{Arc, Mutex};

struct PoolState {
    pid: u32,
    threads: usize,
    pool: Arc<rayon::ThreadPool>,
}

static POOL: Mutex<Option<PoolState>> = Mutex::new(None);
/// Requested size; 0 = not set (use `SEQCORE_NUM_THREADS`, else all cores).
static REQUESTED: Mutex<usize> = Mutex::new(0);

/// Thread count when the user has not chosen one: `SEQCORE_NUM_THREADS` if it parses to >= 1,
/// else the number of cores this process may use.
pub fn default_num_threads() -> usize {
    if let Ok(v) = std::env::var("SEQCORE_NUM_THREADS") {
        if let Ok(n) = v.trim().parse::<usize>() {
            if n >= 1 {
                return n;
            }
        }
    }
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding these locks cannot leave them inconsistent (plain assignments), so a
    // poisoned lock is still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Number of threads kernels will use.
pub fn get_num_threads() -> usize {
    let req = *lock(&REQUESTED);
    if req == 0 {
        default_num_threads()
    } else {
        req
    }
}

/// Set the number of threads kernels use (>= 1). Takes effect on the next kernel call.
pub fn set_num_threads(n: usize) -> Result<(), String> {
    if n == 0 {
        return Err("number of threads must be >= 1, got 0".into());
    }
    *lock(&REQUESTED) = n;
    Ok(())
}

fn pool() -> Arc<rayon::ThreadPool> {
    let want = get_num_threads();
    let pid = std::process::id();
    let mut guard = lock(&POOL);
    if let Some(state) = guard.as_ref() {
        if state.pid == pid && state.threads == want {
            return state.pool.clone();
        }
    }
    if let Some(old) = guard.take() {
        if old.pid != pid {
            // Inherited through fork(): its threads do not exist here. Never touch it again.
            std::mem::forget(old.pool);
        }
        // Same process, other size: dropping our handle lets rayon retire the old workers once
        // any job still running on them finishes.
    }
    let pool = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(want)
            .thread_name(|i| format!("seqcore-{i}"))
            .start_handler(|_| {
                flush_subnormals();
            })
            .build()
            .expect("building the seqcore thread pool"),
    );
    *guard = Some(PoolState { pid, threads: want, pool: pool.clone() });
    pool
}

/// Threads available to the running kernel: the pool's size inside [`install`], 1 on any other
/// thread (a kernel run inline by [`run`] must stay on its thread). Never starts rayon's global pool.
pub fn current_threads() -> usize {
    if rayon::current_thread_index().is_some() {
        rayon::current_num_threads()
    } else {
        1
    }
}

/// Runs `f` on every job: spread over the pool inside [`install`], in order on the calling thread
/// otherwise (a kernel run inline by [`run`]: a parallel iterator there would hand the jobs to rayon's
/// global pool, the wake-ups [`run`]'s `inline` exists to avoid).
pub fn for_each<T: Send>(jobs: Vec<T>, f: impl Fn(T) + Sync + Send) {
    use rayon::prelude::*;
    if rayon::current_thread_index().is_some() {
        jobs.into_par_iter().for_each(f);
    } else {
        jobs.into_iter().for_each(f);
    }
}

/// `f` of every job, in the jobs' order; threaded like [`for_each`].
pub fn map<T: Send, R: Send>(jobs: Vec<T>, f: impl Fn(T) -> R + Sync + Send) -> Vec<R> {
    use rayon::prelude::*;
    if rayon::current_thread_index().is_some() {
        jobs.into_par_iter().map(f).collect()
    } else {
        jobs.into_iter().map(f).collect()
    }
}

/// Runs `f` inside the pool, or on the calling thread when `inline` (for work too small to pay
/// for the hand-off to a pool thread, ~10-20 µs: e.g. a recurrent layer on one sample, whose time
/// loop is sequential anyway). Kernels size their parallelism with [`current_threads`].
pub fn run<R: Send>(inline: bool, f: impl FnOnce() -> R + Send) -> R {
    if inline {
        let saved = flush_subnormals();
        let _restore = RestoreFpMode(saved);
        f()
    } else {
        install(f)
    }
}

/// Sets flush-to-zero and denormals-are-zero on this thread; returns the previous mode.
#[cfg(target_arch = "x86_64")]
fn flush_subnormals() -> u32 {
    const FTZ: u32 = 1 << 15;
    const DAZ: u32 = 1 << 6;
    let mut old: u32 = 0;
    // SAFETY: stmxcsr/ldmxcsr read and write this thread's SSE control register only; the new
    // value differs from the old in the two flush bits, which every x86_64 CPU with SSE2 supports.
    unsafe {
        std::arch::asm!("stmxcsr [{}]", in(reg) &mut old, options(nostack, preserves_flags));
        let new = old | FTZ | DAZ;
        std::arch::asm!("ldmxcsr [{}]", in(reg) &new, options(nostack, readonly, preserves_flags));
    }
    old
}

#[cfg(not(target_arch = "x86_64"))]
fn flush_subnormals() -> u32 {
    0
}

/// Restores the floating-point mode [`flush_subnormals`] returned, also when the kernel panics.
struct RestoreFpMode(u32);

impl Drop for RestoreFpMode {
    fn drop(&mut self) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: writes back the value read from this thread's MXCSR by `flush_subnormals`.
        unsafe {
            std::arch::asm!("ldmxcsr [{}]", in(reg) &self.0, options(nostack, readonly, preserves_flags));
        }
    }
}

/// Run `f` inside the seqcore pool, so that rayon calls made by `f` (ours and the GEMM crate's)
/// use exactly `get_num_threads()` threads.
pub fn install<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    pool().install(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_flush_subnormals_and_restore_the_callers_mode() {
        // A product of subnormals the compiler cannot fold (`x * 1.0` it would fold to `x`).
        let half_tiny = || std::hint::black_box(1.0e-39f32) * std::hint::black_box(0.5f32);
        assert!(half_tiny() != 0.0, "the test thread starts without flushing");
        assert_eq!(run(true, half_tiny), 0.0);
        assert_eq!(install(half_tiny), 0.0);
        assert!(half_tiny() != 0.0, "the caller's mode is restored");
    }

    #[test]
    fn set_and_get() {
        let before = get_num_threads();
        assert!(set_num_threads(0).is_err());
        set_num_threads(3).unwrap();
        assert_eq!(get_num_threads(), 3);
        assert_eq!(install(rayon::current_num_threads), 3);
        set_num_threads(before).unwrap();
        assert_eq!(install(rayon::current_num_threads), before);
    }
}
