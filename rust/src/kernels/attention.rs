//! Scaled dot-product attention, forward and backward, float32, computed block by block so that
//! the `(Tq, Tk)` score matrix of a head is never held whole (the FlashAttention idea on a CPU).
//!
//! For each batch `b` and head `h`, with `S = scale·Q·Kᵀ` (rows: queries `i`, columns: keys `j`):
//! ```text
//! S'  = S where allowed(i, j), else fill(S)        fill: −∞ (Keras MHA, whose masked softmax is
//!                                                        where(mask, softmax(where(mask, s, −1e9)), 0))
//!                                                        or S − 1e9 (Keras Attention: s − 1e9·¬mask)
//! P   = softmax_j(S'),   O = (P ∘ Z)·V,            Z: dropout keep mask / (1 − rate), or 1
//! ```
//! `allowed` is the AND of the query lengths (`i < q_len[b]`), the key lengths (`j < k_len[b]`),
//! the causal mask (`j ≤ i`), the sliding window (`|i − j| < window`) and a dense boolean mask of
//! shape `(B | 1, H | 1, Tq, Tk)`. The fills give Keras's numbers, also for a row with no allowed key:
//! all-zero probabilities for MHA (Keras zeroes the masked ones after the softmax), the uniform
//! average of every value for Attention.
//!
//! **Forward** keeps, per query row, the running maximum `m` and sum `l` of the online softmax;
//! each key block rescales the output accumulator once. It saves `m` and `ln l` per row (apart, see [`exp_row`]).
//! **Backward** recomputes `P = exp((S' − m) − ln l)` block by block, with `D_i = Σ_j P_ij dP_ij =
//! dO_i·O_i` (the dropout scale cancels in it):
//! ```text
//! dV += (P∘Z)ᵀ·dO,   dP = (dO·Vᵀ)∘Z [+ dP_extra],   dS = P∘(dP − D),   dS = 0 where filled by −1e9
//! dQ += scale·dS·K,  dK += scale·dSᵀ·Q,   dscale = Σ dS∘(Q·Kᵀ)
//! ```
//! (`dP_extra` is the gradient reaching the returned attention scores, which are `P` itself).
//!
//! Layout: `q` is `(B, Tq, ·)` with row stride `q_row`, head `h` at columns `h·dk..(h+1)·dk`
//! (Keras's projected `(B, T, H, d)` is `q_row = H·dk`; a fused QKV projection is a wider stride).
//! `k`, `v`, `o` likewise; `stats` is `(B, H, Tq, 2)`. The gradients have the layouts of their inputs.
//!
//! Design: each task owns one `(b, h)` and, in forward, one block of `QB` query rows; it writes
//! only its own rows of its own head, through the small [`RowsOut`] helper, so the tasks share no
//! output element. GEMMs on the blocks go to `linalg::sgemm` on the task's thread (or with the
//! spare threads when there are fewer tasks than threads). Dropout keeps are a counter-based hash
//! of `(seed, b, h, i, j)`, so backward regenerates exactly the forward's mask, with no memory.
//! Every task's work is the same whatever the thread count, so results are bit-identical.
// The kernels take each array as its own slice, as the others do.
#![allow(clippy::too_many_arguments)]
use crate::linalg::{sgemm, Trans};
use crate::simd::math;
use rayon::prelude::*;

/// Query rows per block (128 ran 5% faster than 64 and 256 at T = 500, dk = 64 on AVX2).
const QB: usize = 128;
/// Key columns per block when the keys are many (fewer than `2·KB` are taken in one block).
const KB: usize = 512;
/// Forward saves the probabilities for backward only below this many keys (one key block).
pub const SAVE_PROBS_MAX_KEYS: usize = 2 * KB;
/// Keras's large negative number for float32 (`_large_negative_number`, and Attention's 1e9).
const NEG: f32 = -1.0e9;

/// How a disallowed score is filled (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fill {
    /// `−∞`: a filled score has probability exactly 0 and gets no gradient (Keras
    /// MultiHeadAttention's masked softmax, which zeroes masked probabilities after the softmax)
    Replace,
    /// `s − 1e9` (Keras Attention): the gradient passes through
    Subtract,
}

/// Shapes, strides and options of one attention call.
#[derive(Clone, Copy, Debug)]
pub struct AttnSpec {
    pub batch: usize,
    pub heads: usize,
    pub tq: usize,
    pub tk: usize,
    pub dk: usize,
    pub dv: usize,
    pub q_row: usize,
    pub k_row: usize,
    pub v_row: usize,
    pub o_row: usize,
    pub scale: f32,
    pub causal: bool,
    /// 0 for none
    pub window: usize,
    pub fill: Fill,
    /// dropout rate on the attention probabilities, in [0, 1)
    pub dropout: f32,
    pub seed: u64,
    /// whether the returned scores are `P∘Z` (Keras Attention) rather than `P` (Keras MHA): the
    /// probabilities then carry the dropout, and their gradient goes through it
    pub scores_after_dropout: bool,
}

