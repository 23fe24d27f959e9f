# Shared by scripts/test and scripts/quickstart: install what is missing.
# Usage: need BINARY PACKAGE [BINARY PACKAGE ...]  (apt packages, installed once)
# A BINARY starting with / is a path that must exist (for -dev packages).

_apt_updated=""
need() {
  local missing=()
  while [ $# -ge 2 ]; do
    local bin=$1 pkg=$2
    shift 2
    if [ "${bin#/}" != "$bin" ]; then
      [ -e "$bin" ] || missing+=("$pkg")
    elif ! command -v "$bin" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$bin" ] && [ ! -x "/usr/lib/git-core/$bin" ]; then
      missing+=("$pkg")
    fi
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "installing: ${missing[*]}" >&2
  if [ -z "$_apt_updated" ]; then
    $sudo apt-get update -qq
    _apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
