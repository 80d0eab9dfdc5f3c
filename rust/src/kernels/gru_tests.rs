//! Unit tests for `gru.rs` (written by a helper; see that file).
