//! Activations and their derivatives, multiversioned.
//!
//! The activations the kernels fuse (Dense, Conv1D, the recurrent cells) take their derivative from
//! the activation's *output* `y` (never its input), so a forward pass only has to keep what it
//! returns anyway. Four Keras activations are not monotonic (gelu, silu, mish, hard_silu): their
//! output does not determine their input, so their derivative needs the input `x`
//! ([`Activation::needs_input`], [`Activation::backward_from_input`]); they are never fused.
use super::math;
use super::multiversion;

/// selu's constants, as Keras and TensorFlow define them (Klambauer et al., 2017).
#[allow(clippy::excessive_precision)] // as published
pub const SELU_SCALE: f32 = 1.050_700_987_355_480_5;
#[allow(clippy::excessive_precision)] // as published
pub const SELU_ALPHA: f32 = 1.673_263_242_354_377_3;
/// scale · alpha, the selu output's lower limit (negated) and its slope at 0⁻.
#[allow(clippy::excessive_precision)] // as published
pub const SELU_SCALE_ALPHA: f32 = 1.758_099_340_847_376_8;
/// Keras 3's `leaky_relu` default `negative_slope` (the `keras.activations` function; the
/// `LeakyReLU` layer's default is 0.3).
pub const LEAKY_RELU_SLOPE: f32 = 0.2;

/// The activations seqcore implements (Keras names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Linear,
    Relu,
    Sigmoid,
    HardSigmoid,
    Tanh,
    /// Over the last axis (rows of width `units`).
    Softmax,
    /// alpha = 1: `x` for x > 0, `e^x - 1` below.
    Elu,
    /// `scale·x` for x > 0, `scale·alpha·(e^x - 1)` below.
    Selu,
    /// `ln(1 + e^x)`.
    Softplus,
    /// `x / (1 + |x|)`.
    Softsign,
    /// `e^x`.
    Exponential,
    /// `x` for x > 0, `0.2·x` below.
    LeakyRelu,
    /// `min(max(x, 0), 6)`.
    Relu6,
    /// `x·Φ(x)` (Keras's default `approximate=False`: the exact erf form). Needs its input.
    Gelu,
    /// `x·σ(x)`; Keras also calls it swish. Needs its input.
    Silu,
    /// `x·tanh(softplus(x))`. Needs its input.
    Mish,
    /// `x·hard_sigmoid(x)`; Keras also calls it hard_swish. Needs its input.
    HardSilu,
}

