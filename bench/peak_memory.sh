#!/bin/bash
# Runs a command and prints its wall time and peak memory, split the way it matters for streaming:
# anonymous memory (heap, tensors: what the process really holds) and file-backed pages (mapped pool
# shards and weights: page cache the kernel reclaims under pressure). getrusage/`time`'s max RSS
# adds the two, so a run that streams a 8 GB mapped pool looks like it holds 8 GB.
#   bench/peak_memory.sh omnibind train --pools ... > result.json   (the command's stdout goes to stderr)
# Prints one JSON line. Sampled every 0.2 s from /proc/PID/status (peaks shorter than that are missed;
# the kernel's own VmHWM, which is exact, is reported too).
set -u
start=$(date +%s.%N)
"$@" 1>&2 &
pid=$!
max_anon=0; max_file=0; hwm=0
while kill -0 "$pid" 2>/dev/null; do
  if [ -r /proc/$pid/status ]; then
    read -r anon file h < <(awk '/^RssAnon:/{a=$2} /^RssFile:/{f=$2} /^VmHWM:/{h=$2} END{print a+0, f+0, h+0}' /proc/$pid/status 2>/dev/null)
    [ "${anon:-0}" -gt "$max_anon" ] && max_anon=$anon
    [ "${file:-0}" -gt "$max_file" ] && max_file=$file
    [ "${h:-0}" -gt "$hwm" ] && hwm=$h
  fi
  sleep 0.2
done
wait "$pid"; rc=$?
end=$(date +%s.%N)
printf '{"exit_code": %d, "wall_s": %.1f, "peak_anon_mb": %d, "peak_file_mb": %d, "vm_hwm_mb": %d, "command": "%s"}\n' \
  "$rc" "$(echo "$end - $start" | bc)" $((max_anon / 1024)) $((max_file / 1024)) $((hwm / 1024)) "$*"
exit $rc
