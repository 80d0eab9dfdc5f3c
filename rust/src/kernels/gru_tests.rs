//! Unit tests for `gru.rs`: a naive f64 GRU forward written straight from the Keras math in that
//! module's docs (both `reset_after` modes, masking by [`StepMask`], `go_backwards`), compared with
//! the kernel's forward, and central finite differences of it compared with every gradient of the
//! kernel's backward. Same pattern as the LSTM tests in `lstm.rs`.
use super::*;

/// Deterministic values in `[-scale, scale)` (the LSTM tests' generator).
fn vals(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut st = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            st = st.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (((st >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0) * scale
        })
        .collect()
}

fn act64(a: Activation, x: f64) -> f64 {
    match a {
        Activation::Linear => x,
        Activation::Relu => x.max(0.0),
        Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        Activation::HardSigmoid => (x / 6.0 + 0.5).clamp(0.0, 1.0),
        Activation::Tanh => x.tanh(),
        _ => unreachable!("not a recurrent-cell activation"),
    }
}

/// Distance from the pre-activation `x` to the nearest point where `a` is not differentiable.
fn kink_distance(a: Activation, x: f64) -> f64 {
    match a {
        Activation::Relu => x.abs(),
        Activation::HardSigmoid => (x - 3.0).abs().min((x + 3.0).abs()),
        _ => f64::INFINITY,
    }
}

/// Which smooth piece of `a` the pre-activation `x` falls on (0 = the sloped one, for which the
/// derivative is nonzero; relu and hard_sigmoid have flat pieces too).
fn piece(a: Activation, x: f64) -> u8 {
    match a {
        Activation::Relu => (x < 0.0) as u8,
        Activation::HardSigmoid if x < -3.0 => 1,
        Activation::HardSigmoid if x > 3.0 => 2,
        _ => 0,
    }
}

/// What a case is made of.
#[derive(Clone)]
struct Setup {
    dims: RnnDims,
    reset_after: bool,
    act: Activation,
    rec: Activation,
    go_backwards: bool,
    lens: Option<Vec<usize>>,
    h0: bool,
    bias: bool,
    d_out: bool,
    d_hl: bool,
    dx: bool,
    /// scale of the kernel and recurrent kernel entries
    w_scale: f32,
}

impl Setup {
    /// B=4, T=5, F=3, H=4; rows of full, partial, zero and almost full length; h0, bias, both
    /// upstream gradients and dx.
    fn new(reset_after: bool, act: Activation, rec: Activation, go_backwards: bool) -> Setup {
        Setup {
            dims: RnnDims { batch: 4, steps: 5, inputs: 3, units: 4 },
            reset_after,
            act,
            rec,
            go_backwards,
            lens: Some(vec![5, 2, 0, 4]),
            h0: true,
            bias: true,
            d_out: true,
            d_hl: true,
            dx: true,
            w_scale: 0.6,
        }
    }
}

struct Case {
    setup: Setup,
    spec: GruSpec,
    x: Vec<f32>,
    w: Vec<f32>,
    u: Vec<f32>,
    /// zeros (and passed as `None`) when `!setup.bias`
    bias: Vec<f32>,
    /// zeros (and passed as `None`) when `!setup.h0`
    h0: Vec<f32>,
    /// zeros (and passed as `None`) when `!setup.d_out`
    d_out: Vec<f32>,
    /// zeros (and passed as `None`) when `!setup.d_hl`
    d_hl: Vec<f32>,
}

impl Case {
    fn params(&self) -> GruParams<'_> {
        GruParams {
            x: &self.x,
            kernel: &self.w,
            recurrent_kernel: &self.u,
            bias: self.setup.bias.then_some(&self.bias[..]),
            h0: self.setup.h0.then_some(&self.h0[..]),
            mask: self.setup.lens.as_deref().map_or(StepMask::ALL, StepMask::lengths),
            masks: GateMasks::default(),
        }
    }

    fn label(&self) -> String {
        let s = &self.setup;
        format!(
            "reset_after={} {:?}/{:?} back={} dims={:?} lens={:?} h0={} bias={} d_out={} d_hl={}",
            s.reset_after, s.act, s.rec, s.go_backwards, s.dims, s.lens, s.h0, s.bias, s.d_out, s.d_hl
        )
    }

    /// The inputs finite differences perturb, in f64: x, W, U, bias, h0.
    fn args(&self) -> [Vec<f64>; 5] {
        let f = |v: &[f32]| v.iter().map(|&a| a as f64).collect::<Vec<f64>>();
        [f(&self.x), f(&self.w), f(&self.u), f(&self.bias), f(&self.h0)]
    }
}

