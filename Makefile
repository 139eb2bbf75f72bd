# iac-agent — build, test and run. See README.md.
#
#   make            build/iac-agent, build/iac-devplane
#   make test       install missing packages, build, run every unit and integration test
#   make check-asan the same suites built with AddressSanitizer + UndefinedBehaviorSanitizer
#   make run        install, build, start a local devplane and one agent, plan and apply examples/hello
#                   (CONFIRM=1 confirms the apply automatically; KEEP=1 keeps both running)
#   make demo-pool  a whole pool on this machine (kube-fake, devplane, coordinator): scales up for a burst, back down
#   make deps       install the Debian packages the build needs (apt-get update first; no-op when present)
#   make bench      benchmarks (-O2): figures printed and written to bench/README.md
#   make install    build/iac-agent and build/iac-coordinator into $(DESTDIR)$(PREFIX)/bin (PREFIX=/usr/local)
#   make check-image the runtime image's package list in a debootstrap'd bookworm chroot (not in `make test`:
#                   downloads about 200 MB once, cached in build/image-root; needs root)
#   make clean

# Debian packages needed to build and test. One list: `make deps` installs it and .ci/run calls `make deps`.
DEB_PACKAGES := build-essential pkg-config curl libuv1-dev libwebsockets-dev libwebsockets-evlib-uv \
                libcurl4-openssl-dev libcjson-dev libcmocka-dev libssl-dev libarchive-dev libyaml-dev
PKGS := libuv libwebsockets libcurl libcjson libssl libcrypto libarchive
# libyaml only for the coordinator: kubeconfig files are YAML (README, "Dependencies").
COORD_PKGS := yaml-0.1

BUILD   ?= build
SAN     ?=
VERSION := $(shell cat VERSION)
CC      ?= cc
OPT     ?= -O2 -g

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# What each program links, and no more: every shared library costs each start of the program time and resident
# pages (bench/README.md, "what each library costs"). The agent links libuv and cJSON only: its HTTP client, status
# server and WebSocket client are our own (common/h1.c, https.c, wsc.c); libssl (wss://), libcurl (https://) and
# libarchive (an engine zip) are dlopen'ed the first time they are needed (common/dynlib.h). The coordinator adds
# libcrypto (kubeconfig client keys) and libyaml; the devplane, a test fake, serves its C&C WebSocket with
# libwebsockets. Tests and benchmarks that call libcurl, libarchive, libssl or libwebsockets themselves link them.
DLOPEN_PKGS := libcurl libarchive
BASE_LIBS   := $(shell pkg-config --libs libuv libcjson 2>/dev/null) -lm
CRYPTO_LIBS := $(shell pkg-config --libs libcrypto 2>/dev/null)
LWS_LIBS    := $(shell pkg-config --libs libwebsockets libssl libcrypto 2>/dev/null)
DLOPEN_LIBS := $(shell pkg-config --libs $(DLOPEN_PKGS) 2>/dev/null)
CMOCKA_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null)
COORD_LIBS  := $(shell pkg-config --libs $(COORD_PKGS) 2>/dev/null)

CFLAGS  := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror $(OPT) -Iinclude $(PKG_CFLAGS) \
           $(shell pkg-config --cflags $(COORD_PKGS) 2>/dev/null) \
           -DIAC_VERSION='"$(VERSION)"' -MMD -MP
