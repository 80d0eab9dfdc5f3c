//! Activations and their derivatives, multiversioned. Derivatives are taken from the activation's
//! *output* `y` (never its input), so a forward pass only has to keep what it returns anyway.
use super::math;
use super::multiversion;

/// The activations seqcore fuses into its kernels (Keras names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Linear,
    Relu,
    Sigmoid,
    HardSigmoid,
    Tanh,
    /// Over the last axis (rows of width `units`).
    Softmax,
}

impl Activation {
    pub const NAMES: &'static [&'static str] = &["linear", "relu", "sigmoid", "hard_sigmoid", "tanh", "softmax"];

    pub fn parse(name: &str) -> Option<Activation> {
        Some(match name {
            "linear" | "None" | "" => Activation::Linear,
            "relu" => Activation::Relu,
            "sigmoid" => Activation::Sigmoid,
            "hard_sigmoid" => Activation::HardSigmoid,
            "tanh" => Activation::Tanh,
            "softmax" => Activation::Softmax,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Activation::Linear => "linear",
            Activation::Relu => "relu",
            Activation::Sigmoid => "sigmoid",
            Activation::HardSigmoid => "hard_sigmoid",
            Activation::Tanh => "tanh",
            Activation::Softmax => "softmax",
        }
    }

    /// Applies the activation in place to `data`, rows of `width` (only softmax looks at rows).
    pub fn forward_inplace(self, data: &mut [f32], width: usize) {
        match self {
            Activation::Linear => {}
            Activation::Relu => relu_inplace(data),
            Activation::Sigmoid => sigmoid_inplace(data),
            Activation::HardSigmoid => hard_sigmoid_inplace(data),
            Activation::Tanh => tanh_inplace(data),
            Activation::Softmax => {
                if width > 0 {
                    for row in data.chunks_exact_mut(width) {
                        softmax_row(row);
                    }
                }
            }
        }
    }

    /// In place: on entry `buf` holds the output `y = f(z)`, on exit `dy · f'(z)`. Elementwise
    /// activations only (not softmax), which is all the recurrent cells use.
    pub fn grad_from_output_inplace(self, buf: &mut [f32], dy: &[f32]) {
        debug_assert_eq!(buf.len(), dy.len());
        match self {
            Activation::Linear => buf.copy_from_slice(dy),
            Activation::Relu => relu_grad_inplace(buf, dy),
            Activation::Sigmoid => sigmoid_grad_inplace(buf, dy),
            Activation::HardSigmoid => hard_sigmoid_grad_inplace(buf, dy),
            Activation::Tanh => tanh_grad_inplace(buf, dy),
            Activation::Softmax => unreachable!("softmax is not an elementwise activation"),
        }
    }

    /// `dz = dy · f'(z)` computed from the output `y = f(z)`. Rows of `width` (softmax only).
    pub fn backward(self, y: &[f32], dy: &[f32], dz: &mut [f32], width: usize) {
        debug_assert!(y.len() == dy.len() && dy.len() == dz.len());
        match self {
            Activation::Linear => dz.copy_from_slice(dy),
            Activation::Relu => relu_grad(y, dy, dz),
            Activation::Sigmoid => sigmoid_grad(y, dy, dz),
            Activation::HardSigmoid => hard_sigmoid_grad(y, dy, dz),
            Activation::Tanh => tanh_grad(y, dy, dz),
            Activation::Softmax => {
                if width > 0 {
                    for ((yr, dyr), dzr) in
                        y.chunks_exact(width).zip(dy.chunks_exact(width)).zip(dz.chunks_exact_mut(width))
                    {
                        softmax_row_grad(yr, dyr, dzr);
                    }
                }
            }
        }
    }
}

/// All ones where `o > 0`, zero elsewhere (NaN included).
#[inline(always)]
fn gt_zero_mask(o: f32) -> u32 {
    ((o > 0.0) as u32).wrapping_neg()
}

