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

multiversion! {
    /// Keras 3 SGD with momentum on one chunk: `v = μ·v − lr·g`; `p += μ·v − lr·g` (Nesterov) or `p += v`.
    fn momentum_chunk(p: &mut [f32], g: &[f32], v: &mut [f32], lr: f32, mu: f32, nesterov: bool) {
        for ((pp, &gg), vv) in p.iter_mut().zip(g).zip(v.iter_mut()) {
            let nv = mu * *vv - lr * gg;
            *vv = nv;
            *pp += if nesterov { mu * nv - lr * gg } else { nv };
        }
    }
}

multiversion! {
    /// Keras 3 Adam on one chunk (`alpha` already holds lr·√(1−β₂ᵗ)/(1−β₁ᵗ)); `wd` > 0 applies
    /// AdamW's decoupled weight decay `p −= lr·wd·p` first.
    #[allow(clippy::too_many_arguments)]
    fn adam_chunk(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], alpha: f32, b1: f32, b2: f32, eps: f32, lr_wd: f32) {
        for (((pp, &gg), mm), vv) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
            let mut pv = *pp;
            pv -= lr_wd * pv;
            let nm = *mm + (gg - *mm) * (1.0 - b1);
            let nv = *vv + (gg * gg - *vv) * (1.0 - b2);
            *mm = nm;
            *vv = nv;
            *pp = pv - alpha * nm / (nv.sqrt() + eps);
        }
    }
}

/// SGD with momentum over many parameter arrays in one call (threaded over chunks of all of them).
pub fn sgd_momentum(params: Vec<(&mut [f32], &[f32], &mut [f32])>, lr: f32, momentum: f32, nesterov: bool) {
    let mut jobs = Vec::new();
    for (p, g, v) in params {
        assert!(p.len() == g.len() && p.len() == v.len(), "sgd_momentum: lengths");
        for ((pc, gc), vc) in p.chunks_mut(CHUNK).zip(g.chunks(CHUNK)).zip(v.chunks_mut(CHUNK)) {
            jobs.push((pc, gc, vc));
        }
    }
    crate::threads::for_each(jobs, |(p, g, v)| momentum_chunk(p, g, v, lr, momentum, nesterov));
}

/// Hyper-parameters of one Adam(W) step.
#[derive(Clone, Copy, Debug)]
pub struct AdamStep {
    pub lr: f32,
    pub beta_1: f32,
    pub beta_2: f32,
    pub epsilon: f32,
    /// the step number, from 1
    pub t: u64,
    /// AdamW's decoupled weight decay (0 for Adam)
    pub weight_decay: f32,
}

/// One parameter array with its gradient and Adam moments: `(param, grad, m, v)`.
pub type AdamSlot<'a> = (&'a mut [f32], &'a [f32], &'a mut [f32], &'a mut [f32]);

/// Adam(W) over many parameter arrays in one call.
pub fn adam(params: Vec<AdamSlot>, s: AdamStep) {
    let t = s.t.max(1) as f64;
    let alpha = (s.lr as f64 * (1.0 - (s.beta_2 as f64).powf(t)).sqrt() / (1.0 - (s.beta_1 as f64).powf(t))) as f32;
    let lr_wd = s.lr * s.weight_decay;
    let mut jobs = Vec::new();
    for (p, g, m, v) in params {
        assert!(p.len() == g.len() && p.len() == m.len() && p.len() == v.len(), "adam: lengths");
        let it = p.chunks_mut(CHUNK).zip(g.chunks(CHUNK)).zip(m.chunks_mut(CHUNK)).zip(v.chunks_mut(CHUNK));
        for (((pc, gc), mc), vc) in it {
            jobs.push((pc, gc, mc, vc));
        }
    }
    crate::threads::for_each(jobs, |(p, g, m, v)| adam_chunk(p, g, m, v, alpha, s.beta_1, s.beta_2, s.epsilon, lr_wd));
}

#[cfg(test)]
mod update_tests {
    use super::*;

    #[test]
    fn adam_matches_the_keras_formula() {
        let mut p = vec![0.5f32, -1.0, 2.0];
        let g = vec![0.1f32, -0.2, 0.3];
        let (mut m, mut v) = (vec![0.0f32; 3], vec![0.0f32; 3]);
        let s = AdamStep { lr: 0.01, beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7, t: 1, weight_decay: 0.0 };
        crate::threads::install(|| adam(vec![(&mut p, &g, &mut m, &mut v)], s));
        // t = 1: m = 0.1 g, v = 0.001 g², alpha = lr·√0.001/0.1 ⇒ step = lr·sign(g) (up to eps)
        for (i, &x) in [0.5f32, -1.0, 2.0].iter().enumerate() {
            assert!((p[i] - (x - 0.01 * g[i].signum())).abs() < 1e-5, "{i}: {}", p[i]);
        }
    }

    #[test]
    fn momentum_and_nesterov() {
        let mut p = vec![1.0f32];
        let mut v = vec![0.5f32];
        sgd_momentum(vec![(&mut p, &[2.0], &mut v)], 0.1, 0.9, false);
        assert!((v[0] - (0.45 - 0.2)).abs() < 1e-6 && (p[0] - 1.25).abs() < 1e-6);
        let mut p = vec![1.0f32];
        let mut v = vec![0.5f32];
        sgd_momentum(vec![(&mut p, &[2.0], &mut v)], 0.1, 0.9, true);
        assert!((p[0] - (1.0 + 0.9 * 0.25 - 0.2)).abs() < 1e-6);
    }
}

