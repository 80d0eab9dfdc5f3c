//! Attention against a float64 reference that materializes the score matrix.
use super::*;

fn vals(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(12345);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (s >> 9) as f32 / (1u32 << 22) as f32 - 1.0
        })
        .collect()
}

struct Case {
    spec: AttnSpec,
    q_len: Option<Vec<usize>>,
    k_len: Option<Vec<usize>>,
    dense: Option<Vec<u8>>,
}

impl Case {
    fn new(batch: usize, heads: usize, tq: usize, tk: usize, dk: usize, dv: usize) -> Case {
        let spec = AttnSpec {
            batch,
            heads,
            tq,
            tk,
            dk,
            dv,
            q_row: heads * dk,
            k_row: heads * dk,
            v_row: heads * dv,
            o_row: heads * dv,
            scale: 1.0 / (dk as f32).sqrt(),
            causal: false,
            window: 0,
            fill: Fill::Replace,
            dropout: 0.0,
            seed: 7,
            scores_after_dropout: false,
        };
        Case { spec, q_len: None, k_len: None, dense: None }
    }

    fn masks(&self) -> Masks<'_> {
        let s = &self.spec;
        Masks {
            q_len: self.q_len.as_deref(),
            k_len: self.k_len.as_deref(),
            dense: self.dense.as_deref().map(|d| DenseMask { data: d, batch_stride: s.tq * s.tk, head_stride: 0 }),
        }
    }

    fn allowed(&self, b: usize, i: usize, j: usize) -> bool {
        let s = &self.spec;
        self.q_len.as_ref().is_none_or(|l| i < l[b])
            && self.k_len.as_ref().is_none_or(|l| j < l[b])
            && (!s.causal || j <= i)
            && (s.window == 0 || i.abs_diff(j) < s.window)
            && self.dense.as_ref().is_none_or(|d| d[(b * s.tq + i) * s.tk + j] != 0)
    }

    /// (o, dq, dk, dv, dscale) in f64, dropout off.
    #[allow(clippy::type_complexity)]
    fn reference(&self, q: &[f32], k: &[f32], v: &[f32], d_o: &[f32]) -> (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>, f64) {
        let s = &self.spec;
        let (h_, dk, dv) = (s.heads, s.dk, s.dv);
        let mut o = vec![0.0; s.batch * s.tq * h_ * dv];
        let mut gq = vec![0.0; q.len()];
        let mut gk = vec![0.0; k.len()];
        let mut gv = vec![0.0; v.len()];
        let mut gscale = 0.0;
        for b in 0..s.batch {
            for h in 0..h_ {
                for i in 0..s.tq {
                    let qi = |d: usize| q[(b * s.tq + i) * s.q_row + h * dk + d] as f64;
                    let mut raw = vec![0.0; s.tk];
                    let mut sc = vec![0.0; s.tk];
                    for j in 0..s.tk {
                        raw[j] = (0..dk).map(|d| qi(d) * k[(b * s.tk + j) * s.k_row + h * dk + d] as f64).sum();
                        let x = raw[j] * s.scale as f64;
                        sc[j] = if self.allowed(b, i, j) { x } else { NEG as f64 };
                    }
                    let m = sc.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let e: Vec<f64> = sc.iter().map(|x| (x - m).exp()).collect();
                    let z: f64 = e.iter().sum();
                    // Keras MHA: where(mask, softmax(where(mask, s, -1e9)), 0)
                    let p: Vec<f64> = (0..s.tk).map(|j| if self.allowed(b, i, j) { e[j] / z } else { 0.0 }).collect();
                    let oat = (b * s.tq + i) * s.o_row + h * dv;
                    let mut dp = vec![0.0; s.tk];
                    for j in 0..s.tk {
                        for d in 0..dv {
                            let vv = v[(b * s.tk + j) * s.v_row + h * dv + d] as f64;
                            o[(b * s.tq + i) * h_ * dv + h * dv + d] += p[j] * vv;
                            dp[j] += d_o[oat + d] as f64 * vv;
                            gv[(b * s.tk + j) * s.v_row + h * dv + d] += p[j] * d_o[oat + d] as f64;
                        }
                    }
                    let dd: f64 = (0..s.tk).map(|j| p[j] * dp[j]).sum();
                    for j in 0..s.tk {
                        let ds = if self.allowed(b, i, j) { p[j] * (dp[j] - dd) } else { 0.0 };
                        gscale += ds * raw[j];
                        for d in 0..dk {
                            let kat = (b * s.tk + j) * s.k_row + h * dk + d;
                            gq[(b * s.tq + i) * s.q_row + h * dk + d] += s.scale as f64 * ds * k[kat] as f64;
                            gk[kat] += s.scale as f64 * ds * qi(d);
                        }
                    }
                }
            }
        }
        (o, gq, gk, gv, gscale)
    }
}

fn close(got: &[f32], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(1e-3f64, |a, &b| a.max(b.abs()));
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!((g as f64 - w).abs() <= tol * scale, "{what}[{i}]: {g} vs {w}");
    }
}

