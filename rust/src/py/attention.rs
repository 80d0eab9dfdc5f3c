//! Bindings for `kernels::attention`: scaled dot-product attention forward, backward and the
//! probabilities. q, k and v are `(B, T, W)` arrays whose heads start at a column offset, so a fused
//! QKV projection is passed three times with three offsets (no copy). Shapes are re-checked here for
//! memory safety; `python/seqcore/layers/attention.py` gives the friendly errors.
use super::errors::{run_kernel, slice, slice_mut, value_error};
use super::rnn::lengths_vec;
use crate::kernels::attention::{self, AttnGrads, AttnSpec, DenseMask, Fill, Masks};
use numpy::{
    PyArray3, PyArray4, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray3, PyReadonlyArray4, PyUntypedArrayMethods,
};
use pyo3::prelude::*;

type Arr3<'py> = Bound<'py, PyArray3<f32>>;
type Arr4<'py> = Bound<'py, PyArray4<f32>>;

const OP_F: &str = "attention_forward";

/// The options every entry point takes, as Python passes them.
#[derive(FromPyObject)]
struct Options {
    heads: usize,
    key_dim: usize,
    value_dim: usize,
    cols: (usize, usize, usize),
    scale: f32,
    causal: bool,
    window: usize,
    replace_fill: bool,
    dropout: f32,
    seed: u64,
    scores_after_dropout: bool,
}

struct Checked {
    spec: AttnSpec,
    q_len: Option<Vec<usize>>,
    k_len: Option<Vec<usize>>,
    mask_strides: Option<(usize, usize)>,
}

#[allow(clippy::too_many_arguments)]
fn check<'py>(
    op: &str,
    q: &PyReadonlyArray3<'py, f32>,
    k: &PyReadonlyArray3<'py, f32>,
    v: &PyReadonlyArray3<'py, f32>,
    opt: &Options,
    q_len: &Option<PyReadonlyArray1<'py, i64>>,
    k_len: &Option<PyReadonlyArray1<'py, i64>>,
    mask: &Option<PyReadonlyArray4<'py, u8>>,
) -> PyResult<Checked> {
    let (qs, ks, vs) = (q.shape(), k.shape(), v.shape());
    let (batch, tq, tk) = (qs[0], qs[1], ks[1]);
    if ks[0] != batch || vs[0] != batch || vs[1] != tk {
        return Err(value_error(op, format!("q {qs:?}, k {ks:?} and v {vs:?} disagree on batch or key length")));
    }
    let (h, dk, dv) = (opt.heads, opt.key_dim, opt.value_dim);
    // checked: absurd head counts or offsets must be refused, not wrap around
    for (name, shape, col, d) in [("q", qs, opt.cols.0, dk), ("k", ks, opt.cols.1, dk), ("v", vs, opt.cols.2, dv)] {
        let end = h.checked_mul(d).and_then(|w| col.checked_add(w));
        if end.is_none_or(|e| e > shape[2]) {
            let msg = format!("{name} has {} columns; its heads need columns {col} + {h} x {d}", shape[2]);
            return Err(value_error(op, msg));
        }
    }
    // the outputs' sizes must not overflow either
    let out_ok = [qs[0], qs[1], h, dv.max(1)].iter().try_fold(1usize, |a, &x| a.checked_mul(x)).is_some()
        && [qs[0], h, qs[1], ks[1]].iter().try_fold(4usize, |a, &x| a.checked_mul(x)).is_some();
    if !out_ok {
        return Err(value_error(op, "the attention outputs would not fit in memory"));
    }
    if !(0.0..1.0).contains(&opt.dropout) {
        return Err(value_error(op, format!("dropout must lie in [0, 1); received {}", opt.dropout)));
    }
    let mask_strides = match mask {
        None => None,
        Some(m) => {
            let s = m.shape();
            if (s[0] != 1 && s[0] != batch) || (s[1] != 1 && s[1] != h) || s[2] != tq || s[3] != tk {
                return Err(value_error(
                    op,
                    format!("mask has shape {s:?}; expected (1 or {batch}, 1 or {h}, {tq}, {tk})"),
                ));
            }
            let per_head = tq * tk;
            Some((if s[0] == 1 { 0 } else { s[1] * per_head }, if s[1] == 1 { 0 } else { per_head }))
        }
    };
    let spec = AttnSpec {
        batch,
        heads: h,
        tq,
        tk,
        dk,
        dv,
        q_row: qs[2],
        k_row: ks[2],
        v_row: vs[2],
        o_row: h * dv,
        scale: opt.scale,
        causal: opt.causal,
        window: opt.window,
        fill: if opt.replace_fill { Fill::Replace } else { Fill::Subtract },
        dropout: opt.dropout,
        seed: opt.seed,
        scores_after_dropout: opt.scores_after_dropout,
    };
    Ok(Checked {
        spec,
        q_len: lengths_vec(op, q_len, batch, tq)?,
        k_len: lengths_vec(op, k_len, batch, tk)?,
        mask_strides,
    })
}

