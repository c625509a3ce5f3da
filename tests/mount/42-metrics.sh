#!/bin/bash
# /.gitkv/metrics is Prometheus text: a scenario on two syncing nodes (reads,
# writes, a conflict, a replayed change, an expiry) and then every line of
# both nodes' metrics is parsed by a strict reader of the exposition format,
# and the counters are checked against what the scenario did.
. "$(dirname "$0")/../lib.sh"
skip_unless_fuse

hub=$T/hub.git
git init -q --bare "$hub"
"$GITKV" init "$T/a.git"
"$GITKV" init "$T/b.git"
A=$T/a
B=$T/b
# rounds only when asked (SIGUSR1), so the conflict below is a real one
start_daemon "$T/a.git" "$A" node=a remote=hub=$hub sync_interval=3600
start_daemon "$T/b.git" "$B" node=b remote=hub=$hub sync_interval=3600

metric() { # metric MNT NAME[{LABELS}] - the sample's value
	awk -v n="$2" '$1 == n { print $2 }' "$1/.gitkv/metrics"
}
rounds() { metric "$1" gitkv_sync_rounds_total; }
# sync MNT - one round, now
sync_now() {
	local before
	before=$(rounds "$1")
	kill -USR1 "$(daemon_pid "$1")"
	wait_until 20 rounds_above "$1" "$before" || fail "no sync round on $1"
}
rounds_above() { (($(rounds "$1") > $2)); }
metric_is() { [[ "$(metric "$1" "$2")" == "$3" ]]; }

for i in 1 2 3 4 5; do echo "value $i" >"$A/k$i"; done
cat "$A/k1" "$A/k2" >/dev/null
echo a-side >"$A/shared"
echo b-side >"$B/shared"
sync_now "$A"
sync_now "$B" # b merges a's history: `shared` changed on both sides
sync_now "$A"
wait_until 20 test -f "$B/k5" || fail "k5 did not reach b"
assert_eq "$(cat "$A/shared")" "$(cat "$B/shared")" "both nodes agree on the conflicted key"

echo v >"$A/lease"
setfattr -n user.gitkv.ttl -v 1 "$A/lease"
wait_until 10 grep -q '^gitkv_keys_expired_total [1-9]' "$A/.gitkv/metrics" ||
	fail "no expiry counted: $(grep expired "$A/.gitkv/metrics")"

# ---- the format --------------------------------------------------------------------
for m in "$A" "$B"; do
	cp "$m/.gitkv/metrics" "$T/metrics.${m##*/}"
	"$PYTHON" - "$T/metrics.${m##*/}" <<'EOF' || fail "$m/.gitkv/metrics is not valid Prometheus text"
import math, re, sys

name_re = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*$')
sample_re = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
label_re = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\["\\n])*)"(,|$)')
types, helps, samples = {}, {}, []
def die(msg, line):
    sys.exit("%s: %r" % (msg, line))
for line in open(sys.argv[1], encoding="utf-8").read().split("\n")[:-1]:
    if line.startswith("# HELP "):
        name, text = line[7:].split(" ", 1)
        if not name_re.match(name) or not text or name in helps: die("bad HELP", line)
        helps[name] = text
    elif line.startswith("# TYPE "):
        name, typ = line[7:].split(" ")
        if typ not in ("counter", "gauge", "histogram") or name in types: die("bad TYPE", line)
        if name not in helps: die("TYPE before HELP", line)
        types[name] = typ
    elif line.startswith("#") or not line:
        die("stray line", line)
    else:
        m = sample_re.match(line)
        if not m: die("bad sample", line)
        name, labels, value = m.group(1), m.group(3) or "", m.group(4)
        pos, lab = 0, {}
        while pos < len(labels):
            lm = label_re.match(labels, pos)
            if not lm: die("bad labels", line)
            lab[lm.group(1)] = lm.group(2)
            pos = lm.end()
        v = float(value)
        if math.isnan(v): die("NaN", line)
        base = re.sub(r'_(bucket|sum|count)$', '', name)
        fam = name if name in types else base
        if fam not in types: die("sample without TYPE", line)
        if types[fam] == "counter" and (not name.endswith("_total") or v < 0): die("bad counter", line)
        if types[fam] == "histogram" and name == fam: die("bare histogram sample", line)
        samples.append((name, lab, v))
for fam, typ in types.items():
    if typ != "histogram": continue
    buckets = [(s[1]["le"], s[2]) for s in samples if s[0] == fam + "_bucket"]
    if not buckets or buckets[-1][0] != "+Inf": die("histogram without +Inf", fam)
    counts = [c for _, c in buckets]
    if counts != sorted(counts): die("buckets not cumulative", fam)
    count = [s[2] for s in samples if s[0] == fam + "_count"]
    if count != [counts[-1]]: die("_count is not the +Inf bucket", fam)
print("%d families, %d samples" % (len(types), len(samples)))
EOF
done
ok "every line of both nodes' metrics parses as Prometheus text"

# ---- the figures ------------------------------------------------------------------------
(($(metric "$A" gitkv_writes_total) >= 7)) || fail "a: writes_total below the 7 writes made"
(($(metric "$A" gitkv_commits_total) >= 8)) || fail "a: commits_total below the commits made"
(($(metric "$A" gitkv_reads_total) >= 2)) || fail "a: reads_total below the reads made"
(($(metric "$A" gitkv_commit_latency_seconds_count) >= 7)) || fail "a: latency count too low"
assert_eq 1 "$(metric "$B" gitkv_conflicts_resolved_total)" "b resolved one conflict"
(($(metric "$B" gitkv_replay_steps_total) >= 5)) || fail "b: replay steps below the keys it received: $(grep replay "$B/.gitkv/metrics")"
(($(metric "$B" gitkv_cache_invalidations_total) >= 0)) || fail "b: invalidations missing"
assert_eq 1 "$(metric "$A" 'gitkv_remote_up{remote="hub"}')" "a: the hub is up"
assert_eq 0 "$(metric "$A" 'gitkv_remote_consecutive_failures{remote="hub"}')" "a: no failures"
(($(metric "$A" gitkv_keys_expired_total) == 1)) || fail "a: one key expired"
ok "the counters match the scenario (writes, commits, reads, conflict, replay, expiry, remote)"

# a remote that fails shows up
mv "$hub" "$hub.away"
kill -USR1 "$(daemon_pid "$A")"
wait_until 20 metric_is "$A" 'gitkv_remote_up{remote="hub"}' 0 || fail "a: hub still up"
(($(metric "$A" gitkv_sync_failures_total) >= 1)) || fail "a: failure not counted"
mv "$hub.away" "$hub"
ok "a failing remote is reported (remote_up 0, failures counted)"
h=$(head_of "$T/a.git")
cat "$A/.gitkv/metrics" >/dev/null
assert_eq "$h" "$(head_of "$T/a.git")" "reading metrics commits nothing"
assert_errno EROFS write "$A/.gitkv/metrics" x
stop_daemon "$A"
stop_daemon "$B"