/// Builds a case from `setup`; `seed` varies the data. Seeds with a pre-activation within 1e-4 of a
/// kink of relu / hard_sigmoid are skipped (f32 rounding could put it on the other side); finite
/// differences that would straddle a farther kink take a smaller step (see `numeric_grad`).
fn make_case(setup: &Setup, seed: u64) -> Case {
    let RnnDims { batch: b, steps: t, inputs: f, units: h } = setup.dims;
    let nb = if setup.reset_after { 6 * h } else { 3 * h };
    for k in 0..1000 {
        let s = seed * 1000 + k;
        let keep = |v: Vec<f32>, on: bool| if on { v } else { vec![0.0; v.len()] };
        let c = Case {
            setup: setup.clone(),
            spec: GruSpec {
                dims: setup.dims,
                activation: setup.act,
                recurrent_activation: setup.rec,
                go_backwards: setup.go_backwards,
                reset_after: setup.reset_after,
            },
            x: vals(b * t * f, s * 10 + 1, 1.0),
            w: vals(f * 3 * h, s * 10 + 2, setup.w_scale),
            u: vals(h * 3 * h, s * 10 + 3, setup.w_scale),
            bias: keep(vals(nb, s * 10 + 4, 0.5), setup.bias),
            h0: keep(vals(b * h, s * 10 + 5, 0.8), setup.h0),
            d_out: keep(vals(b * t * h, s * 10 + 6, 1.0), setup.d_out),
            d_hl: keep(vals(b * h, s * 10 + 7, 1.0), setup.d_hl),
        };
        if naive_forward(&c, &c.args()).kink > 1e-4 {
            return c;
        }
    }
    panic!("no seed keeps the pre-activations away from the kinks");
}

struct Naive {
    /// `(B, T, H)`, processing order
    out: Vec<f64>,
    /// `(B, H)`
    h_last: Vec<f64>,
    /// smallest distance of a pre-activation (at a valid step) to a kink of its activation
    kink: f64,
    /// the [`piece`] of every pre-activation at a valid step, in a fixed order
    pieces: Vec<u8>,
}

impl Naive {
    /// How many pre-activations fall on a flat piece of their activation.
    fn flat(&self) -> usize {
        self.pieces.iter().filter(|&&p| p != 0).count()
    }
}

