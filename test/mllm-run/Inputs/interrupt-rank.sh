#!/bin/sh
# interrupt-rank.sh SIGNAL RANK PREFIX COMMAND...: runs COMMAND, an mpirun
# on this node, in the background (PREFIX.out, PREFIX.err), waits until
# PREFIX.out is not empty (so that the ranks train), sends SIGNAL once to
# the process of rank RANK alone (mpirun's child whose OMPI_COMM_WORLD_RANK
# is RANK), and writes "exit N" to PREFIX.status; fails, stopping the job,
# when no such process is found. Gives up waiting after about 60 s. Linux:
# it reads /proc.
sig=$1 rank=$2 prefix=$3
shift 3
"$@" > "$prefix.out" 2> "$prefix.err" &
pid=$!
tries=0
while [ ! -s "$prefix.out" ] && [ "$tries" -lt 1200 ]; do
  tries=$((tries + 1))
  sleep 0.05
done
hit=0
for status in /proc/[0-9]*/status; do
  dir=${status%/status}
  if grep -q "^PPid:[[:space:]]*$pid\$" "$status" 2>/dev/null &&
     tr '\0' '\n' < "$dir/environ" 2>/dev/null |
       grep -qx "OMPI_COMM_WORLD_RANK=$rank"; then
    kill -"$sig" "${dir#/proc/}"
    hit=1
  fi
done
# No rank found (another launcher's process tree): end the job rather
# than let it run its steps out, and fail.
if [ "$hit" = 0 ]; then
  kill -TERM "$pid"
  wait "$pid"
  echo "interrupt-rank.sh: no process of rank $rank under $pid" >&2
  exit 1
fi
wait "$pid"
echo "exit $?" > "$prefix.status"
