#!/usr/bin/env bash
# Builds the Kubernetes tools the chart tests run against, from the Go module proxy, once per version:
#   helm (helm.sh/helm/v4, and v3 as helm3), kine (the etcd API over SQLite), kube-apiserver and kube-controller-manager
#   (k8s.io/kubernetes), and cert-manager's CRDs (from its module zip). Binaries are cached as .cache/k8s/<tool>-<version> with a <tool> link to the
#   pinned one; a second run only checks they are there. First build on 2 busy cores: each helm and
#   kine ~4 min, kube-apiserver + kube-controller-manager ~13 min (measured times go to build-times.log).
# k8s.io/kubernetes replaces its staging modules (k8s.io/api, k8s.io/apiserver, ...) with ./staging
# paths its module zip does not contain: a writable copy requires the published v0.<minor>.<patch>
# versions of those modules instead and drops the replace lines.
set -euo pipefail
cd "$(dirname "$0")/.."

KUBERNETES_VERSION=v1.34.0   # k8s.io/kubernetes; its staging modules are published as v0.34.0
KINE_VERSION=v0.17.5         # github.com/k3s-io/kine
HELM_VERSION=v4.3.2          # helm.sh/helm/v4
HELM3_VERSION=v3.22.0        # helm.sh/helm/v3: the chart is linted and rendered with both majors
CERT_MANAGER_VERSION=v1.16.2 # github.com/cert-manager/cert-manager: its CRDs (no controller), so the
                             # API server validates the chart's Issuers and Certificates

OUT=${K8S_TOOLS_DIR:-$PWD/.cache/k8s}
mkdir -p "$OUT"
export GOFLAGS=-buildvcs=false

log() { printf '[k8s-tools %(%H:%M:%S)T] %s\n' -1 "$*" | tee -a "$OUT/build-times.log" >&2; }

command -v go >/dev/null || {
  echo "k8s-tools: Go is not installed (https://go.dev/dl/, 1.24 or newer): the chart tests need it" >&2
  exit 1
}

# built NAME VERSION BUILD_FUNCTION: runs the build unless NAME-VERSION exists, logs its duration,
# and points NAME at NAME-VERSION.
built() {
  local name=$1 version=$2 build=$3 start=$SECONDS
  if [ ! -x "$OUT/$name-$version" ]; then
    "$build"
    log "$name $version built in $((SECONDS - start)) s"
  fi
  ln -sfn "$name-$version" "$OUT/$name"
}

build_helm() {
  local tmp
  tmp=$(mktemp -d)
  GOBIN=$tmp CGO_ENABLED=0 go install "helm.sh/helm/v4/cmd/helm@$HELM_VERSION"
  mv "$tmp/helm" "$OUT/helm-$HELM_VERSION"
  rm -rf "$tmp"
}

build_helm3() {
  local tmp
  tmp=$(mktemp -d)
  GOBIN=$tmp CGO_ENABLED=0 go install "helm.sh/helm/v3/cmd/helm@$HELM3_VERSION"
  mv "$tmp/helm" "$OUT/helm3-$HELM3_VERSION"
  rm -rf "$tmp"
}

build_kine() {  # cgo: kine's SQLite driver
  local tmp
  tmp=$(mktemp -d)
  GOBIN=$tmp CGO_ENABLED=1 go install "github.com/k3s-io/kine@$KINE_VERSION"
  mv "$tmp/kine" "$OUT/kine-$KINE_VERSION"
  rm -rf "$tmp"
}

build_kubernetes() {  # both binaries from one writable copy of the module
  local src tmp staging
  staging=v0.${KUBERNETES_VERSION#v1.}
  src=$(cd /tmp && go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  tmp=$(mktemp -d)
  cp -r "$src/." "$tmp/"
  chmod -R u+w "$tmp"
  rm -f "$tmp/go.work" "$tmp/go.work.sum"
  # k8s.io/<staging> v0.0.0 -> the published version; drop the `k8s.io/<x> => ./staging/...` replaces.
  sed -i -E \
    -e "s#^(\s*k8s\.io/[A-Za-z0-9._/-]+) v0\.0\.0\$#\1 $staging#" \
    -e "s#^(\s*k8s\.io/[A-Za-z0-9._/-]+) v0\.0\.0 // indirect\$#\1 $staging // indirect#" \
    -e '/=> \.\/staging\//d' \
    "$tmp/go.mod"
  mkdir -p "$tmp/bin"
  # The version the server reports (/version; helm checks a chart's kubeVersion against it), which a
  # build outside the git tree cannot find by itself.
  local minor=${KUBERNETES_VERSION#v1.}
  minor=${minor%%.*}
  local pkg=k8s.io/component-base/version
  local ldflags="-X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean"
  (cd "$tmp" && GOFLAGS="-mod=mod -buildvcs=false" \
    go build -trimpath -ldflags "$ldflags" -o bin/ ./cmd/kube-apiserver ./cmd/kube-controller-manager)
  mv "$tmp/bin/kube-apiserver" "$OUT/kube-apiserver-$KUBERNETES_VERSION"
  mv "$tmp/bin/kube-controller-manager" "$OUT/kube-controller-manager-$KUBERNETES_VERSION"
  rm -rf "$tmp"
}

fetch_cert_manager_crds() {  # the CRD files of the module zip, as published (Helm comments included)
  local src tmp
  src=$(cd /tmp && go mod download -json "github.com/cert-manager/cert-manager@$CERT_MANAGER_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  tmp=$(mktemp -d)
  for kind in certificates issuers clusterissuers; do
    cp "$src/deploy/crds/crd-$kind.yaml" "$tmp/"
  done
  chmod -R u+w "$tmp"
  mv "$tmp" "$OUT/cert-manager-crds-$CERT_MANAGER_VERSION"
}

built helm "$HELM_VERSION" build_helm
built cert-manager-crds "$CERT_MANAGER_VERSION" fetch_cert_manager_crds
built helm3 "$HELM3_VERSION" build_helm3
built kine "$KINE_VERSION" build_kine
if [ ! -x "$OUT/kube-controller-manager-$KUBERNETES_VERSION" ]; then
  rm -f "$OUT/kube-apiserver-$KUBERNETES_VERSION"  # built together
fi
built kube-apiserver "$KUBERNETES_VERSION" build_kubernetes
ln -sfn "kube-controller-manager-$KUBERNETES_VERSION" "$OUT/kube-controller-manager"
log "ready in $OUT: helm $HELM_VERSION and $HELM3_VERSION, kine $KINE_VERSION, kube-apiserver and kube-controller-manager $KUBERNETES_VERSION, cert-manager CRDs $CERT_MANAGER_VERSION"
