# seqcore developer commands. `make help` lists them.
PYTHON ?= python3
.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-14s %s\n", $$1, $$2}'

.PHONY: install
install: ## build the extension (release) and install seqcore editable with its test tools
	$(PYTHON) -m pip install -e '.[test]'

.PHONY: test
test: install ## install, then run the Python test suite (what CI runs)
	$(PYTHON) -m pytest -q

.PHONY: test-rust
test-rust: ## Rust unit tests of the kernels (no Python needed)
	cargo test --release

.PHONY: lint
lint: ## rustfmt, clippy (with and without bindings), ruff, mypy
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	cargo clippy --features python -- -D warnings
	$(PYTHON) -m ruff check python tests benches
	$(PYTHON) -m ruff format --check python tests benches
	$(PYTHON) -m mypy python/seqcore
	$(PYTHON) -m mypy.stubtest seqcore._seqcore

.PHONY: fmt
fmt: ## format Rust and Python sources
	cargo fmt
	$(PYTHON) -m ruff format python tests benches
	$(PYTHON) -m ruff check --fix python tests benches

.PHONY: stubtest
stubtest: ## check the .pyi stubs against the compiled module
	$(PYTHON) -m mypy.stubtest seqcore._seqcore

.PHONY: bench
bench: ## seqcore vs PyTorch vs Keras, side by side (needs `pip install -e '.[bench]'` for peers)
	$(PYTHON) benches/run.py

.PHONY: bench-rust
bench-rust: ## criterion benches: GEMM shoot-out and kernels, in GFLOP/s
	cargo bench --bench gemm --bench kernels

.PHONY: wheel
wheel: ## build a portable release wheel into dist/
	maturin build --release --out dist

.PHONY: ci
ci: ## what CI runs
	bash .ci/run
