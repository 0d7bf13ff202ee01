#!/bin/sh
# crash-cycles.sh: durability under kill -9, 100 times (CYCLES to change).
# A writer process appends to the store and records each acknowledged batch;
# it is killed with SIGKILL at a random moment, the store is reopened, and
# every acknowledged sample must be there. `make test` runs 20 cycles.
#
#   sh bench/crash-cycles.sh
#   CYCLES=500 sh bench/crash-cycles.sh
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
VIGIL_CRASH_CYCLES=${CYCLES:-100} go test -count=1 -run '^TestCrashDurability$' -v ./agent/store 2>&1 |
	grep -E 'cycles|^(ok|FAIL|---)' 
