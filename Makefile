# drift-bridge: the two commands a newcomer needs are `make dev` and `make test`.
SHELL := /bin/bash
export WRANGLER_SEND_METRICS := false
export CLOUDFLARE_CF_FETCH_ENABLED := false

.PHONY: setup dev build test test-native test-wasm test-worker test-delivery test-browser test-openapi bench clean

## Install what is missing (wasm target, wasm-bindgen-cli, npm packages, .dev.vars).
setup:
	@bash scripts/setup.sh

## Build and run the worker and the playground at http://127.0.0.1:8787 (local workerd, no account).
dev: setup
	npx wrangler dev --ip 127.0.0.1 --port 8787

## Build the worker (build/) and the playground module (www/pkg/).
build: setup
	bash scripts/build.sh

## Every test: native core and CLI, wasm exports in Node, the worker in workerd, the playground and admin page in Chromium.
test: setup
	@bash scripts/setup.sh --test
	$(MAKE) --no-print-directory test-native
	bash scripts/build.sh
	$(MAKE) --no-print-directory test-wasm test-worker test-delivery test-browser test-openapi

test-native:
	cargo test --locked
	cargo test --release --locked --manifest-path bench/load/Cargo.toml --target-dir target/load

test-wasm:
	ROOT=$(CURDIR) && source scripts/env.sh && CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
	  cargo test --locked --target wasm32-unknown-unknown --features browser --target-dir target/browser-test --test browser_exports

test-worker:
	node --test --test-concurrency=1 tests/worker/

test-delivery:
	node --test --test-concurrency=1 tests/delivery/

test-browser:
	node --test --test-concurrency=1 tests/browser/

test-openapi:
	node tests/openapi/run.mjs

## Benchmarks side by side (bench/README.md, bench/results.json); about 30 minutes.
bench: setup
	@bash scripts/setup.sh --bench
	bash scripts/build.sh
	cargo build --release --locked
	cargo build --release --locked --manifest-path bench/load/Cargo.toml --target-dir target/load
	node bench/run.mjs

clean:
	rm -rf build www/pkg target/browser target/browser-test
