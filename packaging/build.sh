#!/bin/bash
# packaging/build.sh [OUTDIR]: build the sshkick .deb and .rpm for amd64 and
# arm64 into OUTDIR (default dist/), as `make package` does. Needs only Go
# and the Go module proxy: nfpm is built from its module at a pinned version.
#
# Reproducible: the same commit and SOURCE_DATE_EPOCH (default: the commit's
# time) give byte-identical packages (a static binary built with -trimpath
# and no build id; every timestamp in the packages is SOURCE_DATE_EPOCH).
#
# Environment: VERSION (default from `git describe`, else
# 0.0.0+gitYYYYMMDD.COMMIT), COMMIT, SOURCE_DATE_EPOCH, ARCHES ("amd64
# arm64"), GO.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-dist}")
GO=${GO:-go}
NFPM_MODULE=github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.48.0
ARCHES=${ARCHES:-amd64 arm64}

die() { echo "package: $*" >&2; exit 1; }
command -v "$GO" >/dev/null || die "no Go toolchain ($GO): install Go 1.26 or set GO"

COMMIT=${COMMIT:-$(git rev-parse HEAD 2>/dev/null || true)}
[ -n "$COMMIT" ] || die "not a git checkout: set COMMIT, VERSION and SOURCE_DATE_EPOCH"
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
	COMMIT=$COMMIT-dirty
fi
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}
[[ $SOURCE_DATE_EPOCH =~ ^[0-9]+$ ]] || die "SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH is not a number of seconds"
export SOURCE_DATE_EPOCH
DATE=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
if [ -z "${VERSION:-}" ]; then
	# v1.2.3 → 1.2.3; v1.2.3-4-gabcdef → 1.2.3+git4.abcdef; no tag → 0.0.0+gitDATE.COMMIT
	VERSION=$(git describe --tags --match 'v[0-9]*' 2>/dev/null | sed -E 's/^v//; s/-([0-9]+)-g([0-9a-f]+)$/+git\1.\2/') || true
	[ -n "$VERSION" ] || VERSION=0.0.0+git$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y%m%d).${COMMIT:0:12}
fi
# Debian and RPM both accept this alphabet; a version must start with a digit.
[[ $VERSION =~ ^[0-9][A-Za-z0-9.+~]*$ ]] || die "VERSION=$VERSION: use digits, letters and . + ~, starting with a digit"

stage=$(mktemp -d "${TMPDIR:-/tmp}/sshkick-package.XXXXXX")
trap 'rm -rf "$stage"' EXIT
export STAGE=$stage VERSION

pkg=github.com/sshkick/sshkick/internal/cli
ldflags="-s -w -buildid= -X $pkg.Version=$VERSION -X $pkg.Commit=$COMMIT -X $pkg.Date=$DATE"
for arch in $ARCHES; do
	CGO_ENABLED=0 GOOS=linux GOARCH=$arch "$GO" build -trimpath -buildvcs=false -ldflags "$ldflags" \
		-o "$stage/$arch/sshkick" ./cmd/sshkick || die "go build for $arch failed"
done

# Pages and completions come from the command tree itself (never drift).
"$GO" run -trimpath ./internal/tools/gendocs -out "$stage/docs" -version "$VERSION" || die "gendocs failed"
gzip -9nc packaging/sshkick-policy.toml.5 >"$stage/sshkick-policy.toml.5.gz"
cat >"$stage/changelog" <<EOF
sshkick ($VERSION) unstable; urgency=medium

  * Built from commit $COMMIT.

 -- The sshkick developers <sshkick@example.org>  $(date -u -R -d "@$SOURCE_DATE_EPOCH")
EOF
gzip -9nc "$stage/changelog" >"$stage/changelog.gz"

# The watch daemon's unit and example policy, when they exist.
cp packaging/nfpm.yaml "$stage/nfpm.yaml"
if [ -f packaging/sshkick-watch.service ]; then
	cat >>"$stage/nfpm.yaml" <<'EOF'
  - src: packaging/sshkick-watch.service
    dst: /usr/lib/systemd/system/sshkick-watch.service
    file_info: {mode: 0o644}
EOF
fi
if [ -f packaging/policy.toml ]; then
	cat >>"$stage/nfpm.yaml" <<'EOF'
  - src: packaging/policy.toml
    dst: /etc/sshkick/policy.toml
    type: config|noreplace
    file_info: {mode: 0o644}
EOF
fi

GOBIN=$stage/tools GOFLAGS=-trimpath "$GO" install "$NFPM_MODULE" || die "building nfpm ($NFPM_MODULE) failed"
mkdir -p "$out"
for arch in $ARCHES; do
	for packager in deb rpm; do
		ARCH=$arch "$stage/tools/nfpm" package --config "$stage/nfpm.yaml" --packager "$packager" --target "$out/" >/dev/null \
			|| die "nfpm $packager for $arch failed"
	done
done
echo "package: sshkick $VERSION (commit $COMMIT, $DATE):"
find "$out" -maxdepth 1 -type f -name "sshkick*$VERSION*" -printf '  %p %s bytes\n' | sort
