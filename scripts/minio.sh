#!/usr/bin/env bash
# minio.sh - build, cache and locate the pinned MinIO server used by akminio's tests.
#
#   scripts/minio.sh ensure   build the server if it is missing, print its absolute path
#   scripts/minio.sh path     print the absolute path without building (warns if missing)
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
		if [[ -x "${bin_path}" ]]; then
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
		if [[ -x "${bin_path}" ]]; then
			log "using cached ${bin_path}"
		else
			build
		fi
		printf '%s\n' "${bin_path}"
		;;
	path)
		printf '%s\n' "${bin_path}"
		[[ -x "${bin_path}" ]] || log "${bin_path} is missing; run: make minio"
		;;
	*) usage ;;
	esac
}

main "$@"