impl Activation {
    /// The activations whose derivative comes from their output: the ones the kernels fuse.
    pub const NAMES: &'static [&'static str] = &[
        "linear",
        "relu",
        "sigmoid",
        "hard_sigmoid",
        "tanh",
        "softmax",
        "elu",
        "selu",
        "softplus",
        "softsign",
        "exponential",
        "leaky_relu",
        "relu6",
    ];
    /// The activations whose derivative needs their input (not fused; see the module docs).
    pub const INPUT_NAMES: &'static [&'static str] = &["gelu", "silu", "mish", "hard_silu"];
    /// Other names Keras accepts for the same functions: (alias, canonical name).
    pub const ALIASES: &'static [(&'static str, &'static str)] = &[("swish", "silu"), ("hard_swish", "hard_silu")];
    /// Every activation, in the order of `NAMES` then `INPUT_NAMES`.
    pub const ALL: &'static [Activation] = &[
        Activation::Linear,
        Activation::Relu,
        Activation::Sigmoid,
        Activation::HardSigmoid,
        Activation::Tanh,
        Activation::Softmax,
        Activation::Elu,
        Activation::Selu,
        Activation::Softplus,
        Activation::Softsign,
        Activation::Exponential,
        Activation::LeakyRelu,
        Activation::Relu6,
        Activation::Gelu,
        Activation::Silu,
        Activation::Mish,
        Activation::HardSilu,
    ];

    /// Any name in `NAMES`, `INPUT_NAMES` or `ALIASES` (and "None"/"" for linear).
    pub fn parse(name: &str) -> Option<Activation> {
        Some(match name {
            "linear" | "None" | "" => Activation::Linear,
            "relu" => Activation::Relu,
            "sigmoid" => Activation::Sigmoid,
            "hard_sigmoid" => Activation::HardSigmoid,
            "tanh" => Activation::Tanh,
            "softmax" => Activation::Softmax,
            "elu" => Activation::Elu,
            "selu" => Activation::Selu,
            "softplus" => Activation::Softplus,
            "softsign" => Activation::Softsign,
            "exponential" => Activation::Exponential,
            "leaky_relu" => Activation::LeakyRelu,
            "relu6" => Activation::Relu6,
            "gelu" => Activation::Gelu,
            "silu" | "swish" => Activation::Silu,
            "mish" => Activation::Mish,
            "hard_silu" | "hard_swish" => Activation::HardSilu,
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
            Activation::Elu => "elu",
            Activation::Selu => "selu",
            Activation::Softplus => "softplus",
            Activation::Softsign => "softsign",
            Activation::Exponential => "exponential",
            Activation::LeakyRelu => "leaky_relu",
            Activation::Relu6 => "relu6",
            Activation::Gelu => "gelu",
            Activation::Silu => "silu",
            Activation::Mish => "mish",
            Activation::HardSilu => "hard_silu",
        }
    }

    /// True for the activations whose derivative cannot be taken from their output: [`backward`]
    /// and [`grad_from_output_inplace`] refuse them, only [`backward_from_input`] differentiates them.
    ///
    /// [`backward`]: Activation::backward
    /// [`grad_from_output_inplace`]: Activation::grad_from_output_inplace
    /// [`backward_from_input`]: Activation::backward_from_input
    pub fn needs_input(self) -> bool {
        matches!(self, Activation::Gelu | Activation::Silu | Activation::Mish | Activation::HardSilu)
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
            Activation::Elu => elu_inplace(data),
            Activation::Selu => selu_inplace(data),
            Activation::Softplus => softplus_inplace(data),
            Activation::Softsign => softsign_inplace(data),
            Activation::Exponential => exponential_inplace(data),
            Activation::LeakyRelu => leaky_relu_inplace(data),
            Activation::Relu6 => relu6_inplace(data),
            Activation::Gelu => gelu_inplace(data),
            Activation::Silu => silu_inplace(data),
            Activation::Mish => mish_inplace(data),
            Activation::HardSilu => hard_silu_inplace(data),
        }
    }

    /// In place: on entry `buf` holds the output `y = f(z)`, on exit `dy · f'(z)`. Elementwise
    /// activations whose derivative comes from the output (not softmax, not [`needs_input`]).
    ///
    /// [`needs_input`]: Activation::needs_input
    pub fn grad_from_output_inplace(self, buf: &mut [f32], dy: &[f32]) {
        debug_assert_eq!(buf.len(), dy.len());
        match self {
            Activation::Linear => buf.copy_from_slice(dy),
            Activation::Relu => relu_grad_inplace(buf, dy),
            Activation::Sigmoid => sigmoid_grad_inplace(buf, dy),
            Activation::HardSigmoid => hard_sigmoid_grad_inplace(buf, dy),
            Activation::Tanh => tanh_grad_inplace(buf, dy),
            Activation::Elu => elu_grad_inplace(buf, dy),
            Activation::Selu => selu_grad_inplace(buf, dy),
            Activation::Softplus => softplus_grad_inplace(buf, dy),
            Activation::Softsign => softsign_grad_inplace(buf, dy),
            Activation::Exponential => exponential_grad_inplace(buf, dy),
            Activation::LeakyRelu => leaky_relu_grad_inplace(buf, dy),
            Activation::Relu6 => relu6_grad_inplace(buf, dy),
            Activation::Softmax => unreachable!("softmax is not an elementwise activation"),
            Activation::Gelu | Activation::Silu | Activation::Mish | Activation::HardSilu => {
                panic!("{}'s derivative needs its input, not its output", self.name())
            }
        }
    }

    /// `dz = dy · f'(z)` computed from the output `y = f(z)`. Rows of `width` (softmax only).
    /// Panics for the activations that [`need their input`](Activation::needs_input).
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
            _ => {
                dz.copy_from_slice(y);
                self.grad_from_output_inplace(dz, dy);
            }
        }
    }

    /// `dz = dy · f'(x)` from the input `x` (rows of `width` for softmax): any activation. The
    /// ones that can be differentiated from their output go through it (`y = f(x)` first), so
    /// they give exactly what [`backward`](Activation::backward) gives on the forward output.
    pub fn backward_from_input(self, x: &[f32], dy: &[f32], dz: &mut [f32], width: usize) {
        debug_assert!(x.len() == dy.len() && dy.len() == dz.len());
        match self {
            Activation::Gelu => gelu_grad(x, dy, dz),
            Activation::Silu => silu_grad(x, dy, dz),
            Activation::Mish => mish_grad(x, dy, dz),
            Activation::HardSilu => hard_silu_grad(x, dy, dz),
            Activation::Softmax => {
                dz.copy_from_slice(x);
                self.forward_inplace(dz, width);
                if width > 0 {
                    for (yr, dyr) in dz.chunks_exact_mut(width).zip(dy.chunks_exact(width)) {
                        softmax_row_grad_inplace(yr, dyr);
                    }
                }
            }
            _ => {
                dz.copy_from_slice(x);
                self.forward_inplace(dz, width);
                self.grad_from_output_inplace(dz, dy);
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

multiversion! {
    /// In place: `y` becomes `y ⊙ (dy − ⟨dy, y⟩)` (the dot product is taken before any write).
    pub fn softmax_row_grad_inplace(y: &mut [f32], dy: &[f32]) {
        let mut dot = 0.0f32;
        for (&a, &b) in y.iter().zip(dy) { dot += a * b; }
        for (o, &g) in y.iter_mut().zip(dy) { *o *= g - dot; }
    }
}

// --- activations fused into the kernels, derivative from the output --------------------------------

multiversion! {
    /// elu (alpha = 1), as TensorFlow: `x < 0 ? expm1(x) : x`.
    pub fn elu_inplace(d: &mut [f32]) {
        for v in d.iter_mut() { let x = *v; *v = if x < 0.0 { math::expm1(x) } else { x }; }
    }
}
multiversion! {
    /// selu, as TensorFlow: `x < 0 ? scale·alpha·expm1(x) : scale·x`.
    pub fn selu_inplace(d: &mut [f32]) {
        for v in d.iter_mut() {
            let x = *v;
            *v = if x < 0.0 { SELU_SCALE_ALPHA * math::expm1(x) } else { SELU_SCALE * x };
        }
    }
}
multiversion! {
    pub fn softplus_inplace(d: &mut [f32]) { for v in d.iter_mut() { *v = math::softplus(*v); } }
}
multiversion! {
    /// `x / (1 + |x|)`; |x| is capped at 2^30 first (where the quotient is already ±1 in float32),
    /// so ±inf gives ±1 rather than inf/inf.
    pub fn softsign_inplace(d: &mut [f32]) {
        for v in d.iter_mut() {
            let x = *v;
            let x = if x > 1.073_741_8e9 { 1.073_741_8e9 } else { x };
            let x = if x < -1.073_741_8e9 { -1.073_741_8e9 } else { x };
            *v = x / (1.0 + x.abs());
        }
    }
}
multiversion! {
    /// e^x over the whole range (inf above ~88.7, subnormals and 0 below ~-87.3).
    pub fn exponential_inplace(d: &mut [f32]) { for v in d.iter_mut() { *v = math::exp_full(*v); } }
}
multiversion! {
    pub fn leaky_relu_inplace(d: &mut [f32]) {
        for v in d.iter_mut() { let x = *v; *v = if x > 0.0 { x } else { LEAKY_RELU_SLOPE * x }; }
    }
}
multiversion! {
    pub fn relu6_inplace(d: &mut [f32]) {
        for v in d.iter_mut() {
            let x = math::relu(*v);
            *v = if x > 6.0 { 6.0 } else { x };
        }
    }
}
multiversion! {
    /// TensorFlow's EluGrad: `y < 0 ? dy·(y + 1) : dy` (slope 1 at 0).
    pub fn elu_grad_inplace(y: &mut [f32], dy: &[f32]) {
        for (o, &g) in y.iter_mut().zip(dy) { *o = if *o < 0.0 { g * (*o + 1.0) } else { g }; }
    }
}
multiversion! {
    /// TensorFlow's SeluGrad: `y < 0 ? dy·(y + scale·alpha) : dy·scale` (slope `scale` at 0).
    pub fn selu_grad_inplace(y: &mut [f32], dy: &[f32]) {
        for (o, &g) in y.iter_mut().zip(dy) {
            *o = if *o < 0.0 { g * (*o + SELU_SCALE_ALPHA) } else { g * SELU_SCALE };
        }
    }
}
multiversion! {
    /// softplus'(x) = σ(x) = 1 - e^-y, computed as -expm1(-y) (no cancellation for small y).
    pub fn softplus_grad_inplace(y: &mut [f32], dy: &[f32]) {
        for (o, &g) in y.iter_mut().zip(dy) { *o = -g * math::expm1(-*o); }
    }
}
multiversion! {
    /// softsign'(x) = 1 / (1 + |x|)² = (1 - |y|)².
    pub fn softsign_grad_inplace(y: &mut [f32], dy: &[f32]) {
        for (o, &g) in y.iter_mut().zip(dy) { let c = 1.0 - o.abs(); *o = g * c * c; }
    }
}
multiversion! {
    pub fn exponential_grad_inplace(y: &mut [f32], dy: &[f32]) {
        for (o, &g) in y.iter_mut().zip(dy) { *o *= g; }
    }
}
multiversion! {
    /// TensorFlow's LeakyReluGrad: slope 1 for y > 0, 0.2 elsewhere (at 0 too).
    pub fn leaky_relu_grad_inplace(y: &mut [f32], dy: &[f32]) {
        for (o, &g) in y.iter_mut().zip(dy) { *o = if *o > 0.0 { g } else { LEAKY_RELU_SLOPE * g }; }
    }
}
multiversion! {
    /// TensorFlow's Relu6Grad: slope 1 strictly inside (0, 6), 0 elsewhere (at 0 and 6 too).
    pub fn relu6_grad_inplace(y: &mut [f32], dy: &[f32]) {
        for (o, &g) in y.iter_mut().zip(dy) {
            let inside = gt_zero_mask(*o) & ((*o < 6.0) as u32).wrapping_neg();
            *o = f32::from_bits(g.to_bits() & inside);
        }
    }
}

// --- activations that need their input for the derivative ----------------------------------------
// Inputs are clamped where the function (or its slope) has already saturated in float32, so that
// ±inf gives the limit (0, x or the slope's 0/1) rather than inf·0 = NaN.

multiversion! {
    /// gelu(x) = x·Φ(x) (exact, erf form; Φ(x) = 0 in float32 below -14.1).
    pub fn gelu_inplace(d: &mut [f32]) {
        for v in d.iter_mut() {
            let x = *v;
            let x = if x < -30.0 { -30.0 } else { x };
            *v = x * math::normal_cdf_pair(x).0;
        }
    }
}
multiversion! {
    /// gelu'(x) = Φ(x) + x·φ(x).
    pub fn gelu_grad(x: &[f32], dy: &[f32], dz: &mut [f32]) {
        for ((z, &g), &x) in dz.iter_mut().zip(dy).zip(x) {
            let x = if x < -30.0 { -30.0 } else { x };
            let x = if x > 30.0 { 30.0 } else { x };
            *z = g * (math::normal_cdf_pair(x).0 + x * math::normal_pdf(x));
        }
    }
}
multiversion! {
    /// silu(x) = x·σ(x).
    pub fn silu_inplace(d: &mut [f32]) {
        for v in d.iter_mut() {
            let x = *v;
            let x = if x < -200.0 { -200.0 } else { x };
            *v = x * math::sigmoid_pair(x).0;
        }
    }
}
multiversion! {
    /// silu'(x) = σ(x)·(1 + x·(1 - σ(x))) = σ(x) + x·σ(x)·σ(-x).
    pub fn silu_grad(x: &[f32], dy: &[f32], dz: &mut [f32]) {
        for ((z, &g), &x) in dz.iter_mut().zip(dy).zip(x) {
            let x = if x < -200.0 { -200.0 } else { x };
            let x = if x > 200.0 { 200.0 } else { x };
            let (s, c) = math::sigmoid_pair(x);
            *z = g * (s + x * s * c);
        }
    }
}

/// For mish: (tanh(softplus(x)), its derivative by x). With e = e^x and n = e(e + 2),
/// tanh(ln(1 + e)) = n / (n + 2) and d/dx = 4e(e + 1) / (n + 2)². Valid for x <= 20 (callers
/// clamp); above that, float32 has tanh = 1 and a derivative below 1e-16.
#[inline(always)]
fn mish_parts(x: f32) -> (f32, f32) {
    let e = math::exp_full(x);
    let n = e * (e + 2.0);
    let inv = 1.0 / (n + 2.0);
    (n * inv, 4.0 * e * (e + 1.0) * inv * inv)
}

multiversion! {
    /// mish(x) = x·tanh(softplus(x)).
    pub fn mish_inplace(d: &mut [f32]) {
        for v in d.iter_mut() {
            let x = *v;
            let xc = if x < -200.0 { -200.0 } else { x };
            let xc = if xc > 20.0 { 20.0 } else { xc };
            let t = mish_parts(xc).0;
            *v = if x > 20.0 { x } else { xc * t };
        }
    }
}
multiversion! {
    /// mish'(x) = tanh(sp(x)) + x·sech²(sp(x))·σ(x).
    pub fn mish_grad(x: &[f32], dy: &[f32], dz: &mut [f32]) {
        for ((z, &g), &x) in dz.iter_mut().zip(dy).zip(x) {
            let xc = if x < -200.0 { -200.0 } else { x };
            let xc = if xc > 20.0 { 20.0 } else { xc };
            let (t, dt) = mish_parts(xc);
            let slope = t + xc * dt;
            *z = if x > 20.0 { g } else { g * slope };
        }
    }
}
multiversion! {
    /// hard_silu(x) = x·hard_sigmoid(x) = x·relu6(x + 3)/6.
    pub fn hard_silu_inplace(d: &mut [f32]) {
        for v in d.iter_mut() {
            let x = *v;
            let x = if x < -4.0 { -4.0 } else { x };
            *v = x * math::hard_sigmoid(x);
        }
    }
}
multiversion! {
    /// hard_silu'(x) = hard_sigmoid(x) + x·[-3 < x < 3]/6, as TensorFlow differentiates it:
    /// 0 up to -3, (2x + 3)/6 inside, 1 from 3 on.
    pub fn hard_silu_grad(x: &[f32], dy: &[f32], dz: &mut [f32]) {
        for ((z, &g), &x) in dz.iter_mut().zip(dy).zip(x) {
            let x = if x < -4.0 { -4.0 } else { x };
            let x = if x > 4.0 { 4.0 } else { x };
            let u = x + 3.0;
            let inside = if u > 0.0 && u < 6.0 { x * (1.0 / 6.0) } else { 0.0 };
            *z = g * (math::hard_sigmoid(x) + inside);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{set_forced_level, Level};
    use super::*;

    fn data(n: usize) -> Vec<f32> {
        (0..n).map(|i| ((i * 7919) % 2000) as f32 / 100.0 - 10.0).collect()
    }

    /// Every level gives the same numbers as the portable one (to rounding), for the forward pass,
    /// the derivative from the output and the derivative from the input.
    #[test]
    fn levels_agree() {
        let _level = super::super::test_level_lock(true);
        let mut x = data(1003);
        // the saturated ends, infinities and the kinks (0, ±3, 6) too
        x.extend([-200.0, -90.0, -30.0, -3.0, 0.0, 3.0, 6.0, 30.0, 90.0, 200.0, f32::INFINITY, f32::NEG_INFINITY]);
        let n = x.len();
        let dy = data(n).iter().map(|v| v * 0.1).collect::<Vec<_>>();
        let width = 17;
        let rows = n - n % width; // softmax works on whole rows
        for &act in Activation::ALL {
            let (x, dy) = if act == Activation::Softmax { (&x[..rows], &dy[..rows]) } else { (&x[..], &dy[..]) };
            let mut results = Vec::new();
            for lvl in [Level::Portable, Level::Avx2, Level::Avx512] {
                set_forced_level(Some(lvl));
                let mut y = x.to_vec();
                act.forward_inplace(&mut y, width);
                let mut dz_in = vec![0.0; y.len()];
                act.backward_from_input(x, dy, &mut dz_in, width);
                let mut dz = vec![0.0; y.len()];
                if !act.needs_input() {
                    act.backward(&y, dy, &mut dz, width);
                    // from the input = from the output of the same forward pass
                    assert_eq!(
                        dz.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                        dz_in.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                        "{act:?} at {lvl:?}"
                    );
                }
                results.push((y, dz_in));
            }
            set_forced_level(None);
            let close =
                |a: f32, b: f32| a == b || (a.is_nan() && b.is_nan()) || (a - b).abs() <= 2e-6 * (1.0 + a.abs());
            for (y, dz) in &results[1..] {
                for i in 0..x.len() {
                    assert!(close(y[i], results[0].0[i]), "{act:?} y[{i}] = {} vs {}", y[i], results[0].0[i]);
                    assert!(close(dz[i], results[0].1[i]), "{act:?} dz[{i}] = {} vs {}", dz[i], results[0].1[i]);
                }
            }
        }
    }

    /// Names round-trip, aliases resolve, and the lists partition the activations.
    #[test]
    fn names() {
        for &a in Activation::ALL {
            assert_eq!(Activation::parse(a.name()), Some(a));
            let listed = if a.needs_input() { Activation::INPUT_NAMES } else { Activation::NAMES };
            assert!(listed.contains(&a.name()), "{a:?}");
        }
        assert_eq!(Activation::ALL.len(), Activation::NAMES.len() + Activation::INPUT_NAMES.len());
        for &(alias, name) in Activation::ALIASES {
            assert_eq!(Activation::parse(alias), Activation::parse(name));
        }
        assert_eq!(Activation::parse("gelu_approximate"), None);
    }

    /// Each new activation and its derivative against f64 at a few points (incl. the kinks, where the
    /// derivative follows TensorFlow), from the output and from the input.
    #[test]
    fn new_activations_against_f64() {
        fn phi(x: f64) -> f64 {
            // Φ by the series/continued fraction would be overkill: integrate the density.
            let (a, n) = (-40.0f64, 200_000);
            if x <= a {
                return 0.0;
            }
            let h = (x - a) / n as f64;
            let f = |t: f64| (-0.5 * t * t).exp() / (2.0 * std::f64::consts::PI).sqrt();
            let mut s = f(a) + f(x);
            for i in 1..n {
                s += f(a + i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 };
            }
            s * h / 3.0
        }
        let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
        let sp = |x: f64| x.max(0.0) + (-x.abs()).exp().ln_1p();
        let (sc, al) = (1.050_700_987_355_480_5f64, 1.673_263_242_354_377_3f64);
        #[allow(clippy::type_complexity)]
        let table: Vec<(Activation, Box<dyn Fn(f64) -> (f64, f64)>)> = vec![
            (Activation::Elu, Box::new(|x: f64| if x < 0.0 { (x.exp_m1(), x.exp()) } else { (x, 1.0) })),
            (
                Activation::Selu,
                Box::new(move |x: f64| if x < 0.0 { (sc * al * x.exp_m1(), sc * al * x.exp()) } else { (sc * x, sc) }),
            ),
            (Activation::Softplus, Box::new(move |x: f64| (sp(x), sig(x)))),
            (Activation::Softsign, Box::new(|x: f64| (x / (1.0 + x.abs()), 1.0 / (1.0 + x.abs()).powi(2)))),
            (Activation::Exponential, Box::new(|x: f64| (x.exp(), x.exp()))),
            (Activation::LeakyRelu, Box::new(|x: f64| if x > 0.0 { (x, 1.0) } else { (0.2 * x, 0.2) })),
            (Activation::Relu6, Box::new(|x: f64| (x.clamp(0.0, 6.0), if x > 0.0 && x < 6.0 { 1.0 } else { 0.0 }))),
            (Activation::Silu, Box::new(move |x: f64| (x * sig(x), sig(x) * (1.0 + x * (1.0 - sig(x)))))),
            (
                Activation::Mish,
                Box::new(move |x: f64| {
                    let t = sp(x).tanh();
                    (x * t, t + x * (1.0 - t * t) * sig(x))
                }),
            ),
            (
                Activation::HardSilu,
                Box::new(|x: f64| {
                    let h = ((x + 3.0) / 6.0).clamp(0.0, 1.0);
                    (
                        x * h,
                        if x <= -3.0 {
                            0.0
                        } else if x >= 3.0 {
                            1.0
                        } else {
                            (2.0 * x + 3.0) / 6.0
                        },
                    )
                }),
            ),
            (
                Activation::Gelu,
                Box::new(move |x: f64| {
                    let p = phi(x);
                    (x * p, p + x * (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt())
                }),
            ),
        ];
        let xs: [f32; 16] = [-20.0, -8.0, -3.0, -2.5, -1.0, -0.3, -1e-4, 0.0, 1e-4, 0.3, 1.0, 2.5, 3.0, 6.0, 8.0, 20.0];
        for (act, f) in &table {
            let mut y = xs.to_vec();
            act.forward_inplace(&mut y, 1);
            let ones = vec![1.0f32; xs.len()];
            let mut d_in = vec![0.0f32; xs.len()];
            act.backward_from_input(&xs, &ones, &mut d_in, 1);
            for i in 0..xs.len() {
                let (want_y, want_d) = f(xs[i] as f64);
                let tol = |w: f64| 2e-6 * w.abs() + 1e-30;
                assert!((y[i] as f64 - want_y).abs() <= tol(want_y), "{act:?}({}) = {} want {want_y}", xs[i], y[i]);
                assert!(
                    (d_in[i] as f64 - want_d).abs() <= tol(want_d) + 1e-7,
                    "{act:?}'({}) = {} want {want_d}",
                    xs[i],
                    d_in[i]
                );
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
