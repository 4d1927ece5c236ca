# Sourced by build.sh and pin.sh: the Go environment for the upstream test cluster.
# Caches live outside the repository, per machine; override RAGBOT_UPSTREAM_CACHE to move them.
: "${RAGBOT_UPSTREAM_CACHE:=$HOME/.cache/ragbot-upstream}"
export RAGBOT_UPSTREAM_CACHE
export GOMODCACHE="$RAGBOT_UPSTREAM_CACHE/gomod"
export GOCACHE="$RAGBOT_UPSTREAM_CACHE/gocache"
# Every module here declares go 1.26.0; the machine's Go 1.26.x satisfies it, so never
# let the go command fetch another toolchain. On an older Go set GOTOOLCHAIN=go1.26.0.
export GOTOOLCHAIN="${RAGBOT_GOTOOLCHAIN:-local}"
export GOFLAGS="-mod=mod -buildvcs=false"
export GOPROXY="${GOPROXY:-https://proxy.golang.org,direct}"
export CGO_ENABLED=0
