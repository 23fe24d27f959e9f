# Sourced by the scripts that run what cargo builds. Cargo decides where
# binaries go (CARGO_TARGET_DIR, .cargo/config.toml, build.target-dir), so
# the path is read from what cargo reports instead of assumed to be
# ./target/.

# built NAME [cargo build arguments...]: builds, then prints the path of the
# executable named NAME (a bin or an example) that the build produced.
built() {
  local name=$1
  shift
  local path
  path=$(cargo build --message-format=json-render-diagnostics "$@" \
    | grep -o '"executable":"[^"]*"' \
    | sed -e 's/^"executable":"//' -e 's/"$//' \
    | grep "/$name\$" | tail -n 1)
  if [ -z "$path" ] || [ ! -x "$path" ]; then
    echo "cargo build $* reported no executable named $name" >&2
    return 1
  fi
  printf '%s\n' "$path"
}

# target_dir: where cargo puts build output (criterion writes its reports
# under it too).
target_dir() {
  cargo metadata --format-version 1 --no-deps \
    | grep -o '"target_directory":"[^"]*"' \
    | sed -e 's/^"target_directory":"//' -e 's/"$//'
}
