#!/usr/bin/env bash
# Builds registry-free base images from this machine's own Node.js installation, for CI
# machines that reach no image registry (the Dockerfile's BASE / BUILD_BASE build args):
#   runtime  only the node binary, its shared libraries, CA-free /etc basics: a distroless-like
#            stand-in for node:24-bookworm-slim at run time (no shell, no npm).
#   build    runtime + npm + /bin/sh and the few coreutils that `npm ci` / `npm run build` call
#            (npm runs every script through sh; tsc's bin starts with `#!/usr/bin/env node`).
# Node lives where the official images put it (/usr/local/bin/node), so the Dockerfile works
# unchanged with either base.
#   make-node-image.sh runtime|build TAG
set -euo pipefail
KIND="${1:?usage: make-node-image.sh runtime|build TAG}"
TAG="${2:?usage: make-node-image.sh runtime|build TAG}"
case "$KIND" in runtime | build) ;; *) echo "unknown kind $KIND (runtime|build)" >&2; exit 2 ;; esac

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
ROOT="$WORK/rootfs"
EXTRA_ENV=()
mkdir -p "$ROOT"/{usr/local/bin,usr/bin,bin,tmp,etc,root,lib64}

# Copies a program and every shared library it links against (resolved paths) into ROOT.
add_binary() {
  local src="$1" dest="$2"
  mkdir -p "$ROOT$(dirname "$dest")"
  cp -L "$src" "$ROOT$dest"
  local lib
  for lib in $(ldd "$src" | awk '/=>/ {print $3} /ld-linux/ {print $1}'); do
    [ -f "$lib" ] || continue
    mkdir -p "$ROOT$(dirname "$lib")"
    cp -L "$lib" "$ROOT$(dirname "$lib")/"
  done
}

NODE="$(readlink -f "$(command -v node)")"
add_binary "$NODE" /usr/local/bin/node
cp -L /lib64/ld-linux-x86-64.so.2 "$ROOT/lib64/"
chmod 1777 "$ROOT/tmp"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$ROOT/etc/passwd"
printf 'root:x:0:\n' >"$ROOT/etc/group"
printf '127.0.0.1 localhost\n::1 localhost\n' >"$ROOT/etc/hosts"
printf 'hosts: files dns\n' >"$ROOT/etc/nsswitch.conf"

if [ "$KIND" = build ]; then
  NPM_DIR="$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")"
  [ -f "$NPM_DIR/package.json" ] || { echo "cannot find npm's package folder (got $NPM_DIR)" >&2; exit 1; }
  mkdir -p "$ROOT/usr/local/lib/node_modules"
  cp -a "$NPM_DIR" "$ROOT/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$ROOT/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$ROOT/usr/local/bin/npx"
  add_binary "$(readlink -f /bin/sh)" /bin/sh
  for tool in env mkdir cp mv rm ln ls cat dirname basename chmod touch; do
    add_binary "$(readlink -f "$(command -v "$tool")")" "/usr/bin/$tool"
  done
  ln -s /usr/bin/env "$ROOT/bin/env"
  # npm inside the build must trust what this machine trusts (a TLS-inspecting proxy's CA,
  # say): carry the host's bundle, in the build image only, never in the runtime image.
  CA_BUNDLE="${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}"
  if [ -f "$CA_BUNDLE" ]; then
    mkdir -p "$ROOT/etc/ssl/certs"
    cp -L "$CA_BUNDLE" "$ROOT/etc/ssl/certs/ca-certificates.crt"
    EXTRA_ENV=(-c 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt')
  fi
fi

tar -C "$ROOT" -c . | docker import \
  -c 'ENV PATH=/usr/local/bin:/usr/bin:/bin' -c 'ENV HOME=/root' -c 'WORKDIR /' "${EXTRA_ENV[@]}" \
  -c 'CMD ["/usr/local/bin/node"]' - "$TAG" >/dev/null
docker image ls "$TAG" --format '{{.Repository}}:{{.Tag}} {{.Size}}'