/// Naive f64 GRU forward, straight from the Keras math; `a` = [x, W, U, bias, h0] (bias and h0 as
/// zeros when absent).
fn naive_forward(c: &Case, a: &[Vec<f64>; 5]) -> Naive {
    let GruSpec { dims, activation: act, recurrent_activation: rec, go_backwards, reset_after } = c.spec;
    let RnnDims { batch: b, steps: t, inputs: f, units: h } = dims;
    let [x, w, u, bias, h0] = a;
    let g3 = 3 * h;
    let zeros = vec![0.0f64; g3];
    let b_in = &bias[..g3];
    let b_rec = if reset_after { &bias[g3..] } else { &zeros[..] };
    let mut res =
        Naive { out: vec![0.0; b * t * h], h_last: vec![0.0; b * h], kink: f64::INFINITY, pieces: Vec::new() };
    let mut note = |a: Activation, v: f64| {
        res.kink = res.kink.min(kink_distance(a, v));
        res.pieces.push(piece(a, v));
    };
    let mut outs = vec![0.0f64; b * t * h];
    let mut h_last = vec![0.0f64; b * h];
    for bi in 0..b {
        let mut hs: Vec<f64> = h0[bi * h..(bi + 1) * h].to_vec();
        let mut started = false;
        for s in 0..t {
            let ti = if go_backwards { t - 1 - s } else { s };
            if c.setup.lens.as_ref().is_none_or(|l| ti < l[bi]) {
                started = true;
                // mx = x_t·W + b_in over all three blocks
                let mut mx = b_in.to_vec();
                for (j, m) in mx.iter_mut().enumerate() {
                    for k in 0..f {
                        *m += x[(bi * t + ti) * f + k] * w[k * g3 + j];
                    }
                }
                // h·U over the z and r blocks
                let hu = |j: usize, v: &[f64]| (0..h).map(|k| v[k] * u[k * g3 + j]).sum::<f64>();
                let mut new_h = vec![0.0f64; h];
                if reset_after {
                    for j in 0..h {
                        let pz = mx[j] + hu(j, &hs) + b_rec[j];
                        let pr = mx[h + j] + hu(h + j, &hs) + b_rec[h + j];
                        let (z, r) = (act64(rec, pz), act64(rec, pr));
                        let mh_h = hu(2 * h + j, &hs) + b_rec[2 * h + j];
                        let ph = mx[2 * h + j] + r * mh_h;
                        let hh = act64(act, ph);
                        new_h[j] = z * hs[j] + (1.0 - z) * hh;
                        note(rec, pz);
                        note(rec, pr);
                        note(act, ph);
                    }
                } else {
                    let pz: Vec<f64> = (0..h).map(|j| mx[j] + hu(j, &hs)).collect();
                    let pr: Vec<f64> = (0..h).map(|j| mx[h + j] + hu(h + j, &hs)).collect();
                    let rh: Vec<f64> = (0..h).map(|k| act64(rec, pr[k]) * hs[k]).collect();
                    for j in 0..h {
                        let z = act64(rec, pz[j]);
                        let ph = mx[2 * h + j] + hu(2 * h + j, &rh);
                        let hh = act64(act, ph);
                        new_h[j] = z * hs[j] + (1.0 - z) * hh;
                        note(rec, pz[j]);
                        note(rec, pr[j]);
                        note(act, ph);
                    }
                }
                hs = new_h;
            }
            for j in 0..h {
                outs[(bi * t + s) * h + j] = if started { hs[j] } else { 0.0 };
            }
        }
        h_last[bi * h..(bi + 1) * h].copy_from_slice(&hs);
    }
    res.out = outs;
    res.h_last = h_last;
    res
}

/// L = Σ out ⊙ d_out + Σ h_last ⊙ d_h_last (an absent upstream gradient counts as zeros), and the
/// pieces the pre-activations fell on.
fn naive_loss(c: &Case, a: &[Vec<f64>; 5]) -> (f64, Vec<u8>) {
    let n = naive_forward(c, a);
    let dot = |p: &[f64], q: &[f32]| p.iter().zip(q).map(|(&p, &q)| p * q as f64).sum::<f64>();
    (dot(&n.out, &c.d_out) + dot(&n.h_last, &c.d_hl), n.pieces)
}

/// Central finite difference of the naive loss by input `which`, element `i`. The step shrinks
/// (1e-4, 1e-6, 1e-7) until neither side moves a pre-activation across a kink. The inputs are
/// perturbed in f64, so the step can be small enough that the O(step²) error stays far below the
/// tolerance even for curved (large-weight) cases.
fn numeric_grad(c: &Case, args: &[Vec<f64>; 5], base: &[u8], which: usize, i: usize) -> f64 {
    let mut a = args.clone();
    for eps in [1e-4, 1e-6, 1e-7] {
        a[which][i] = args[which][i] + eps;
        let (lp, pp) = naive_loss(c, &a);
        a[which][i] = args[which][i] - eps;
        let (lm, pm) = naive_loss(c, &a);
        if pp == base && pm == base {
            return (lp - lm) / (2.0 * eps);
        }
    }
    panic!("input {which}[{i}] sits on a kink; {}", c.label());
}

/// Everything the kernel computes for a case.
#[derive(Debug, PartialEq)]
struct Results {
    out: Vec<f32>,
    h_last: Vec<f32>,
    /// `None` when the case asks for no dx
    dx: Option<Vec<f32>>,
    dkernel: Vec<f32>,
    drecurrent_kernel: Vec<f32>,
    /// `None` without bias
    dbias: Option<Vec<f32>>,
    dh0: Vec<f32>,
}