/// A dense boolean mask `(B | 1, H | 1, Tq, Tk)`: `batch_stride`/`head_stride` are 0 where broadcast.
#[derive(Clone, Copy, Debug)]
pub struct DenseMask<'a> {
    pub data: &'a [u8],
    pub batch_stride: usize,
    pub head_stride: usize,
}

/// Every mask of a call; `None` for the ones not given.
#[derive(Clone, Copy, Debug, Default)]
pub struct Masks<'a> {
    pub q_len: Option<&'a [usize]>,
    pub k_len: Option<&'a [usize]>,
    pub dense: Option<DenseMask<'a>>,
}

impl AttnSpec {
    fn check(&self, q: &[f32], k: &[f32], v: &[f32], masks: &Masks<'_>) {
        let AttnSpec { batch, heads, tq, tk, dk, dv, .. } = *self;
        let need = |rows: usize, row: usize, width: usize| if rows == 0 { 0 } else { (rows - 1) * row + width };
        assert!(self.q_row >= heads * dk && self.k_row >= heads * dk, "attention: q/k row stride");
        assert!(self.v_row >= heads * dv && self.o_row >= heads * dv, "attention: v/o row stride");
        assert!(q.len() >= need(batch * tq, self.q_row, heads * dk), "attention: q too short");
        assert!(k.len() >= need(batch * tk, self.k_row, heads * dk), "attention: k too short");
        assert!(v.len() >= need(batch * tk, self.v_row, heads * dv), "attention: v too short");
        assert!(self.dropout >= 0.0 && self.dropout < 1.0, "attention: dropout rate");
        assert!(masks.q_len.is_none_or(|l| l.len() == batch), "attention: q_len");
        assert!(masks.k_len.is_none_or(|l| l.len() == batch), "attention: k_len");
        if let Some(d) = masks.dense {
            let last = (batch.max(1) - 1) * d.batch_stride + (heads.max(1) - 1) * d.head_stride + tq * tk;
            assert!(d.data.len() >= last, "attention: dense mask too short");
        }
    }

    /// Threads each task's GEMMs may use: the spare ones when tasks are fewer than threads.
    fn inner_threads(tasks: usize) -> usize {
        let threads = crate::threads::current_threads();
        if tasks >= threads {
            1
        } else {
            threads / tasks.max(1)
        }
    }
}

/// e^x, exactly 0 below −87 (where [`math::exp`] saturates at ~1e-38): a filled score contributes
/// nothing, as in a float32 softmax.
#[inline(always)]
fn exp_flush(x: f32) -> f32 {
    let e = math::exp(x);
    if x < -87.0 {
        0.0
    } else {
        e
    }
}

/// Keys `[lo, hi)` of query row `i` of batch `b` that the length, causal and window masks allow.
#[inline(always)]
fn row_interval(spec: &AttnSpec, masks: &Masks<'_>, b: usize, i: usize) -> (usize, usize) {
    if masks.q_len.is_some_and(|l| i >= l[b]) {
        return (0, 0);
    }
    let mut hi = spec.tk;
    let mut lo = 0;
    if let Some(l) = masks.k_len {
        hi = hi.min(l[b]);
    }
    if spec.causal {
        hi = hi.min(i + 1);
    }
    if spec.window > 0 {
        lo = (i + 1).saturating_sub(spec.window);
        hi = hi.min(i + spec.window);
    }
    (lo, hi.max(lo))
}

/// The key columns a block of query rows `[r0, r1)` must visit: outside them every score is
/// filled for every row, and skipping them is exact only if every row keeps an allowed key inside
/// (a row with none is, for Attention, a uniform average over *all* keys). Without that, all keys.
fn block_columns(spec: &AttnSpec, masks: &Masks<'_>, b: usize, r0: usize, r1: usize) -> (usize, usize) {
    if masks.dense.is_some() {
        return (0, spec.tk);
    }
    let (mut c0, mut c1) = (spec.tk, 0);
    for i in r0..r1 {
        let (lo, hi) = row_interval(spec, masks, b, i);
        if lo >= hi {
            return (0, spec.tk);
        }
        c0 = c0.min(lo);
        c1 = c1.max(hi);
    }
    (c0, c1.max(c0))
}

/// The key blocks of `[c0, c1)`: one block up to `2·KB` columns, blocks of `KB` beyond.
fn key_blocks(c0: usize, c1: usize) -> impl Iterator<Item = (usize, usize)> {
    let n = c1 - c0;
    let step = if n < 2 * KB { n.max(1) } else { KB };
    (c0..c1).step_by(step).map(move |s| (s, (s + step).min(c1)))
}

/// Dropout: keep factor of each column `j` of a row, from a hash of the row's key and `j`
/// (murmur3's finalizer of a bijection of `j`, so the columns of one row never collide).
#[inline(always)]
fn keep_factor(row_key: u32, j: u32, threshold: u32, inv_keep: f32) -> f32 {
    let mut h = row_key.wrapping_add(j.wrapping_mul(0x9E37_79B9));
    h ^= h >> 16;
    h = h.wrapping_mul(0x85EB_CA6B);
    h ^= h >> 13;
    h = h.wrapping_mul(0xC2B2_AE35);
    h ^= h >> 16;
    if h >= threshold {
        inv_keep
    } else {
        0.0
    }
}

