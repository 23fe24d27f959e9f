# Shared by the scripts/bench-* scripts: `... | bench_out` appends markdown
# results to $BENCH_OUT (set by scripts/bench, which puts them into
# BENCHMARKS.md) and shows them; without BENCH_OUT it only shows them.
bench_out() {
  if [ -n "${BENCH_OUT:-}" ]; then
    tee -a "$BENCH_OUT"
  else
    cat
  fi
}