fn masks<'a>(c: &'a Checked, mask: Option<&'a [u8]>) -> Masks<'a> {
    Masks {
        q_len: c.q_len.as_deref(),
        k_len: c.k_len.as_deref(),
        dense: mask.zip(c.mask_strides).map(|(data, (bs, hs))| DenseMask { data, batch_stride: bs, head_stride: hs }),
    }
}

/// The inputs from their column offsets on (the kernel reads `heads·d` columns of each row there).
fn inputs<'a>(
    op: &str,
    opt: &Options,
    q: &'a PyReadonlyArray3<'_, f32>,
    k: &'a PyReadonlyArray3<'_, f32>,
    v: &'a PyReadonlyArray3<'_, f32>,
) -> PyResult<(&'a [f32], &'a [f32], &'a [f32])> {
    let at = |s: &'a [f32], col: usize| if s.is_empty() { s } else { &s[col.min(s.len())..] };
    Ok((at(slice(q, op, "q")?, opt.cols.0), at(slice(k, op, "k")?, opt.cols.1), at(slice(v, op, "v")?, opt.cols.2)))
}

/// `attention_forward(q, k, v, options, q_len | None, k_len | None, mask | None, save_probs) -> (o,
/// stats, probs | None)`: `o` `(B, Tq, heads·value_dim)`, `stats` `(B, heads, Tq, 2)` (what backward
/// and the scores need), and with `save_probs` the probabilities `(B, heads, Tq, Tk)` before dropout.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn attention_forward<'py>(
    py: Python<'py>,
    q: PyReadonlyArray3<'py, f32>,
    k: PyReadonlyArray3<'py, f32>,
    v: PyReadonlyArray3<'py, f32>,
    options: Options,
    q_len: Option<PyReadonlyArray1<'py, i64>>,
    k_len: Option<PyReadonlyArray1<'py, i64>>,
    mask: Option<PyReadonlyArray4<'py, u8>>,
    save_probs: bool,
) -> PyResult<(Arr3<'py>, Arr4<'py>, Option<Arr4<'py>>)> {
    let c = check(OP_F, &q, &k, &v, &options, &q_len, &k_len, &mask)?;
    let s = c.spec;
    if save_probs && s.tk >= attention::SAVE_PROBS_MAX_KEYS {
        return Err(value_error(
            OP_F,
            format!("probabilities are saved only below {} keys", attention::SAVE_PROBS_MAX_KEYS),
        ));
    }
    let o = super::buffers::pooled(py, [s.batch, s.tq, s.heads * s.dv]);
    let stats = super::buffers::pooled(py, [s.batch, s.heads, s.tq, 2]);
    let probs = save_probs.then(|| PyArray4::zeros(py, [s.batch, s.heads, s.tq, s.tk], false));
    {
        let (qs, ks, vs) = inputs(OP_F, &options, &q, &k, &v)?;
        let ms = mask.as_ref().map(|m| slice(m, OP_F, "mask")).transpose()?;
        let (mut ow, mut sw) = (o.readwrite(), stats.readwrite());
        let (os, ss) = (slice_mut(&mut ow, OP_F, "o")?, slice_mut(&mut sw, OP_F, "stats")?);
        let mut pw = probs.as_ref().map(|a| a.readwrite());
        let ps = pw.as_mut().map(|a| slice_mut(a, OP_F, "probs")).transpose()?;
        let m = masks(&c, ms);
        run_kernel(py, OP_F, || attention::forward(s, qs, ks, vs, m, os, ss, ps))?;
    }
    Ok((o, stats, probs))
}

