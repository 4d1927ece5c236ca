# Sourced by build.sh and pin.sh: the Go environment for the upstream test cluster.
# Caches live outside the repository, per machine; override RAGBOT_UPSTREAM_CACHE to move them.
: "${RAGBOT_UPSTREAM_CACHE:=$HOME/.cache/ragbot-upstream}"
export RAGBOT_UPSTREAM_CACHE
export GOMODCACHE="$RAGBOT_UPSTREAM_CACHE/gomod"
export GOCACHE="$RAGBOT_UPSTREAM_CACHE/gocache"
# The modules here declare at most go 1.26.0. `auto` runs the machine's Go when it is at
# least what a module's go line asks for (go1.26.8 here: nothing is fetched) and otherwise
# fetches exactly that version (golang.org/toolchain through the module proxy, which
# serves it), so an older Go on a new machine still builds. RAGBOT_GOTOOLCHAIN=local
# forbids any fetch.
export GOTOOLCHAIN="${RAGBOT_GOTOOLCHAIN:-auto}"
export GOFLAGS="-mod=mod -buildvcs=false"
export GOPROXY="${GOPROXY:-https://proxy.golang.org,direct}"
export CGO_ENABLED=0
