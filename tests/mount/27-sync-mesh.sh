#!/bin/bash
# Sync across hosts, mesh topology: three nodes A, B and C, each with its own
# bare store, each listing the other two stores as its remotes. All three
# write at once - keys of their own, keys every node writes, deletes and a
# rename - while B is killed with SIGKILL and restarted on the same store,
# and while the links A->C and B->C (C's store served by `git daemon`) are
# down for a while. Once the writers are done and the nodes have synced,
# the three stores hold the same tree, every acknowledged write is in the
# history of every store, each node's own keys hold what it last wrote, a
# key every node wrote holds the newest of the writes that no other write
# followed (the merge rule), every mount reads the final tree, and git fsck
# --strict accepts every store.
. "$(dirname "$0")/../lib.sh"
skip_unless_fuse
[[ -x $(git --exec-path)/git-daemon ]] || fail "git daemon is not installed"

# Under AddressSanitizer: libgit2 1.5 leaks a little inside
# git_remote_connect_ext on pushes over git:// too (tests/lsan.supp); its
# suppression needs whole stacks.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}fast_unwind_on_malloc=0

NODES=(a b c)
S=$T/stores # the bare stores; git daemon serves this directory
mkdir "$S"
for n in "${NODES[@]}"; do
	"$GITKV" init "$S/$n.git"
done

# Processes this test starts besides the daemons, killed by pid on the way out.
declare -a HELPERS=()
GIT_DAEMON=
trap 'rc=$?; for p in "${HELPERS[@]}" $GIT_DAEMON; do kill "$p" 2>/dev/null || true; done; _cleanup $rc' EXIT

port=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
C_URL=git://127.0.0.1:$port/c.git
start_git_daemon() {
	git daemon --export-all --enable=receive-pack --base-path="$S" --listen=127.0.0.1 \
		--port="$port" --reuseaddr "$S" >>"$T/git-daemon.log" 2>&1 &
	GIT_DAEMON=$!
	wait_until 10 git ls-remote "$C_URL" ||
		fail "git daemon did not start on port $port: $(cat "$T/git-daemon.log")"
}
stop_git_daemon() {
	kill "$GIT_DAEMON"
	wait "$GIT_DAEMON" 2>/dev/null || true
	GIT_DAEMON=
}

# start_node N - mount node N's store at $T/N, the two other stores its
# remotes: A and B reach C through git://, every other link is a path.
start_node() {
	local -a remotes
	case $1 in
	a) remotes=("remote=b=$S/b.git" "remote=c=$C_URL") ;;
	b) remotes=("remote=a=$S/a.git" "remote=c=$C_URL") ;;
	c) remotes=("remote=a=$S/a.git" "remote=b=$S/b.git") ;;
	esac
	start_daemon "$S/$1.git" "$T/$1" "node=$1" "${remotes[@]}" sync_interval=1 sync_timeout=3
}