fn check_like(op: &str, name: &str, got: &[usize], want: &[usize]) -> PyResult<()> {
    if got != want {
        return Err(value_error(op, format!("{name} has shape {got:?}; expected {want:?}")));
    }
    Ok(())
}

type Grads<'py> = (Option<Arr3<'py>>, Option<Arr3<'py>>, Option<Arr3<'py>>, f32);

/// `attention_backward(q, k, v, options, q_len, k_len, mask, o, stats, d_o, d_scores | None,
/// d_extra | None, probs | None, need (dq, dk, dv), fused, want_dscale) -> (dq, dk, dv, dscale)`. With `fused`
/// (q, k and v one array), the three gradients are one array of q's shape, returned as `dq`.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn attention_backward<'py>(
    py: Python<'py>,
    q: PyReadonlyArray3<'py, f32>,
    k: PyReadonlyArray3<'py, f32>,
    v: PyReadonlyArray3<'py, f32>,
    options: Options,
    q_len: Option<PyReadonlyArray1<'py, i64>>,
    k_len: Option<PyReadonlyArray1<'py, i64>>,
    mask: Option<PyReadonlyArray4<'py, u8>>,
    o: PyReadonlyArray3<'py, f32>,
    stats: PyReadonlyArray4<'py, f32>,
    d_o: PyReadonlyArray3<'py, f32>,
    d_scores: Option<PyReadonlyArray4<'py, f32>>,
    d_extra: Option<PyReadonlyArray3<'py, f32>>,
    probs: Option<PyReadonlyArray4<'py, f32>>,
    need: (bool, bool, bool),
    fused: bool,
    want_dscale: bool,
) -> PyResult<Grads<'py>> {
    const OP: &str = "attention_backward";
    let c = check(OP, &q, &k, &v, &options, &q_len, &k_len, &mask)?;
    let s = c.spec;
    check_like(OP, "o", o.shape(), &[s.batch, s.tq, s.heads * s.dv])?;
    check_like(OP, "d_o", d_o.shape(), &[s.batch, s.tq, s.heads * s.dv])?;
    check_like(OP, "stats", stats.shape(), &[s.batch, s.heads, s.tq, 2])?;
    if d_scores.is_some() != d_extra.is_some() {
        return Err(value_error(OP, "d_scores and d_extra come together"));
    }
    if let (Some(ds), Some(de)) = (&d_scores, &d_extra) {
        check_like(OP, "d_scores", ds.shape(), &[s.batch, s.heads, s.tq, s.tk])?;
        check_like(OP, "d_extra", de.shape(), &[s.batch, s.heads, s.tq])?;
    }
    if let Some(p) = &probs {
        check_like(OP, "probs", p.shape(), &[s.batch, s.heads, s.tq, s.tk])?;
    }
    if fused && (q.shape() != k.shape() || q.shape() != v.shape()) {
        return Err(value_error(OP, "fused gradients need q, k and v to be one array"));
    }
    let (hk, hv) = (s.heads * s.dk, s.heads * s.dv);
    if fused {
        let (qc, kc, vc) = options.cols;
        let ranges = [(qc, qc + hk), (kc, kc + hk), (vc, vc + hv)];
        for (i, a) in ranges.iter().enumerate() {
            for b in &ranges[i + 1..] {
                if !(a.1 <= b.0 || b.1 <= a.0) {
                    return Err(value_error(OP, "fused q, k and v columns overlap"));
                }
            }
        }
    }
    // A gradient array is written only in its head columns: zero it when those leave columns over.
    let alloc = |shape: [usize; 3], covered: usize| {
        if covered == shape[2] {
            super::buffers::pooled(py, shape)
        } else {
            PyArray3::zeros(py, shape, false)
        }
    };
    let (shq, shk, shv) = ([s.batch, s.tq, s.q_row], [s.batch, s.tk, s.k_row], [s.batch, s.tk, s.v_row]);
    let (dq, dk, dv) = if fused {
        (Some(PyArray3::zeros(py, shq, false)), None, None)
    } else {
        (need.0.then(|| alloc(shq, hk)), need.1.then(|| alloc(shk, hk)), need.2.then(|| alloc(shv, hv)))
    };
    let dscale = {
        let (qs, ks, vs) = inputs(OP, &options, &q, &k, &v)?;
        let ms = mask.as_ref().map(|m| slice(m, OP, "mask")).transpose()?;
        let (os, ss, dos) = (slice(&o, OP, "o")?, slice(&stats, OP, "stats")?, slice(&d_o, OP, "d_o")?);
        let extra = match (&d_scores, &d_extra) {
            (Some(a), Some(b)) => Some((slice(a, OP, "d_scores")?, slice(b, OP, "d_extra")?)),
            _ => None,
        };
        let mut dqw = dq.as_ref().map(|a| a.readwrite());
        let mut dkw = dk.as_ref().map(|a| a.readwrite());
        let mut dvw = dv.as_ref().map(|a| a.readwrite());
        let dqs = dqw.as_mut().map(|a| slice_mut(a, OP, "dq")).transpose()?;
        let dks = dkw.as_mut().map(|a| slice_mut(a, OP, "dk")).transpose()?;
        let dvs = dvw.as_mut().map(|a| slice_mut(a, OP, "dv")).transpose()?;
        let grads = if fused {
            let (qc, kc, vc) = options.cols;
            let buf = dqs.expect("fused gradient array");
            let row = s.q_row;
            AttnGrads::fused(&s, buf, row, [need.0.then_some(qc), need.1.then_some(kc), need.2.then_some(vc)])
        } else {
            AttnGrads::separate(&s, dqs, dks, dvs)
        };
        let saved = probs.as_ref().map(|p| slice(p, OP, "probs")).transpose()?;
        let m = masks(&c, ms);
        run_kernel(py, OP, || attention::backward(s, qs, ks, vs, m, os, ss, dos, extra, saved, grads, want_dscale))?
    };
    Ok((dq, dk, dv, dscale))
}