/// The per-row key of the dropout hash: splitmix64 of `(seed, row)`.
fn row_key(seed: u64, b: usize, h: usize, i: usize, spec: &AttnSpec) -> u32 {
    let row = ((b * spec.heads + h) * spec.tq + i) as u64;
    let mut z = seed ^ row.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(0x6A09_E667_F3BC_C909);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) >> 32) as u32
}

fn dropout_params(rate: f32) -> (u32, f32) {
    let threshold = ((rate as f64) * 4_294_967_296.0).min(4_294_967_295.0) as u32;
    (threshold, 1.0 / (1.0 - rate))
}

crate::simd::multiversion! {
    /// One row of raw scores `s` (columns `c0..c0+len`) to the row's masked, scaled scores.
    fn fill_row(s: &mut [f32], c0: usize, lo: usize, hi: usize, dense: Option<&[u8]>, scale: f32, fill: Fill) {
        let len = s.len();
        if dense.is_none() && scale == 1.0 && lo <= c0 && hi >= c0 + len {
            return; // every score allowed and already scaled (by the GEMM)
        }
        let lo = lo.clamp(c0, c0 + len) - c0;
        let hi = hi.clamp(c0, c0 + len) - c0;
        let hi = hi.max(lo);
        let filled = |x: f32| match fill {
            Fill::Replace => f32::NEG_INFINITY,
            Fill::Subtract => x * scale + NEG,
        };
        for x in &mut s[..lo] {
            *x = filled(*x);
        }
        match dense {
            Some(m) => {
                for (x, &keep) in s[lo..hi].iter_mut().zip(&m[c0 + lo..c0 + hi]) {
                    let scaled = *x * scale;
                    *x = if keep != 0 { scaled } else { filled(*x) };
                }
            }
            None => {
                for x in &mut s[lo..hi] {
                    *x *= scale;
                }
            }
        }
        for x in &mut s[hi..] {
            *x = filled(*x);
        }
    }
}

crate::simd::multiversion! {
    /// `p = exp((s − m) − c)` in place; returns `Σ p`. (`m` and `c` apart: when every score of
    /// a row is the fill, `m ≈ −1e9` and `m + c` would round `c` away.)
    fn exp_row(s: &mut [f32], m: f32, c: f32) -> f32 {
        let mut acc = [0.0f32; 16];
        let mut it = s.chunks_exact_mut(16);
        for ch in &mut it {
            for l in 0..16 {
                let e = exp_flush((ch[l] - m) - c);
                ch[l] = e;
                acc[l] += e;
            }
        }
        let mut total = 0.0;
        for x in it.into_remainder() {
            *x = exp_flush((*x - m) - c);
            total += *x;
        }
        acc.iter().sum::<f32>() + total
    }
}

crate::simd::multiversion! {
    fn row_max(s: &[f32]) -> f32 {
        let mut acc = [f32::NEG_INFINITY; 16];
        let mut it = s.chunks_exact(16);
        for c in &mut it {
            for l in 0..16 {
                // written so that a NaN score wins, as it would in a softmax
                acc[l] = if c[l] > acc[l] || c[l].is_nan() { c[l] } else { acc[l] };
            }
        }
        let mut m = f32::NEG_INFINITY;
        for &x in acc.iter().chain(it.remainder()) {
            m = if x > m || x.is_nan() { x } else { m };
        }
        m
    }
}

crate::simd::multiversion! {
    /// `p ∘= keep` for one row; with `keep_out`, also writes the keep factors there.
    fn dropout_row(p: &mut [f32], keep_out: Option<&mut [f32]>, row_key: u32, c0: usize, threshold: u32, inv_keep: f32) {
        match keep_out {
            Some(z) => {
                for (j, (x, zo)) in p.iter_mut().zip(z.iter_mut()).enumerate() {
                    let f = keep_factor(row_key, (c0 + j) as u32, threshold, inv_keep);
                    *zo = f;
                    *x *= f;
                }
            }
            None => {
                for (j, x) in p.iter_mut().enumerate() {
                    *x *= keep_factor(row_key, (c0 + j) as u32, threshold, inv_keep);
                }
            }
        }
    }
}

crate::simd::multiversion! {
    fn scale_row(x: &mut [f32], f: f32) {
        for v in x {
            *v *= f;
        }
    }
}

