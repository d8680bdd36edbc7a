# peapod — the two commands of the README, and the pieces they are made of.
#
#   make demo   install what is missing (Debian packages), build, and run the two-container example
#   make test   install what is missing, lint, and run every test (unit, root integration, cluster)
#   make bench  benchmarks beside bare runc and podman (results in BENCHMARKS.md)
#   make fuzz   the property tests (manifests, layer paths, subPaths, keyrings) with 10^6 cases in total
#   make soak   supervisor chaos: SOAK_KILLS SIGKILLs of `peapod run` with SOAK_PODS pods; prints the figures
#
# Everything works offline: packages come from Debian's repositories, test images are built from the
# host's busybox-static, the test control plane is built from Debian's kubernetes source package.

SHELL := /bin/bash
CARGO ?= cargo
IMAGES := target/test-images
export PEAPOD_TEST_IMAGES := $(CURDIR)/$(IMAGES)

.PHONY: all build release demo test deps-demo deps-test images apiserver lint lint-chart unit-and-integration crds bench fuzz soak clean

all: build

build:
	$(CARGO) build --locked

release:
	$(CARGO) build --release --locked

deps-demo:
	hack/install-deps.sh demo

deps-test:
	hack/install-deps.sh test

images:
	hack/test-image.sh $(IMAGES)

# kube-apiserver v1.20.2 for the cluster tests, built once from Debian's source package and cached.
apiserver:
	hack/kube-apiserver.sh >/dev/null

demo: deps-demo release images
	hack/demo.sh

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

unit-and-integration: images
	$(CARGO) nextest run --locked --no-fail-fast

lint-chart:
	hack/lint-chart.sh

test: deps-test images apiserver lint lint-chart unit-and-integration

crds:
	PEAPOD_UPDATE_CRDS=1 $(CARGO) test --locked --lib api::crd

# Every property test (`proptests` modules) with FUZZ_CASES cases each, at least FUZZ_TOTAL in all; the
# count run is printed and recorded in target/fuzz-count. `make test` runs them with proptest's default 256.
FUZZ_TOTAL ?= 1000000
fuzz:
	@tests=$$($(CARGO) nextest list --locked --lib -E 'test(/::proptests::/)' --message-format oneline | grep -c ::proptests::); \
	cases=$${FUZZ_CASES:-$$(( (FUZZ_TOTAL + tests - 1) / tests ))}; \
	echo "fuzz: $$tests property tests x $$cases cases"; \
	PROPTEST_CASES=$$cases $(CARGO) nextest run --locked --lib -E 'test(/::proptests::/)' --no-fail-fast \
	  --profile fuzz && \
	echo "fuzz: $$(( tests * cases )) cases passed ($$tests tests x $$cases)" | tee target/fuzz-count

bench: deps-test release images
	hack/bench.sh

# Long chaos round (tests/chaos.rs `soak`); PEAPOD_CHAOS_SEED replays a printed seed.
SOAK_KILLS ?= 100
SOAK_PODS ?= 50
soak: images
	SOAK_KILLS=$(SOAK_KILLS) SOAK_PODS=$(SOAK_PODS) $(CARGO) nextest run --locked --test chaos \
		--run-ignored only --no-capture soak

clean:
	$(CARGO) clean
