#!/bin/sh
# check_cli.sh: runs `embt validate --format=json` on every sample of format/ and checks the exit code
# (0 for format/valid, 1 for format/invalid) and, for invalid samples, the status and rule fields against
# the sample's .yaml. Usage: check_cli.sh EMBT_BINARY SOURCE_DIR
embt=$1
src=$2
fails=0
count=0
for f in "$src"/format/valid/*.embt; do
    count=$((count + 1))
    out=$("$embt" validate --format=json "$f" 2>/dev/null)
    rc=$?
    if [ "$rc" -ne 0 ]; then
        echo "FAIL $f: exit $rc, expected 0: $out"
        fails=$((fails + 1))
    elif ! printf '%s\n' "$out" | grep -q '"valid":true'; then
        echo "FAIL $f: no \"valid\":true in $out"
        fails=$((fails + 1))
    fi
done
for f in "$src"/format/invalid/*.embt; do
    count=$((count + 1))
    y=${f%.embt}.yaml
    status=$(sed -n 's/^status: *//p' "$y")
    rule=$(sed -n 's/^rule: *//p' "$y")
    out=$("$embt" validate --format=json "$f" 2>/dev/null)
    rc=$?
    if [ "$rc" -ne 1 ]; then
        echo "FAIL $f: exit $rc, expected 1: $out"
        fails=$((fails + 1))
    elif ! printf '%s\n' "$out" | grep -q "\"status\":\"$status\""; then
        echo "FAIL $f: expected status $status: $out"
        fails=$((fails + 1))
    elif ! printf '%s\n' "$out" | grep -q "\"rule\":$rule[,}]"; then
        echo "FAIL $f: expected rule $rule: $out"
        fails=$((fails + 1))
    fi
done
echo "$count samples, $fails failures"
[ "$count" -gt 0 ] && [ "$fails" -eq 0 ]
