#!/usr/bin/env bash
# `npm run bench`: boots the QEMU-hosted Xen and runs the benchmarks in Dom0,
# first on x86-64 (test/bench/run.ts: B1-B6), then on arm64 (test/bench/arm64.ts:
# B1 and B3, the 2018 driver's platform). XZC_BENCH_ARCH="x86_64 arm64" (the
# default) picks which. The C side (test/bench/zcbench.c) is built for each.
# Results land in bench-results/ (latest.json with arm64's under `arm64`,
# samples*.json, table.md, chart.svg; summary.{md,json}: median and spread of
# the last three runs of each).
# XZC_BENCH_CYCLES (default 200, B1 on both), XZC_BENCH_FRAMES (default 30) and
# XZC_B6_SECONDS (default 10, per B6 run) scale it.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=$REPO/.cache/bench
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
ZCBENCH_FLAGS=(-O2 -Wall -Wextra -Werror -I"$REPO/native" -I"$REPO/kernel-module")
cd "$REPO"
mkdir -p "$OUT"
# both platforms' benchmark programs import the library from dist/ (as deployed),
# and B6 runs the display backend as deployed (dist/cli.js)
npx tsc -p tsconfig.build.json

bench_x86_64() {
	gcc "${ZCBENCH_FLAGS[@]}" -o "$OUT/zcbench" test/bench/zcbench.c
	# the library as deployed (dist/, tsc's output), as on arm64: tsx's
	# transform adds a helper call per closure, about 30 % of the library's
	# own time per import cycle
	node test/xen/arm64/bundle.mjs --plain "$OUT/bench-js" test/bench/run.ts
	# B5 needs room: two 768 MiB guests, Dom0 mapping up to 1.25 GiB of their
	# pages, and Xen's grant and maptrack tables above their defaults (64 and
	# 1024 frames) so the first limit is memory or the module, not Xen's tables.
	XZC_ZCBENCH=$OUT/zcbench XZC_MEM=${XZC_MEM:-5120} XZC_DOM0_MEM=${XZC_DOM0_MEM:-2048} \
		XZC_XEN_EXTRA=${XZC_XEN_EXTRA:-gnttab_max_frames=512 gnttab_max_maptrack_frames=4096} \
		bash test/xen/vm run -- node "$OUT/bench-js/test_bench_run.js"
	# kept for the median of the last three (test/bench/aggregate.ts)
	mkdir -p "$OUT/runs/$STAMP" && cp bench-results/latest.json bench-results/samples.json "$OUT/runs/$STAMP/"
}

bench_arm64() {
	local a=$REPO/.cache/xen-arm64
	# the harness's prepare installs the cross compiler (vm run prepares anyway)
	command -v aarch64-linux-gnu-gcc >/dev/null || XZC_ARCH=arm64 bash test/xen/vm prepare
	aarch64-linux-gnu-gcc "${ZCBENCH_FLAGS[@]}" -static -o "$a/zcbench" test/bench/zcbench.c
	node test/xen/arm64/bundle.mjs --plain "$a/bench-js" test/bench/arm64.ts
	# the harness's own memory defaults: the x86 run's B5 sizes are not needed here
	XZC_ARCH=arm64 XZC_ZCBENCH=$a/zcbench XZC_MEM=2048 XZC_DOM0_MEM=1024 XZC_XEN_EXTRA= \
		bash test/xen/vm run -- node "$a/bench-js/test_bench_arm64.js"
	mkdir -p "$OUT/runs-arm64/$STAMP" && cp "$a"/run/bench-results/{arm64.json,samples-arm64.json} "$OUT/runs-arm64/$STAMP/"
}

for arch in ${XZC_BENCH_ARCH:-x86_64 arm64}; do
	case $arch in
	x86_64 | arm64) "bench_$arch" ;;
	*) echo "bench.sh: unknown arch '$arch' in XZC_BENCH_ARCH (x86_64, arm64)" >&2; exit 2 ;;
	esac
done
# summary over the last three runs of each; latest.json gets the newest arm64 run under `arm64`
node --import tsx test/bench/aggregate.ts 3