multiversion! {
    /// Keras 3 RMSprop on one chunk: `v = ρv + (1−ρ)g²`; centered: `a = ρa + (1−ρ)g`, denominator
    /// `v − a² + ε`, else `v + ε`; `inc = lr·g/√den`; with momentum `m = μm + inc; p −= m`, else `p −= inc`.
    /// `avg` / `mom` are empty when not centered / no momentum.
    #[allow(clippy::too_many_arguments)]
    fn rmsprop_chunk(p: &mut [f32], g: &[f32], v: &mut [f32], avg: &mut [f32], mom: &mut [f32], lr: f32, rho: f32, eps: f32, mu: f32) {
        let centered = !avg.is_empty();
        let with_momentum = !mom.is_empty();
        for i in 0..p.len() {
            let gi = g[i];
            let vi = rho * v[i] + (1.0 - rho) * gi * gi;
            v[i] = vi;
            let den = if centered {
                let ai = rho * avg[i] + (1.0 - rho) * gi;
                avg[i] = ai;
                vi - ai * ai + eps
            } else {
                vi + eps
            };
            let inc = lr * gi / den.sqrt();
            if with_momentum {
                let mi = mu * mom[i] + inc;
                mom[i] = mi;
                p[i] -= mi;
            } else {
                p[i] -= inc;
            }
        }
    }
}

multiversion! {
    /// Keras 3 Adagrad on one chunk: `acc += g²; p −= lr·g/√(acc + ε)`.
    fn adagrad_chunk(p: &mut [f32], g: &[f32], acc: &mut [f32], lr: f32, eps: f32) {
        for ((pp, &gg), aa) in p.iter_mut().zip(g).zip(acc.iter_mut()) {
            let na = *aa + gg * gg;
            *aa = na;
            *pp -= lr * gg / (na + eps).sqrt();
        }
    }
}

/// One parameter array with RMSprop state: `(param, grad, velocity, average grad or empty,
/// momentum or empty)`.
pub type RmsSlot<'a> = (&'a mut [f32], &'a [f32], &'a mut [f32], &'a mut [f32], &'a mut [f32]);

/// RMSprop over many parameter arrays in one call.
pub fn rmsprop(params: Vec<RmsSlot>, lr: f32, rho: f32, epsilon: f32, momentum: f32) {
    let mut jobs = Vec::new();
    for (p, g, v, a, m) in params {
        let n = p.len();
        assert!(g.len() == n && v.len() == n && (a.is_empty() || a.len() == n) && (m.is_empty() || m.len() == n));
        let ac: Vec<&mut [f32]> = if a.is_empty() {
            (0..n.div_ceil(CHUNK)).map(|_| &mut [][..]).collect()
        } else {
            a.chunks_mut(CHUNK).collect()
        };
        let mc: Vec<&mut [f32]> = if m.is_empty() {
            (0..n.div_ceil(CHUNK)).map(|_| &mut [][..]).collect()
        } else {
            m.chunks_mut(CHUNK).collect()
        };
        for ((((pc, gc), vc), a1), m1) in
            p.chunks_mut(CHUNK).zip(g.chunks(CHUNK)).zip(v.chunks_mut(CHUNK)).zip(ac).zip(mc)
        {
            jobs.push((pc, gc, vc, a1, m1));
        }
    }
    crate::threads::for_each(jobs, |(p, g, v, a, m)| rmsprop_chunk(p, g, v, a, m, lr, rho, epsilon, momentum));
}

/// Adagrad over many parameter arrays `(param, grad, accumulator)` in one call.
pub fn adagrad(params: Vec<(&mut [f32], &[f32], &mut [f32])>, lr: f32, epsilon: f32) {
    let mut jobs = Vec::new();
    for (p, g, a) in params {
        assert!(p.len() == g.len() && p.len() == a.len(), "adagrad: lengths");
        for ((pc, gc), ac) in p.chunks_mut(CHUNK).zip(g.chunks(CHUNK)).zip(a.chunks_mut(CHUNK)) {
            jobs.push((pc, gc, ac));
        }
    }
    crate::threads::for_each(jobs, |(p, g, a)| adagrad_chunk(p, g, a, lr, epsilon));
}

#[cfg(test)]
mod rms_tests {
    #[test]
    fn rmsprop_and_adagrad_first_steps() {
        // RMSprop step 1, no momentum: v = 0.1 g², p -= lr g / sqrt(0.1 g² + eps)
        let (mut p, g, mut v) = (vec![1.0f32, -1.0], vec![0.5f32, -2.0], vec![0.0f32; 2]);
        super::rmsprop(vec![(&mut p, &g, &mut v, &mut [][..], &mut [][..])], 0.01, 0.9, 1e-7, 0.0);
        for i in 0..2 {
            let want = [1.0f32, -1.0][i] - 0.01 * g[i] / (0.1 * g[i] * g[i] + 1e-7).sqrt();
            assert!((p[i] - want).abs() < 1e-6);
        }
        let (mut p, g, mut a) = (vec![1.0f32], vec![2.0f32], vec![0.1f32]);
        super::adagrad(vec![(&mut p, &g, &mut a)], 0.1, 1e-7);
        assert!((a[0] - 4.1).abs() < 1e-6 && (p[0] - (1.0 - 0.2 / (4.1f32 + 1e-7).sqrt())).abs() < 1e-6);
    }
}