fn run(case: &Case, threads: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>, f32) {
    let s = case.spec;
    let q = vals(s.batch * s.tq * s.q_row, 1);
    let k = vals(s.batch * s.tk * s.k_row, 2);
    let v = vals(s.batch * s.tk * s.v_row, 3);
    let d_o = vals(s.batch * s.tq * s.o_row, 4);
    let mut o = vec![f32::NAN; s.batch * s.tq * s.o_row];
    let mut lse = vec![0.0; 2 * s.batch * s.heads * s.tq];
    let (mut gq, mut gk, mut gv) = (vec![f32::NAN; q.len()], vec![f32::NAN; k.len()], vec![f32::NAN; v.len()]);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    let dscale = pool.install(|| {
        forward(s, &q, &k, &v, case.masks(), &mut o, &mut lse, None);
        let grads = AttnGrads::separate(&s, Some(&mut gq), Some(&mut gk), Some(&mut gv));
        backward(s, &q, &k, &v, case.masks(), &o, &lse, &d_o, None, None, grads, true)
    });
    (o, gq, gk, gv, dscale)
}

fn check(case: &Case) {
    let s = case.spec;
    let q = vals(s.batch * s.tq * s.q_row, 1);
    let k = vals(s.batch * s.tk * s.k_row, 2);
    let v = vals(s.batch * s.tk * s.v_row, 3);
    let d_o = vals(s.batch * s.tq * s.o_row, 4);
    let (ro, rq, rk, rv, rscale) = case.reference(&q, &k, &v, &d_o);
    let (o, gq, gk, gv, dscale) = run(case, 1);
    // only the head columns of each row are the kernel's (a fused projection's rows hold q, k, v)
    let cols = |a: &[f32], row: usize, w: usize| -> Vec<f32> { a.chunks(row).flat_map(|r| r[..w].to_vec()).collect() };
    let cols64 =
        |a: &[f64], row: usize, w: usize| -> Vec<f64> { a.chunks(row).flat_map(|r| r[..w].to_vec()).collect() };
    let (hk, hv) = (s.heads * s.dk, s.heads * s.dv);
    close(&cols(&o, s.o_row, hv), &ro, 2e-5, "o");
    close(&cols(&gq, s.q_row, hk), &cols64(&rq, s.q_row, hk), 2e-4, "dq");
    close(&cols(&gk, s.k_row, hk), &cols64(&rk, s.k_row, hk), 2e-4, "dk");
    close(&cols(&gv, s.v_row, hv), &cols64(&rv, s.v_row, hv), 2e-4, "dv");
    assert!((dscale as f64 - rscale).abs() <= 1e-3 * (1.0 + rscale.abs()), "dscale {dscale} vs {rscale}");
    let again = run(case, 3);
    let bits = |a: &[f32]| a.iter().map(|x| x.to_bits()).collect::<Vec<_>>(); // NaN in columns not ours
    assert!(
        bits(&o) == bits(&again.0)
            && bits(&gq) == bits(&again.1)
            && bits(&gk) == bits(&again.2)
            && bits(&gv) == bits(&again.3),
        "thread count changed the result"
    );
}

#[test]
fn plain_and_odd_shapes() {
    for &(b, h, tq, tk, dk, dv) in
        &[(1, 1, 1, 1, 1, 1), (2, 3, 5, 7, 3, 2), (1, 2, 70, 65, 8, 5), (2, 1, 130, 1100, 4, 3), (1, 1, 3, 0, 2, 2)]
    {
        check(&Case::new(b, h, tq, tk, dk, dv));
    }
}

#[test]
fn masks_causal_window_lengths_dense() {
    let mut c = Case::new(2, 2, 67, 67, 4, 3);
    c.spec.causal = true;
    check(&c);
    c.spec.window = 5;
    check(&c);
    c.k_len = Some(vec![40, 0]); // a sequence with no keys: every row's probabilities are 0
    c.q_len = Some(vec![67, 10]);
    check(&c);
    let mut d = Case::new(2, 1, 9, 1050, 3, 2);
    d.dense = Some((0..2 * 9 * 1050).map(|x| ((x * 7919) % 3 != 0) as u8).collect());
    d.spec.causal = true;
    check(&d);
}

#[test]
fn strided_rows_as_a_fused_projection_gives() {
    // q, k, v as column slices of one (B, T, 3·H·d) array: only the row strides change.
    let mut c = Case::new(2, 2, 6, 6, 4, 4);
    c.spec.q_row = 3 * 2 * 4;
    c.spec.k_row = 3 * 2 * 4;
    c.spec.v_row = 3 * 2 * 4;
    check(&c);
}

