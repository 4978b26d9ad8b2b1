#!/usr/bin/env bash
# `npm run bench`: builds the C side on the host, boots the QEMU-hosted Xen
# (or, with --host, runs in this Dom0) and runs test/bench/run.ts in Dom0.
# Results land in bench-results/ (latest.json, samples.json, table.md, chart.svg;
# summary.{md,json}: median and spread of the last three runs).
# XZC_BENCH_CYCLES (default 200), XZC_BENCH_FRAMES (default 30) and XZC_B6_SECONDS
# (default 10, per B6 run) scale it.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=$REPO/.cache/bench
mkdir -p "$OUT"
gcc -O2 -Wall -Wextra -Werror -I"$REPO/native" -I"$REPO/kernel-module" \
	-o "$OUT/zcbench" "$REPO/test/bench/zcbench.c"
export XZC_ZCBENCH=$OUT/zcbench
# B5 needs room: two 768 MiB guests, Dom0 mapping up to 1.25 GiB of their
# pages, and Xen's grant and maptrack tables above their defaults (64 and
# 1024 frames) so the first limit is memory or the module, not Xen's tables.
export XZC_MEM=${XZC_MEM:-5120} XZC_DOM0_MEM=${XZC_DOM0_MEM:-2048}
export XZC_XEN_EXTRA=${XZC_XEN_EXTRA:-gnttab_max_frames=512 gnttab_max_maptrack_frames=4096}
cd "$REPO"
# B6 runs the display backend as deployed: dist/cli.js, built from lib/
npx tsc -p tsconfig.build.json
bash test/xen/vm run -- node --import tsx test/bench/run.ts
# keep this run for the median of the last three (test/bench/aggregate.ts)
RUN=$OUT/runs/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$RUN" && cp bench-results/latest.json bench-results/samples.json "$RUN/"
node --import tsx test/bench/aggregate.ts 3
