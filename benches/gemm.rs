//! GEMM shoot-out: the `gemm` crate (what `seqcore::linalg` wraps) against `matrixmultiply`, on the
//! shapes our kernels issue. Throughput is in FLOP (2*m*n*k per call), so criterion's "elem/s" reads
//! as FLOP/s. This is the benchmark the GEMM dependency was chosen by; run `make bench-rust`.
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
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

/// (label, m, n, k): C[m×n] = A[m×k]·B[k×n], all row-major.
const SHAPES: &[(&str, usize, usize, usize)] = &[
    ("square_2048", 2048, 2048, 2048),
    ("td_dense_fwd_6400x256x128", 6400, 256, 128),
    ("td_dense_dw_128x256x6400", 128, 256, 6400),
    ("lstm_step_64x512x128", 64, 512, 128),
    ("lstm_proj_6400x512x32", 6400, 512, 32),
];

fn bench_gemm(c: &mut Criterion) {
    let threads = seqcore::threads::get_num_threads();
    let mut group = c.benchmark_group("sgemm");
    group.sample_size(10).measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(300));
    for &(label, m, n, k) in SHAPES {
        let a = filled(m * k, 1);
        let b = filled(k * n, 2);
        let mut out = vec![0.0f32; m * n];
        group.throughput(Throughput::Elements((2 * m * n * k) as u64));
        group.bench_with_input(BenchmarkId::new("seqcore_linalg(gemm)", label), &(), |bch, _| {
            bch.iter(|| {
                seqcore::linalg::sgemm(
                    seqcore::linalg::Trans::N,
                    seqcore::linalg::Trans::N,
                    m,
                    n,
                    k,
                    1.0,
                    &a,
                    k,
                    &b,
                    n,
                    0.0,
                    &mut out,
                    n,
                    threads,
                );
                black_box(&out);
            })
        });
        group.bench_with_input(BenchmarkId::new("matrixmultiply", label), &(), |bch, _| {
            bch.iter(|| {
                // SAFETY: slices are exactly m*k, k*n and m*n long with the row-major strides given.
                unsafe {
                    matrixmultiply::sgemm(
                        m,
                        k,
                        n,
                        1.0,
                        a.as_ptr(),
                        k as isize,
                        1,
                        b.as_ptr(),
                        n as isize,
                        1,
                        0.0,
                        out.as_mut_ptr(),
                        n as isize,
                        1,
                    );
                }
                black_box(&out);
            })
        });
    }
    group.finish();
}

/// The packed GEMM that recurrent and dense kernels use per block (`B` packed once), against the
/// general GEMM on one thread, at per-thread step shapes: (rows, n, k).
fn bench_packed(c: &mut Criterion) {
    use seqcore::linalg::packed::{gemm_packed, PackedB};
    use seqcore::linalg::{sgemm, Trans};
    let mut group = c.benchmark_group("packed_vs_gemm_1thread");
    group.sample_size(10).measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(300));
    for &(label, m, n, k) in &[
        ("lstm_mid_step_32x512x160", 32, 512, 160),
        ("cnn_lstm_step_128x400x1060", 128, 400, 1060),
        ("lstm_large_step_64x2048x768", 64, 2048, 768),
        ("infer_b1_1x512x160", 1, 512, 160),
    ] {
        let a = filled(m * k, 1);
        let b = filled(k * n, 2);
        let mut out = vec![0.0f32; m * n];
        let pb = PackedB::pack(&b, n, k, n, Trans::N);
        group.throughput(Throughput::Elements((2 * m * n * k) as u64));
        group.bench_with_input(BenchmarkId::new("packed", label), &(), |bch, _| {
            bch.iter(|| {
                gemm_packed(m, &a, k, &pb, &mut out, n, false);
                black_box(&out);
            })
        });
        group.bench_with_input(BenchmarkId::new("gemm_crate", label), &(), |bch, _| {
            bch.iter(|| {
                sgemm(Trans::N, Trans::N, m, n, k, 1.0, &a, k, &b, n, 0.0, &mut out, n, 1);
                black_box(&out);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_gemm, bench_packed);
criterion_main!(benches);
