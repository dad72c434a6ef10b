#!/usr/bin/env bash
# fuzz.sh - a bounded run of every fuzz target, one `go test -fuzz` per target as Go requires.
#
#   scripts/fuzz.sh            each target for ${FUZZTIME:-20s}
#   FUZZTIME=10m scripts/fuzz.sh
#
# `go test` alone runs each target's seed corpus (testdata/fuzz/<Target>/ and the f.Add
# seeds); this script mutates beyond it. A failing input is written by Go to
# testdata/fuzz/<Target>/<hash> in the target's package: commit it, and it stays a
# regression test that every `go test` runs. At the end, one line per target gives its
# executions (docs/reliability.md keeps the figures).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

fuzztime="${FUZZTIME:-20s}"
go="${GO:-go}"
targets=(
  "./config FuzzLoad"
  "./reconcile FuzzRenderExpression"
  "./reconcile FuzzNormalizePolicy"
  "./daemon FuzzMinIOAuditHook"
  "./daemon FuzzAuthentikHook"
  "./internal/logging FuzzScrubber"
)
summary=()
status=0
for t in "${targets[@]}"; do
  read -r pkg name <<<"$t"
  log="$(mktemp)"
  echo "fuzz: ${pkg} ${name} for ${fuzztime}"
  if ! "$go" test -run '^$' -fuzz "^${name}\$" -fuzztime "${fuzztime}" "${pkg}" >"${log}" 2>&1; then
    cat "${log}"
    status=1
  fi
  execs="$(grep -o 'execs: [0-9]*' "${log}" | tail -1 | cut -d' ' -f2 || true)"
  summary+=("$(printf '%-22s %-18s %10s executions' "${name}" "${pkg}" "${execs:-?}")")
  rm -f "${log}"
done
printf '%s\n' "${summary[@]}"
exit "${status}"
