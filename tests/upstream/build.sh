#!/usr/bin/env bash
# Build the upstream test cluster's binaries from pinned Go modules (tests/upstream/*/go.mod).
#
#   tests/upstream/build.sh            build if needed; print the bin directory on stdout
#   tests/upstream/build.sh --print    print the bin directory only (no build); exit 1 if not built
#
# Binaries go to $RAGBOT_UPSTREAM_CACHE/bin-<key>, where <key> hashes every go.mod, go.sum and
# Go source file here, this script and `go version`: the same pins on the same machine build once.
# Module and build caches live beside it (env.sh), outside the repository.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/env.sh"

mods="etcd kube kwok velero velero-plugin-for-aws csi-mock-driver external-provisioner external-snapshotter"
key=$(cd "$here" && { go version; cat build.sh env.sh etcd/*.go csi-mock-driver/*.go; \
      for m in $mods; do cat "$m/go.mod" "$m/go.sum"; done; } | sha256sum | cut -c1-16)
bin="$RAGBOT_UPSTREAM_CACHE/bin-$key"

if [ "${1:-}" = "--print" ]; then
  [ -f "$bin/.complete" ] || { echo "not built: $bin" >&2; exit 1; }
  echo "$bin"; exit 0
fi
if [ -f "$bin/.complete" ]; then
  echo "up to date: $bin" >&2
  echo "$bin"; exit 0
fi

go version >&2
tmp="$bin.tmp.$$"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"
build() { nice -n 19 go build -trimpath "$@"; }

# (a) embedded etcd: our tiny main over go.etcd.io/etcd/server/v3/embed.
echo "[$(date +%T)] building etcd ..." >&2
(cd "$here/etcd" && build -ldflags "-s -w" -o "$tmp/etcd" .)

# (b) Kubernetes: every `tool` of kube/go.mod in one go build, so they share the build cache.
kver=$(cd "$here/kube" && go list -m -f '{{.Version}}' k8s.io/kubernetes)
minor=${kver#v1.}; minor=${minor%%.*}
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$kver -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
echo "[$(date +%T)] building Kubernetes $kver: $(cd "$here/kube" && go list tool | tr '\n' ' ')..." >&2
(cd "$here/kube" && build -ldflags "$ldflags" -o "$tmp/" tool)

# (c) kwok: fake nodes and pod lifecycle without a kubelet (stages from its module, see cluster.py).
kwokver=$(cd "$here/kwok" && go list -m -f '{{.Version}}' sigs.k8s.io/kwok)
echo "[$(date +%T)] building kwok $kwokver ..." >&2
(cd "$here/kwok" && build -ldflags "-s -w" -o "$tmp/" tool)

# The Stages kwok runs with (its "fast" node and pod stages), from the module kwok was built from.
kdir=$(cd "$here/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
mkdir -p "$tmp/kwok-stages"
for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
         pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
  install -m 644 "$kdir/kustomize/stage/$f" "$tmp/kwok-stages/"
done

# (d) Velero server (kopia replace carried in velero/go.mod), version stamped as hack/build.sh does.
# controller-runtime's manager inside Velero v1.16 serves metrics on :8080 with no flag to
# move it; its default is a string variable, set to "0" (off) here so two clusters, or
# anything else on :8080, do not clash. Velero's own metrics use --metrics-address.
vver=$(cd "$here/velero" && go list -m -f '{{.Version}}' github.com/vmware-tanzu/velero)
echo "[$(date +%T)] building velero $vver ..." >&2
(cd "$here/velero" && build -ldflags "-s -w -X github.com/vmware-tanzu/velero/pkg/buildinfo.Version=$vver \
   -X github.com/vmware-tanzu/velero/pkg/buildinfo.GitTreeState=clean \
   -X sigs.k8s.io/controller-runtime/pkg/metrics/server.DefaultBindAddress=0" -o "$tmp/" tool)

# (e) the AWS object-store plugin, alone in plugins/: velero runs every executable under
# --plugin-dir as a plugin.
mkdir -p "$tmp/plugins"
echo "[$(date +%T)] building velero-plugin-for-aws ..." >&2
(cd "$here/velero-plugin-for-aws" && build -ldflags "-s -w" -o "$tmp/plugins/" tool)

# (f) CSI: Kubernetes' e2e CSI mock driver (our main.go over k8s.io/kubernetes v1.36.3's
# test/e2e/storage/drivers/csi-test; the proxy refuses csi-driver-host-path), then the
# sidecars and the snapshot controller, version stamped as their Makefiles do (main.version).
echo "[$(date +%T)] building csi-mock-driver ..." >&2
(cd "$here/csi-mock-driver" && build -ldflags "-s -w" -o "$tmp/csi-mock-driver" .)
pver=$(cd "$here/external-provisioner" && go list -m -f '{{.Version}}' github.com/kubernetes-csi/external-provisioner/v6)
echo "[$(date +%T)] building external-provisioner $pver ..." >&2
(cd "$here/external-provisioner" && build -ldflags "-s -w -X main.version=$pver" -o "$tmp/" tool)
sver=$(cd "$here/external-snapshotter" && go list -m -f '{{.Version}}' github.com/kubernetes-csi/external-snapshotter/v8)
echo "[$(date +%T)] building external-snapshotter $sver: csi-snapshotter snapshot-controller ..." >&2
(cd "$here/external-snapshotter" && build -ldflags "-s -w -X main.version=$sver" -o "$tmp/" tool)

echo "[$(date +%T)] done" >&2
touch "$tmp/.complete"
rm -rf "$bin"
mv "$tmp" "$bin"
trap - EXIT
echo "$bin"
