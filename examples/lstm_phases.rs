//! Times the LSTM kernel's phases on one shape, for profiling work on the kernels:
//! `cargo run --release --example lstm_phases -- B T F H [threads]` (default 64 100 16 64 1).
//! Prints medians of 30 runs: inference forward, training forward (tape), backward, and the
//! recurrent GEMM alone, with GFLOP/s. Wall-clock medians on a shared machine: compare runs made
//! back to back, not single figures.
#![allow(clippy::print_stdout)] // a command-line tool: printing is its output
use seqcore::kernels::lstm::{self, LstmGrads, LstmParams, LstmSpec, LstmTape, LstmUpstream};
use seqcore::kernels::rnn::{GateMasks, RnnDims, StepMask};
use seqcore::simd::activation::Activation;
use std::time::Instant;

fn filled(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s as f32 / u32::MAX as f32 - 0.5) * 0.5
        })
        .collect()
}

/// `ONLY=name` (one of infer, train_fwd, bwd) runs that phase 300 times and skips the others, for
/// `perf record`.
fn median_ms(mut f: impl FnMut()) -> f64 {
    for _ in 0..5 {
        f();
    }
    let mut ts: Vec<f64> = (0..30)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    ts.sort_by(|a, b| a.partial_cmp(b).unwrap());
    ts[ts.len() / 2]
}