#[test]
fn dropout_is_regenerated_exactly_and_scaled() {
    // With dropout, backward must be the gradient of the forward it regenerates: check dV = (P∘Z)ᵀ·dO
    // through a directional derivative on v, which is linear in O.
    let mut c = Case::new(1, 2, 33, 40, 4, 3);
    c.spec.dropout = 0.3;
    let s = c.spec;
    let q = vals(s.batch * s.tq * s.q_row, 1);
    let k = vals(s.batch * s.tk * s.k_row, 2);
    let v = vals(s.batch * s.tk * s.v_row, 3);
    let d_o = vals(s.batch * s.tq * s.o_row, 4);
    let dirv = vals(v.len(), 9);
    let fwd = |q: &[f32], v: &[f32]| {
        let mut o = vec![0.0; s.batch * s.tq * s.o_row];
        let mut lse = vec![0.0; 2 * s.batch * s.heads * s.tq];
        forward(s, q, &k, v, c.masks(), &mut o, &mut lse, None);
        (o, lse)
    };
    let loss = |o: &[f32]| o.iter().zip(&d_o).map(|(a, b)| *a as f64 * *b as f64).sum::<f64>();
    let (o, lse) = fwd(&q, &v);
    let (mut gq, mut gv) = (vec![0.0; q.len()], vec![0.0; v.len()]);
    backward(
        s,
        &q,
        &k,
        &v,
        c.masks(),
        &o,
        &lse,
        &d_o,
        None,
        None,
        AttnGrads::separate(&s, Some(&mut gq), None, Some(&mut gv)),
        false,
    );
    let eps = 1e-2f32;
    let vp: Vec<f32> = v.iter().zip(&dirv).map(|(a, d)| a + eps * d).collect();
    let vm: Vec<f32> = v.iter().zip(&dirv).map(|(a, d)| a - eps * d).collect();
    let fd = (loss(&fwd(&q, &vp).0) - loss(&fwd(&q, &vm).0)) / (2.0 * eps as f64);
    let an: f64 = gv.iter().zip(&dirv).map(|(g, d)| *g as f64 * *d as f64).sum();
    assert!((fd - an).abs() < 1e-3 * (1.0 + an.abs()), "dv: fd {fd} vs {an}");
    let dirq = vals(q.len(), 10);
    let qp: Vec<f32> = q.iter().zip(&dirq).map(|(a, d)| a + eps * d).collect();
    let qm: Vec<f32> = q.iter().zip(&dirq).map(|(a, d)| a - eps * d).collect();
    let fd = (loss(&fwd(&qp, &v).0) - loss(&fwd(&qm, &v).0)) / (2.0 * eps as f64);
    let an: f64 = gq.iter().zip(&dirq).map(|(g, d)| *g as f64 * *d as f64).sum();
    assert!((fd - an).abs() < 2e-3 * (1.0 + an.abs()), "dq: fd {fd} vs {an}");
    // about 30% of the probabilities dropped: O differs from the dropout-free output
    let mut c0 = Case::new(1, 2, 33, 40, 4, 3);
    c0.spec.dropout = 0.0;
    let (o0, _) = {
        let mut o = vec![0.0; s.batch * s.tq * s.o_row];
        let mut lse = vec![0.0; 2 * s.batch * s.heads * s.tq];
        forward(c0.spec, &q, &k, &v, c0.masks(), &mut o, &mut lse, None);
        (o, lse)
    };
    assert!(o.iter().zip(&o0).any(|(a, b)| (a - b).abs() > 1e-3));
}

#[test]
fn saved_probabilities_give_the_recomputed_gradients() {
    for (causal, dropout) in [(false, 0.0), (true, 0.25)] {
        let mut c = Case::new(2, 2, 70, 45, 4, 3);
        c.spec.causal = causal;
        c.spec.dropout = dropout;
        c.k_len = Some(vec![45, 20]);
        let s = c.spec;
        let q = vals(s.batch * s.tq * s.q_row, 1);
        let k = vals(s.batch * s.tk * s.k_row, 2);
        let v = vals(s.batch * s.tk * s.v_row, 3);
        let d_o = vals(s.batch * s.tq * s.o_row, 4);
        let mut o = vec![0.0; s.batch * s.tq * s.o_row];
        let mut st = vec![0.0; 2 * s.batch * s.heads * s.tq];
        let mut p = vec![0.0; s.batch * s.heads * s.tq * s.tk];
        forward(s, &q, &k, &v, c.masks(), &mut o, &mut st, Some(&mut p));
        let mut p2 = vec![0.0; p.len()];
        probabilities(s, &q, &k, c.masks(), &st, &mut p2);
        close(&p, &p2.iter().map(|&x| x as f64).collect::<Vec<_>>(), 1e-6, "probs");
        let run = |saved: Option<&[f32]>| {
            let (mut gq, mut gk, mut gv) = (vec![0.0; q.len()], vec![0.0; k.len()], vec![0.0; v.len()]);
            let grads = AttnGrads::separate(&s, Some(&mut gq), Some(&mut gk), Some(&mut gv));
            backward(s, &q, &k, &v, c.masks(), &o, &st, &d_o, None, saved, grads, false);
            (gq, gk, gv)
        };
        let (a, b) = (run(None), run(Some(&p)));
        for (x, y, what) in [(&a.0, &b.0, "dq"), (&a.1, &b.1, "dk"), (&a.2, &b.2, "dv")] {
            close(y, &x.iter().map(|&z| z as f64).collect::<Vec<_>>(), 1e-5, what);
        }
    }
}
