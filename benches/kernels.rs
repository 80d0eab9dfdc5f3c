//! Kernel benches: `seqcore::kernels::dense::{forward, backward}` at the shapes the Python harness
//! (`benches/run.py`) times end to end, so a regression can be pinned to the kernel or to the
//! Python layer. Throughput is in FLOP, so criterion's "elem/s" reads as FLOP/s:
//! forward = 2·rows·inputs·units (one GEMM), backward = 4·rows·inputs·units (the dx and dW GEMMs;
//! the activation derivative and the bias sums are not counted). Run `make bench-rust`.
//!
//! Every call runs inside `seqcore::threads::install`, i.e. in the seqcore pool with
//! `get_num_threads()` threads (set `SEQCORE_NUM_THREADS` to change it), as the bindings do.
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use seqcore::kernels::dense::{backward, forward, DenseDims};
use seqcore::simd::activation::Activation;
use std::hint::black_box;
use std::time::Duration;

fn filled(n: usize, seed: u32) -> Vec<f32> {
    // Cheap deterministic fill; values in [-1, 1).
    let mut s = seed.wrapping_mul(747_796_405).wrapping_add(2_891_336_453);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (s >> 8) as f32 / (1u32 << 23) as f32 - 1.0
        })
        .collect()
}

/// (label, rows, inputs, units). td_dense is B=64 × T=100 rows; the small-rows cases are a single
/// sample (inference) and one time step of a batch of 64 (a recurrent step's shape).
const SHAPES: &[(&str, usize, usize, usize)] =
    &[("td_dense_6400x128x256", 6400, 128, 256), ("rows64_64x128x256", 64, 128, 256), ("rows1_1x128x256", 1, 128, 256)];

const ACTS: &[Activation] = &[Activation::Linear, Activation::Tanh];

fn configure(group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    group.sample_size(10).measurement_time(Duration::from_millis(1500)).warm_up_time(Duration::from_millis(300));
}

fn bench_forward(c: &mut Criterion) {
    let mut group = c.benchmark_group("dense_forward");
    configure(&mut group);
    for &(label, rows, inputs, units) in SHAPES {
        let d = DenseDims { rows, inputs, units };
        let x = filled(rows * inputs, 1);
        let w = filled(inputs * units, 2);
        let b = filled(units, 3);
        let mut out = vec![0.0f32; rows * units];
        group.throughput(Throughput::Elements((2 * rows * inputs * units) as u64));
        for &act in ACTS {
            group.bench_with_input(BenchmarkId::new(act.name(), label), &(), |bch, _| {
                bch.iter(|| {
                    seqcore::threads::install(|| forward(d, &x, &w, Some(&b), act, &mut out));
                    black_box(&out);
                })
            });
        }
    }
    group.finish();
}

fn bench_backward(c: &mut Criterion) {
    let mut group = c.benchmark_group("dense_backward");
    configure(&mut group);
    for &(label, rows, inputs, units) in SHAPES {
        let d = DenseDims { rows, inputs, units };
        let x = filled(rows * inputs, 1);
        let w = filled(inputs * units, 2);
        let b = filled(units, 3);
        let dy = filled(rows * units, 4);
        let mut dx = vec![0.0f32; rows * inputs];
        let mut dw = vec![0.0f32; inputs * units];
        let mut db = vec![0.0f32; units];
        group.throughput(Throughput::Elements((4 * rows * inputs * units) as u64));
        for &act in ACTS {
            // The activation derivative is taken from the forward output, so compute a real one.
            let mut y = vec![0.0f32; rows * units];
            seqcore::threads::install(|| forward(d, &x, &w, Some(&b), act, &mut y));
            group.bench_with_input(BenchmarkId::new(act.name(), label), &(), |bch, _| {
                bch.iter(|| {
                    seqcore::threads::install(|| {
                        backward(d, &x, &w, &y, &dy, act, Some(&mut dx), &mut dw, Some(&mut db))
                    });
                    black_box((&dx, &dw, &db));
                })
            });
        }
    }
    group.finish();
}

/// The fixed cost every kernel call pays to enter the seqcore pool (`threads::install` from a thread
/// outside it): the floor under the small-rows cases above.
fn bench_install(c: &mut Criterion) {
    let mut group = c.benchmark_group("threads");
    configure(&mut group);
    group.bench_function("install_noop", |bch| bch.iter(|| seqcore::threads::install(|| black_box(1))));
    group.finish();
}

