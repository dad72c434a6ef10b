#!/usr/bin/env bash
# minio.sh - build, cache and locate the pinned MinIO server used by akminio's tests.
#
#   scripts/minio.sh ensure   build the server if it is missing or not the pinned version,
#                             print its absolute path
#   scripts/minio.sh path     print the absolute path without building (warns if missing
#                             or not the pinned version)
#
# The binary lives outside the repository, in
#   ${AKMINIO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/akminio}/bin/minio
# A build takes about 6 minutes on 2 cores. It goes into a temporary GOBIN next to the
# cache and is moved into place with one rename, so an interrupted build never leaves a
# half-written binary behind. Progress goes to stderr; stdout carries only the path.
set -euo pipefail

readonly MINIO_MODULE="github.com/minio/minio"
readonly MINIO_VERSION="v0.0.0-20260212201848-7aac2a2c5b7c"

cache_dir="${AKMINIO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/akminio}"
[[ "${cache_dir}" == /* ]] || cache_dir="${PWD}/${cache_dir}"
bin_dir="${cache_dir}/bin"
bin_path="${bin_dir}/minio"

log() { printf 'minio.sh: %s\n' "$*" >&2; }

usage() {
	printf 'usage: %s ensure|path\n' "$(basename "$0")" >&2
	exit 2
}

# cached_version prints the module version the cached binary was built from (Go records it
# in the binary), or nothing when it cannot tell.
cached_version() {
	go version -m "${bin_path}" 2>/dev/null |
		awk -v mod="${MINIO_MODULE}" '$1 == "mod" && $2 == mod { print $3 }' || true
}

# is_current succeeds when the cached binary exists and is the pinned version, so that
# bumping MINIO_VERSION rebuilds instead of testing against the old server.
is_current() {
	[[ -x "${bin_path}" ]] && [[ "$(cached_version)" == "${MINIO_VERSION}" ]]
}

# stale_reason says why the cached binary cannot be used; empty when it can.
stale_reason() {
	if [[ ! -x "${bin_path}" ]]; then
		printf '%s is missing' "${bin_path}"
	elif ! is_current; then
		printf '%s is %s, not the pinned %s@%s' "${bin_path}" \
			"$(cached_version | grep . || echo 'of unknown version')" "${MINIO_MODULE}" "${MINIO_VERSION}"
	fi
}

build_tmp=""
cleanup() { [[ -z "${build_tmp}" ]] || rm -rf "${build_tmp}"; }
trap cleanup EXIT

build() {
	command -v go >/dev/null 2>&1 || { log "go is not on PATH; install Go to build MinIO"; exit 1; }
	mkdir -p "${bin_dir}"
	# One build at a time: a second caller waits for the first, then reuses its binary.
	if command -v flock >/dev/null 2>&1; then
		exec 9>"${cache_dir}/build.lock"
		flock 9
		if is_current; then
			log "another build finished ${bin_path}"
			return
		fi
	fi
	# Same file system as the destination, so the final mv is an atomic rename.
	build_tmp="$(mktemp -d "${cache_dir}/build.XXXXXX")"
	log "building ${MINIO_MODULE}@${MINIO_VERSION} into ${bin_dir} (about 6 minutes on 2 cores)"
	local start=${SECONDS}
	GOBIN="${build_tmp}" CGO_ENABLED="${CGO_ENABLED:-0}" go install "${MINIO_MODULE}@${MINIO_VERSION}" >&2
	if [[ ! -x "${build_tmp}/minio" ]]; then
		log "go install finished but produced no ${build_tmp}/minio"
		exit 1
	fi
	mv -f "${build_tmp}/minio" "${bin_path}"
	log "built ${bin_path} in $((SECONDS - start))s"
}

main() {
	[[ $# -eq 1 ]] || usage
	case "$1" in
	ensure)
		local reason
		reason="$(stale_reason)"
		if [[ -z "${reason}" ]]; then
			log "using cached ${bin_path}"
		else
			log "${reason}"
			build
		fi
		printf '%s\n' "${bin_path}"
		;;
	path)
		printf '%s\n' "${bin_path}"
		local reason
		reason="$(stale_reason)"
		[[ -z "${reason}" ]] || log "${reason}; run: make minio"
		;;
	*) usage ;;
	esac
}

main "$@"