/// `Σ a·b` in 16 lanes (inlined into the multiversioned callers).
#[inline(always)]
fn dot_lanes(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 16];
    let n = a.len() / 16 * 16;
    for (ca, cb) in a[..n].chunks_exact(16).zip(b[..n].chunks_exact(16)) {
        for l in 0..16 {
            acc[l] += ca[l] * cb[l];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in a[n..].iter().zip(&b[n..]) {
        s += x * y;
    }
    s
}

crate::simd::multiversion! {
    fn dot(a: &[f32], b: &[f32]) -> f32 {
        dot_lanes(a, b)
    }
}

crate::simd::multiversion! {
    /// `ds = p ∘ (dp − d)` for one row, 0 at filled columns when `zero_filled` (Replace: the filled
    /// score is a constant); returns `Σ ds ∘ raw` (the scale's gradient) when `raw` is given.
    fn softmax_grad_row(ds: &mut [f32], p: &[f32], d: f32, raw: Option<&[f32]>, allowed: Option<(&[u8], usize, usize, usize)>) -> f32 {
        for (x, &pv) in ds.iter_mut().zip(p) {
            *x = pv * (*x - d);
        }
        if let Some((dense, c0, lo, hi)) = allowed {
            let len = ds.len();
            let lo = lo.clamp(c0, c0 + len) - c0;
            let hi = hi.clamp(c0, c0 + len).max(lo + c0) - c0;
            ds[..lo].fill(0.0);
            ds[hi..].fill(0.0);
            if !dense.is_empty() {
                for (x, &keep) in ds[lo..hi].iter_mut().zip(&dense[c0 + lo..c0 + hi]) {
                    *x = if keep != 0 { *x } else { 0.0 };
                }
            }
        }
        raw.map_or(0.0, |r| dot_lanes(ds, r))
    }
}

/// Writes rows of one head into an output shared by all tasks: row `r` of the task's block is
/// the `width` elements at `base + r·row`. Each task writes a set of (row, head) segments no other
/// task writes, which is what makes the concurrent writes sound.
#[derive(Clone, Copy)]
struct RowsOut {
    ptr: *mut f32,
    len: usize,
}
// SAFETY: only used to write disjoint segments from different threads (see `write_rows`).
unsafe impl Send for RowsOut {}
unsafe impl Sync for RowsOut {}

impl RowsOut {
    fn new(out: &mut [f32]) -> RowsOut {
        RowsOut { ptr: out.as_mut_ptr(), len: out.len() }
    }

    /// The `len` elements at `at`, to write.
    ///
    /// # Safety
    /// No other thread may access them while the slice lives.
    #[allow(clippy::mut_from_ref)]
    unsafe fn row_mut(&self, at: usize, len: usize) -> &mut [f32] {
        assert!(at + len <= self.len, "attention: output row out of range");
        // SAFETY: in range (asserted); exclusive per the function's contract.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(at), len) }
    }

    /// Copies `src` (`rows × width`, contiguous) to rows `base + r·row`, `r < rows`.
    ///
    /// # Safety
    /// No other thread may access the written segments during the call.
    unsafe fn write_rows(&self, base: usize, row: usize, width: usize, src: &[f32]) {
        for (r, s) in src.chunks_exact(width.max(1)).enumerate() {
            let at = base + r * row;
            assert!(at + width <= self.len, "attention: output row out of range");
            // SAFETY: in range (asserted); exclusive to this task per the function's contract.
            unsafe { std::ptr::copy_nonoverlapping(s.as_ptr(), self.ptr.add(at), width) };
        }
    }
}

/// Forward: writes `o` (layout of `v`'s rows, stride `o_row`) and the row statistics `stats`
/// `(B, H, Tq, 2)`: each row's maximum score `m` and `ln l`, `l = Σ_j exp(S'_ij − m)`.
///
/// `probs`, when given, receives the probabilities `P` `(B, H, Tq, Tk)` (before dropout) for
/// backward to reuse instead of recomputing them: only for `tk < 2·KB` (one key block, where `P`
/// is final when formed), and zero-filled by the caller (skipped columns are not written).
#[allow(clippy::too_many_arguments)]
pub fn forward(
    spec: AttnSpec,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    masks: Masks<'_>,
    o: &mut [f32],
    stats: &mut [f32],
    probs: Option<&mut [f32]>,
) {
    spec.check(q, k, v, &masks);
    let AttnSpec { batch, heads, tq, tk, dk, dv, .. } = spec;
    assert!(stats.len() == 2 * batch * heads * tq, "attention: stats");
    assert!(batch * tq == 0 || o.len() >= (batch * tq - 1) * spec.o_row + heads * dv, "attention: o too short");
    if batch * heads * tq == 0 {
        return;
    }
    if tk == 0 {
        // Keras: a softmax over no keys and a sum over no values give zeros.
        for r in o.chunks_mut(spec.o_row) {
            let w = (heads * dv).min(r.len());
            r[..w].fill(0.0);
        }
        for pair in stats.chunks_exact_mut(2) {
            pair.copy_from_slice(&[f32::NEG_INFINITY, 0.0]);
        }
        return;
    }
    let nqb = tq.div_ceil(QB);
    let tasks = batch * heads * nqb;
    let inner = AttnSpec::inner_threads(tasks);
    let out = RowsOut::new(o);
    let stats_out = RowsOut::new(stats);
    if let Some(p) = &probs {
        assert!(tk < 2 * KB && p.len() == batch * heads * tq * tk, "attention: probs");
    }
    let probs_out = probs.map(RowsOut::new);
    let width = tk.clamp(1, 2 * KB);
    (0..tasks).into_par_iter().for_each_init(
        || (vec![0.0f32; QB * width], vec![0.0f32; QB * dv], vec![0.0f32; 4 * QB]),
        |(s, acc, ml), t| {
            let (bh, qb) = (t / nqb, t % nqb);
            let (b, h) = (bh / heads, bh % heads);
            let (r0, r1) = (qb * QB, ((qb + 1) * QB).min(tq));
            let rows = r1 - r0;
            let (m, rest) = ml.split_at_mut(QB);
            let (l, st) = rest.split_at_mut(QB);
            m[..rows].fill(f32::NEG_INFINITY);
            l[..rows].fill(0.0);
            let qa = &q[(b * tq + r0) * spec.q_row + h * dk..];
            let dense = masks.dense.map(|d| &d.data[b * d.batch_stride + h * d.head_stride..]);
            let (threshold, inv_keep) = dropout_params(spec.dropout);
            let (c0, c1) = block_columns(&spec, &masks, b, r0, r1);
            for (bi, (k0, k1)) in key_blocks(c0, c1).enumerate() {
                let n = k1 - k0;
                let kb = &k[(b * tk + k0) * spec.k_row + h * dk..];
                // the scale goes into the GEMM: one pass less over the scores
                sgemm(Trans::N, Trans::T, rows, n, dk, spec.scale, qa, spec.q_row, kb, spec.k_row, 0.0, s, n, inner);
                for r in 0..rows {
                    let i = r0 + r;
                    let (lo, hi) = row_interval(&spec, &masks, b, i);
                    let srow = &mut s[r * n..(r + 1) * n];
                    fill_row(srow, k0, lo, hi, dense.map(|d| &d[i * tk..(i + 1) * tk]), 1.0, spec.fill);
                    let mx = row_max(srow);
                    let m_new = if mx.is_nan() { mx } else { mx.max(m[r]) };
                    // no allowed key yet (every score −inf): shift by 0, every p is 0
                    let shift = if m_new == f32::NEG_INFINITY { 0.0 } else { m_new };
                    let corr = exp_flush(m[r] - shift);
                    let sum = exp_row(srow, shift, 0.0);
                    l[r] = l[r] * corr + sum;
                    m[r] = m_new;
                    if bi > 0 {
                        scale_row(&mut acc[r * dv..(r + 1) * dv], corr);
                    }
                    if let Some(po) = &probs_out {
                        // one key block: l is final, P = p / l
                        let at = ((b * heads + h) * tq + i) * tk + k0;
                        // SAFETY: row i of head h of batch b belongs to this task only.
                        let dst = unsafe { po.row_mut(at, n) };
                        let inv = if l[r] == 0.0 { 0.0 } else { 1.0 / l[r] };
                        for (d, &x) in dst.iter_mut().zip(srow.iter()) {
                            *d = x * inv;
                        }
                    }
                    if spec.dropout > 0.0 {
                        dropout_row(srow, None, row_key(spec.seed, b, h, i, &spec), k0, threshold, inv_keep);
                    }
                }
                let vb = &v[(b * tk + k0) * spec.v_row + h * dv..];
                let beta = if bi == 0 { 0.0 } else { 1.0 };
                sgemm(Trans::N, Trans::N, rows, dv, n, 1.0, s, n, vb, spec.v_row, beta, acc, dv, inner);
            }
            for r in 0..rows {
                // A row with no allowed key (Replace) has l = 0: Keras zeroes its probabilities,
                // so its output is 0 and (m, ln l) = (0, +inf) makes backward's P = 0 as well.
                let empty = l[r] == 0.0;
                scale_row(&mut acc[r * dv..(r + 1) * dv], if empty { 0.0 } else { 1.0 / l[r] });
                st[2 * r] = if empty { 0.0 } else { m[r] };
                st[2 * r + 1] = if empty { f32::INFINITY } else { l[r].ln() };
            }
            // SAFETY: rows r0..r1 of head h of batch b, and their statistics, belong to this task only.
            unsafe {
                out.write_rows((b * tq + r0) * spec.o_row + h * dv, spec.o_row, dv, &acc[..rows * dv]);
                stats_out.write_rows(2 * ((b * heads + h) * tq + r0), 1, 2 * rows, &st[..2 * rows]);
            }
        },
    );
}

/// Where backward writes one gradient: row `r`, head `h` at `col + r·row + h·width` of a buffer
/// (which may hold the other gradients too, in other columns: a fused QKV projection's gradient).
#[derive(Clone, Copy)]
struct GradTarget {
    out: RowsOut,
    row: usize,
    col: usize,
}

/// The gradients backward writes, `None` for one not wanted: in three buffers, or in column ranges
/// of one. Every element of a wanted gradient's head columns is written (zeros included).
pub struct AttnGrads<'a> {
    targets: [Option<GradTarget>; 3],
    _borrow: std::marker::PhantomData<&'a mut [f32]>,
}

