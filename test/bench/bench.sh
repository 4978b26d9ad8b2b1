#!/usr/bin/env bash
# `npm run bench`: builds the C side on the host, boots the QEMU-hosted Xen
# (or, with --host, runs in this Dom0) and runs test/bench/run.ts in Dom0.
# Results land in bench-results/ (latest.json, table.md, chart.svg).
# XZC_BENCH_CYCLES (default 200) and XZC_BENCH_FRAMES (default 30) scale it.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=$REPO/.cache/bench
mkdir -p "$OUT"
gcc -O2 -Wall -Wextra -Werror -I"$REPO/native" -I"$REPO/kernel-module" \
	-o "$OUT/zcbench" "$REPO/test/bench/zcbench.c"
export XZC_ZCBENCH=$OUT/zcbench
cd "$REPO"
exec bash test/xen/vm run -- node --import tsx test/bench/run.ts