multiversion! {
    pub fn relu_inplace(d: &mut [f32]) { for v in d.iter_mut() { *v = math::relu(*v); } }
}
multiversion! {
    pub fn sigmoid_inplace(d: &mut [f32]) { for v in d.iter_mut() { *v = math::sigmoid(*v); } }
}
multiversion! {
    pub fn hard_sigmoid_inplace(d: &mut [f32]) { for v in d.iter_mut() { *v = math::hard_sigmoid(*v); } }
}
multiversion! {
    pub fn tanh_inplace(d: &mut [f32]) { for v in d.iter_mut() { *v = math::tanh(*v); } }
}
multiversion! {
    /// Numerically stable softmax of one row, in place.
    pub fn softmax_row(row: &mut [f32]) {
        let mut m = f32::NEG_INFINITY;
        for &v in row.iter() { m = if v > m { v } else { m }; }
        let mut s = 0.0f32;
        for v in row.iter_mut() { *v = math::exp(*v - m); s += *v; }
        let inv = 1.0 / s;
        for v in row.iter_mut() { *v *= inv; }
    }
}
multiversion! {
    pub fn relu_grad(y: &[f32], dy: &[f32], dz: &mut [f32]) {
        // A bit mask, not a branch: `if o > 0 { g } else { 0 }` compiled to a scalar loop (measured
        // 1.4 ms for 2M values, slower than tanh's gradient).
        for ((z, &g), &o) in dz.iter_mut().zip(dy).zip(y) { *z = f32::from_bits(g.to_bits() & gt_zero_mask(o)); }
    }
}
multiversion! {
    pub fn sigmoid_grad(y: &[f32], dy: &[f32], dz: &mut [f32]) {
        for ((z, &g), &o) in dz.iter_mut().zip(dy).zip(y) { *z = g * o * (1.0 - o); }
    }
}
multiversion! {
    pub fn hard_sigmoid_grad(y: &[f32], dy: &[f32], dz: &mut [f32]) {
        // Slope 1/6 strictly inside the linear piece, 0 on the clipped parts.
        for ((z, &g), &o) in dz.iter_mut().zip(dy).zip(y) {
            *z = if o > 0.0 && o < 1.0 { g * (1.0 / 6.0) } else { 0.0 };
        }
    }
}
multiversion! {
    pub fn tanh_grad(y: &[f32], dy: &[f32], dz: &mut [f32]) {
        for ((z, &g), &o) in dz.iter_mut().zip(dy).zip(y) { *z = g * (1.0 - o * o); }
    }
}
multiversion! {
    pub fn relu_grad_inplace(y: &mut [f32], dy: &[f32]) {
        for (o, &g) in y.iter_mut().zip(dy) { *o = f32::from_bits(g.to_bits() & gt_zero_mask(*o)); }
    }
}
multiversion! {
    pub fn sigmoid_grad_inplace(y: &mut [f32], dy: &[f32]) {
        for (o, &g) in y.iter_mut().zip(dy) { *o = g * *o * (1.0 - *o); }
    }
}
multiversion! {
    pub fn hard_sigmoid_grad_inplace(y: &mut [f32], dy: &[f32]) {
        for (o, &g) in y.iter_mut().zip(dy) { *o = if *o > 0.0 && *o < 1.0 { g * (1.0 / 6.0) } else { 0.0 }; }
    }
}
multiversion! {
    pub fn tanh_grad_inplace(y: &mut [f32], dy: &[f32]) {
        for (o, &g) in y.iter_mut().zip(dy) { *o = g * (1.0 - *o * *o); }
    }
}
multiversion! {
    /// dz = y ⊙ (dy − ⟨dy, y⟩): the softmax Jacobian–vector product for one row.
    pub fn softmax_row_grad(y: &[f32], dy: &[f32], dz: &mut [f32]) {
        let mut dot = 0.0f32;
        for (&a, &b) in y.iter().zip(dy) { dot += a * b; }
        for ((z, &g), &o) in dz.iter_mut().zip(dy).zip(y) { *z = o * (g - dot); }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{set_forced_level, Level};
    use super::*;

    fn data(n: usize) -> Vec<f32> {
        (0..n).map(|i| ((i * 7919) % 2000) as f32 / 100.0 - 10.0).collect()
    }

    /// Every level gives the same numbers as the portable one (to rounding).
    #[test]
    fn levels_agree() {
        let acts =
            [Activation::Relu, Activation::Sigmoid, Activation::HardSigmoid, Activation::Tanh, Activation::Softmax];
        let x = data(1003);
        let dy = data(1003).iter().map(|v| v * 0.1).collect::<Vec<_>>();
        for act in acts {
            let mut results = Vec::new();
            for lvl in [Level::Portable, Level::Avx2, Level::Avx512] {
                set_forced_level(Some(lvl));
                let mut y = x.clone();
                act.forward_inplace(&mut y, 17);
                let mut dz = vec![0.0; y.len()];
                act.backward(&y, &dy, &mut dz, 17);
                results.push((y, dz));
            }
            set_forced_level(None);
            for (y, dz) in &results[1..] {
                for i in 0..x.len() {
                    assert!((y[i] - results[0].0[i]).abs() <= 2e-6 * (1.0 + y[i].abs()), "{act:?} y[{i}]");
                    assert!((dz[i] - results[0].1[i]).abs() <= 2e-6 * (1.0 + dz[i].abs()), "{act:?} dz[{i}]");
                }
            }
        }
    }

    #[test]
    fn softmax_rows_sum_to_one_and_survive_large_inputs() {
        let mut row = vec![1000.0f32, 999.0, -1000.0, 0.0];
        softmax_row(&mut row);
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!((row[0] / row[1] - std::f32::consts::E).abs() < 1e-4);
    }
}