/// Runs the training forward, the inference forward (checked identical to it) and the backward,
/// in the current rayon pool. Outputs start as NaN, so anything the kernel fails to write shows.
fn run_kernel(c: &Case) -> Results {
    let _level = crate::simd::test_level_lock(false); // the two forwards must run at one SIMD level
    let RnnDims { batch: b, steps: t, inputs: f, units: h } = c.spec.dims;
    let p = c.params();
    let nan = |n: usize| vec![f32::NAN; n];
    let (mut out, mut h_last) = (nan(b * t * h), nan(b * h));
    let (mut gates, mut extra) = (nan(b * t * 3 * h), nan(b * t * h));
    forward(&c.spec, &p, &mut out, &mut h_last, Some(GruTape { gates: &mut gates, extra: &mut extra }));
    let (mut out_inf, mut h_last_inf) = (nan(b * t * h), nan(b * h));
    forward(&c.spec, &p, &mut out_inf, &mut h_last_inf, None);
    let bits = |v: &[f32]| v.iter().map(|a| a.to_bits()).collect::<Vec<u32>>();
    assert_eq!(bits(&out_inf), bits(&out), "inference forward out differs from training: {}", c.label());
    assert_eq!(bits(&h_last_inf), bits(&h_last), "inference forward h_last differs from training: {}", c.label());

    let mut dx = c.setup.dx.then(|| nan(b * t * f));
    let (mut dkernel, mut drecurrent_kernel, mut dh0) = (nan(f * 3 * h), nan(h * 3 * h), nan(b * h));
    let mut dbias = c.setup.bias.then(|| nan(c.bias.len()));
    backward(
        &c.spec,
        &p,
        &out,
        &mut gates,
        &mut extra,
        c.setup.d_out.then_some(&c.d_out[..]),
        c.setup.d_hl.then_some(&c.d_hl[..]),
        GruGrads {
            dx: dx.as_deref_mut(),
            dkernel: &mut dkernel,
            drecurrent_kernel: &mut drecurrent_kernel,
            dbias: dbias.as_deref_mut(),
            dh0: &mut dh0,
        },
    );
    Results { out, h_last, dx, dkernel, drecurrent_kernel, dbias, dh0 }
}

/// Checks the kernel against the naive forward and its central finite differences; returns the
/// naive forward's statistics.
fn check_case(c: &Case) -> Naive {
    let r = crate::threads::install(|| run_kernel(c));
    let args = c.args();
    let want = naive_forward(c, &args);
    let close = |g: f32, w: f64| (g as f64 - w).abs() <= 1e-5 * (1.0 + w.abs());
    for (i, (&g, &w)) in r.out.iter().zip(&want.out).enumerate() {
        assert!(close(g, w), "forward out[{i}]: {g} vs {w}; {}", c.label());
    }
    for (i, (&g, &w)) in r.h_last.iter().zip(&want.h_last).enumerate() {
        assert!(close(g, w), "forward h_last[{i}]: {g} vs {w}; {}", c.label());
    }
    let grads: [(&str, Option<&Vec<f32>>); 5] = [
        ("dx", r.dx.as_ref()),
        ("dkernel", Some(&r.dkernel)),
        ("drecurrent_kernel", Some(&r.drecurrent_kernel)),
        ("dbias", r.dbias.as_ref()),
        ("dh0", Some(&r.dh0)),
    ];
    for (which, (name, got)) in grads.into_iter().enumerate() {
        let Some(got) = got else { continue };
        assert_eq!(got.len(), args[which].len(), "{name} length");
        for (i, &g) in got.iter().enumerate() {
            let num = numeric_grad(c, &args, &want.pieces, which, i);
            assert!((g as f64 - num).abs() < 1e-4 * (1.0 + num.abs()), "{name}[{i}]: {g} vs {num}; {}", c.label());
        }
    }
    want
}

const DEFAULT: (Activation, Activation) = (Activation::Tanh, Activation::Sigmoid);

/// (activation, recurrent_activation) pairs for the generic cell paths: every supported activation
/// in each role.
const GENERIC: [(Activation, Activation); 5] = [
    (Activation::Linear, Activation::HardSigmoid),
    (Activation::Relu, Activation::Sigmoid),
    (Activation::Sigmoid, Activation::Tanh),
    (Activation::HardSigmoid, Activation::Linear),
    (Activation::Tanh, Activation::Relu),
];

