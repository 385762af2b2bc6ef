# shellcheck shell=bash disable=SC2034
# Shared by softhsm-docker/build and softhsm-docker/cluster (sourced, not run; the variables are theirs).

HB_DOCKER_DIR="$(cd -P "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
HB_REPO="$(cd -P "$HB_DOCKER_DIR/.." && pwd)"
HB_BASE_IMAGE="localhost/hsmbridge-base:bookworm"
HB_IMAGE="localhost/hsmbridge:dev"

hb_log() { printf 'hsmbridge-containers: %s\n' "$*" >&2; }
hb_die() { printf 'hsmbridge-containers: error: %s\n' "$*" >&2; exit 1; }

# The container engine: $HSMBRIDGE_ENGINE, else podman when installed, else docker.
hb_engine() {
  if [ -n "${HSMBRIDGE_ENGINE:-}" ]; then
    command -v "$HSMBRIDGE_ENGINE" >/dev/null 2>&1 || hb_die "HSMBRIDGE_ENGINE=$HSMBRIDGE_ENGINE is not installed"
    echo "$HSMBRIDGE_ENGINE"
  elif command -v podman >/dev/null 2>&1; then
    echo podman
  elif command -v docker >/dev/null 2>&1; then
    echo docker
  else
    hb_die "neither podman nor docker is installed (Debian/Ubuntu: apt-get install -y podman runc uidmap slirp4netns)"
  fi
}

# Podman on hosts without systemd, with cgroup v1, or with a hard open-file limit below podman's
# default (1048576) fails to start containers ("setrlimit RLIMIT_NOFILE: Operation not permitted").
# Unless CONTAINERS_CONF is already set (or HSMBRIDGE_CONTAINERS_CONF=none), write a containers.conf
# with runc, cgroupfs and ulimits that fit this host (in ${XDG_CACHE_HOME:-~/.cache}/hsmbridge/) and
# export CONTAINERS_CONF for every podman call.
hb_podman_conf() {
  [ "$1" = podman ] || return 0
  [ -z "${CONTAINERS_CONF:-}" ] || return 0
  [ "${HSMBRIDGE_CONTAINERS_CONF:-}" != none ] || return 0
  local nofile pid1 v2=0
  nofile="$(ulimit -Hn)"
  pid1="$(cat /proc/1/comm 2>/dev/null || true)"
  [ -f /sys/fs/cgroup/cgroup.controllers ] && v2=1
  if [ "$nofile" != unlimited ] && [ "$nofile" -ge 1048576 ] && [ "$pid1" = systemd ] && [ "$v2" = 1 ]; then
    return 0
  fi
  local dir="${XDG_CACHE_HOME:-$HOME/.cache}/hsmbridge"
  [ "$nofile" = unlimited ] && nofile=1048576
  local runtime=runc
  command -v runc >/dev/null 2>&1 || runtime=crun
  mkdir -p "$dir"
  cat >"$dir/containers.conf" <<CONF
# written by hsmbridge softhsm-docker/lib.sh for this host (no systemd / cgroup v1 / low open-file limit)
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=32768:32768"]
[engine]
runtime = "$runtime"
cgroup_manager = "cgroupfs"
events_logger = "file"
exit_command_delay = 5
CONF
  export CONTAINERS_CONF="$dir/containers.conf"
}

hb_image_exists() { # engine image
  "$1" image inspect "$2" >/dev/null 2>&1
}
