#!/bin/bash
# docs/benchmarks.md, "What a backup and a digest cost the cluster's mutations". A 1-HSM cluster (its HSM is the
# Raft leader, the worst case) holding N keys: a creation probe runs for 30 s while `backup create` and then
# `cluster check` (a digest at one applied index) run on that HSM. Usage: cli/scripts/backup-stall-bench.sh N
# (the local cluster it starts lives in /tmp/bstall-N).
set -e
HERE=$(cd "$(dirname "$0")" && pwd)
N=$1
H=/tmp/bstall-$N; S=/tmp/bstall-$N-s
cd "$HERE/../.."
. "$HERE/bench-lib.sh"
AGENT_PROPERTIES='backup.interval=off\n'
bench_cluster_up
java -cp cli/target/hsmbridge.jar "$HERE/MakeKeys.java" $H $S/alice.session $N
echo "--- quiet (no backup, no check)"
java -cp cli/target/hsmbridge.jar "$HERE/CreationProbe.java" $H $S/alice.session 20
echo "--- during backup create"
java -cp cli/target/hsmbridge.jar "$HERE/CreationProbe.java" $H $S/alice.session 30 &
P=$!; sleep 3
s=$(date +%s.%N); HSMBRIDGE_SESSION_FILE=$S/admin.session ./hsmbridge --home $H backup create | grep -E '"(appliedIndex|sizeBytes)"'; e=$(date +%s.%N)
echo "backup create: $(echo "$e - $s" | bc) s"; wait $P
echo "--- during cluster check"
java -cp cli/target/hsmbridge.jar "$HERE/CreationProbe.java" $H $S/alice.session 30 &
P=$!; sleep 3
s=$(date +%s.%N); HSMBRIDGE_SESSION_FILE=$S/admin.session ./hsmbridge --home $H cluster check | tail -1 || true; e=$(date +%s.%N)
echo "cluster check: $(echo "$e - $s" | bc) s"; wait $P
./hsmbridge --home $H down >/dev/null