impl<'a> AttnGrads<'a> {
    /// dQ, dK, dV each in its own buffer, with the row strides of q, k, v.
    pub fn separate(
        spec: &AttnSpec,
        dq: Option<&'a mut [f32]>,
        dk: Option<&'a mut [f32]>,
        dv: Option<&'a mut [f32]>,
    ) -> Self {
        let t = |g: Option<&'a mut [f32]>, row: usize| g.map(|g| GradTarget { out: RowsOut::new(g), row, col: 0 });
        AttnGrads { targets: [t(dq, spec.q_row), t(dk, spec.k_row), t(dv, spec.v_row)], _borrow: Default::default() }
    }

    /// All three in one buffer of row stride `row`, at column offsets `cols` (`None`: not wanted).
    /// The column ranges `col..col + heads·width` must not overlap (checked).
    pub fn fused(spec: &AttnSpec, buf: &'a mut [f32], row: usize, cols: [Option<usize>; 3]) -> Self {
        let widths = [spec.heads * spec.dk, spec.heads * spec.dk, spec.heads * spec.dv];
        let ranges: Vec<(usize, usize)> = cols.iter().zip(widths).filter_map(|(c, w)| c.map(|c| (c, c + w))).collect();
        for (i, a) in ranges.iter().enumerate() {
            assert!(a.1 <= row, "attention: fused gradient columns beyond the row");
            for b in &ranges[i + 1..] {
                assert!(a.1 <= b.0 || b.1 <= a.0, "attention: fused gradient columns overlap");
            }
        }
        let out = RowsOut::new(buf);
        let t = |c: Option<usize>| c.map(|col| GradTarget { out, row, col });
        AttnGrads { targets: [t(cols[0]), t(cols[1]), t(cols[2])], _borrow: Default::default() }
    }
}