/// LSTM and GRU training steps (forward with tape + backward without dx) at the Python bench's
/// lstm_mid / gru_mid shapes, and LSTM inference at B=1. FLOPs: forward 2·B·T·(F+H)·G·H; backward
/// counts twice that (dG·Uᵀ per step, dW and dU after the loop).
fn bench_recurrent(c: &mut Criterion) {
    use seqcore::kernels::gru::{self, GruGrads, GruParams, GruSpec, GruTape};
    use seqcore::kernels::lstm::{self, LstmGrads, LstmParams, LstmSpec, LstmTape, LstmUpstream};
    use seqcore::kernels::rnn::{GateMasks, RnnDims, StepMask};
    let mut group = c.benchmark_group("recurrent");
    configure(&mut group);
    let (act, rec) = (Activation::Tanh, Activation::Sigmoid);
    for &(label, b, t, f, h) in
        &[("lstm_mid_64x100x32x128", 64, 100, 32, 128), ("infer_b1_1x100x32x128", 1, 100, 32, 128)]
    {
        let dims = RnnDims { batch: b, steps: t, inputs: f, units: h };
        let spec = LstmSpec { dims, activation: act, recurrent_activation: rec, go_backwards: false };
        let (x, w, u, bias) = (filled(b * t * f, 1), filled(f * 4 * h, 2), filled(h * 4 * h, 3), filled(4 * h, 4));
        let p = LstmParams {
            x: &x,
            kernel: &w,
            recurrent_kernel: &u,
            bias: Some(&bias),
            h0: None,
            c0: None,
            mask: StepMask::ALL,
            masks: GateMasks::default(),
        };
        let (mut out, mut hl, mut cl) = (vec![0.0; b * t * h], vec![0.0; b * h], vec![0.0; b * h]);
        let (mut gates, mut cells) = (vec![0.0; b * t * 4 * h], vec![0.0; b * t * h]);
        let fwd_flops = 2 * b * t * (f + h) * 4 * h;
        if b == 1 {
            group.throughput(Throughput::Elements(fwd_flops as u64));
            group.bench_function(BenchmarkId::new("lstm_inference", label), |bch| {
                bch.iter(|| seqcore::threads::run(true, || lstm::forward(&spec, &p, &mut out, &mut hl, &mut cl, None)))
            });
            continue;
        }
        let d_out = filled(b * t * h, 5);
        let (mut dw, mut du, mut db) = (vec![0.0; f * 4 * h], vec![0.0; h * 4 * h], vec![0.0; 4 * h]);
        let (mut dh0, mut dc0) = (vec![0.0; b * h], vec![0.0; b * h]);
        group.throughput(Throughput::Elements(3 * fwd_flops as u64));
        group.bench_function(BenchmarkId::new("lstm_train_step", label), |bch| {
            bch.iter(|| {
                seqcore::threads::install(|| {
                    let tape = LstmTape { gates: &mut gates, cells: &mut cells };
                    lstm::forward(&spec, &p, &mut out, &mut hl, &mut cl, Some(tape));
                    let up = LstmUpstream { d_out: Some(&d_out), d_h_last: None, d_c_last: None };
                    let g = LstmGrads {
                        dx: None,
                        dkernel: &mut dw,
                        drecurrent_kernel: &mut du,
                        dbias: Some(&mut db),
                        dh0: &mut dh0,
                        dc0: &mut dc0,
                    };
                    lstm::backward(&spec, &p, &out, &mut gates, &cells, up, g);
                });
                black_box(&dw);
            })
        });
    }
    let (b, t, f, h) = (64, 100, 32, 128);
    let dims = RnnDims { batch: b, steps: t, inputs: f, units: h };
    let spec = GruSpec { dims, activation: act, recurrent_activation: rec, go_backwards: false, reset_after: true };
    let (x, w, u, bias) = (filled(b * t * f, 1), filled(f * 3 * h, 2), filled(h * 3 * h, 3), filled(6 * h, 4));
    let p = GruParams {
        x: &x,
        kernel: &w,
        recurrent_kernel: &u,
        bias: Some(&bias),
        h0: None,
        mask: StepMask::ALL,
        masks: GateMasks::default(),
    };
    let (mut out, mut hl) = (vec![0.0; b * t * h], vec![0.0; b * h]);
    let (mut gates, mut extra) = (vec![0.0; b * t * 3 * h], vec![0.0; b * t * h]);
    let d_out = filled(b * t * h, 5);
    let (mut dw, mut du, mut db, mut dh0) =
        (vec![0.0; f * 3 * h], vec![0.0; h * 3 * h], vec![0.0; 6 * h], vec![0.0; b * h]);
    group.throughput(Throughput::Elements(3 * 2 * (b * t * (f + h) * 3 * h) as u64));
    group.bench_function(BenchmarkId::new("gru_train_step", "gru_mid_64x100x32x128"), |bch| {
        bch.iter(|| {
            seqcore::threads::install(|| {
                gru::forward(&spec, &p, &mut out, &mut hl, Some(GruTape { gates: &mut gates, extra: &mut extra }));
                let g = GruGrads {
                    dx: None,
                    dkernel: &mut dw,
                    drecurrent_kernel: &mut du,
                    dbias: Some(&mut db),
                    dh0: &mut dh0,
                };
                gru::backward(&spec, &p, &out, &mut gates, &mut extra, Some(&d_out), None, g);
            });
            black_box(&dw);
        })
    });
    group.finish();
}

criterion_group!(benches, bench_forward, bench_backward, bench_install, bench_recurrent);
criterion_main!(benches);
