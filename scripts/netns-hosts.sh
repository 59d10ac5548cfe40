#!/usr/bin/env bash
# Simulated hosts on one machine, for runs with many generators: a server network namespace
# and N generator namespaces, joined by veth pairs to one bridge that lives in the server
# namespace (so nothing is added to the machine's own network).
#
#   scripts/netns-hosts.sh create N [PREFIX]   PREFIX-srv: the bridge, 10.77.0.1/24
#                                              PREFIX-gen0 .. PREFIX-gen<N-1>: 10.77.0.10 + i
#   scripts/netns-hosts.sh destroy [PREFIX]    deletes them (and with them their links)
#
# PREFIX defaults to echolab-hosts. Different prefixes may coexist: each set is isolated, so
# they can all use the same addresses. Then, for example:
#   ip netns exec echolab-hosts-srv echolab-server --engine epoll --listen 10.77.0.1:7007 &
#   mpirun -np 4 echolab-loadgen-mpi --netns echolab-hosts-gen%r --target 10.77.0.1:7007 ...
# Needs root (ip netns).
set -euo pipefail

readonly kMaxGenerators=200  # 10.77.0.10 .. 10.77.0.209

usage() {
  echo "usage: $0 create N [PREFIX] | destroy [PREFIX]" >&2
  exit 2
}

valid_prefix() {
  # ip netns names become files in /run/netns; interface names stay short (eth0, hN).
  [[ "$1" =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,40}$ ]] || {
    echo "netns-hosts: bad PREFIX '$1': letters, digits, '.', '_' and '-' only, at most 41" >&2
    exit 2
  }
}

destroy() {
  local prefix=$1 name
  for name in $(ip netns list | awk '{print $1}'); do
    if [[ "$name" == "$prefix-srv" || "$name" =~ ^"$prefix"-gen[0-9]+$ ]]; then
      ip netns delete "$name"
    fi
  done
}

create() {
  local count=$1 prefix=$2 server="$2-srv" i generator
  if ! [[ "$count" =~ ^[0-9]+$ ]] || ((count < 1 || count > kMaxGenerators)); then
    echo "netns-hosts: bad N '$count': from 1 to $kMaxGenerators generator namespaces" >&2
    exit 2
  fi
  if ip netns list | awk '{print $1}' | grep -qx -- "$server"; then
    echo "netns-hosts: $server exists already: '$0 destroy $prefix' first" >&2
    exit 1
  fi
  # Half-made namespaces are removed on any failure.
  trap 'destroy "$prefix"' ERR
  ip netns add "$server"
  ip -n "$server" link set lo up
  ip -n "$server" link add br0 type bridge
  ip -n "$server" addr add 10.77.0.1/24 dev br0
  ip -n "$server" link set br0 up
  for ((i = 0; i < count; i++)); do
    generator="$prefix-gen$i"
    ip netns add "$generator"
    ip -n "$generator" link set lo up
    # Both ends are made inside their namespaces: no name is ever taken in the machine's own.
    ip -n "$generator" link add eth0 type veth peer name "h$i" netns "$server"
    ip -n "$generator" addr add "10.77.0.$((10 + i))/24" dev eth0
    ip -n "$generator" link set eth0 up
    ip -n "$server" link set "h$i" master br0
    ip -n "$server" link set "h$i" up
  done
  trap - ERR
  echo "netns-hosts: $server (10.77.0.1) and $prefix-gen0..$((count - 1)) (10.77.0.10..$((9 + count)))"
}

[[ $# -ge 1 ]] || usage
case "$1" in
  create)
    [[ $# -ge 2 && $# -le 3 ]] || usage
    prefix=${3:-echolab-hosts}
    valid_prefix "$prefix"
    create "$2" "$prefix"
    ;;
  destroy)
    [[ $# -le 2 ]] || usage
    prefix=${2:-echolab-hosts}
    valid_prefix "$prefix"
    destroy "$prefix"
    ;;
  *) usage ;;
esac
