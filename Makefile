# oip-resolver: `make run` serves the demo data; `make test` is what CI runs.
CARGO ?= cargo

.PHONY: run test fmt lint unit bench check-config

run:
	$(CARGO) run --release -- --config config.yaml

test: fmt lint unit

fmt:
	$(CARGO) fmt --all -- --check

lint:
	$(CARGO) clippy --all-targets -- -D warnings

unit:
	$(CARGO) test

check-config:
	$(CARGO) run --release -- --config config.yaml --check-config

bench:
	$(CARGO) bench --bench load