# status_of N EXPR - the python expression EXPR over node N's /.gitkv/status (`s`).
status_of() {
	"$PYTHON" -c 'import json, sys; s = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
		"$T/$1/.gitkv/status" "$2"
}
# link_down N - node N's status shows its link to C failing: failures
# counted, a fetch or push not ok, an error naming C's URL that says the
# connection failed (not a push that lost a race).
link_down() {
	[[ $(status_of "$1" '[r["failures"] > 0 and not (r["last_fetch_ok"] and r["last_push_ok"]) and
			      "c.git" in (r["last_error"] or "") and "connect" in r["last_error"]
			      for r in s["remotes"] if r["name"] == "c"][0]') == True ]]
}
# all_healthy - no node counts a failure or keeps a pending push.
all_healthy() {
	local n
	for n in "${NODES[@]}"; do
		[[ $(status_of "$n" 'sum(r["failures"] for r in s["remotes"]) + s["pending_pushes"]') == 0 ]] ||
			return 1
	done
}
kick_all() {
	local n
	for n in "${NODES[@]}"; do
		kill -USR1 "$(daemon_pid "$T/$n")"
	done
}
# kick_until TIMEOUT_S CMD... - until CMD succeeds, make every node run a
# sync round now (SIGUSR1, which also retries a backing-off remote) and give
# the rounds half a second; 1 if CMD still fails after TIMEOUT_S seconds.
kick_until() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		((SECONDS < deadline)) || return 1
		kick_all
		sleep 0.5
	done
}
diagnose() {
	local n
	for n in "${NODES[@]}"; do
		printf '# %s: head %s tree %s\n' "$n" "$(head_of "$S/$n.git")" \
			"$(git -C "$S/$n.git" rev-parse -q --verify 'HEAD^{tree}' 2>/dev/null || echo none)"
		printf '#   status %s\n' "$(cat "$T/$n/.gitkv/status" 2>&1)"
	done
}
trees_equal() {
	local a b c
	a=$(git -C "$S/a.git" rev-parse -q --verify 'HEAD^{tree}' 2>/dev/null) || return 1
	b=$(git -C "$S/b.git" rev-parse -q --verify 'HEAD^{tree}' 2>/dev/null) || return 1
	c=$(git -C "$S/c.git" rev-parse -q --verify 'HEAD^{tree}' 2>/dev/null) || return 1
	[[ $a == "$b" && $b == "$c" ]]
}
# holds REPO KEY VALUE - the branch of bare repository REPO has KEY = VALUE.
holds() {
	[[ $(git -C "$1" show "main:$2" 2>/dev/null) == "$3" ]]
}
# shows PATH CONTENT - PATH holds CONTENT plus the newline echo wrote.
shows() {
	local got
	got=$(cat -- "$1" 2>/dev/null && printf x) || return 1
	[[ ${got%x} == "$2"$'\n' ]]
}

start_git_daemon
for n in "${NODES[@]}"; do
	start_node "$n"
done

# --- the layout, written on A, reaches B and C ------------------------------------
# Every key lives in a directory, so a writer whose mount is gone (the daemon
# killed, the mount lazily unmounted) fails with ENOENT instead of writing to
# the empty directory underneath.
for d in own_a own_b own_c shared; do
	mkdir "$T/a/$d"
	echo "seed-$d" >"$T/a/$d/seed"
done
seeded() {
	local n d
	for n in "${NODES[@]}"; do
		for d in own_a own_b own_c shared; do
			shows "$T/$n/$d/seed" "seed-$d" || return 1
		done
	done
}
wait_until 30 seeded || { diagnose; fail "the seed keys written on A do not reach B and C within 30 s"; }
ok "keys written on A reach B and C through the mesh"

# --- three writers at once -----------------------------------------------------------
# Each writer runs the same plan of 40 operations on its own mount, about one
# every 0.1 s: sets of its own keys own_N/k1..k6, sets of the shared keys
# shared/s1..s3 (written by every node), deletes (own_N/k2 and own_N/k4 are
# set again later, own_N/k5 stays deleted) and a rename (own_N/tmp to
# own_N/moved). Every value is unique to its write. A log line per operation
# records its outcome: ok (the system call, and for a set the close(),
# returned 0: acknowledged), or failed, and then whether the store may still
# have taken it ("doubt": the request may have been committed before the
# daemon died) or certainly did not (the open() failed). After a failure a
# writer waits for its mount to come back (B's restart) and goes on.
cat >"$T/writer.py" <<'PY'
import json, os, sys, time

node, mnt, log_path = sys.argv[1], sys.argv[2], sys.argv[3]
own = "own_" + node


def plan():
    for i in range(1, 41):
        if i % 5 == 0:
            yield i, "set", "shared/s%d" % ((i // 5) % 3 + 1), None
        elif i in (12, 31, 38):
            yield i, "del", "%s/k%d" % (own, {12: 2, 31: 4, 38: 5}[i]), None
        elif i == 18:
            yield i, "set", own + "/tmp", None
        elif i == 19:
            yield i, "mv", own + "/tmp", own + "/moved"
        else:
            yield i, "set", "%s/k%d" % (own, i % 6 + 1), None


def mount_back():
    end = time.monotonic() + 30
    while time.monotonic() < end:
        if os.path.isdir(os.path.join(mnt, own)):
            return True
        time.sleep(0.05)
    return False


log = open(log_path, "a", buffering=1)
end = time.monotonic() + 90
for i, op, key, dst in plan():
    if time.monotonic() > end:
        break
    rec = {"node": node, "seq": i, "op": op, "key": key}
    path = os.path.join(mnt, key)
    stage = "open"
    try:
        if op == "set":
            rec["value"] = "%s-%s-%d\n" % (node, key.replace("/", "-"), i)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            stage = "write"
            try:
                os.write(fd, rec["value"].encode())
            finally:
                os.close(fd)
        elif op == "del":
            stage = "call"
            os.unlink(path)
        else:
            rec["dst"] = dst
            stage = "call"
            os.rename(path, os.path.join(mnt, dst))
        rec["ok"] = True
    except OSError as e:
        rec["ok"] = False
        rec["doubt"] = stage != "open"
        rec["err"] = os.strerror(e.errno)
    log.write(json.dumps(rec) + "\n")
    if not rec["ok"] and not mount_back():
        log.write(json.dumps({"node": node, "gave_up": True}) + "\n")
        break
    time.sleep(0.1)
PY

declare -A WRITER=()
for n in "${NODES[@]}"; do
	: >"$T/log.$n"
	"$PYTHON" "$T/writer.py" "$n" "$T/$n" "$T/log.$n" 2>"$T/writer.$n.err" &
	WRITER[$n]=$!
	HELPERS+=($!)
done
acked() { (($(grep -c '"ok": true' "$T/log.$1") >= $2)); }

# --- B is killed in the middle of its writes, then restarted -----------------------
wait_until 30 acked b 12 || fail "B's writer has fewer than 12 acknowledged writes after 30 s"
_alive "${WRITER[b]}" || note "B's writer had already finished when B was killed"
kill_daemon "$T/b"
[[ -z $(ls -A "$T/b") ]] || fail "writes went to the directory under B's mount: $(ls -A "$T/b")"
assert_fsck "$S/b.git"
start_node b
ok "B, killed with SIGKILL during its writes, restarts on the same store"

# --- the links to C go down and come back ------------------------------------------
# A and B reach C only through git daemon. While it is down they keep taking
# writes and count the failures; C still gets their writes, fetching them
# itself over its own links. (The waits kick rounds: under the writers' load
# a link may be backing off after pushes that lost races.)
stop_git_daemon
: >"$T/log.extra"
for n in a b; do
	got=$(errno_of write "$T/$n/own_$n/offline" "$n-offline"$'\n')
	assert_eq OK "$got" "a write on $n while its link to C is down"
	printf '{"node": "%s", "seq": 100, "op": "set", "key": "own_%s/offline", "value": "%s-offline\\n", "ok": true}\n' \
		"$n" "$n" "$n" >>"$T/log.extra"
done
for n in a b; do
	kick_until 30 link_down "$n" ||
		{ diagnose; fail "$n's status shows no failure of its link to C after 30 s"; }
	kick_until 30 holds "$S/c.git" "own_$n/offline" "$n-offline" ||
		{ diagnose; fail "C does not get $n's write made while the link $n->C is down"; }
done
ok "with the links to C down, A and B keep writing, count the failures, and C still gets their writes"
start_git_daemon

# --- the writers finish --------------------------------------------------------------
for n in "${NODES[@]}"; do
	wait_until 100 not _alive "${WRITER[$n]}" || fail "$n's writer does not finish within 100 s"
	wait "${WRITER[$n]}" || fail "$n's writer failed: $(cat "$T/writer.$n.err")"
	! grep -q gave_up "$T/log.$n" || fail "$n's writer gave up: its mount did not come back"
	note "$n: $(grep -c '"ok": true' "$T/log.$n") acknowledged, $(grep -c '"ok": false' "$T/log.$n") failed"
done
for n in a c; do
	bad=$(grep '"ok": false' "$T/log.$n" || true)
	[[ -z $bad ]] || fail "a write on $n failed though $n stayed up: $bad"
done
ok "A and C acknowledge every write while B crashes and the links to C are down"

# --- quiet: the stores converge ------------------------------------------------------
kick_until 60 trees_equal ||
	{ diagnose; fail "the three stores do not hold the same tree within 60 s of the last write"; }
ok "the three stores converge to the same tree"
kick_until 30 all_healthy ||
	{ diagnose; fail "the nodes still count failures or pending pushes 30 s after converging"; }
ok "once the links are back, no node counts a failure or a pending push"

# --- what the stores hold --------------------------------------------------------------
# check.py LOGS STORE...: every acknowledged write is in every store's history,
# as a commit of the node that made it; the final tree holds, for each node's
# own keys, what its operations leave (one in doubt may have been taken or
# not), and for each shared key the newest of the writes no other write to
# it followed; no key is left that nobody wrote.
cat >"$T/check.py" <<'PY'
import hashlib, itertools, json, subprocess, sys

logs, stores = sys.argv[1].split(","), sys.argv[2:]
ops = []
for path in logs:
    with open(path) as f:
        ops += [json.loads(l) for l in f if l.strip()]
ops = [o for o in ops if "op" in o]


def blob(value):
    data = value.encode()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def git(store, *args):
    return subprocess.run(["git", "-C", store] + list(args), check=True,
                          capture_output=True, text=True).stdout


def history(store):
    """What the non-merge commits of HEAD wrote: {(path, blob): (time, node,
    id)} for the values, {path: set of nodes} for the removals."""
    written, removed = {}, {}
    out = git(store, "log", "--no-merges", "--root", "--raw", "--no-abbrev", "--no-renames",
              "--format=@ %H %ct%x00%(trailers:key=Gitkv-Node,valueonly,separator=)",
              "HEAD")
    cur = None
    for line in out.splitlines():
        if line.startswith("@ "):
            head, node = line[2:].split("\0")
            commit, when = head.split()
            cur = (int(when), node.strip(), commit)
        elif line.startswith(":"):
            meta, path = line.split("\t", 1)
            m = meta.split()
            if m[4] == "D":
                removed.setdefault(path, set()).add(cur[1])
            else:
                written.setdefault((path, m[3]), cur)
    return written, removed


def tree(store):
    t = {}
    for line in git(store, "ls-tree", "-r", "HEAD").splitlines():
        meta, path = line.split("\t", 1)
        t[path] = meta.split()[2]
    return t


names = {blob(o["value"]): o["value"].strip() for o in ops if "value" in o}


def text(b):
    return "absent" if b is None else repr(names.get(b, b))


errors = []
final = tree(stores[0])
for store in stores:
    written, removed = history(store)
    for o in ops:
        if not o["ok"]:
            continue
        what = "%s's %s #%d of %s" % (o["node"], o["op"], o["seq"], o["key"])
        if o["op"] == "set" and written.get((o["key"], blob(o["value"])), (0, ""))[1] != o["node"]:
            errors.append("%s: no commit of %s holds %s" % (store, o["node"], what))
        if o["op"] in ("del", "mv") and o["node"] not in removed.get(o["key"], ()):
            errors.append("%s: no commit of %s removes the key: %s" % (store, o["node"], what))
        if o["op"] == "mv" and not any(p == o["dst"] and st[1] == o["node"]
                                       for (p, _), st in written.items()):
            errors.append("%s: no commit of %s creates %s: %s" % (store, o["node"], o["dst"], what))

# Each node's own keys: replay its operations, both ways for those in doubt.
for node in sorted({o["node"] for o in ops}):
    prefix = "own_%s/" % node
    mine = sorted((o for o in ops if o["node"] == node and (o["ok"] or o.get("doubt"))),
                  key=lambda o: o["seq"])
    mine = [o for o in mine if o["key"].startswith(prefix)]
    doubt = [o for o in mine if not o["ok"]]
    possible = []
    for taken in itertools.product((False, True), repeat=len(doubt)):
        took = {id(o): t for o, t in zip(doubt, taken)}
        state = {prefix + "seed": blob("seed-own_%s\n" % node)}
        consistent = True
        for o in mine:
            if not o["ok"] and not took[id(o)]:
                continue
            if o["op"] == "set":
                state[o["key"]] = blob(o["value"])
            elif o["key"] not in state:
                consistent = False  # removing a key that is not there
                break
            elif o["op"] == "del":
                del state[o["key"]]
            else:
                state[o["dst"]] = state.pop(o["key"])
        if consistent:
            possible.append(state)
    got = {p: b for p, b in final.items() if p.startswith(prefix)}
    if got not in possible:
        for want in possible or [{}]:
            diff = ["%s: %s, expected %s" % (p, text(got.get(p)), text(want.get(p)))
                    for p in sorted(set(got) | set(want)) if got.get(p) != want.get(p)]
            errors.append("node %s's own keys: %s" % (node, "; ".join(diff)))
    print("# own_%s: %d keys, %d operation(s) in doubt" % (node, len(got), len(doubt)))

# Shared keys: of the writes no other write to the key came after (their
# commit is no ancestor of another's), the newest wins: the larger commit
# time, then node name.
stamps, _ = history(stores[0])
parents = {}
for line in git(stores[0], "rev-list", "--parents", "HEAD").splitlines():
    f = line.split()
    parents[f[0]] = f[1:]


def ancestors(commit):
    seen, todo = set(), list(parents[commit])
    while todo:
        c = todo.pop()
        if c not in seen:
            seen.add(c)
            todo += parents[c]
    return seen


for key in sorted({o["key"] for o in ops if o["key"].startswith("shared/")}):
    writes = []
    for o in ops:
        if o["key"] == key and o["op"] == "set" and (o["ok"] or o.get("doubt")):
            st = stamps.get((key, blob(o["value"])))
            if st is None and o["ok"]:
                errors.append("no commit of %s writes %s's value #%d" % (key, o["node"], o["seq"]))
            elif st is not None:
                writes.append((st, o["value"]))
    before = set()
    for (_, _, commit), _ in writes:
        before |= ancestors(commit)
    last = [(st[0], st[1], v) for st, v in writes if st[2] not in before]
    want = max(last)
    if final.get(key) != blob(want[2]):
        errors.append("%s holds blob %s; of the last writes %s the newest is %r" % (
            key, final.get(key), sorted(last), want[2]))
    for (_, node, _), v in writes:
        if node != v.split("-")[0]:
            errors.append("%s: the commit of %r names node %r" % (key, v, node))
    print("# %s: %d writes, %d concurrent last ones" % (key, len(writes), len(last)))

known = {"shared/seed"} | {o["key"] for o in ops} | {o["dst"] for o in ops if "dst" in o}
stray = sorted(p for p in final if p not in known and not p.endswith("/seed"))
if stray:
    errors.append("keys nobody wrote: %s" % stray)

for e in errors[:30]:
    print(e, file=sys.stderr)
sys.exit(1 if errors else 0)
PY
"$PYTHON" "$T/check.py" "$T/log.a,$T/log.b,$T/log.c,$T/log.extra" "$S/a.git" "$S/b.git" "$S/c.git" ||
	fail "the converged stores do not hold what the nodes wrote"
ok "every acknowledged write is in every store's history; own keys hold their node's last write"
ok "each shared key holds the newest of its last concurrent writes, the same on every node"

# --- every mount reads the final tree --------------------------------------------------
# mount_matches N - node N's mount holds exactly the keys and values of its
# store's HEAD tree.
mount_matches() {
	"$PYTHON" - "$T/$1" "$S/$1.git" <<'PY'
import hashlib, os, subprocess, sys
mnt, store = sys.argv[1], sys.argv[2]
want = {}
out = subprocess.run(["git", "-C", store, "ls-tree", "-r", "HEAD"], check=True,
                     capture_output=True, text=True).stdout
for line in out.splitlines():
    meta, path = line.split("\t", 1)
    want[path] = meta.split()[2]
got = {}
for d, dirs, files in os.walk(mnt):
    if d == mnt:
        dirs[:] = [x for x in dirs if x != ".gitkv"]
    for f in files:
        with open(os.path.join(d, f), "rb") as fh:
            data = fh.read()
        got[os.path.relpath(os.path.join(d, f), mnt)] = hashlib.sha1(
            b"blob %d\0" % len(data) + data).hexdigest()
if got != want:
    diff = sorted(set(got.items()) ^ set(want.items()))
    print("%s differs from its store: %s" % (mnt, diff[:10]), file=sys.stderr)
    sys.exit(1)
PY
}
for n in "${NODES[@]}"; do
	wait_until 20 mount_matches "$n" || { mount_matches "$n" || true; fail "$n's mount does not read its store's tree"; }
done
ok "every mount reads the converged keys and values"

# --- a clean stop, a clean store ---------------------------------------------------------
tree=$(git -C "$S/a.git" rev-parse 'HEAD^{tree}')
for n in "${NODES[@]}"; do
	stop_daemon "$T/$n"
done
stop_git_daemon
for n in "${NODES[@]}"; do
	assert_eq "$tree" "$(git -C "$S/$n.git" rev-parse 'HEAD^{tree}')" "$n's tree after the daemons stopped"
	assert_fsck "$S/$n.git"
done
ok "after the daemons stop the stores still agree and git fsck --strict accepts them"