/// Backward from the forward's `o` and `stats`. `d_scores`, when given, is the gradient reaching the
/// returned probabilities `(B, H, Tq, Tk)`, and `d_extra` `(B, H, Tq)` its `Σ_j P_ij·d_scores_ij`.
/// Writes the wanted gradients in full; returns `dscale` (0 unless `want_dscale`).
pub fn backward(
    spec: AttnSpec,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    masks: Masks<'_>,
    o: &[f32],
    stats: &[f32],
    d_o: &[f32],
    d_scores: Option<(&[f32], &[f32])>,
    probs: Option<&[f32]>,
    grads: AttnGrads<'_>,
    want_dscale: bool,
) -> f32 {
    spec.check(q, k, v, &masks);
    let AttnSpec { batch, heads, tq, tk, dk, dv, .. } = spec;
    let rows_len = |rows: usize, row: usize, w: usize| if rows == 0 { 0 } else { (rows - 1) * row + w };
    assert!(stats.len() == 2 * batch * heads * tq, "attention backward: stats");
    assert!(o.len() >= rows_len(batch * tq, spec.o_row, heads * dv), "attention backward: o");
    assert!(d_o.len() >= rows_len(batch * tq, spec.o_row, heads * dv), "attention backward: do");
    if let Some((ds, de)) = d_scores {
        assert!(ds.len() == batch * heads * tq * tk && de.len() == batch * heads * tq, "attention backward: d_scores");
    }
    let outs = grads.targets;
    for (g, w, rows) in
        [(&outs[0], heads * dk, batch * tq), (&outs[1], heads * dk, batch * tk), (&outs[2], heads * dv, batch * tk)]
    {
        if let Some(g) = g {
            assert!(
                g.row >= g.col + w && (rows == 0 || g.out.len >= g.col + rows_len(rows, g.row, w)),
                "attention backward: gradient too short"
            );
        }
    }
    let tasks = batch * heads;
    if tasks * tq * tk == 0 {
        // no scores: every wanted gradient is zero
        for (g, w, rows) in
            [(&outs[0], heads * dk, batch * tq), (&outs[1], heads * dk, batch * tk), (&outs[2], heads * dv, batch * tk)]
        {
            if let Some(g) = g {
                let zeros = vec![0.0f32; w];
                for r in 0..rows {
                    // SAFETY: single-threaded here; in range per the assert above.
                    unsafe { g.out.write_rows(g.col + r * g.row, g.row, w, &zeros) };
                }
            }
        }
        return 0.0;
    }
    let inner = AttnSpec::inner_threads(tasks);
    let width = tk.clamp(1, 2 * KB);
    let dropout = spec.dropout > 0.0;
    // the forward's probabilities replace the recomputed ones (not for dscale: it needs Q·Kᵀ)
    let saved = probs.filter(|_| !want_dscale);
    if let Some(p) = saved {
        assert!(p.len() == batch * heads * tq * tk, "attention backward: probs");
    }
    let partial: Vec<f32> = (0..tasks)
        .into_par_iter()
        .map_init(
            || {
                (
                    vec![0.0f32; QB * width],                                          // S, then P
                    vec![0.0f32; QB * width],                                          // dP, then dS
                    vec![0.0f32; if dropout || want_dscale { QB * width } else { 0 }], // keep, or raw S
                    vec![0.0f32; QB * dk],                                             // dQ of the block
                    vec![0.0f32; tk * (dk + dv)],                                      // dK, dV of the head
                    vec![0.0f32; QB],                                                  // D
                )
            },
            |(s, dp, aux, dq_blk, dkv, drow), t| {
                let (b, h) = (t / heads, t % heads);
                let (dk_all, dv_all) = dkv.split_at_mut(tk * dk);
                dk_all.fill(0.0);
                dv_all.fill(0.0);
                let mut dscale = 0.0f32;
                let dense = masks.dense.map(|d| &d.data[b * d.batch_stride + h * d.head_stride..]);
                let (threshold, inv_keep) = dropout_params(spec.dropout);
                for r0 in (0..tq).step_by(QB) {
                    let r1 = (r0 + QB).min(tq);
                    let rows = r1 - r0;
                    let qa = &q[(b * tq + r0) * spec.q_row + h * dk..];
                    let doa = &d_o[(b * tq + r0) * spec.o_row + h * dv..];
                    let oa = &o[(b * tq + r0) * spec.o_row + h * dv..];
                    for r in 0..rows {
                        let at = r * spec.o_row;
                        drow[r] = dot(&doa[at..at + dv], &oa[at..at + dv])
                            + d_scores.map_or(0.0, |(_, de)| de[(b * heads + h) * tq + r0 + r]);
                    }
                    dq_blk[..rows * dk].fill(0.0);
                    let (c0, c1) = block_columns(&spec, &masks, b, r0, r1);
                    for (k0, k1) in key_blocks(c0, c1) {
                        let n = k1 - k0;
                        let kb = &k[(b * tk + k0) * spec.k_row + h * dk..];
                        let vb = &v[(b * tk + k0) * spec.v_row + h * dv..];
                        // scaled by the GEMM unless the raw scores are needed (dscale), as in forward
                        let alpha = if want_dscale { 1.0 } else { spec.scale };
                        if saved.is_none() {
                            sgemm(
                                Trans::N,
                                Trans::T,
                                rows,
                                n,
                                dk,
                                alpha,
                                qa,
                                spec.q_row,
                                kb,
                                spec.k_row,
                                0.0,
                                s,
                                n,
                                inner,
                            );
                        }
                        if want_dscale {
                            aux[..rows * n].copy_from_slice(&s[..rows * n]);
                        }
                        sgemm(Trans::N, Trans::T, rows, n, dv, 1.0, doa, spec.o_row, vb, spec.v_row, 0.0, dp, n, inner);
                        for r in 0..rows {
                            let i = r0 + r;
                            let (lo, hi) = row_interval(&spec, &masks, b, i);
                            let srow = &mut s[r * n..(r + 1) * n];
                            if let Some(p) = saved {
                                let at = ((b * heads + h) * tq + i) * tk + k0;
                                srow.copy_from_slice(&p[at..at + n]);
                            } else {
                                let drow_mask = dense.map(|d| &d[i * tk..(i + 1) * tk]);
                                let fill_scale = if want_dscale { spec.scale } else { 1.0 };
                                fill_row(srow, k0, lo, hi, drow_mask, fill_scale, spec.fill);
                                let at = 2 * ((b * heads + h) * tq + i);
                                exp_row(srow, stats[at], stats[at + 1]);
                            }
                            let dprow = &mut dp[r * n..(r + 1) * n];
                            if let Some((ds, _)) = d_scores {
                                let at = ((b * heads + h) * tq + i) * tk + k0;
                                let before = spec.scores_after_dropout; // dP = (dO·Vᵀ + dP_extra)∘Z
                                if before {
                                    for (x, &e) in dprow.iter_mut().zip(&ds[at..at + n]) {
                                        *x += e;
                                    }
                                }
                                if dropout {
                                    let z = &mut aux[r * n..(r + 1) * n];
                                    dropout_row(
                                        dprow,
                                        Some(z),
                                        row_key(spec.seed, b, h, i, &spec),
                                        k0,
                                        threshold,
                                        inv_keep,
                                    );
                                }
                                if !before {
                                    for (x, &e) in dprow.iter_mut().zip(&ds[at..at + n]) {
                                        *x += e;
                                    }
                                }
                            } else if dropout {
                                let z = &mut aux[r * n..(r + 1) * n];
                                dropout_row(
                                    dprow,
                                    Some(z),
                                    row_key(spec.seed, b, h, i, &spec),
                                    k0,
                                    threshold,
                                    inv_keep,
                                );
                            }
                        }
                        // dV += (P∘Z)ᵀ·dO  (P∘Z in aux when dropping out)
                        if dropout {
                            for (z, &p) in aux[..rows * n].iter_mut().zip(&s[..rows * n]) {
                                *z *= p;
                            }
                            sgemm(
                                Trans::T,
                                Trans::N,
                                n,
                                dv,
                                rows,
                                1.0,
                                aux,
                                n,
                                doa,
                                spec.o_row,
                                1.0,
                                &mut dv_all[k0 * dv..],
                                dv,
                                inner,
                            );
                            if want_dscale {
                                // aux held the keep factors; the raw scores are recomputed for dscale
                                sgemm(
                                    Trans::N,
                                    Trans::T,
                                    rows,
                                    n,
                                    dk,
                                    1.0,
                                    qa,
                                    spec.q_row,
                                    kb,
                                    spec.k_row,
                                    0.0,
                                    aux,
                                    n,
                                    inner,
                                );
                            }
                        } else {
                            sgemm(
                                Trans::T,
                                Trans::N,
                                n,
                                dv,
                                rows,
                                1.0,
                                s,
                                n,
                                doa,
                                spec.o_row,
                                1.0,
                                &mut dv_all[k0 * dv..],
                                dv,
                                inner,
                            );
                        }
                        for r in 0..rows {
                            let i = r0 + r;
                            let allowed = (spec.fill == Fill::Replace).then(|| {
                                let (lo, hi) = row_interval(&spec, &masks, b, i);
                                (dense.map_or(&[][..], |d| &d[i * tk..(i + 1) * tk]), k0, lo, hi)
                            });
                            let raw = want_dscale.then(|| &aux[r * n..(r + 1) * n]);
                            dscale += softmax_grad_row(
                                &mut dp[r * n..(r + 1) * n],
                                &s[r * n..(r + 1) * n],
                                drow[r],
                                raw,
                                allowed,
                            );
                        }
                        sgemm(
                            Trans::N,
                            Trans::N,
                            rows,
                            dk,
                            n,
                            spec.scale,
                            dp,
                            n,
                            kb,
                            spec.k_row,
                            1.0,
                            dq_blk,
                            dk,
                            inner,
                        );
                        sgemm(
                            Trans::T,
                            Trans::N,
                            n,
                            dk,
                            rows,
                            spec.scale,
                            dp,
                            n,
                            qa,
                            spec.q_row,
                            1.0,
                            &mut dk_all[k0 * dk..],
                            dk,
                            inner,
                        );
                    }
                    if let Some(g) = &outs[0] {
                        // SAFETY: rows r0..r1 of head h of batch b belong to this task only.
                        unsafe {
                            g.out.write_rows(g.col + (b * tq + r0) * g.row + h * dk, g.row, dk, &dq_blk[..rows * dk])
                        };
                    }
                }
                // SAFETY: every key row of head h of batch b belongs to this task only.
                unsafe {
                    if let Some(g) = &outs[1] {
                        g.out.write_rows(g.col + b * tk * g.row + h * dk, g.row, dk, dk_all);
                    }
                    if let Some(g) = &outs[2] {
                        g.out.write_rows(g.col + b * tk * g.row + h * dv, g.row, dv, dv_all);
                    }
                }
                dscale
            },
        )
        .collect();
    partial.iter().sum()
}

