#!/usr/bin/env bash
# The federation's TLS certificates and SuperNode keys (see docs/federation.md, "Deployment").
#
#   deploy/make-credentials.sh server STATE HOST [HOST ...]
#       central team, once: a CA and the SuperLink's certificate for the names/IPs the
#       sites reach it by, in STATE/credentials/. Give STATE/credentials/ca.crt to every site.
#   deploy/make-credentials.sh site FOLDER NAME
#       each site, once: its SuperNode key pair FOLDER/NAME (private, stays) and
#       FOLDER/NAME.pub (send it to the central team, who registers it).
#
# Certificates are ECDSA P-384 signed by the CA; SuperNode keys are OpenSSH ECDSA P-384, the
# only kind Flower 1.41 accepts. Existing files are never overwritten. Uses the pathloop CLI
# (PATHLOOP, default: the repository's .venv/bin/pathloop, else pathloop on PATH).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
pathloop="${PATHLOOP:-$here/../.venv/bin/pathloop}"
[ -x "$pathloop" ] || pathloop="$(command -v pathloop || true)"
[ -n "$pathloop" ] || { echo "error: pathloop not found (run make setup, or set PATHLOOP)" >&2; exit 1; }

usage() { sed -n '4,10p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

case "${1:-}" in
  server)
    [ $# -ge 3 ] || usage
    state="$2"; shift 2
    hosts=()
    for host in "$@"; do hosts+=(--host "$host"); done
    "$pathloop" server credentials "$state" "${hosts[@]}"
    ;;
  site)
    [ $# -eq 3 ] || usage
    "$pathloop" site key "$2" --name "$3"
    ;;
  *) usage ;;
esac