fn main() {
    let a: Vec<usize> = std::env::args().skip(1).map(|s| s.parse().expect("integers")).collect();
    let get = |i: usize, d: usize| a.get(i).copied().unwrap_or(d);
    let (b, t, f, h, threads) = (get(0, 64), get(1, 100), get(2, 16), get(3, 64), get(4, 1));
    seqcore::threads::set_num_threads(threads).expect("thread count");
    let dims = RnnDims { batch: b, steps: t, inputs: f, units: h };
    let spec =
        LstmSpec { dims, activation: Activation::Tanh, recurrent_activation: Activation::Sigmoid, go_backwards: false };
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
    let gf = 2.0 * (b * t * (f + h) * 4 * h) as f64 / 1e9;
    let only = std::env::var("ONLY").unwrap_or_default();
    if !only.is_empty() {
        for _ in 0..300 {
            match only.as_str() {
                "infer" => seqcore::threads::install(|| lstm::forward(&spec, &p, &mut out, &mut hl, &mut cl, None)),
                "train_fwd" | "bwd" => {
                    let tape = LstmTape { gates: &mut gates, cells: &mut cells };
                    seqcore::threads::install(|| lstm::forward(&spec, &p, &mut out, &mut hl, &mut cl, Some(tape)));
                    if only == "bwd" {
                        let d_out = &out; // any upstream gradient will do for timing
                        let (mut dw, mut du) = (vec![0.0; f * 4 * h], vec![0.0; h * 4 * h]);
                        let (mut db, mut dh0, mut dc0) = (vec![0.0; 4 * h], vec![0.0; b * h], vec![0.0; b * h]);
                        let mut dx = vec![0.0; b * t * f];
                        let up = LstmUpstream { d_out: Some(d_out), d_h_last: None, d_c_last: None };
                        let g = LstmGrads {
                            dx: Some(&mut dx),
                            dkernel: &mut dw,
                            drecurrent_kernel: &mut du,
                            dbias: Some(&mut db),
                            dh0: &mut dh0,
                            dc0: &mut dc0,
                        };
                        seqcore::threads::install(|| lstm::backward(&spec, &p, &out, &mut gates, &cells, up, g));
                    }
                }
                other => panic!("ONLY={other}: infer, train_fwd or bwd"),
            }
        }
        return;
    }
    let infer = median_ms(|| seqcore::threads::install(|| lstm::forward(&spec, &p, &mut out, &mut hl, &mut cl, None)));
    let train_fwd = median_ms(|| {
        seqcore::threads::install(|| {
            let tape = LstmTape { gates: &mut gates, cells: &mut cells };
            lstm::forward(&spec, &p, &mut out, &mut hl, &mut cl, Some(tape))
        })
    });
    let d_out = filled(b * t * h, 5);
    let (mut dw, mut du, mut db) = (vec![0.0; f * 4 * h], vec![0.0; h * 4 * h], vec![0.0; 4 * h]);
    let (mut dh0, mut dc0, mut dx) = (vec![0.0; b * h], vec![0.0; b * h], vec![0.0; b * t * f]);
    let gates0 = {
        let tape = LstmTape { gates: &mut gates, cells: &mut cells };
        seqcore::threads::install(|| lstm::forward(&spec, &p, &mut out, &mut hl, &mut cl, Some(tape)));
        gates.clone()
    };
    let bwd = median_ms(|| {
        gates.copy_from_slice(&gates0);
        seqcore::threads::install(|| {
            let up = LstmUpstream { d_out: Some(&d_out), d_h_last: None, d_c_last: None };
            let g = LstmGrads {
                dx: Some(&mut dx),
                dkernel: &mut dw,
                drecurrent_kernel: &mut du,
                dbias: Some(&mut db),
                dh0: &mut dh0,
                dc0: &mut dc0,
            };
            lstm::backward(&spec, &p, &out, &mut gates, &cells, up, g)
        })
    });
    let copy = median_ms(|| gates.copy_from_slice(&gates0));
    // The step GEMMs alone, as the loops run them on one thread: [x_t | h]·[W; U] into the
    // tape's row stride, and dG_t·[W; U]ᵀ.
    use seqcore::linalg::{
        packed::{gemm_packed, PackedB},
        Trans,
    };
    let wu = PackedB::pack_stacked(&[(&w, f), (&u, h)], 4 * h, 4 * h, Trans::N);
    let xh = filled(b * (f + h), 6);
    let step_fwd = median_ms(|| {
        for s in 0..t {
            gemm_packed(b, &xh, f + h, &wu, &mut gates[s * 4 * h..], t * 4 * h, false);
        }
    });
    let wut = PackedB::pack_stacked(&[(&w, f), (&u, h)], 4 * h, 4 * h, Trans::T);
    let mut prod = vec![0.0; b * (f + h)];
    let step_bwd = median_ms(|| {
        for s in 0..t {
            gemm_packed(b, &gates[s * 4 * h..], t * 4 * h, &wut, &mut prod, f + h, false);
        }
    });
    // The default cell alone over every (row, step), on a step's rows as the time loop holds them.
    let mut zb = filled(b * 4 * h, 7);
    let (mut cb, mut hb) = (vec![0.0; b * h], vec![0.0; b * h]);
    let cell = median_ms(|| {
        for _ in 0..t {
            for r in 0..b {
                let z = &mut zb[r * 4 * h..(r + 1) * 4 * h];
                z.iter_mut().for_each(|v| *v = v.clamp(-3.0, 3.0)); // keep the inputs in range
                lstm::cell_step(
                    Activation::Tanh,
                    Activation::Sigmoid,
                    z,
                    &bias,
                    &mut cb[r * h..(r + 1) * h],
                    &mut hb[r * h..(r + 1) * h],
                );
            }
        }
    });
    println!("B={b} T={t} F={f} H={h} threads={threads}");
    println!("cell alone        {cell:8.3} ms  {:6.2} ns/unit", cell * 1e6 / (b * t * h) as f64);
    println!("step GEMMs fwd    {step_fwd:8.3} ms  {:6.1} GFLOP/s", gf / step_fwd * 1e3);
    println!("step GEMMs bwd    {step_bwd:8.3} ms  {:6.1} GFLOP/s", gf / step_bwd * 1e3);
    println!("inference forward {infer:8.3} ms  {:6.1} GFLOP/s", gf / infer * 1e3);
    println!("training forward  {train_fwd:8.3} ms  {:6.1} GFLOP/s", gf / train_fwd * 1e3);
    println!(
        "backward          {:8.3} ms  {:6.1} GFLOP/s (2x forward FLOPs)",
        bwd - copy,
        2.0 * gf / (bwd - copy) * 1e3
    );
}
