//! Losses with their gradient in one pass.
//!
//! `mse`: `L = mean((p - t)^2)` over every element, which is Keras's reduction (mean over the last
//! axis, then over the batch) for rectangular arrays; `∂L/∂p = 2 (p - t) / n`.
use crate::simd::multiversion;
use rayon::prelude::*;

const CHUNK: usize = 1 << 14;

multiversion! {
    fn mse_chunk(p: &[f32], t: &[f32], g: &mut [f32], scale: f32) -> f64 {
        // f32 partial sums over short strips, accumulated in f64: vectorizes and stays accurate.
        let mut total = 0.0f64;
        for ((pc, tc), gc) in p.chunks(256).zip(t.chunks(256)).zip(g.chunks_mut(256)) {
            let mut s = 0.0f32;
            for ((&a, &b), o) in pc.iter().zip(tc).zip(gc.iter_mut()) {
                let e = a - b;
                s += e * e;
                *o = scale * e;
            }
            total += s as f64;
        }
        total
    }
}

/// Returns the mean squared error and writes its gradient by `pred` into `grad`.
/// An empty input has an undefined mean: NaN.
pub fn mse(pred: &[f32], target: &[f32], grad: &mut [f32]) -> f64 {
    assert!(pred.len() == target.len() && pred.len() == grad.len(), "mse: lengths");
    let n = pred.len();
    if n == 0 {
        return f64::NAN;
    }
    let scale = 2.0 / n as f32;
    let sum: f64 = grad
        .par_chunks_mut(CHUNK)
        .zip(pred.par_chunks(CHUNK).zip(target.par_chunks(CHUNK)))
        .map(|(g, (p, t))| mse_chunk(p, t, g, scale))
        .sum();
    sum / n as f64
}

#[cfg(test)]
mod tests {
    #[test]
    fn mse_value_and_gradient() {
        let p: Vec<f32> = (0..50_001).map(|i| (i % 97) as f32 * 0.01).collect();
        let t: Vec<f32> = (0..50_001).map(|i| (i % 13) as f32 * 0.02).collect();
        let mut g = vec![0.0; p.len()];
        let l = crate::threads::install(|| super::mse(&p, &t, &mut g));
        let want: f64 = p.iter().zip(&t).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>() / p.len() as f64;
        assert!((l - want).abs() < 1e-6 * want);
        assert!((g[5] - 2.0 * (p[5] - t[5]) / p.len() as f32).abs() < 1e-9);
        assert!(super::mse(&[], &[], &mut []).is_nan());
    }
}
