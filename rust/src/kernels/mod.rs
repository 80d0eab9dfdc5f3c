//! Pure-Rust kernels on slices. No Python here: forward and backward of one op per file.
pub mod attention;
pub mod conv1d;
pub mod dense;
pub mod gru;
pub mod loss;
pub mod lstm;
pub mod norm;
pub mod optim;
pub mod pool;
pub mod rnn;
pub mod simple_rnn;
pub mod stream;

/// Rows per parallel block for row-blocked kernels: blocks of at most `target` rows, and at least
/// one block per thread when there are enough rows.
pub(crate) fn block_rows(rows: usize, threads: usize, target: usize) -> usize {
    if rows == 0 {
        return 1;
    }
    let nblocks = rows.div_ceil(target).max(threads.min(rows)).max(1);
    rows.div_ceil(nblocks)
}

/// How many parts a backward reduction over rows (a bias gradient, a convolution's `dW`) is split
/// into: a constant, not the thread count, so that gradients are bit-identical whatever the number
/// of threads (the parts are summed in a fixed order). 8 parts keep up to 8 threads busy and even
/// out uneven progress on 2.
pub(crate) const REDUCTION_PARTS: usize = 8;
