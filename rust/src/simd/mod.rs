//! Elementwise math with run-time SIMD dispatch.
//!
//! Each loop is written once, as plain branch-free Rust over slices (see [`math`]), and compiled three
//! times by [`multiversion!`]: with AVX-512, with AVX2+FMA, and for the baseline x86-64 (SSE2) target
//! that every CPU runs. The wheel is built without `target-cpu=native`; which copy runs is decided at
//! run time from `is_x86_feature_detected!`, and `SEQCORE_SIMD=portable|avx2|avx512` (read once) or
//! [`set_forced_level`] can force a lower level, so tests compare the paths in one process.
use std::sync::atomic::{AtomicU8, Ordering};

pub mod activation;
pub mod avx512;
pub mod math;

/// A SIMD code path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Level {
    /// Baseline x86-64 (SSE2) or non-x86 code: runs everywhere.
    Portable = 0,
    /// AVX2 + FMA (x86-64-v3).
    Avx2 = 1,
    /// AVX-512 F/VL/DQ/BW (x86-64-v4).
    Avx512 = 2,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Portable => "portable",
            Level::Avx2 => "avx2",
            Level::Avx512 => "avx512",
        }
    }

    /// Parses a level name; `scalar` is accepted as another name for `portable`.
    pub fn parse(s: &str) -> Option<Level> {
        match s.trim().to_ascii_lowercase().as_str() {
            "portable" | "scalar" | "sse2" => Some(Level::Portable),
            "avx2" => Some(Level::Avx2),
            "avx512" | "avx-512" => Some(Level::Avx512),
            _ => None,
        }
    }

    fn from_u8(v: u8) -> Level {
        match v {
            2 => Level::Avx512,
            1 => Level::Avx2,
            _ => Level::Portable,
        }
    }
}

/// The best level this CPU supports.
pub fn detected_level() -> Level {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512vl")
            && is_x86_feature_detected!("avx512dq")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
        {
            return Level::Avx512;
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            return Level::Avx2;
        }
    }
    Level::Portable
}

const UNSET: u8 = u8::MAX;
/// The level in use, cached; UNSET until first asked.
static ACTIVE: AtomicU8 = AtomicU8::new(UNSET);

/// The level the kernels use now: the detected one, lowered by `SEQCORE_SIMD` or [`set_forced_level`].
#[inline]
pub fn level() -> Level {
    let v = ACTIVE.load(Ordering::Relaxed);
    if v != UNSET {
        return Level::from_u8(v);
    }
    let detected = detected_level();
    let wanted = std::env::var("SEQCORE_SIMD").ok().and_then(|s| Level::parse(&s)).unwrap_or(detected);
    let lvl = wanted.min(detected); // never run instructions the CPU lacks
    ACTIVE.store(lvl as u8, Ordering::Relaxed);
    lvl
}

/// Forces a level (capped at what the CPU has) or, with `None`, returns to the detected one
/// (ignoring `SEQCORE_SIMD`). Returns the level now in use.
pub fn set_forced_level(level: Option<Level>) -> Level {
    let detected = detected_level();
    let lvl = level.unwrap_or(detected).min(detected);
    ACTIVE.store(lvl as u8, Ordering::Relaxed);
    lvl
}

/// Tests that force a level hold this for writing, and tests that compare two runs bit for bit hold it
/// for reading, so that a level forced by one test cannot change under the other (tests share the
/// process-wide level and run in parallel).
#[cfg(test)]
pub(crate) fn test_level_lock(force: bool) -> TestLevelGuard {
    static LOCK: std::sync::RwLock<()> = std::sync::RwLock::new(());
    if force {
        TestLevelGuard::Write(LOCK.write().unwrap_or_else(|e| e.into_inner()))
    } else {
        TestLevelGuard::Read(LOCK.read().unwrap_or_else(|e| e.into_inner()))
    }
}

#[cfg(test)]
#[allow(dead_code)] // held for its Drop only
pub(crate) enum TestLevelGuard {
    Read(std::sync::RwLockReadGuard<'static, ()>),
    Write(std::sync::RwLockWriteGuard<'static, ()>),
}

/// Defines `pub fn $name(args)` whose body is compiled for each [`Level`] and picked at run time.
/// The body must only call `#[inline(always)]` helpers, so that they are compiled with the features
/// of the copy they are inlined into.
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn body($($arg: $ty),*) $(-> $ret)? $body

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")]
            unsafe fn v4($($arg: $ty),*) $(-> $ret)? { body($($arg),*) }

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            unsafe fn v3($($arg: $ty),*) $(-> $ret)? { body($($arg),*) }

            match $crate::simd::level() {
                // SAFETY: `level()` never returns a level above what the CPU reports.
                #[cfg(target_arch = "x86_64")]
                $crate::simd::Level::Avx512 => unsafe { v4($($arg),*) },
                #[cfg(target_arch = "x86_64")]
                $crate::simd::Level::Avx2 => unsafe { v3($($arg),*) },
                _ => body($($arg),*),
            }
        }
    };
}
pub(crate) use multiversion;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_names() {
        let _level = test_level_lock(true);
        assert_eq!(Level::parse("scalar"), Some(Level::Portable));
        assert_eq!(Level::parse(" AVX2 "), Some(Level::Avx2));
        assert_eq!(Level::parse("avx512"), Some(Level::Avx512));
        assert_eq!(Level::parse("neon"), None);
        assert!(set_forced_level(Some(Level::Avx512)) <= detected_level());
        assert_eq!(set_forced_level(Some(Level::Portable)), Level::Portable);
        assert_eq!(set_forced_level(None), detected_level());
    }
}
