# oip-resolver: `make run` serves the demo data; `make test` is what CI runs.
CARGO ?= cargo

.PHONY: run test fmt lint unit relay-deps browser-deps bench-deps bench soak soak-leak check-config mutants repeat

run:
	$(CARGO) run --release -- --config config.yaml

test: fmt lint relay-deps browser-deps unit

# The GUN relay of the interop test runs on node with the `gun` package, installed here (git-ignored).
# Installed again only when the lockfile changed: `npm ci` deletes node_modules first, and a make
# target run beside a test run (make mutants beside make repeat) took the relay from its tests.
RELAY_STAMP = tests/relay/node_modules/.installed
relay-deps:
	@if command -v npm >/dev/null 2>&1; then \
		if [ ! -f $(RELAY_STAMP) ] || [ tests/relay/package-lock.json -nt $(RELAY_STAMP) ]; then \
			npm ci --prefix tests/relay --no-audit --no-fund --loglevel=error && touch $(RELAY_STAMP); \
		fi; \
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

# The suite REPEAT times (default 20) in a row, each run as `make test` runs it, beside a busy
# loop on every core: a test that fails one run in five is a bug, never noise. Prints one line
# per run and fails if any run did.
REPEAT ?= 20
repeat: relay-deps browser-deps
	$(CARGO) nextest run --no-run
	@cores=$$(nproc); busy=""; \
	for i in $$(seq $$cores); do (while :; do :; done) & busy="$$busy $$!"; done; \
	trap 'kill $$busy 2>/dev/null' EXIT; green=0; \
	for run in $$(seq $(REPEAT)); do \
		start=$$(date +%s); \
		if $(CARGO) nextest run --no-fail-fast >target/repeat-$$run.log 2>&1; then \
			green=$$((green + 1)); verdict=green; else verdict="FAILED (target/repeat-$$run.log)"; fi; \
		echo "run $$run: $$verdict in $$(( $$(date +%s) - start )) s, beside $$cores busy loops"; \
	done; \
	echo "$$green of $(REPEAT) green"; [ $$green -eq $(REPEAT) ]

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

# One-line breakages of the modules in .cargo/mutants.toml: cargo-mutants breaks one line at a
# time and runs tests; a mutant no test fails is a behaviour no test would notice. Each module
# runs first against the test files that exercise it (a build and those tests: 20-40 s a mutant
# on two cores, not the whole suite's 1.5 minutes); what survives that runs again against the
# whole suite (`--iterate`), so a survivor is one no test catches. Each run works in a copy of
# the tree with target/ copied in: the working tree is never touched. MUTANTS_ONLY=<module>
# runs one; results in target/mutants/<module>/mutants.out (missed.txt: the survivors). Hours;
# not part of `make test`.
MUTANT_SETS = \
	answers:src/resolver/answers.rs:records,access,clients,bounds \
	watch:src/gun/watch.rs:gun_relay,bounds,startup \
	upstream:src/gun/upstream.rs:faults,relay_proxy,records \
	http_upstream:src/gun/http_upstream.rs:faults,relay_proxy,records \
	auth:src/auth/:access,relay_proxy,gun_relay,media,clients \
	media_routes:src/media/routes.rs:media,clients \
	trend:src/monitor/trend.rs:operations,page \
	record_cache:src/gun/record_cache.rs:relay_proxy,records,faults \
	access_rules:src/access/rules.rs:access,old_api \
	framer:src/server/framer.rs:bounds,hostile
MUTANTS_ONLY ?=

mutants: relay-deps browser-deps
	@command -v cargo-mutants >/dev/null 2>&1 || $(CARGO) install cargo-mutants --locked
	$(CARGO) build --all-targets
	@status=0; for set in $(MUTANT_SETS); do \
		name=$${set%%:*}; rest=$${set#*:}; path=$${rest%%:*}; files=$${rest#*:}; \
		if [ -n "$(MUTANTS_ONLY)" ] && [ "$(MUTANTS_ONLY)" != "$$name" ]; then continue; fi; \
		tests="--lib $$(echo "$$files" | sed 's/^/--test /; s/,/ --test /g')"; \
		echo "== $$name ($$path): $$tests"; \
		$(CARGO) mutants --jobs 1 --copy-target true --re "^$$path" \
			--output target/mutants/$$name -- $$tests || \
		$(CARGO) mutants --jobs 1 --copy-target true --re "^$$path" --iterate \
			--output target/mutants/$$name || status=1; \
	done; exit $$status
