#!/usr/bin/env bash
# Build the collectors image and the Kafka image without pulling anything from a public registry.
#   deploy/images.sh            base images from Debian packages (debootstrap), once; then both images
#   BASE_IMAGE=python:3.11-slim KAFKA_BASE_IMAGE=eclipse-temurin:17-jre deploy/images.sh
#                               the same on public bases, where a registry is reachable
# Everything the images install comes from the host: the project and its dependencies as wheels
# (pip wheel), Kafka's jars from the local cache (collectors kafka fetch). The builds download nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
IMAGE=${IMAGE:-collectors:local}
KAFKA_IMAGE=${KAFKA_IMAGE:-collectors-kafka:local}
SUITE=${DEBIAN_SUITE:-bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
WORK=${IMAGES_WORK:-build/images}

say() { printf '==> %s\n' "$*"; }
need() { command -v "$1" >/dev/null || { echo "$1 is needed: $2" >&2; exit 1; }; }
need docker "install Docker (Debian: apt-get install docker.io) and start its daemon"
docker info >/dev/null 2>&1 || { echo "the Docker daemon does not answer: start it (dockerd, or systemctl start docker)" >&2; exit 1; }

# A base image made from Debian packages: debootstrap into a folder, then docker import.
debian_base() {  # tag, comma-separated packages
  local tag=$1 packages=$2 root
  if docker image inspect "$tag" >/dev/null 2>&1; then say "$tag already built"; return; fi
  need debootstrap "apt-get install debootstrap"
  root=$(mktemp -d "${TMPDIR:-/tmp}/collectors-rootfs.XXXXXX")
  say "building $tag from Debian $SUITE packages ($packages); about a minute"
  debootstrap --variant=minbase --include="$packages" "$SUITE" "$root" "$MIRROR" >"$root.log" 2>&1 \
    || { tail -20 "$root.log" >&2; echo "debootstrap failed; its log: $root.log" >&2; exit 1; }
  chroot "$root" apt-get clean
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin
  [ -e "$root/usr/bin/python" ] || { [ -e "$root/usr/bin/python3" ] && ln -s python3 "$root/usr/bin/python"; }
  tar -C "$root" -c . | docker import -c 'ENV LANG=C.UTF-8' - "$tag" >/dev/null
  rm -rf "$root" "$root.log"
}

if [ -z "${BASE_IMAGE:-}" ]; then
  BASE_IMAGE=collectors-base:$SUITE
  debian_base "$BASE_IMAGE" python3,python3-venv,ca-certificates,passwd
fi
if [ -z "${KAFKA_BASE_IMAGE:-}" ]; then
  KAFKA_BASE_IMAGE=collectors-jre:$SUITE
  debian_base "$KAFKA_BASE_IMAGE" openjdk-17-jre-headless,ca-certificates,passwd
fi

say "wheels of the project and its dependencies"
rm -rf "$WORK/collectors" && mkdir -p "$WORK/collectors/wheels"
"$PYTHON" -m pip wheel -q --wheel-dir "$WORK/collectors/wheels" '.[postgres]'
say "image $IMAGE (base $BASE_IMAGE)"
docker build -q -f deploy/Dockerfile --build-arg "BASE_IMAGE=$BASE_IMAGE" -t "$IMAGE" "$WORK/collectors" >/dev/null

say "Kafka's jars"
libs=$("$PYTHON" -c 'from streams.tools.localkafka.broker import LocalKafka; k = LocalKafka(); print(k.fetch())')
rm -rf "$WORK/kafka" && mkdir -p "$WORK/kafka"
cp -r "$libs" "$WORK/kafka/libs" && rm -f "$WORK/kafka/libs/.complete"
cp deploy/kafka/entrypoint.sh "$WORK/kafka/"
say "image $KAFKA_IMAGE (base $KAFKA_BASE_IMAGE)"
docker build -q -f deploy/kafka/Dockerfile --build-arg "BASE_IMAGE=$KAFKA_BASE_IMAGE" -t "$KAFKA_IMAGE" "$WORK/kafka" >/dev/null
docker image prune --force --filter label=collectors.stage=build >/dev/null
say "built $IMAGE and $KAFKA_IMAGE"