#[test]
fn default_cell_reset_after_matches_naive_and_finite_differences() {
    // (tanh, sigmoid) with reset_after takes the fused cell in forward and backward.
    for back in [false, true] {
        check_case(&make_case(&Setup::new(true, DEFAULT.0, DEFAULT.1, back), 1));
    }
}

#[test]
fn default_cell_reset_before_matches_naive_and_finite_differences() {
    for back in [false, true] {
        check_case(&make_case(&Setup::new(false, DEFAULT.0, DEFAULT.1, back), 2));
    }
}

#[test]
fn generic_cell_reset_after_matches_naive_and_finite_differences() {
    for (act, rec) in GENERIC {
        for back in [false, true] {
            check_case(&make_case(&Setup::new(true, act, rec, back), 3));
        }
    }
}

#[test]
fn generic_cell_reset_before_matches_naive_and_finite_differences() {
    for (act, rec) in GENERIC {
        for back in [false, true] {
            check_case(&make_case(&Setup::new(false, act, rec, back), 4));
        }
    }
}

#[test]
fn flat_regions_of_relu_and_hard_sigmoid_get_zero_gradient() {
    // Bigger weights push some pre-activations past hard_sigmoid's clip at ±3 and below relu's 0,
    // where the derivative is zero.
    for reset_after in [true, false] {
        for (act, rec) in [(Activation::Relu, Activation::HardSigmoid), (Activation::HardSigmoid, Activation::Relu)] {
            for back in [false, true] {
                let mut s = Setup::new(reset_after, act, rec, back);
                s.w_scale = 1.5;
                let n = check_case(&make_case(&s, 5));
                assert!(n.flat() > 0, "no pre-activation in a flat region: {:?}/{:?}", act, rec);
            }
        }
    }
}

#[test]
fn without_h0_bias_or_lengths() {
    for reset_after in [true, false] {
        for (act, rec) in [DEFAULT, GENERIC[1]] {
            for back in [false, true] {
                let base = Setup::new(reset_after, act, rec, back);
                let mut s = base.clone();
                s.h0 = false;
                check_case(&make_case(&s, 6));
                let mut s = base.clone();
                s.bias = false;
                check_case(&make_case(&s, 7));
                let mut s = base.clone();
                s.lens = None;
                check_case(&make_case(&s, 8));
                let mut s = base;
                (s.h0, s.bias, s.lens) = (false, false, None);
                check_case(&make_case(&s, 9));
            }
        }
    }
}

#[test]
fn absent_upstream_gradients_and_no_dx() {
    for reset_after in [true, false] {
        for (act, rec) in [DEFAULT, GENERIC[0]] {
            for back in [false, true] {
                let base = Setup::new(reset_after, act, rec, back);
                let mut s = base.clone();
                s.d_out = false;
                check_case(&make_case(&s, 10));
                let mut s = base.clone();
                s.d_hl = false;
                check_case(&make_case(&s, 11));
                let mut s = base;
                s.dx = false;
                check_case(&make_case(&s, 12));
            }
        }
    }
}

#[test]
fn lengths_edge_cases() {
    // All rows empty; all rows full (as a mask); one step valid per row.
    for reset_after in [true, false] {
        for (act, rec) in [DEFAULT, GENERIC[1]] {
            for back in [false, true] {
                for lens in [vec![0, 0, 0, 0], vec![5, 5, 5, 5], vec![1, 1, 0, 1]] {
                    let mut s = Setup::new(reset_after, act, rec, back);
                    s.lens = Some(lens);
                    check_case(&make_case(&s, 13));
                }
            }
        }
    }
}

#[test]
fn single_row_step_unit() {
    for reset_after in [true, false] {
        for (act, rec) in [DEFAULT, GENERIC[0], GENERIC[1]] {
            for back in [false, true] {
                for lens in [None, Some(vec![1]), Some(vec![0])] {
                    for f in [1, 2] {
                        let mut s = Setup::new(reset_after, act, rec, back);
                        s.dims = RnnDims { batch: 1, steps: 1, inputs: f, units: 1 };
                        s.lens = lens.clone();
                        check_case(&make_case(&s, 14));
                    }
                }
            }
        }
    }
}

