# crun-rs build, test and install entry points.  See README.md.
#
#   make            build libcrun.a, libcrun.so.0 and the crun binary (release)
#   make demo       build and run the demo (see README)
#   make test       install test dependencies (as root) and run every test
#   make install    PREFIX=/usr/local DESTDIR=... LIBDIR=... 
#   make header     regenerate include/libcrun.h from the Rust sources

CARGO    ?= cargo
CC       ?= cc
PROFILE  ?= release
PREFIX   ?= /usr/local
BINDIR   ?= $(PREFIX)/bin
LIBDIR   ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
DESTDIR  ?=

VERSION  := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
ifeq ($(PROFILE),debug)
CARGO_PROFILE_FLAG :=
OUT := target/debug
else
CARGO_PROFILE_FLAG := --profile $(PROFILE)
OUT := target/$(PROFILE)
endif
LIBS_PRIVATE := -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc

# `make test` builds the real libkrun (Cargo registry crate, ~2 min, cached in ~/.cache/crun-rs)
# to exercise its error paths; CRUN_RS_REAL_LIBKRUN=0 skips that, with a printed reason.
CRUN_RS_REAL_LIBKRUN ?= 1
export CRUN_RS_REAL_LIBKRUN

.PHONY: all build lib header demo test test-deps check lint install uninstall clean

all: build

build:
	$(CARGO) build $(CARGO_PROFILE_FLAG)
	./scripts/link-so.sh $(OUT)

lib: build

header:
	CRUN_RS_UPDATE_HEADER=1 $(CARGO) build
	@echo "include/libcrun.h regenerated"

demo: build
	./scripts/demo.sh $(OUT)

# Installs what the tests need when run as root (valgrind, busybox, ...), then runs everything.
test-deps:
	./scripts/install-test-deps.sh

test: test-deps
	./scripts/run-tests.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

install: build
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PKGCONFIGDIR)
	install -m 0755 $(OUT)/crun $(DESTDIR)$(BINDIR)/crun
	ln -sfn crun $(DESTDIR)$(BINDIR)/krun
	install -m 0755 $(OUT)/libcrun.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libcrun.so.$(VERSION)
	ln -sfn libcrun.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libcrun.so.0
	ln -sfn libcrun.so.0 $(DESTDIR)$(LIBDIR)/libcrun.so
	install -m 0644 $(OUT)/libcrun.a $(DESTDIR)$(LIBDIR)/libcrun.a
	install -m 0644 include/libcrun.h $(DESTDIR)$(INCLUDEDIR)/libcrun.h
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@VERSION@|$(VERSION)|g' \
	    -e 's|@LIBS_PRIVATE@|$(LIBS_PRIVATE)|g' libcrun.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/libcrun.pc
	chmod 0644 $(DESTDIR)$(PKGCONFIGDIR)/libcrun.pc

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/crun $(DESTDIR)$(BINDIR)/krun
	rm -f $(DESTDIR)$(LIBDIR)/libcrun.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libcrun.so.0 $(DESTDIR)$(LIBDIR)/libcrun.so
	rm -f $(DESTDIR)$(LIBDIR)/libcrun.a $(DESTDIR)$(INCLUDEDIR)/libcrun.h $(DESTDIR)$(PKGCONFIGDIR)/libcrun.pc

clean:
	$(CARGO) clean