/// The attention probabilities `(B, H, Tq, Tk)`: `P` (Keras MHA returns them before dropout), or
/// `P∘Z` with `scores_after_dropout` (Keras Attention), from the forward's `stats`.
pub fn probabilities(spec: AttnSpec, q: &[f32], k: &[f32], masks: Masks<'_>, stats: &[f32], p: &mut [f32]) {
    let AttnSpec { batch, heads, tq, tk, dk, .. } = spec;
    assert!(stats.len() == 2 * batch * heads * tq && p.len() == batch * heads * tq * tk, "attention probabilities");
    if p.is_empty() {
        return;
    }
    let tasks = batch * heads;
    let inner = AttnSpec::inner_threads(tasks);
    p.par_chunks_mut(tq * tk).enumerate().for_each(|(t, pt)| {
        let (b, h) = (t / heads, t % heads);
        let dense = masks.dense.map(|d| &d.data[b * d.batch_stride + h * d.head_stride..]);
        let qa = &q[b * tq * spec.q_row + h * dk..];
        let ka = &k[b * tk * spec.k_row + h * dk..];
        sgemm(Trans::N, Trans::T, tq, tk, dk, spec.scale, qa, spec.q_row, ka, spec.k_row, 0.0, pt, tk, inner);
        for (i, row) in pt.chunks_exact_mut(tk).enumerate() {
            let (lo, hi) = row_interval(&spec, &masks, b, i);
            fill_row(row, 0, lo, hi, dense.map(|d| &d[i * tk..(i + 1) * tk]), 1.0, spec.fill);
            exp_row(row, stats[2 * (t * tq + i)], stats[2 * (t * tq + i) + 1]);
            if spec.scores_after_dropout && spec.dropout > 0.0 {
                let (threshold, inv_keep) = dropout_params(spec.dropout);
                dropout_row(row, None, row_key(spec.seed, b, h, i, &spec), 0, threshold, inv_keep);
            }
        }
    });
}

#[cfg(test)]
#[path = "attention_tests.rs"]
mod tests;
