//! Conv1D (channels-last) forward and backward. (Being written.)
