#!/usr/bin/env bash
# Builds the Kubernetes tools the chart tests run against, from the Go module proxy, once per version:
#   kube-apiserver (k8s.io/kubernetes), kine (etcd API over SQLite), helm (helm.sh/helm/v4).
# Binaries are cached as .cache/k8s/<tool>-<version>; a second run only checks they are there.
# k8s.io/kubernetes replaces its staging modules (k8s.io/api, k8s.io/apiserver, ...) with ./staging
# paths its module zip does not contain: a writable copy requires the published v0.<minor>.<patch>
# versions of those modules instead and drops the replace lines.
set -euo pipefail
cd "$(dirname "$0")/.."

KUBERNETES_VERSION=v1.34.0   # k8s.io/kubernetes; its staging modules are published as v0.34.0
KINE_VERSION=v0.17.5         # github.com/k3s-io/kine
HELM_VERSION=v4.3.2          # helm.sh/helm/v4

OUT=${K8S_TOOLS_DIR:-$PWD/.cache/k8s}
mkdir -p "$OUT"
export GOFLAGS=-buildvcs=false
export CGO_ENABLED=${CGO_ENABLED:-1}

log() { printf '[k8s-tools %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

timed() {  # timed NAME CMD...: runs CMD, logs how long it took
  local name=$1 start=$SECONDS
  shift
  "$@"
  log "$name built in $((SECONDS - start)) s"
}

build_kine() {
  local tmp
  tmp=$(mktemp -d)
  GOBIN=$tmp go install "github.com/k3s-io/kine@$KINE_VERSION"
  mv "$tmp/kine" "$OUT/kine-$KINE_VERSION"
  rm -rf "$tmp"
}

build_helm() {
  local tmp
  tmp=$(mktemp -d)
  GOBIN=$tmp CGO_ENABLED=0 go install "helm.sh/helm/v4/cmd/helm@$HELM_VERSION"
  mv "$tmp/helm" "$OUT/helm-$HELM_VERSION"
  rm -rf "$tmp"
}

build_kube_apiserver() {
  local src tmp staging
  staging=v0.${KUBERNETES_VERSION#v1.}
  src=$(cd /tmp && go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  tmp=$(mktemp -d)
  cp -r "$src/." "$tmp/"
  chmod -R u+w "$tmp"
  rm -f "$tmp/go.work" "$tmp/go.work.sum"
  # k8s.io/<staging> v0.0.0 -> the published version; drop `k8s.io/<x> => ./staging/...` replaces.
  sed -i -E \
    -e "s#^(\s*k8s\.io/[A-Za-z0-9._/-]+) v0\.0\.0\$#\1 $staging#" \
    -e "s#^(\s*k8s\.io/[A-Za-z0-9._/-]+) v0\.0\.0 // indirect\$#\1 $staging // indirect#" \
    -e '/=> \.\/staging\//d' \
    "$tmp/go.mod"
  (cd "$tmp" && GOFLAGS="-mod=mod -buildvcs=false" go build -o "$OUT/kube-apiserver-$KUBERNETES_VERSION.tmp" ./cmd/kube-apiserver)
  mv "$OUT/kube-apiserver-$KUBERNETES_VERSION.tmp" "$OUT/kube-apiserver-$KUBERNETES_VERSION"
  rm -rf "$tmp"
}

[ -x "$OUT/helm-$HELM_VERSION" ] || timed "helm $HELM_VERSION" build_helm
[ -x "$OUT/kine-$KINE_VERSION" ] || timed "kine $KINE_VERSION" build_kine
[ -x "$OUT/kube-apiserver-$KUBERNETES_VERSION" ] ||
  timed "kube-apiserver $KUBERNETES_VERSION" build_kube_apiserver

# Stable names the tests look up (tests/k8s/tools.py), pointing at the pinned versions.
ln -sfn "helm-$HELM_VERSION" "$OUT/helm"
ln -sfn "kine-$KINE_VERSION" "$OUT/kine"
ln -sfn "kube-apiserver-$KUBERNETES_VERSION" "$OUT/kube-apiserver"
log "ready in $OUT: $(cd "$OUT" && ls -1 helm kine kube-apiserver | tr '\n' ' ')"
