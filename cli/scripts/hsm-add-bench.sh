#!/bin/bash
# docs/benchmarks.md, "hsm add from a backup". Measures `hsm add` on a 1-HSM cluster holding N keys: with the newest backup (restore, then the later entries) and without one (the whole log). Usage: cli/scripts/hsm-add-bench.sh N (needs bc; the local cluster it starts lives in /tmp/hadd-N)
set -e
HERE=$(cd "$(dirname "$0")" && pwd)
N=$1
H=/tmp/hadd-$N; S=/tmp/hadd-$N-s
cd "$HERE/../.."
. "$HERE/bench-lib.sh"
# No scheduled backups: the measurement decides which backup exists; no log compaction: the whole log stays
# for the measurement without the backup (HOME/agent.properties reaches every agent's node.properties).
AGENT_PROPERTIES='backup.interval=off\nraft.compaction.entries=off\n'
bench_cluster_up
java -cp cli/target/hsmbridge.jar "$HERE/MakeKeys.java" $H $S/alice.session $N
HSMBRIDGE_SESSION_FILE=$S/admin.session ./hsmbridge --home $H backup create | grep -E '"(backupId|appliedIndex|sizeBytes)"'
# A few entries after the backup, as a live cluster has.
java -cp cli/target/hsmbridge.jar "$HERE/MakeKeys.java" $H $S/alice.session 10
s=$(date +%s.%N); ./hsmbridge --home $H hsm add | tail -1; e=$(date +%s.%N)
echo "hsm add WITH backup ($N keys): $(echo "$e - $s" | bc) s"; grep -h "restored backup\|could not restore\|no backup" $H/hsm2/node.log | sed 's/^.*AgentNode: //'
mkdir -p $H/backups-aside; mv $H/backups/*.hbk $H/backups-aside/ 2>/dev/null || true
s=$(date +%s.%N); ./hsmbridge --home $H hsm add | tail -1; e=$(date +%s.%N)
echo "hsm add WITHOUT backup ($N keys, whole log): $(echo "$e - $s" | bc) s"; grep -h "restored backup\|could not restore\|no backup" $H/hsm3/node.log | sed 's/^.*AgentNode: //'
./hsmbridge --home $H down >/dev/null
