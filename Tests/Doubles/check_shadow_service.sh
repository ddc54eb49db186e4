#!/usr/bin/env bash
# Self-check of the Device Shadow test double (shadow_service.py, next to
# this script): a throw-away PKI, a mosquitto with mutual TLS on a free
# 127.0.0.1 port, the double, and mosquitto_pub/mosquitto_sub as the client.
# Prints PASS or FAIL per behaviour and exits non-zero on any failure.
#
#   bash Tests/Doubles/check_shadow_service.sh
#
# Needs openssl, mosquitto, mosquitto-clients and python3-paho-mqtt (Debian
# 12). PYTHON overrides the interpreter (default /usr/bin/python3: Debian's
# paho is installed for that one, not for a python3 earlier on PATH).
# Everything it starts is stopped, and its temp directory removed, on exit.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
python=${PYTHON:-/usr/bin/python3}
double_script="$here/shadow_service.py"

for tool in openssl mosquitto_sub mosquitto_pub "$python"; do
    command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 2; }
done
# Debian puts the broker in /usr/sbin, often not on a user's PATH.
mosquitto=$(command -v mosquitto || echo /usr/sbin/mosquitto)
[[ -x "$mosquitto" ]] || { echo "missing: mosquitto" >&2; exit 2; }
"$python" -c 'import paho.mqtt.client' 2>/dev/null || { echo "missing: paho-mqtt for $python (apt-get install python3-paho-mqtt)" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/shadow-check.XXXXXX")
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

passed=0
failed=0
report() { # NAME STATUS [DETAIL]: one PASS/FAIL line
    if [[ "$2" == 0 ]]; then
        echo "PASS $1"
        passed=$((passed + 1))
    else
        echo "FAIL $1${3:+ -- $3}"
        failed=$((failed + 1))
    fi
}

# --- PKI: CA, server (SAN localhost and 127.0.0.1), two clients; EC P-256 ---

pki="$work/pki"
mkdir -p "$pki"
new_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
make_ca() {
    cat >"$pki/ca.cnf" <<'EOF'
[req]
distinguished_name = dn
x509_extensions = v3_ca
prompt = no
[dn]
CN = shadow double check CA
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
EOF
    new_key "$pki/ca.key"
    openssl req -x509 -new -key "$pki/ca.key" -config "$pki/ca.cnf" -days 2 -sha256 -out "$pki/ca.pem" 2>/dev/null
}
issue() { # NAME CN EXTENSIONS
    printf '%s\n' "basicConstraints = critical, CA:FALSE" "keyUsage = critical, digitalSignature, keyEncipherment" \
        "subjectKeyIdentifier = hash" "authorityKeyIdentifier = keyid" "$3" >"$pki/$1.ext"
    new_key "$pki/$1.key"
    openssl req -new -key "$pki/$1.key" -subj "/CN=$2" -out "$pki/$1.csr" 2>/dev/null
    openssl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca.key" -set_serial "0x$(openssl rand -hex 12)" \
        -days 2 -sha256 -extfile "$pki/$1.ext" -out "$pki/$1.pem" 2>/dev/null
}
make_ca
issue server localhost $'extendedKeyUsage = serverAuth\nsubjectAltName = DNS:localhost, IP:127.0.0.1'
issue double shadow-double "extendedKeyUsage = clientAuth"
issue tester shadow-tester "extendedKeyUsage = clientAuth"

# --- broker ---

# SHADOW_CHECK_PORT: a port the caller picked (the integration tests hand
# out ports below the ephemeral range, so no gateway of theirs can take it).
port=${SHADOW_CHECK_PORT:-$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
{
    echo "per_listener_settings false"
    echo "listener $port 127.0.0.1"
    echo "cafile $pki/ca.pem"
    echo "certfile $pki/server.pem"
    echo "keyfile $pki/server.key"
    echo "require_certificate true"
    echo "use_identity_as_username true"
    echo "allow_anonymous false"
    echo "persistence false"
    echo "log_dest file $work/mosquitto.log"
    echo "log_type all"
    # As root, mosquitto would drop to the `mosquitto` user, who may not
    # read the temp directory.
    if [[ $(id -u) == 0 ]]; then echo "user root"; fi
} >"$work/mosquitto.conf"
"$mosquitto" -c "$work/mosquitto.conf" >"$work/mosquitto.out" 2>&1 &
pids+=($!)
broker_up=1
for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then broker_up=0; break; fi
    sleep 0.1
done
if [[ $broker_up != 0 ]]; then
    echo "mosquitto did not start:" >&2
    cat "$work/mosquitto.out" "$work/mosquitto.log" >&2 || true
    exit 1
fi

tls=(--cafile "$pki/ca.pem" --cert "$pki/tester.pem" --key "$pki/tester.key" -h 127.0.0.1 -p "$port")

# --- the double ---

double_out="$work/double.out"
double_err="$work/double.err"
# Created here: the background job's redirections may come after the first poll.
: >"$double_out"
: >"$double_err"
"$python" "$double_script" --host 127.0.0.1 --port "$port" --cafile "$pki/ca.pem" \
    --cert "$pki/double.pem" --key "$pki/double.key" --client-id shadow-double >"$double_out" 2>"$double_err" &
double_pid=$!
pids+=("$double_pid")
ready=1
for _ in $(seq 300); do
    if grep -qx "shadow-service ready" "$double_out"; then ready=0; break; fi
    kill -0 "$double_pid" 2>/dev/null || break
    sleep 0.1
done
report "the double prints 'shadow-service ready' once subscribed" "$ready" "$(tail -5 "$double_err" 2>/dev/null)"
if [[ $ready != 0 ]]; then exit 1; fi

# --- a subscriber that records every answer: "qos retain topic payload" ---

sub_out="$work/sub.out"
: >"$sub_out"
mosquitto_sub "${tls[@]}" -i shadow-check-sub -q 1 -F '%q %r %t %p' -t '$aws/things/#' -t 'shadow-check/probe' \
    >"$sub_out" 2>"$work/sub.err" &
pids+=($!)
subscribed=1
for attempt in $(seq 50); do
    mosquitto_pub "${tls[@]}" -q 1 -t shadow-check/probe -m "probe $attempt"
    sleep 0.2
    if grep -q ' shadow-check/probe ' "$sub_out"; then subscribed=0; break; fi
done
if [[ $subscribed != 0 ]]; then
    echo "mosquitto_sub did not receive its probe:" >&2
    cat "$work/sub.err" >&2
    exit 1
fi

# --- helpers ---

pub() { # TOPIC PAYLOAD (empty: a zero-length message)
    if [[ -z "$2" ]]; then
        mosquitto_pub "${tls[@]}" -q 1 -t "$1" -n
    else
        mosquitto_pub "${tls[@]}" -q 1 -t "$1" -m "$2"
    fi
}

# The first line after line $mark on TOPIC whose payload carries clientToken
# TOKEN ("-": one without a clientToken), as "LINE_NUMBER qos retain topic
# payload"; empty after 10 s.
mark=0
set_mark() { mark=$(wc -l <"$sub_out"); }
find_answer() { # TOPIC TOKEN
    awk -v topic="$1" -v token="$2" -v from="$mark" '
        NR > from && $3 == topic {
            has = index($0, "\"clientToken\":") > 0
            if ((token == "-" && !has) || (token != "-" && index($0, "\"clientToken\":\"" token "\"") > 0)) { print NR " " $0; exit }
        }' "$sub_out"
}
await() { # TOPIC TOKEN
    local line deadline=$((SECONDS + 10))
    while :; do
        line=$(find_answer "$1" "$2")
        if [[ -n "$line" || $SECONDS -ge $deadline ]]; then printf '%s' "$line"; return; fi
        sleep 0.05
    done
}

# A get on THING's classic shadow, answered: every answer the double sent
# before it has reached the subscriber too (one publisher, one subscriber,
# QoS 1: in order). The base for "nothing else was published".
sync_token=0
sync_on() { # THING
    sync_token=$((sync_token + 1))
    pub "\$aws/things/$1/shadow/get" "{\"clientToken\":\"sync-$sync_token\"}"
    local line
    line=$(await "\$aws/things/$1/shadow/get/accepted" "sync-$sync_token")
    [[ -n "$line" ]] || line=$(await "\$aws/things/$1/shadow/get/rejected" "sync-$sync_token")
    [[ -n "$line" ]] || echo "warning: sync get on $1 unanswered" >&2
}

cat >"$work/expect.py" <<'EOF'
# expect.py NAME LINE EXPRESSION: evaluates EXPRESSION with the answer's
# payload as `d` (and qos, retain, topic); prints why when it does not hold.
import json, sys, time
line, expression = sys.argv[1], sys.argv[2]
_, qos, retain, topic, payload = line.split(" ", 4)
qos, retain = int(qos), int(retain)
d = json.loads(payload)
now = int(time.time())

def ts(value):
    """An integer epoch-seconds timestamp from about now."""
    return type(value) is int and abs(value - now) < 120

def stamps(metadata, shape):
    """metadata mirrors `shape` with {"timestamp": T} at each leaf."""
    if isinstance(shape, dict):
        return isinstance(metadata, dict) and metadata.keys() == shape.keys() and all(stamps(metadata[k], v) for k, v in shape.items())
    if isinstance(shape, list):
        return isinstance(metadata, list) and len(metadata) == len(shape) and all(stamps(m, v) for m, v in zip(metadata, shape))
    return isinstance(metadata, dict) and metadata.keys() == {"timestamp"} and ts(metadata["timestamp"])

try:
    ok = eval(expression)
except Exception as error:
    ok = False
    print(f"{type(error).__name__}: {error}")
if not ok:
    print(f"got {topic} q{qos} r{retain}: {payload}")
sys.exit(0 if ok else 1)
EOF

expect() { # NAME LINE EXPRESSION
    local detail status=0
    if [[ -z "$2" ]]; then
        report "$1" 1 "no answer"
        return
    fi
    detail=$("$python" "$work/expect.py" "$2" "$3" 2>&1) || status=1
    report "$1" "$status" "$detail"
}

absent() { # NAME TOPIC TOKEN: nothing on TOPIC with TOKEN since the mark
    local line
    line=$(find_answer "$2" "$3")
    report "$1" "$([[ -z "$line" ]] && echo 0 || echo 1)" "unexpected: $line"
}

line_number() { printf '%s' "${1%% *}"; }

classic='$aws/things/lamp/shadow'
named='$aws/things/lamp/shadow/name/cfg'

# --- get on missing shadows ---

set_mark
pub "$classic/get" '{"clientToken":"t-get-missing"}'
expect "get of a missing classic shadow: 404 naming the thing" "$(await "$classic/get/rejected" t-get-missing)" \
    'd["code"] == 404 and d["message"] == "No shadow exists with name: '"'lamp'"'" and ts(d["timestamp"]) and d["clientToken"] == "t-get-missing"'

pub "$named/get" '{"clientToken":"t-get-missing-named"}'
expect "get of a missing named shadow: 404 naming thing~name" "$(await "$named/get/rejected" t-get-missing-named)" \
    'd["code"] == 404 and d["message"] == "No shadow exists with name: '"'lamp~cfg'"'" and d["clientToken"] == "t-get-missing-named"'

set_mark
pub "$classic/get" 'not json'
expect "a request that is not a JSON object: answered without clientToken" "$(await "$classic/get/rejected" -)" \
    'd["code"] == 404 and "clientToken" not in d and set(d) == {"code", "message", "timestamp"}'

# --- the first update creates the shadow ---

set_mark
first='{"state":{"desired":{"color":"red","dims":{"level":5,"mode":"eco"}},"reported":{"color":"blue","dims":{"mode":"eco"}}},"clientToken":"t-create"}'
pub "$classic/update" "$first"
accepted=$(await "$classic/update/accepted" t-create)
documents=$(await "$classic/update/documents" t-create)
delta=$(await "$classic/update/delta" t-create)
expect "update/accepted: the request's state, leaf metadata, version 1" "$accepted" \
    'd["state"] == {"desired":{"color":"red","dims":{"level":5,"mode":"eco"}},"reported":{"color":"blue","dims":{"mode":"eco"}}} and stamps(d["metadata"], d["state"]) and d["version"] == 1 and ts(d["timestamp"]) and d["clientToken"] == "t-create"'
expect "update/documents of a new shadow: no previous, current at version 1" "$documents" \
    '"previous" not in d and d["current"]["version"] == 1 and d["current"]["state"] == {"desired":{"color":"red","dims":{"level":5,"mode":"eco"}},"reported":{"color":"blue","dims":{"mode":"eco"}}} and stamps(d["current"]["metadata"], d["current"]["state"]) and ts(d["timestamp"]) and d["clientToken"] == "t-create"'
expect "update/delta: the desired leaves reported does not match, with their metadata" "$delta" \
    'd["state"] == {"color":"red","dims":{"level":5}} and stamps(d["metadata"], d["state"]) and d["version"] == 1 and ts(d["timestamp"]) and d["clientToken"] == "t-create"'
if [[ -n "$accepted" && -n "$documents" && -n "$delta" ]]; then
    in_order=$([[ $(line_number "$accepted") -lt $(line_number "$documents") && $(line_number "$documents") -lt $(line_number "$delta") ]] && echo 0 || echo 1)
    report "answers in AWS's order: accepted, documents, delta" "$in_order"
else
    report "answers in AWS's order: accepted, documents, delta" 1 "an answer is missing"
fi
expect "answers are published at QoS 1" "$accepted" 'qos == 1'

set_mark
pub "$classic/get" '{"clientToken":"t-get-1"}'
expect "get: desired, reported, delta, metadata of desired and reported, version" "$(await "$classic/get/accepted" t-get-1)" \
    'd["state"] == {"desired":{"color":"red","dims":{"level":5,"mode":"eco"}},"reported":{"color":"blue","dims":{"mode":"eco"}},"delta":{"color":"red","dims":{"level":5}}} and set(d["metadata"]) == {"desired","reported"} and stamps(d["metadata"]["desired"], d["state"]["desired"]) and stamps(d["metadata"]["reported"], d["state"]["reported"]) and d["version"] == 1 and ts(d["timestamp"]) and d["clientToken"] == "t-get-1"'

# --- reports ---

set_mark
pub "$classic/update" '{"state":{"reported":{"color":"red"}},"clientToken":"t-report-1"}'
expect "a report: accepted with only its own state and metadata, version 2" "$(await "$classic/update/accepted" t-report-1)" \
    'd["state"] == {"reported":{"color":"red"}} and stamps(d["metadata"], {"reported":{"color":"red"}}) and d["version"] == 2'
expect "update/documents: previous (version 1) and current (version 2)" "$(await "$classic/update/documents" t-report-1)" \
    'd["previous"]["version"] == 1 and d["previous"]["state"]["reported"] == {"color":"blue","dims":{"mode":"eco"}} and d["current"]["version"] == 2 and d["current"]["state"]["reported"] == {"color":"red","dims":{"mode":"eco"}} and "delta" not in d["current"]["state"]'
sync_on lamp
absent "no update/delta for an update that does not touch desired (delta still non-empty)" "$classic/update/delta" t-report-1

set_mark
pub "$classic/update" '{"state":{"reported":{"dims":{"level":5}}},"clientToken":"t-report-2"}'
await "$classic/update/accepted" t-report-2 >/dev/null
pub "$classic/get" '{"clientToken":"t-get-2"}'
expect "reported catches up with desired: get has no delta" "$(await "$classic/get/accepted" t-get-2)" \
    '"delta" not in d["state"] and d["state"]["reported"] == {"color":"red","dims":{"level":5,"mode":"eco"}} and d["version"] == 3'

set_mark
pub "$classic/update" '{"state":{"desired":{"color":"red"}},"clientToken":"t-same"}'
await "$classic/update/accepted" t-same >/dev/null
sync_on lamp
absent "no update/delta when desired is updated but matches reported" "$classic/update/delta" t-same

# --- merging ---

set_mark
pub "$classic/update" '{"state":{"desired":{"color":"green"}},"clientToken":"t-desired-2"}'
expect "update/delta after a change of desired: the whole delta" "$(await "$classic/update/delta" t-desired-2)" \
    'd["state"] == {"color":"green"} and stamps(d["metadata"], {"color":"green"}) and d["version"] == 5'

set_mark
pub "$classic/update" '{"state":{"desired":{"color":null},"reported":{"list":[1,2,3],"dims":{"mode":null}}},"clientToken":"t-merge-1"}'
expect "null in an update is echoed with its metadata in update/accepted" "$(await "$classic/update/accepted" t-merge-1)" \
    'd["state"]["desired"] == {"color":None} and stamps(d["metadata"]["desired"], {"color":None}) and stamps(d["metadata"]["reported"], {"list":[1,2,3],"dims":{"mode":None}})'
pub "$classic/update" '{"state":{"reported":{"list":[4]}},"clientToken":"t-merge-2"}'
await "$classic/update/accepted" t-merge-2 >/dev/null
pub "$classic/get" '{"clientToken":"t-get-3"}'
get3=$(await "$classic/get/accepted" t-get-3)
expect "null deletes a key, nested objects merge, other keys stay" "$get3" \
    'd["state"]["desired"] == {"dims":{"level":5,"mode":"eco"}} and d["state"]["reported"]["dims"] == {"level":5} and d["state"]["reported"]["color"] == "red"'
expect "arrays are replaced whole; metadata has one entry per element" "$get3" \
    'd["state"]["reported"]["list"] == [4] and stamps(d["metadata"]["reported"], d["state"]["reported"])'
expect "delta of a nested object: only its differing leaves" "$get3" \
    'd["state"]["delta"] == {"dims":{"mode":"eco"}} and d["version"] == 7'

set_mark
pub "$classic/update" '{"state":{"reported":{"dims":7}},"clientToken":"t-replace-1"}'
await "$classic/update/accepted" t-replace-1 >/dev/null
pub "$classic/get" '{"clientToken":"t-get-4"}'
expect "a non-object replaces an object; delta then holds the whole desired object" "$(await "$classic/get/accepted" t-get-4)" \
    'd["state"]["reported"]["dims"] == 7 and d["metadata"]["reported"]["dims"].keys() == {"timestamp"} and d["state"]["delta"] == {"dims":{"level":5,"mode":"eco"}}'

set_mark
pub "$classic/update" '{"state":{"desired":null},"clientToken":"t-clear"}'
await "$classic/update/accepted" t-clear >/dev/null
pub "$classic/get" '{"clientToken":"t-get-5"}'
expect "desired set to null clears desired (and the delta)" "$(await "$classic/get/accepted" t-get-5)" \
    '"desired" not in d["state"] and "delta" not in d["state"] and "desired" not in d["metadata"] and d["state"]["reported"]["dims"] == 7 and d["version"] == 9'

set_mark
pub '$aws/things/switch/shadow/update' '{"state":{"desired":{"on":1,"mode":"auto"},"reported":{"on":true,"mode":"auto"}},"clientToken":"t-types"}'
expect "delta compares JSON values: 1 is not true" "$(await '$aws/things/switch/shadow/update/delta' t-types)" \
    'd["state"] == {"on":1}'

# --- versions ---

set_mark
pub "$classic/update" '{"state":{"reported":{"x":1}},"version":3,"clientToken":"t-conflict"}'
expect "an update naming another version: 409 Version conflict" "$(await "$classic/update/rejected" t-conflict)" \
    'd["code"] == 409 and d["message"] == "Version conflict" and ts(d["timestamp"]) and d["clientToken"] == "t-conflict"'
pub "$classic/update" '{"state":{"reported":{"x":1}},"version":9,"clientToken":"t-versioned"}'
expect "an update naming the current version: accepted, version + 1" "$(await "$classic/update/accepted" t-versioned)" \
    'd["version"] == 10'

set_mark
pub '$aws/things/fresh/shadow/update' '{"state":{"reported":{"x":1}},"version":5,"clientToken":"t-fresh-conflict"}'
expect "an update of a new shadow naming version 5: 409" "$(await '$aws/things/fresh/shadow/update/rejected' t-fresh-conflict)" \
    'd["code"] == 409 and d["message"] == "Version conflict"'
pub '$aws/things/fresh/shadow/get' '{"clientToken":"t-fresh-get"}'
expect "a rejected update creates no shadow" "$(await '$aws/things/fresh/shadow/get/rejected' t-fresh-get)" 'd["code"] == 404'

# --- bad requests ---

set_mark
pub "$classic/update" '{"state":'
expect "invalid JSON: 400 Payload contains invalid json, no clientToken" "$(await "$classic/update/rejected" -)" \
    'd["code"] == 400 and d["message"] == "Payload contains invalid json" and "clientToken" not in d'

set_mark
pub "$classic/update" '[1,2]'
expect "JSON that is not an object: 400 Missing required node: state, no clientToken" "$(await "$classic/update/rejected" -)" \
    'd["code"] == 400 and d["message"] == "Missing required node: state" and "clientToken" not in d'

pub "$classic/update" '{"clientToken":"t-no-state"}'
expect "no state: 400 Missing required node: state" "$(await "$classic/update/rejected" t-no-state)" \
    'd["code"] == 400 and d["message"] == "Missing required node: state" and d["clientToken"] == "t-no-state"'

pub "$classic/update" '{"state":{"desired":{"a":1},"wanted":{"a":1}},"clientToken":"t-bad-node"}'
expect "a state node other than desired/reported: 400 naming it" "$(await "$classic/update/rejected" t-bad-node)" \
    'd["code"] == 400 and d["message"] == "State contains an invalid node: '"'wanted'"'" and d["clientToken"] == "t-bad-node"'

big=$("$python" -c 'import json; print(json.dumps({"state": {"reported": {"blob": "x" * 8200}}, "clientToken": "t-big"}, separators=(",", ":")))')
pub "$classic/update" "$big"
expect "an update over 8192 bytes: 413" "$(await "$classic/update/rejected" t-big)" \
    'd["code"] == 413 and d["message"] == "The payload exceeds the maximum size allowed"'

pub "$classic/get" '{"clientToken":"t-get-6"}'
expect "rejected updates change nothing" "$(await "$classic/get/accepted" t-get-6)" \
    'd["version"] == 10 and "blob" not in d["state"]["reported"]'

# --- named shadows ---

set_mark
pub "$named/update" '{"state":{"desired":{"rate":10}},"clientToken":"t-named"}'
expect "a named shadow is separate from the classic one: version 1" "$(await "$named/update/accepted" t-named)" 'd["version"] == 1'
expect "a named shadow publishes documents on its own topics" "$(await "$named/update/documents" t-named)" \
    '"previous" not in d and d["current"]["state"] == {"desired":{"rate":10}}'
expect "a named shadow publishes delta on its own topics" "$(await "$named/update/delta" t-named)" 'd["state"] == {"rate":10}'
pub "$named/get" '{"clientToken":"t-named-get"}'
expect "get of a named shadow" "$(await "$named/get/accepted" t-named-get)" \
    'd["state"] == {"desired":{"rate":10},"delta":{"rate":10}} and d["version"] == 1'
pub "$classic/get" '{"clientToken":"t-get-7"}'
expect "the classic shadow is unaffected" "$(await "$classic/get/accepted" t-get-7)" 'd["version"] == 10 and "rate" not in d["state"].get("desired", {})'

set_mark
pub "$named/delete" '{"clientToken":"t-named-delete"}'
expect "delete of a named shadow: accepted with its version" "$(await "$named/delete/accepted" t-named-delete)" \
    'd["version"] == 1 and ts(d["timestamp"]) and d["clientToken"] == "t-named-delete" and set(d) == {"version","timestamp","clientToken"}'
pub "$named/get" '{"clientToken":"t-named-gone"}'
expect "a deleted shadow is gone: get 404" "$(await "$named/get/rejected" t-named-gone)" \
    'd["code"] == 404 and d["message"] == "No shadow exists with name: '"'lamp~cfg'"'"'
pub "$named/delete" '{"clientToken":"t-named-delete-again"}'
expect "delete of a missing shadow: 404" "$(await "$named/delete/rejected" t-named-delete-again)" \
    'd["code"] == 404 and d["clientToken"] == "t-named-delete-again"'

set_mark
pub "$classic/delete" ''
expect "delete with an empty payload: accepted, no clientToken" "$(await "$classic/delete/accepted" -)" \
    'd["version"] == 10 and "clientToken" not in d'
pub "$classic/update" '{"state":{"reported":{"on":true}},"clientToken":"t-recreate"}'
expect "an update after delete starts again at version 1" "$(await "$classic/update/accepted" t-recreate)" 'd["version"] == 1'
expect "... and its documents have no previous" "$(await "$classic/update/documents" t-recreate)" \
    '"previous" not in d and d["current"]["state"] == {"reported":{"on":True}}'

# --- other topics, retained flag ---

set_mark
pub '$aws/things/lamp/shadow/list' '{"clientToken":"t-other-1"}'
pub '$aws/things/lamp/shadow/name/cfg/get/extra' '{"clientToken":"t-other-2"}'
pub '$aws/things/lamp/shadows/get' '{"clientToken":"t-other-3"}'
sync_on lamp
ignored=$(grep -c -E 't-other-[123]' "$sub_out" || true)
report "requests on other topics are not answered" "$([[ $ignored == 3 ]] && echo 0 || echo 1)" "$ignored lines mention them (3 are the requests)"

retained=$(timeout 10 mosquitto_sub "${tls[@]}" -i shadow-check-retained -t '$aws/things/#' --retained-only -W 2 -F '%t' 2>/dev/null || true)
report "answers are not retained" "$([[ -z "$retained" ]] && echo 0 || echo 1)" "retained: $retained"

# --- pause and resume ---

set_mark
pub shadow-double/pause ''
pub "$classic/get" '{"clientToken":"t-paused"}'
sleep 2
absent "while paused, requests go unanswered" "$classic/get/accepted" t-paused
pub shadow-double/resume ''
pub "$classic/get" '{"clientToken":"t-resumed"}'
expect "after resume, requests are answered again" "$(await "$classic/get/accepted" t-resumed)" 'd["version"] == 1'
absent "a request dropped while paused stays unanswered" "$classic/get/accepted" t-paused

# --- the log, and SIGTERM ---

requests_logged=$(grep -c ' request \$aws/things/lamp/shadow/get ' "$double_err" || true)
answers_logged=$(grep -c ' answer \$aws/things/lamp/shadow/get/accepted: ' "$double_err" || true)
report "stderr has a line per request and per answer" "$([[ $requests_logged -gt 5 && $answers_logged -gt 5 ]] && echo 0 || echo 1)" \
    "$requests_logged request lines, $answers_logged answer lines"

kill -TERM "$double_pid"
status=0
wait "$double_pid" || status=$?
remaining=()
for pid in "${pids[@]}"; do [[ $pid == "$double_pid" ]] || remaining+=("$pid"); done
pids=("${remaining[@]}")
report "SIGTERM: the double exits 0" "$status" "exit status $status; $(tail -3 "$double_err")"

echo "$passed passed, $failed failed"
if [[ $failed != 0 ]]; then
    echo "--- double's stderr (tail) ---"
    tail -40 "$double_err"
    exit 1
fi
