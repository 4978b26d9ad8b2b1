#!/usr/bin/env bash
# `npm run bench`: builds the C side on the host, boots the QEMU-hosted Xen
# (or, with --host, runs in this Dom0) and runs test/bench/run.ts in Dom0.
# Results land in bench-results/ (latest.json, table.md, chart.svg).
# XZC_BENCH_CYCLES (default 200), XZC_BENCH_FRAMES (default 30) and XZC_B6_SECONDS
# (default 10, per B6 run) scale it.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=$REPO/.cache/bench
mkdir -p "$OUT"
gcc -O2 -Wall -Wextra -Werror -I"$REPO/native" -I"$REPO/kernel-module" \
	-o "$OUT/zcbench" "$REPO/test/bench/zcbench.c"
export XZC_ZCBENCH=$OUT/zcbench
cd "$REPO"
# B6 runs the display backend as deployed: dist/cli.js, built from lib/
npx tsc -p tsconfig.build.json
exec bash test/xen/vm run -- node --import tsx test/bench/run.ts