#[test]
fn single_sequence() {
    // B = 1: one batch slice, which the kernels run on the calling thread.
    for reset_after in [true, false] {
        for (act, rec) in [DEFAULT, GENERIC[0], GENERIC[1]] {
            for back in [false, true] {
                for lens in [None, Some(vec![6]), Some(vec![4]), Some(vec![0])] {
                    let mut s = Setup::new(reset_after, act, rec, back);
                    s.dims = RnnDims { batch: 1, steps: 6, inputs: 3, units: 5 };
                    s.lens = lens;
                    check_case(&make_case(&s, 19));
                }
            }
        }
    }
}

#[test]
fn larger_dims_cross_simd_panels_and_row_blocks() {
    // 3H = 39 spans two packed panels on AVX2 and a partial one on AVX-512; B = 10 rows per
    // thread exceeds one microkernel row block.
    for reset_after in [true, false] {
        for (act, rec) in [DEFAULT, GENERIC[1]] {
            let mut s = Setup::new(reset_after, act, rec, reset_after);
            s.dims = RnnDims { batch: 10, steps: 4, inputs: 5, units: 13 };
            s.lens = Some(vec![4, 3, 0, 1, 4, 2, 4, 4, 0, 3]);
            s.w_scale = 0.3;
            check_case(&make_case(&s, 15));
        }
    }
}

#[test]
fn zero_steps() {
    // T = 0: h_last = h0 (or zeros), dh0 = d_h_last (or zeros), every other gradient zero.
    for reset_after in [true, false] {
        for h0 in [true, false] {
            let mut s = Setup::new(reset_after, DEFAULT.0, DEFAULT.1, false);
            s.dims.steps = 0;
            s.lens = Some(vec![0; 4]);
            s.h0 = h0;
            let c = make_case(&s, 16);
            let r = crate::threads::install(|| run_kernel(&c));
            assert!(r.out.is_empty());
            assert_eq!(r.h_last, c.h0);
            assert_eq!(r.dh0, c.d_hl);
            assert!(r.dkernel.iter().chain(&r.drecurrent_kernel).chain(r.dbias.as_ref().unwrap()).all(|&v| v == 0.0));
        }
    }
}

#[test]
fn thread_count_does_not_change_results() {
    // Own rayon pools rather than `crate::threads::set_num_threads`: the thread count is global and
    // other tests (threads::tests) set and assert it concurrently. The kernels only see the pool
    // they run in (`threads::current_threads`), exactly as under `crate::threads::install`.
    // Also a run outside any pool (`threads::run(true, ..)`, inline on the calling thread).
    for reset_after in [true, false] {
        for (act, rec) in [DEFAULT, GENERIC[1]] {
            for back in [false, true] {
                let mut s = Setup::new(reset_after, act, rec, back);
                s.dims = RnnDims { batch: 7, steps: 5, inputs: 3, units: 6 };
                s.lens = Some(vec![5, 2, 0, 4, 5, 1, 3]);
                let c = make_case(&s, 17);
                let run = |n: usize| {
                    let pool = rayon::ThreadPoolBuilder::new().num_threads(n).build().unwrap();
                    pool.install(|| {
                        assert_eq!(rayon::current_num_threads(), n);
                        run_kernel(&c)
                    })
                };
                let one = run(1);
                for n in [0, 2, 3, 8] {
                    // n = 0: inline on this (non-pool) thread
                    let many = if n == 0 { run_kernel(&c) } else { run(n) };
                    let pairs = [
                        ("out", &one.out, &many.out),
                        ("h_last", &one.h_last, &many.h_last),
                        ("dx", one.dx.as_ref().unwrap(), many.dx.as_ref().unwrap()),
                        ("dkernel", &one.dkernel, &many.dkernel),
                        ("drecurrent_kernel", &one.drecurrent_kernel, &many.drecurrent_kernel),
                        ("dbias", one.dbias.as_ref().unwrap(), many.dbias.as_ref().unwrap()),
                        ("dh0", &one.dh0, &many.dh0),
                    ];
                    for (name, a, b) in pairs {
                        for (i, (&x, &y)) in a.iter().zip(b).enumerate() {
                            assert!(
                                (x - y).abs() <= 1e-5 * (1.0 + x.abs()),
                                "{name}[{i}] 1 thread {x} vs {} {y}; {}",
                                if n == 0 { "inline".to_string() } else { format!("{n} threads") },
                                c.label()
                            );
                        }
                    }
                }
            }
        }
    }
}
