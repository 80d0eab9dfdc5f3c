//! 1-D pooling forward and backward. (Being written.)
