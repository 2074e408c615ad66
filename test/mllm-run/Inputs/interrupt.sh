#!/bin/sh
# interrupt.sh SIGNAL DIR PREFIX COMMAND...: runs COMMAND in the background
# (PREFIX.out, PREFIX.err), waits until the checkpoint directory DIR holds
# one more checkpoint than before, or with DIR "-" until PREFIX.out is not
# empty (so that the training loop runs), sends SIGNAL once, and writes
# "exit N" to PREFIX.status. Gives up waiting after about 60 s.
sig=$1 dir=$2 prefix=$3
shift 3
count() {
  n=0
  for f in "$dir"/step-*; do
    [ -e "$f" ] && n=$((n + 1))
  done
  echo "$n"
}
before=$(count)
"$@" > "$prefix.out" 2> "$prefix.err" &
pid=$!
tries=0
waiting() {
  if [ "$dir" = - ]; then
    [ ! -s "$prefix.out" ]
  else
    [ "$(count)" -le "$before" ]
  fi
}
while waiting && [ "$tries" -lt 1200 ]; do
  tries=$((tries + 1))
  sleep 0.05
done
kill -"$sig" "$pid"
wait "$pid"
echo "exit $?" > "$prefix.status"