LDLIBS  := $(BASE_LIBS)
# Tests and benchmarks: everything but the dlopen'ed libraries (those only where DIRECT_DLOPEN_USERS says).
TEST_LIBS := $(BASE_LIBS) $(LWS_LIBS)
ifeq ($(SAN),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

COMMON_SRC   := $(sort $(wildcard common/*.c))
AGENT_SRC    := $(filter-out agent/main.c,$(sort $(wildcard agent/*.c)))
COORD_SRC    := $(filter-out coordinator/main.c,$(sort $(wildcard coordinator/*.c)))
DEVPLANE_SRC := $(sort $(wildcard tests/fakes/devplane/*.c))
UNIT_SRC     := $(sort $(wildcard tests/unit/test_*.c))
ITEST_SRC    := $(sort $(wildcard tests/integration/test_*.c))
HARNESS_SRC  := $(sort $(filter-out $(ITEST_SRC),$(wildcard tests/integration/*.c)))
# Helpers unit tests share (tests/support/*.h, included as "name.h"): testcert, the TLS tests' certificates.
SUPPORT_SRC  := $(sort $(wildcard tests/support/*.c))

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

LIBIAC   := $(BUILD)/libiac.a
LIBAGENT := $(BUILD)/libagent.a
LIBCOORD := $(BUILD)/libcoord.a
BINS     := $(BUILD)/iac-agent $(BUILD)/iac-coordinator $(BUILD)/iac-devplane
# kube-fake: the Kubernetes API and pod simulator the coordinator tests run against (tests/fakes/kube-fake/README.md).
KUBEFAKE_SRC := $(sort $(wildcard tests/fakes/kube-fake/*.c))
BINS     += $(BUILD)/kube-fake
# fake-terraform: the terraform CLI double the tests run (tests/fakes/fake-terraform/README.md).
FAKETF_SRC := $(sort $(wildcard tests/fakes/fake-terraform/*.c))
BINS     += $(BUILD)/fake-terraform
# Benchmark programs (bench/*.c, one binary each) are built only by `make bench`.
BENCH_SRC  := $(sort $(wildcard bench/*.c))
BENCH_BINS := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))
UNIT_BINS  := $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,$(UNIT_SRC))
ITEST_BINS := $(patsubst tests/integration/%.c,$(BUILD)/tests/integration/%,$(ITEST_SRC))

.PHONY: all test check check-asan deps run demo-pool clean tests bench bench-bins install check-image
all: $(BINS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(LIBIAC): $(call obj,$(COMMON_SRC))
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

$(LIBAGENT): $(call obj,$(AGENT_SRC))
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

$(LIBCOORD): $(call obj,$(COORD_SRC))
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

$(BUILD)/iac-agent: $(call obj,agent/main.c) $(LIBAGENT) $(LIBIAC)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/iac-coordinator: $(call obj,coordinator/main.c) $(LIBCOORD) $(LIBIAC)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(CRYPTO_LIBS) $(COORD_LIBS)

$(BUILD)/kube-fake: $(call obj,$(KUBEFAKE_SRC)) $(LIBIAC)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/iac-devplane: $(call obj,$(DEVPLANE_SRC)) $(LIBIAC)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(LWS_LIBS)

$(BUILD)/fake-terraform: $(call obj,$(FAKETF_SRC)) $(LIBIAC)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Unit tests that call libcurl or libarchive themselves (the others load them as the programs do).
DIRECT_DLOPEN_USERS := test_engine
# Unit tests link the agent's modules too (store, config, …); the linker takes only what a test uses.
$(BUILD)/obj/tests/%.o: CFLAGS += -Itests/support

$(BUILD)/tests/unit/%: $(call obj,tests/unit/%.c) $(call obj,$(SUPPORT_SRC)) $(LIBCOORD) $(LIBAGENT) $(LIBIAC)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(TEST_LIBS) $(if $(filter $(DIRECT_DLOPEN_USERS),$*),$(DLOPEN_LIBS)) $(COORD_LIBS) \
	    $(CMOCKA_LIBS)

$(BUILD)/tests/integration/%: $(call obj,tests/integration/%.c) $(call obj,$(HARNESS_SRC)) $(LIBIAC)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(TEST_LIBS) $(DLOPEN_LIBS) $(CMOCKA_LIBS)

# bench/tlsproxy is also the TLS front of tests/integration/test_agent_tls.c.
tests: $(BINS) $(UNIT_BINS) $(ITEST_BINS) $(BUILD)/bench/tlsproxy

bench-bins: $(BENCH_BINS)

$(BUILD)/bench/%: $(call obj,bench/%.c) $(LIBIAC)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(TEST_LIBS) $(DLOPEN_LIBS)

# Benchmarks: -O2, no sanitizers, loopback only; prints one table and writes it to bench/README.md.
bench: deps
	$(MAKE) BUILD=build/bench OPT="-O2" all bench-bins
	bench/run.sh build/bench

# The test command of the README and of .ci/run.
test: deps
	$(MAKE) tests
	tests/run-tests.sh $(BUILD)

check: test

check-asan: deps
	$(MAKE) BUILD=build/asan SAN=1 OPT="-O1 -g" tests
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    tests/run-tests.sh build/asan

deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	    if [ "$$(id -u)" != 0 ]; then echo "make deps: missing packages:$$missing (run 'make deps' as root)" >&2; exit 1; fi; \
	    echo "make deps: installing$$missing"; \
	    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(DEB_PACKAGES); \
	fi

run: deps
	$(MAKE) all
	CONFIRM="$(CONFIRM)" KEEP="$(KEEP)" tests/run-local.sh $(BUILD)

demo-pool: deps
	$(MAKE) all
	tests/demo-pool.sh $(BUILD)

clean:
	rm -rf build

# The two binaries of the image (the Dockerfile's build stage runs `make install DESTDIR=/out PREFIX=/usr/local`).
PREFIX  ?= /usr/local
DESTDIR ?=
install: $(BUILD)/iac-agent $(BUILD)/iac-coordinator
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $^ $(DESTDIR)$(PREFIX)/bin/

# The Dockerfile's runtime stage without a container engine: packaging/check-image.sh (what it proves is said there).
IMAGE_ROOT ?= $(BUILD)/image-root
check-image: deps
	$(MAKE) $(BUILD)/iac-agent $(BUILD)/iac-coordinator $(BUILD)/iac-devplane $(BUILD)/fake-terraform
	packaging/check-image.sh $(BUILD) $(IMAGE_ROOT)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
