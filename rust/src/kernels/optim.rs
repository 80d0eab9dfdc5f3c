//! Parameter updates and the small vector primitives they share.
use crate::simd::multiversion;
use rayon::prelude::*;

const CHUNK: usize = 1 << 15;

multiversion! {
    /// `y += a·x`
    pub fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
        for (o, &v) in y.iter_mut().zip(x) { *o += a * v; }
    }
}

/// Plain SGD: `param -= lr · grad`, threaded over chunks.
pub fn sgd(param: &mut [f32], grad: &[f32], lr: f32) {
    assert_eq!(param.len(), grad.len(), "sgd: lengths");
    param.par_chunks_mut(CHUNK).zip(grad.par_chunks(CHUNK)).for_each(|(p, g)| axpy(-lr, g, p));
}

#[cfg(test)]
mod tests {
    #[test]
    fn sgd_step() {
        let mut p = vec![1.0f32; 100_000];
        let g: Vec<f32> = (0..100_000).map(|i| i as f32).collect();
        crate::threads::install(|| super::sgd(&mut p, &g, 0.5));
        assert_eq!(p[0], 1.0);
        assert_eq!(p[99_999], 1.0 - 0.5 * 99_999.0);
    }
}
