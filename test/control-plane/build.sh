#!/usr/bin/env bash
# Builds the programs of the test control plane from Go modules and prints the folder that holds them
# as the last line of its standard output (everything else goes to standard error):
#
#   etcd, kube-apiserver, kube-controller-manager, kubectl
#   kubevirt-vmi-crd.json, kubevirt-vm-crd.json   (KubeVirt's CRDs, generated from KubeVirt's Go code)
#
# - KUBEBUILDER_ASSETS set: that folder must already hold etcd, kube-apiserver, kube-controller-manager
#   and kubectl; nothing is built and that folder is printed. (The harness then wants the CRD as
#   $KUBEBUILDER_ASSETS/kubevirt-vmi-crd.json, or as a file named by KUBEVIRT_VMI_CRD.)
# - otherwise everything is built into a cache outside the repository, one folder per set of versions:
#   ${CONTROL_PLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lab-orchestrator/control-plane}/k8s-…_etcd-…_kubevirt-…/
#   A folder that is complete and was built from the same go.mod/go.sum/sources is used as it is.
#
# The versions come from the go.mod files beside this script. The first build compiles Kubernetes and
# takes a long while; Go's own build cache stays where it is, so later builds reuse it. CONTROL_PLANE_BUILD_JOBS (default: number of cores) caps parallel compile jobs.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
binaries=(etcd kube-apiserver kube-controller-manager kubectl)
crds=(kubevirt-vmi-crd.json kubevirt-vm-crd.json)

log() { printf '[control-plane/build] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

if [[ -n ${KUBEBUILDER_ASSETS:-} ]]; then
  assets="$(cd "$KUBEBUILDER_ASSETS" 2>/dev/null && pwd)" || die "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS is not a folder"
  for bin in "${binaries[@]}"; do
    [[ -x $assets/$bin ]] || die "KUBEBUILDER_ASSETS=$assets has no executable $bin"
  done
  log "using the programs in KUBEBUILDER_ASSETS"
  printf '%s\n' "$assets"
  exit 0
fi

# Version of a module as required by a go.mod file.
required_version() {
  local version
  version="$(awk -v m="$2" '($1 == m && $2 != "=>") || ($1 == "require" && $2 == m) { v = ($1 == "require") ? $3 : $2 } END { print v }' "$1")"
  [[ -n $version ]] || die "$1 does not require $2"
  printf '%s' "$version"
}
k8s_version="$(required_version "$here/go.mod" k8s.io/kubernetes)"
etcd_version="$(required_version "$here/go.mod" go.etcd.io/etcd/server/v3)"
kubevirt_version="$(required_version "$here/kubevirt-crd/go.mod" kubevirt.io/kubevirt)"

cache_root="${CONTROL_PLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lab-orchestrator/control-plane}"
dest="$cache_root/k8s-${k8s_version}_etcd-${etcd_version}_kubevirt-${kubevirt_version}"

# What the folder was built from: a change to the modules or to this script means a rebuild.
inputs_hash="$(cd "$here" && cat build.sh go.mod go.sum cmd/etcd/main.go kubevirt-crd/go.mod kubevirt-crd/go.sum kubevirt-crd/main.go | sha256sum | cut -c1-16)"

complete() {
  local file
  [[ -f $dest/.built-from && "$(cat "$dest/.built-from")" == "$inputs_hash" ]] || return 1
  for file in "${binaries[@]}"; do [[ -x $dest/$file ]] || return 1; done
  for file in "${crds[@]}"; do [[ -s $dest/$file ]] || return 1; done
}

mkdir -p "$cache_root"
# One build at a time: concurrent test runs wait for the first one's build instead of repeating it.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$cache_root/.lock"
  if ! flock -n 9; then
    log "another build is running; waiting for it"
    flock 9
  fi
fi

if complete; then
  log "cached: $dest"
  printf '%s\n' "$dest"
  exit 0
fi

go_bin="$(command -v go || true)"
[[ -n $go_bin ]] || { [[ -x /usr/local/go/bin/go ]] && go_bin=/usr/local/go/bin/go; } || die "the go command is not on PATH (nor in /usr/local/go/bin)"

jobs="${CONTROL_PLANE_BUILD_JOBS:-$(nproc 2>/dev/null || echo 2)}"
nice_cmd=()
command -v nice >/dev/null 2>&1 && nice_cmd=(nice -n 10)

# Version stamps as Kubernetes' own build sets them (hack/lib/version.sh), so that `kubectl version`
# and the servers' /version report the release.
# The build date is the release's (its module's time), so that a rebuild links the same binaries.
minor="${k8s_version#v1.}"
minor="${minor%%.*}"
release_date="$(cd "$here" && GOFLAGS='' "$go_bin" list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes)"
version_flags=""
for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
  version_flags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  version_flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$release_date"
done

staging="$(mktemp -d "$cache_root/.build.XXXXXX")"
trap 'rm -rf "$staging"' EXIT

build_flags=(-trimpath -buildvcs=false -mod=readonly -p "$jobs")
start=$SECONDS
log "building Kubernetes $k8s_version (kube-apiserver, kube-controller-manager, kubectl) and etcd $etcd_version"
log "with $jobs parallel jobs; the first build takes long (tens of minutes on 2 cores)"
(
  cd "$here"
  GOFLAGS='' "${nice_cmd[@]}" "$go_bin" build "${build_flags[@]}" -ldflags "-s -w$version_flags" -o "$staging/" \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kubectl \
    ./cmd/etcd
)
log "generating KubeVirt $kubevirt_version's CRDs"
(
  cd "$here/kubevirt-crd"
  GOFLAGS='' "${nice_cmd[@]}" "$go_bin" build "${build_flags[@]}" -ldflags "-s -w" -o "$staging/kubevirt-crd" .
)
"$staging/kubevirt-crd" "$staging"
rm -f "$staging/kubevirt-crd"

reported="$("$staging/kubectl" version --client 2>&1 || true)"
[[ $reported == *"Client Version: $k8s_version"* ]] || die "the built kubectl does not report $k8s_version: $reported"

mkdir -p "$dest"
rm -f "$dest/.built-from"
for file in "${binaries[@]}" "${crds[@]}"; do
  mv -f "$staging/$file" "$dest/$file"
done
printf '%s\n' "$inputs_hash" >"$dest/.built-from"
log "built in $((SECONDS - start)) s: $dest ($(du -sh "$dest" | cut -f1))"
printf '%s\n' "$dest"
