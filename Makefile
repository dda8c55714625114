# make check: everything CI runs. It installs what the tests need when it is
# missing (as root) and fails loudly when it cannot.
GO ?= go
SHELL := /bin/bash

.PHONY: check deps fmt vet test build bench clean package package-reproducible

check: deps fmt vet test

build:
	$(GO) build -o sshkick ./cmd/sshkick

# dist/sshkick_VERSION_{amd64,arm64}.deb and .rpm (nfpm; see packaging/build.sh).
# VERSION, SOURCE_DATE_EPOCH and ARCHES may be set; the defaults come from git.
package:
	GO=$(GO) bash packaging/build.sh dist

# Build the packages twice from this commit and compare them byte for byte.
package-reproducible:
	@set -e; a=$$(mktemp -d); b=$$(mktemp -d); trap 'rm -rf "$$a" "$$b"' EXIT; \
	GO=$(GO) bash packaging/build.sh "$$a" >/dev/null; GO=$(GO) bash packaging/build.sh "$$b" >/dev/null; \
	(cd "$$a" && sha256sum *) | tee /dev/stderr | diff - <(cd "$$b" && sha256sum *) \
	  && echo "package: the two builds are byte-identical"

# The end-to-end suite needs a real OpenSSH server, dbus-daemon (fake logind),
# who/w (coreutils/procps), tmux (panes), setpriv and useradd; the glibc ABI
# cross-check of the utmp decoder needs gcc; the real-systemd tests boot a
# Debian tree (debootstrap, zstd) with systemd-nspawn (systemd-container);
# the install test (e2e/install) reads the .rpm with rpm and checks the
# .deb with lintian.
deps:
	@missing=""; \
	for b in /usr/sbin/sshd:openssh-server /usr/bin/dbus-daemon:dbus-daemon /usr/bin/who:coreutils \
	         /usr/bin/w:procps /usr/bin/tmux:tmux /usr/bin/setpriv:util-linux /usr/sbin/useradd:passwd /usr/bin/ssh:openssh-client /usr/bin/ssh-keygen:openssh-client \
	         /usr/bin/gcc:gcc /usr/bin/systemd-nspawn:systemd-container /usr/sbin/debootstrap:debootstrap \
	         /usr/bin/zstd:zstd /usr/bin/nsenter:util-linux /usr/bin/sftp:openssh-client /usr/bin/rpm:rpm /usr/bin/lintian:lintian; do \
	  [ -x "$${b%%:*}" ] || missing="$$missing $${b##*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "make check: missing packages:$$missing; install them (as root: apt-get install$$missing) or run make check as root" >&2; exit 1; \
	  fi; \
	  echo "make check: installing$$missing"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing) >&2 \
	    || { echo "make check: apt-get install$$missing failed" >&2; exit 1; }; \
	fi

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

# SSHKICK_E2E=require turns a skipped end-to-end test (not root, no sshd) into a failure.
test:
	SSHKICK_E2E=require $(GO) test -race -count=1 -timeout 20m ./...

bench:
	bash bench/list-vs-who.sh

clean:
	rm -f sshkick
	rm -rf dist
