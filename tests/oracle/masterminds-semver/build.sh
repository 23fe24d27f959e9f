#!/usr/bin/env bash
# The team's shared oracle harness (../shared/oracles/masterminds-semver), copied
# so a fresh clone can build it; see README.md for the local changes.
# Builds the reference oracle from Debian's packages (Go 1.19 and Masterminds/semver 3.2.0);
# no network beyond the Debian archive. Usage: build.sh OUTPUT_BINARY
set -euo pipefail
out=$(realpath -m "${1:?usage: build.sh OUTPUT_BINARY}")
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v go >/dev/null || [ ! -d /usr/share/gocode/src/github.com/Masterminds/semver ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq golang-go golang-github-masterminds-semver-dev >/dev/null
fi
# Go's build cache and module path stay next to the output (inside the repository).
export GOCACHE=${GOCACHE:-$(dirname "$out")/go-cache}
export GOPATH=${GOPATH:-$(dirname "$out")/go-path}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$here/main.go" "$work/"
cat > "$work/go.mod" <<MOD
module oracle
go 1.19
require github.com/Masterminds/semver/v3 v3.2.0
replace github.com/Masterminds/semver/v3 => /usr/share/gocode/src/github.com/Masterminds/semver
MOD
(cd "$work" && GOFLAGS=-mod=mod GOPROXY=off go build -o "$out" .)
