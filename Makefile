# oip-resolver: `make run` serves the demo data; `make test` is what CI runs.
CARGO ?= cargo

.PHONY: run test fmt lint unit relay-deps browser-deps bench-deps bench soak soak-leak check-config mutants

run:
	$(CARGO) run --release -- --config config.yaml

test: fmt lint relay-deps browser-deps unit

# The GUN relay of the interop test runs on node with the `gun` package, installed here (git-ignored).
relay-deps:
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --prefix tests/relay --no-audit --no-fund --loglevel=error; \
	else \
		echo "node/npm not found: the GUN relay interop test (tests/gun_relay.rs) will be SKIPPED"; \
	fi

# The CORS check runs in headless Chromium, Debian's package (tests/browser.rs).
browser-deps:
	@if ! command -v chromium >/dev/null 2>&1; then \
		if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
			echo "installing chromium for the browser test"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else \
			echo "chromium not found and cannot be installed here: the browser test (tests/browser.rs) will be SKIPPED"; \
		fi; \
	fi

fmt:
	$(CARGO) fmt --all -- --check

lint:
	$(CARGO) clippy --all-targets --all-features -- -D warnings

# cargo-nextest (on every machine of this kind) runs tests from all files side by side, each in
# a process of its own (.config/nextest.toml); plain cargo test runs them where it is missing.
unit:
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run; \
	else \
		echo "cargo-nextest not found: running cargo test (slower, same tests)"; \
		$(CARGO) test; \
	fi

check-config:
	$(CARGO) run --release -- --config config.yaml --check-config

# wrk and nginx, Debian's packages, for the side-by-side comparison (benches/versus).
bench-deps:
	@for pkg in wrk nginx; do \
		if ! command -v $$pkg >/dev/null 2>&1 && ! [ -x /usr/sbin/$$pkg ]; then \
			if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
				echo "installing $$pkg for the benchmark"; \
				apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$pkg >/dev/null; \
			else \
				echo "$$pkg not found and cannot be installed here: the comparison with nginx will be SKIPPED"; \
			fi; \
		fi; \
	done

bench: bench-deps
	$(CARGO) bench --bench load

# A long mixed run (SOAK_SECS, default 600) that fails on memory or descriptor growth or an
# unexpected 5xx. Not part of `make test`.
soak:
	$(CARGO) bench --bench soak

# The same soak against a build that keeps every Nth answer's body for good (LEAK_INJECTION_EVERY,
# default 10): it must fail, which shows the verdict can.
soak-leak:
	$(CARGO) bench --bench soak --features leak-injection

# One-line breakages of the modules in .cargo/mutants.toml, each run against the suite:
# survivors are behaviours no test notices (see README, Tests). Hours on two cores; not part
# of `make test`. cargo-mutants is installed by cargo when missing.
mutants: relay-deps
	@command -v cargo-mutants >/dev/null 2>&1 || $(CARGO) install cargo-mutants --locked
	$(CARGO) mutants --jobs 1