/// `attention_scores(q, k, options, q_len, k_len, mask, stats) -> (B, heads, Tq, Tk)`: the
/// attention probabilities before dropout (what Keras returns with `return_attention_scores`).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn attention_scores<'py>(
    py: Python<'py>,
    q: PyReadonlyArray3<'py, f32>,
    k: PyReadonlyArray3<'py, f32>,
    options: Options,
    q_len: Option<PyReadonlyArray1<'py, i64>>,
    k_len: Option<PyReadonlyArray1<'py, i64>>,
    mask: Option<PyReadonlyArray4<'py, u8>>,
    stats: PyReadonlyArray4<'py, f32>,
) -> PyResult<Arr4<'py>> {
    const OP: &str = "attention_scores";
    // v is not read: k stands in for it in the shared checks (with value_dim 0)
    let opt = Options { value_dim: 0, cols: (options.cols.0, options.cols.1, 0), ..options };
    let c = check(OP, &q, &k, &k, &opt, &q_len, &k_len, &mask)?;
    let s = c.spec;
    check_like(OP, "stats", stats.shape(), &[s.batch, s.heads, s.tq, 2])?;
    let p = super::buffers::pooled(py, [s.batch, s.heads, s.tq, s.tk]);
    {
        let (qs, ks, _) = inputs(OP, &opt, &q, &k, &k)?;
        let ms = mask.as_ref().map(|m| slice(m, OP, "mask")).transpose()?;
        let ss = slice(&stats, OP, "stats")?;
        let mut pw = p.readwrite();
        let ps = slice_mut(&mut pw, OP, "scores")?;
        let m = masks(&c, ms);
        run_kernel(py, OP, || attention::probabilities(s, qs, ks, m, ss, ps))?;
    }
    Ok(p)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(attention_forward, m)?)?;
    m.add_function(wrap_pyfunction!(attention_backward, m)?)?;
    m.add_function(wrap_pyfunction!(attention_scores, m)?)?;
    Ok(())
}
