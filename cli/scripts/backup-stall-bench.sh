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
export HSMBRIDGE_NO_BUILD=1
./hsmbridge --home $H down >/dev/null 2>&1 || true
rm -rf $H $S; mkdir -p $S; chmod 700 $S
for u in admin alice; do printf 'password of %s for tests\n' $u > $S/$u.password; chmod 600 $S/$u.password; done
mkdir -p $H
printf 'backup.interval=off\n' > $H/agent.properties
./hsmbridge --home $H up --hsms 1 --port 0 | tail -1
./hsmbridge --home $H cluster activate --password-file $S/admin.password | head -1
HSMBRIDGE_SESSION_FILE=$S/admin.session ./hsmbridge --home $H login --user admin --password-file $S/admin.password
HSMBRIDGE_SESSION_FILE=$S/admin.session ./hsmbridge --home $H user create alice --role CU --password-file $S/alice.password
HSMBRIDGE_SESSION_FILE=$S/alice.session ./hsmbridge --home $H login --user alice --password-file $S/alice.password
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
